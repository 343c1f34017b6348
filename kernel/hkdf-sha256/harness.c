/* Test harness for the committed hkdf-sha256 kernel image under qemu-arm (user mode), built by
 * kernel/hkdf-sha256/run.ts with arm-linux-gnueabihf-gcc -static (kernel/build.ts compiles only
 * kernel.c, never this file); loader, hex and the painted stack call are kernel/harness.h. Loads the .bin at a word-aligned, not page-aligned address and calls
 * its entries in Thumb mode on a stack of its own: before every call the STACK_AREA bytes below that
 * stack's top are painted with 0xA5 and, after it, the lowest changed byte gives the call's depth
 * (a byte the kernel wrote as 0xA5 at the very bottom would be missed; the depth of every call is
 * measured again with 0x5A, and the larger figure kept). One command per stdin line, one answer per
 * stdout line; "-" is the empty byte string. Output buffers are pre-filled with 0xEE and checked
 * after the call: "overrun" when a byte past the output changed, "dirty" when a refusal wrote.
 *   usage: harness IMAGE.bin SHA256 HMAC EXPAND EXTRACT_AND_EXPAND KEY_SCHEDULE EXPORT  (offsets)
 *   P                         -> image address (hex) and size
 *   H msg                     -> SHA-256(msg)
 *   A n                       -> SHA-256 of n bytes 'a' (n <= 1000000)
 *   M key msg                 -> HMAC-SHA256(key, msg) (also HKDF-Extract(salt = key, ikm = msg))
 *   E prk info L              -> HKDF-Expand(prk, info, L), or "rc N"
 *   X dh enc pkr              -> ExtractAndExpand shared_secret, or "rc N"
 *   K aead ss info psk psk_id -> "exporter_secret secret key_schedule_context" (psk "-": base mode,
 *                                then psk_id must be "-" too), or "rc N"; the LP length bytes are
 *                                the given lengths mod 256 (so 65 .. 255 reach the kernel's check)
 *   O aead exporter_secret ctx L -> Export(ctx, L) from a context block holding exporter_secret
 *   R aead dh enc pkr info psk psk_id [ctx L]... -> "shared_secret exporter_secret v1 v2 ..": the
 *                                whole device sequence (one extract-and-expand, one key schedule,
 *                                the exports), each entry on the measured stack
 *   S                         -> deepest stack use (bytes) of the calls since the last S
 *   N 0|1                     -> stop (0) or resume (1) measuring: unmeasured calls run once, on
 *                                the harness's own stack (bulk random cases; the depth depends on
 *                                no input byte, only on lengths, which the measured cases cover) */
#include "../harness.h"

#define STACK_AREA 4096
#define CTX_SIZE 136
#define OUT_MAX 8200

static uint8_t stack_area[STACK_AREA] __attribute__((aligned(8)));
static uint32_t deepest;
static uint8_t *image;
static entry_fn fn_sha, fn_hmac, fn_expand, fn_eae, fn_ks, fn_export;

/* When measuring, calls an entry twice (two paints; every entry is a pure function of its inputs, so the second
 * call gives the same outputs) and records the deeper stack. */
static int measuring = 1;

static int call(entry_fn fn, uintptr_t a0, uintptr_t a1, uintptr_t a2, uintptr_t a3) {
  int r1, r2;
  if (!measuring) return fn(a0, a1, a2, a3);
  uintptr_t args[4] = {a0, a1, a2, a3};
  uint32_t d1 = (uint32_t)painted_call(stack_area, STACK_AREA, 0xa5, fn, args, &r1);
  uint32_t d2 = (uint32_t)painted_call(stack_area, STACK_AREA, 0x5a, fn, args, &r2);
  if (d2 > d1) d1 = d2;
  if (d1 > deepest) deepest = d1;
  if (r1 != r2) {
    printf("unstable\n");
    exit(1);
  }
  return r1;
}

/* Length-prefixed: out[0] = n mod 256, then the bytes. */
static void unhex_lp(const char *s, uint8_t *out) {
  out[0] = (uint8_t)unhex(s, out + 1);
}

static int untouched(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0xee) return 0;
  return 1;
}

static uint8_t ctx[CTX_SIZE + 16], out[OUT_MAX + 16], ss[48];
static uint8_t b1[4096], b2[4096], b3[4096], b4[4096], b5[4096];
static uint8_t a_million[1000000];

/* The context block: AEAD id (hex, 4 digits) in bytes 0-1, the rest 0xEE. */
static void ctx_init(const char *aead) {
  memset(ctx, 0xee, sizeof ctx);
  unhex(aead, ctx);
}

/* Key schedule with the PSK block built from psk and psk_id ("-": base mode); prints nothing. */
static int key_schedule(const uint8_t *shared, const char *info, const char *psk, const char *psk_id) {
  unhex_lp(info, b3);
  uintptr_t block = 0;
  if (psk[0] != '-') {
    unhex(psk, b4);
    unhex_lp(psk_id, b4 + 32);
    block = (uintptr_t)b4;
  } else if (psk_id[0] != '-') {
    printf("bad-command\n");
    exit(1);
  }
  return call(fn_ks, (uintptr_t)ctx, (uintptr_t)shared, (uintptr_t)b3, block);
}

static int export_value(const char *context, unsigned long L) {
  unhex_lp(context, b5);
  memset(out, 0xee, sizeof out);
  int r = call(fn_export, (uintptr_t)out, (uintptr_t)ctx, (uintptr_t)b5, L);
  if (r != 0) printf(untouched(out, sizeof out) ? "rc %d" : "rc %d dirty", r);
  else if (L > OUT_MAX || !untouched(out + L, 16)) printf("overrun");
  else puthex(out, L);
  return r;
}

int main(int argc, char **argv) {
  size_t size;
  entry_fn *const fns[] = {&fn_sha, &fn_hmac, &fn_expand, &fn_eae, &fn_ks, &fn_export};
  image = start_harness(argc, argv, "harness IMAGE.bin SHA256 HMAC EXPAND EXTRACT_AND_EXPAND KEY_SCHEDULE EXPORT", fns, 6, &size);

  static char line[65536], w[16][8300];
  unsigned long L;
  while (fgets(line, sizeof line, stdin)) {
    int n = sscanf(line, "%*s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s %8299s",
                   w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11], w[12], w[13], w[14]);
    char cmd = line[0];
    if (cmd == 'P') {
      print_image(image, size);
    } else if (cmd == 'H' && n == 1) {
      size_t len = unhex(w[0], b1);
      memset(out, 0xee, 48);
      call(fn_sha, (uintptr_t)out, (uintptr_t)b1, len, 0);
      if (!untouched(out + 32, 16)) printf("overrun");
      else puthex(out, 32);
    } else if (cmd == 'A' && n == 1 && strtoul(w[0], 0, 10) <= sizeof a_million) {
      if (a_million[0] != 'a') memset(a_million, 'a', sizeof a_million);
      call(fn_sha, (uintptr_t)out, (uintptr_t)a_million, strtoul(w[0], 0, 10), 0);
      puthex(out, 32);
    } else if (cmd == 'M' && n == 2) {
      size_t klen = unhex(w[0], b1), mlen = unhex(w[1], b2);
      memset(out, 0xee, 48);
      call(fn_hmac, (uintptr_t)out, (uintptr_t)b1, (uintptr_t)b2, klen | mlen << 16);
      if (!untouched(out + 32, 16)) printf("overrun");
      else puthex(out, 32);
    } else if (cmd == 'E' && n == 3) {
      unhex(w[0], b1);
      size_t ilen = unhex(w[1], b2);
      L = strtoul(w[2], 0, 10);
      memset(out, 0xee, sizeof out);
      int r = call(fn_expand, (uintptr_t)out, (uintptr_t)b1, (uintptr_t)b2, ilen | L << 16);
      if (r != 0) printf(untouched(out, sizeof out) ? "rc %d" : "rc %d dirty", r);
      else if (L > OUT_MAX || !untouched(out + L, 16)) printf("overrun");
      else puthex(out, L);
    } else if (cmd == 'X' && n == 3) {
      unhex(w[0], b1);
      unhex(w[1], b2);
      unhex(w[2], b3);
      memset(ss, 0xee, sizeof ss);
      int r = call(fn_eae, (uintptr_t)ss, (uintptr_t)b1, (uintptr_t)b2, (uintptr_t)b3);
      if (r != 0) printf(untouched(ss, sizeof ss) ? "rc %d" : "rc %d dirty", r);
      else if (!untouched(ss + 32, 16)) printf("overrun");
      else puthex(ss, 32);
    } else if (cmd == 'K' && n == 5) {
      ctx_init(w[0]);
      unhex(w[1], ss);
      int r = key_schedule(ss, w[2], w[3], w[4]);
      if (r != 0) printf(untouched(ctx + 2, sizeof ctx - 2) ? "rc %d" : "rc %d dirty", r);
      else if (!untouched(ctx + 133, sizeof ctx - 133) || !untouched(ctx + 2, 2)) printf("overrun");
      else puthex(ctx + 4, 32), printf(" "), puthex(ctx + 36, 32), printf(" "), puthex(ctx + 68, 65);
    } else if (cmd == 'O' && n == 4) {
      ctx_init(w[0]);
      unhex(w[1], ctx + 4);
      export_value(w[2], strtoul(w[3], 0, 10));
    } else if (cmd == 'R' && n >= 7 && (n - 7) % 2 == 0) {
      unhex(w[1], b1);
      unhex(w[2], b2);
      unhex(w[3], b3);
      int r = call(fn_eae, (uintptr_t)ss, (uintptr_t)b1, (uintptr_t)b2, (uintptr_t)b3);
      if (r != 0) {
        printf("rc %d\n", r);
        fflush(stdout);
        continue;
      }
      uint8_t shared[32];
      memcpy(shared, ss, 32);
      ctx_init(w[0]);
      r = key_schedule(shared, w[4], w[5], w[6]);
      if (r != 0) {
        printf("rc %d\n", r);
        fflush(stdout);
        continue;
      }
      puthex(shared, 32), printf(" "), puthex(ctx + 4, 32);
      for (int i = 7; i < n; i += 2) {
        printf(" ");
        export_value(w[i], strtoul(w[i + 1], 0, 10));
      }
    } else if (cmd == 'N' && n == 1) {
      measuring = w[0][0] == '1';
      printf("%d", measuring);
    } else if (cmd == 'S') {
      printf("%u", deepest);
      deepest = 0;
    } else {
      printf("unknown-command");
    }
    printf("\n");
    fflush(stdout);
  }
  return 0;
}
