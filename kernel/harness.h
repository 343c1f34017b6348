/* What the qemu-arm harnesses of the committed kernel images share (kernel/harness.c for aes-ccm,
 * kernel/curve25519/harness.c, kernel/hkdf-sha256/harness.c; each is one program, built by
 * kernel/harness.ts buildHarness with arm-linux-gnueabihf-gcc -static; kernel/build.ts compiles only
 * the kernels' kernel.c, never these): loading an image into executable memory at a word-aligned,
 * not page-aligned address, its entries as Thumb function pointers, hex in and out, and calling an
 * entry on a stack of the harness's own whose high-water mark is measured by painting. */
#ifndef KERNEL_HARNESS_H
#define KERNEL_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Every kernel entry: four int-sized arguments, an int result (E.nativeCall's "int(int,int,int,int)"). */
typedef int (*entry_fn)(uintptr_t, uintptr_t, uintptr_t, uintptr_t);

/* Reads the image file into fresh executable memory at offset 0x104 (word-aligned, deliberately not
 * page-aligned, as a flat string in Espruino's heap is); returns it and sets *size, or NULL. */
static inline uint8_t *load_image(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *mem = mmap(0, 65536, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    fclose(f);
    return NULL;
  }
  uint8_t *image = mem + 0x104;
  *size = fread(image, 1, 60000, f);
  fclose(f);
  return image;
}

/* The entry at byte offset `offset` (decimal or 0x hex text) of the image, in Thumb mode (address | 1). */
static inline entry_fn entry_at(uint8_t *image, const char *offset) {
  return (entry_fn)((uintptr_t)(image + strtoul(offset, 0, 0)) | 1);
}

/* Checks the command line "harness IMAGE.bin OFFSET..." (one offset per entry of fns, n of them), loads
 * the image and sets each *fns[i] to its entry; exits with 2 after saying why on a wrong command line
 * (`usage`) or an unreadable image. */
static inline uint8_t *start_harness(int argc, char **argv, const char *usage, entry_fn *const fns[], int n, size_t *size) {
  if (argc != n + 2) {
    fprintf(stderr, "usage: %s\n", usage);
    exit(2);
  }
  uint8_t *image = load_image(argv[1], size);
  if (!image) {
    fprintf(stderr, "cannot read the kernel image %s (or map memory for it)\n", argv[1]);
    exit(2);
  }
  for (int i = 0; i < n; i++) *fns[i] = entry_at(image, argv[2 + i]);
  return image;
}

/* The answer to every harness's P command: the image's address (hex) and size (decimal). */
static inline void print_image(const uint8_t *image, size_t size) {
  printf("%lx %lu", (unsigned long)(uintptr_t)image, (unsigned long)size);
}

/* Hex digits to bytes (pairs, up to the first character that is not one); "-" is the empty string. Returns the byte count. */
static inline size_t unhex(const char *s, uint8_t *out) {
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

static inline void puthex(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

/* call_on_stack(fn, args[4], stack_top): calls fn(args[0..3]) with sp = stack_top (Thumb, AAPCS), returns its r0. */
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

/* Paints stack[0..size) with `paint`, calls fn(args) with sp at the stack's top, sets *ret to its
 * result and returns the bytes the call wrote below the top (from the lowest byte that changed: a
 * byte the call wrote as `paint` at the very bottom is missed, which a second call with another
 * paint catches). */
static inline size_t painted_call(uint8_t *stack, size_t size, uint8_t paint, entry_fn fn, const uintptr_t args[4], int *ret) {
  memset(stack, paint, size);
  *ret = call_on_stack(fn, args, stack + size);
  size_t low = 0;
  while (low < size && stack[low] == paint) low++;
  return size - low;
}

#endif
