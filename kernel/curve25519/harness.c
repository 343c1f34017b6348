/* Test harness for the committed curve25519 kernel image under qemu-arm (user mode), in the manner of
 * kernel/harness.c, with the parts they share in kernel/harness.h: loads curve25519.bin into executable
 * memory at a word-aligned, not page-aligned address and calls its entries in Thumb mode, one command
 * per stdin line, one answer per stdout line.
 * Each x25519 / ed25519_verify call runs on a stack of its own, painted with 0xa5 before the call; the
 * answer ends with the bytes of it the call wrote (its stack high-water mark, the registers the entry
 * pushes included). Built by kernel/curve25519/run.ts (kernel/harness.ts buildHarness) with arm-linux-gnueabihf-gcc -static.
 *   usage: harness IMAGE.bin X25519 X25519_BASE ED25519_VERIFY SHA512   (entry offsets in bytes)
 *   X scalar u            -> x25519 output hex, return value, stack bytes
 *   B scalar              -> x25519_base output hex, return value, stack bytes
 *   V sig msg pk          -> ed25519_verify's return value, stack bytes ("-" for an empty message)
 *   H msg                 -> sha512 hex, stack bytes ("-" for an empty message)
 *   I k u n               -> RFC 7748 section 5.2's iteration: n times (k, u) = (X25519(k, u), k); k hex
 *   P                     -> the image's address and size in memory (hex, decimal)
 */
#include "../harness.h"

static entry_fn x25519_fn, base_fn, verify_fn, sha_fn;

#define STACK_SIZE 16384
static uint8_t stack[STACK_SIZE] __attribute__((aligned(8)));

static unsigned long depth;

static int call(entry_fn fn, uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t d) {
  uintptr_t args[4] = {a, b, c, d};
  int r;
  depth = painted_call(stack, STACK_SIZE, 0xa5, fn, args, &r);
  return r;
}

int main(int argc, char **argv) {
  size_t size;
  entry_fn *const fns[] = {&x25519_fn, &base_fn, &verify_fn, &sha_fn};
  uint8_t *image = start_harness(argc, argv, "harness IMAGE.bin X25519 X25519_BASE ED25519_VERIFY SHA512", fns, 4, &size);

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
      print_image(image, size), printf("\n");
    } else {
      printf("unknown-command\n");
    }
    fflush(stdout);
  }
  return 0;
}
