/* Test harness for a committed kernel image under qemu-arm (user mode): loads the .bin into executable
 * memory at a deliberately odd (word-aligned, not page-aligned) address and calls its entries in Thumb
 * mode, one command per stdin line, one answer per stdout line (loader, hex and the rest it shares with
 * the other kernels' harnesses: harness.h). Built by kernel/harness.ts with arm-linux-gnueabihf-gcc -static.
 *   usage: harness IMAGE.bin INIT SEAL ACK ACK_CHECK BLOCK    (entry offsets in bytes)
 *   S key salt counter plaintext -> frame hex (sealed disjoint; "inplace-differs" if sealing in place differs)
 *   A key salt counter           -> ack hex, ack_check(ack), ack_check(ack with its last bit flipped)
 *   C key salt ack               -> ack_check(ack)
 *   B key block                  -> AES-128(key, block) hex
 *   I len                        -> aes_ccm_init's return value for that plaintext length
 *   Z key salt len counter       -> aes_ccm_seal's return value (e.g. -1 for counter 0)
 *   P                            -> the image's address and size in memory (hex, decimal)
 *   T key salt counter plaintext reps -> aes_ccm_init once, then reps seals; "done" (bench/kernel-seal.ts
 *                                   counts the Thumb instructions executed inside the image)
 *   Q key salt counter reps      -> aes_ccm_init and aes_ccm_ack once, then reps aes_ccm_ack_check; "done" */
#include "harness.h"

static entry_fn init_fn, seal_fn, ack_fn, check_fn, block_fn;
static uint8_t ctx[256] __attribute__((aligned(4))); /* at least the kernel's CTX_SIZE */

static void init(const char *key, const char *salt, uint32_t len) {
  uint8_t k[16], s[8];
  unhex(key, k);
  unhex(salt, s);
  if (init_fn((uintptr_t)ctx, (uintptr_t)k, (uintptr_t)s, len) != 0) {
    printf("init-failed\n");
    exit(1);
  }
}

int main(int argc, char **argv) {
  size_t size;
  entry_fn *const fns[] = {&init_fn, &seal_fn, &ack_fn, &check_fn, &block_fn};
  uint8_t *image = start_harness(argc, argv, "harness IMAGE.bin INIT SEAL ACK ACK_CHECK BLOCK", fns, 5, &size);

  static char line[2048], key[64], salt[64], data[1024];
  static uint8_t msg[512], out[512], ring[512];
  unsigned long counter, len;
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "S %63s %63s %lu %1023s", key, salt, &counter, data) == 4) {
      size_t n = unhex(data, msg);
      init(key, salt, (uint32_t)n);
      int r = seal_fn((uintptr_t)ctx, (uintptr_t)msg, (uintptr_t)out, counter);
      memset(ring, 0xee, sizeof ring);
      memcpy(ring + 4, msg, n);
      int r2 = seal_fn((uintptr_t)ctx, (uintptr_t)(ring + 4), (uintptr_t)ring, counter);
      if (r != (int)n + 12 || r2 != r) printf("bad-return %d %d\n", r, r2);
      else if (memcmp(out, ring, n + 12) != 0 || ring[n + 12] != 0xee) printf("inplace-differs\n");
      else puthex(out, n + 12), printf("\n");
    } else if (sscanf(line, "A %63s %63s %lu", key, salt, &counter) == 3) {
      init(key, salt, 1);
      memset(out, 0xee, 16);
      int r = ack_fn((uintptr_t)ctx, (uintptr_t)out, counter, 0);
      if (r != 12 || out[12] != 0xee) { printf("bad-return %d\n", r); continue; }
      int ok = check_fn((uintptr_t)ctx, (uintptr_t)out, 0, 0);
      out[11] ^= 1;
      int flipped = check_fn((uintptr_t)ctx, (uintptr_t)out, 0, 0);
      out[11] ^= 1;
      puthex(out, 12), printf(" %d %d\n", ok, flipped);
    } else if (sscanf(line, "C %63s %63s %1023s", key, salt, data) == 3) {
      init(key, salt, 1);
      unhex(data, msg);
      printf("%d\n", check_fn((uintptr_t)ctx, (uintptr_t)msg, 0, 0));
    } else if (sscanf(line, "B %63s %1023s", key, data) == 2) {
      init(key, "0000000000000000", 1);
      unhex(data, msg);
      block_fn((uintptr_t)ctx, (uintptr_t)msg, (uintptr_t)out, 0);
      puthex(out, 16), printf("\n");
    } else if (sscanf(line, "I %lu", &len) == 1) {
      uint8_t k[16] = {0}, s[8] = {0};
      printf("%d\n", init_fn((uintptr_t)ctx, (uintptr_t)k, (uintptr_t)s, len));
    } else if (sscanf(line, "Z %63s %63s %lu %lu", key, salt, &len, &counter) == 4) {
      init(key, salt, len);
      memset(msg, 0, len);
      printf("%d\n", seal_fn((uintptr_t)ctx, (uintptr_t)msg, (uintptr_t)out, counter));
    } else if (line[0] == 'P') {
      print_image(image, size), printf("\n");
    } else if (sscanf(line, "T %63s %63s %lu %1023s %lu", key, salt, &counter, data, &len) == 5) {
      size_t n = unhex(data, msg);
      init(key, salt, (uint32_t)n);
      while (len--) seal_fn((uintptr_t)ctx, (uintptr_t)msg, (uintptr_t)out, counter);
      printf("done\n");
    } else if (sscanf(line, "Q %63s %63s %lu %lu", key, salt, &counter, &len) == 4) {
      init(key, salt, 1);
      ack_fn((uintptr_t)ctx, (uintptr_t)out, counter, 0);
      while (len--) check_fn((uintptr_t)ctx, (uintptr_t)out, 0, 0);
      printf("done\n");
    } else {
      printf("unknown-command\n");
    }
    fflush(stdout);
  }
  return 0;
}
