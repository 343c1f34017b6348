/* Test harness for the committed curve25519 kernel image under qemu-arm (user mode), in the manner of
 * kernel/harness.c: loads curve25519.bin into executable memory at a word-aligned, not page-aligned
 * address and calls its entries in Thumb mode, one command per stdin line, one answer per stdout line.
 * Each x25519 / ed25519_verify call runs on a stack of its own, painted with 0xa5 before the call; the
 * answer ends with the bytes of it the call wrote (its stack high-water mark, the registers the entry
 * pushes included). Built by kernel/curve25519/run.ts with arm-linux-gnueabihf-gcc -static.
 *   usage: harness IMAGE.bin X25519 X25519_BASE ED25519_VERIFY SHA512   (entry offsets in bytes)
 *   X scalar u            -> x25519 output hex, return value, stack bytes
 *   B scalar              -> x25519_base output hex, return value, stack bytes
 *   V sig msg pk          -> ed25519_verify's return value, stack bytes ("-" for an empty message)
 *   H msg                 -> sha512 hex, stack bytes ("-" for an empty message)
 *   I k u n               -> RFC 7748 section 5.2's iteration: n times (k, u) = (X25519(k, u), k); k hex
 *   P                     -> the image's address and size in memory (hex, decimal)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*entry_fn)(uintptr_t, uintptr_t, uintptr_t, uintptr_t);
static entry_fn x25519_fn, base_fn, verify_fn, sha_fn;

#define STACK_SIZE 16384
static uint8_t stack[STACK_SIZE] __attribute__((aligned(8)));

/* call_on_stack(fn, args[4], stack_top): calls fn(args[0..3]) with sp = stack_top, returns its r0. */
int call_on_stack(entry_fn fn, const uintptr_t *args, uint8_t *top);
__asm__(
    ".syntax unified\n"
    ".text\n"
    ".thumb\n"
    ".global call_on_stack\n"
    ".type call_on_stack, %function\n"
    ".thumb_func\n"
    "call_on_stack:\n"
    "  push {r4, r5, r6, lr}\n"
    "  mov r4, sp\n"
    "  mov sp, r2\n"
    "  mov r5, r0\n"
    "  mov r6, r1\n"
    "  ldr r0, [r6]\n"
    "  ldr r1, [r6, #4]\n"
    "  ldr r2, [r6, #8]\n"
    "  ldr r3, [r6, #12]\n"
    "  blx r5\n"
    "  mov sp, r4\n"
    "  pop {r4, r5, r6, pc}\n");

static unsigned long depth;

static int call(entry_fn fn, uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t d) {
  uintptr_t args[4] = {a, b, c, d};
  memset(stack, 0xa5, sizeof stack);
  int r = call_on_stack(fn, args, stack + STACK_SIZE);
  size_t low = 0;
  while (low < STACK_SIZE && stack[low] == 0xa5) low++;
  depth = STACK_SIZE - low;
  return r;
}

static entry_fn entry(uint8_t *image, const char *offset) {
  return (entry_fn)((uintptr_t)(image + strtoul(offset, 0, 0)) | 1);
}

static size_t unhex(const char *s, uint8_t *out) {
  size_t n = 0;
  if (s[0] == '-') return 0;
  while (s[0] && s[1]) {
    unsigned v;
    sscanf(s, "%2x", &v);
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

static void puthex(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: harness IMAGE.bin X25519 X25519_BASE ED25519_VERIFY SHA512\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  uint8_t *mem = mmap(0, 65536, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 2;
  uint8_t *image = mem + 0x104;
  size_t size = fread(image, 1, 60000, f);
  fclose(f);
  x25519_fn = entry(image, argv[2]);
  base_fn = entry(image, argv[3]);
  verify_fn = entry(image, argv[4]);
  sha_fn = entry(image, argv[5]);

  static char line[8192], a[4096], b[4096], c[4096];
  static uint8_t k[64], u[64], out[64], sig[128], pk[64], msg[2048];
  unsigned long n;
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "X %4095s %4095s", a, b) == 2) {
      unhex(a, k);
      unhex(b, u);
      memset(out, 0xee, sizeof out);
      int r = call(x25519_fn, (uintptr_t)out, (uintptr_t)k, (uintptr_t)u, 0);
      if (out[32] != 0xee) printf("wrote-past-32\n");
      else puthex(out, 32), printf(" %d %lu\n", r, depth);
    } else if (sscanf(line, "B %4095s", a) == 1) {
      unhex(a, k);
      int r = call(base_fn, (uintptr_t)out, (uintptr_t)k, 0, 0);
      puthex(out, 32), printf(" %d %lu\n", r, depth);
    } else if (sscanf(line, "V %4095s %4095s %4095s", a, b, c) == 3) {
      unhex(a, sig);
      size_t len = unhex(b, msg);
      unhex(c, pk);
      int r = call(verify_fn, (uintptr_t)sig, (uintptr_t)msg, (uintptr_t)len, (uintptr_t)pk);
      printf("%d %lu\n", r, depth);
    } else if (sscanf(line, "H %4095s", a) == 1) {
      size_t len = unhex(a, msg);
      call(sha_fn, (uintptr_t)out, (uintptr_t)msg, (uintptr_t)len, 0);
      puthex(out, 64), printf(" %lu\n", depth);
    } else if (sscanf(line, "I %4095s %4095s %lu", a, b, &n) == 3) {
      unhex(a, k);
      unhex(b, u);
      while (n--) {
        x25519_fn((uintptr_t)out, (uintptr_t)k, (uintptr_t)u, 0);
        memcpy(u, k, 32);
        memcpy(k, out, 32);
      }
      puthex(k, 32), printf("\n");
    } else if (line[0] == 'P') {
      printf("%lx %lu\n", (unsigned long)(uintptr_t)image, (unsigned long)size);
    } else {
      printf("unknown-command\n");
    }
    fflush(stdout);
  }
  return 0;
}
