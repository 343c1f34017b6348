/* The hkdf-sha256 kernel: SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104), HKDF (RFC 5869) and the
 * parts of HPKE (RFC 9180) a sealpost device runs to renew its key (docs/protocol.md section 12,
 * ../shared/design.md "Key renewal"): DHKEM(X25519, HKDF-SHA256)'s ExtractAndExpand (section 4.1),
 * the key schedule (section 5.1) in base (0x00) or PSK (0x01) mode up to exporter_secret, and the
 * secret export (section 5.3). Written in this repository from those documents; no library source
 * was copied. Position-independent Thumb-2 for a Cortex-M4, called through E.nativeCall with at
 * most 4 int arguments; every function that is not static is an entry (kernel/build.ts lists their
 * offsets and every KERNEL_* macro). No libc, no writable globals, no heap: the only data are the
 * read-only SHA-256 constants and label strings, reached PC-relative; HMAC and SHA-256 state lives on
 * the stack (at most KERNEL_STACK_BOUND bytes, measured by kernel/hkdf-sha256/harness.c) and is
 * wiped before an entry returns (values the compiler spills inside the compression function are
 * not). Every access to a caller buffer is a byte access (no alignment). Secrets enter only HMAC keys
 * and messages, whose lengths are public: no secret-dependent table index, and no secret-dependent
 * branch but the all-zero test of dh, whose outcome is public (the call is refused). Outputs must not
 * overlap inputs, except where an entry says so.
 *
 * Variable-length inputs of the HPKE entries are length-prefixed ("LP"): one length byte, then
 * that many bytes.
 *
 * HPKE context block (KERNEL_CTX_SIZE = 136 bytes, no alignment needed):
 *   0    2  AEAD id, big-endian, as it enters suite_id (set by the caller before hpke_key_schedule:
 *           ff ff export-only for sealpost; 00 01 AES-128-GCM for RFC 9180 A.1.1 / A.1.2)
 *   2    2  not used (neither read nor written)
 *   4   32  exporter_secret            (written by hpke_key_schedule, read by hpke_export)
 *   36  32  secret                     (written by hpke_key_schedule; for test vectors)
 *   68  65  key_schedule_context: mode || psk_id_hash || info_hash (written by hpke_key_schedule)
 *   133  3  not used
 * The block holds secrets after hpke_key_schedule: the caller wipes it after its exports.
 *
 * PSK block (hpke_key_schedule's last argument in PSK mode; 0 selects base mode):
 *   0   32  psk (KERNEL_PSK_SIZE = Nh bytes)
 *   32   1  psk_id length n, 1 .. KERNEL_MAX_PSK_ID (psk and psk_id come together: RFC 9180
 *           section 5.1, VerifyPSKInputs)
 *   33   n  psk_id
 *
 * Return codes: 0 done; -KERNEL_ERR_LENGTH a length out of range (nothing written);
 * -KERNEL_ERR_PSK a PSK block with an empty psk_id (nothing written); -KERNEL_ERR_ZERO_DH an all-zero
 * X25519 result (RFC 9180 7.1.4; nothing written).
 */
typedef unsigned char u8;
typedef unsigned int u32;

#define KERNEL_CTX_SIZE 136
#define KERNEL_CTX_AEAD_ID 0
#define KERNEL_CTX_EXPORTER_SECRET 4
#define KERNEL_CTX_SECRET 36
#define KERNEL_CTX_KEY_SCHEDULE_CONTEXT 68
#define KERNEL_PSK_SIZE 32
#define KERNEL_MAX_INFO 64
#define KERNEL_MAX_PSK_ID 64
#define KERNEL_MAX_EXPORTER_CONTEXT 32
#define KERNEL_MAX_EXPORT 8160
#define KERNEL_ERR_LENGTH 1
#define KERNEL_ERR_PSK 2
#define KERNEL_ERR_ZERO_DH 3
#define KERNEL_STACK_BOUND 1024

#define NH 32

struct sha {
  u32 h[8];
  u32 n; /* bytes absorbed */
  u8 buf[64];
};

struct hmac {
  struct sha in, out;
};

/* One piece of an HMAC message: the HPKE messages are concatenations of labels and inputs. */
struct seg {
  const u8 *p;
  u32 n;
};

/* FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the cube roots of the
 * first 64 primes. */
static const u32 K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* FIPS 180-4 section 5.3.3: the initial hash value. */
static const u32 H0[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* The labels of RFC 9180, back to back; struct label gives offset and length. */
static const char LABELS[] = "HPKE-v1" "HPKE" "KEM" "eae_prk" "shared_secret" "psk_id_hash" "info_hash" "secret" "exp" "sec";
#define L_VERSION 0, 7
#define L_HPKE 7, 4
#define L_KEM 11, 3
#define L_EAE_PRK 14, 7
#define L_SHARED_SECRET 21, 13
#define L_PSK_ID_HASH 34, 11
#define L_INFO_HASH 45, 9
#define L_SECRET 54, 6
#define L_EXP 60, 3
#define L_SEC 63, 3

/* Clears n bytes (a multiple of 4) of a word-aligned stack object, in words. */
static void wipe(void *b, u32 n) {
  volatile u32 *v = b;
  for (n >>= 2; n; n--) *v++ = 0;
}

static void copy(u8 *dst, const u8 *src, u32 n) {
  while (n--) *dst++ = *src++;
}

static u32 ror(u32 x, u32 n) {
  return (x >> n) | (x << (32 - n));
}

/* FIPS 180-4 section 6.2.2, with the message schedule kept as a 16-word window. */
__attribute__((noinline)) static void compress(u32 *h, const u8 *blk) {
  u32 w[16], i;
  u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (i = 0; i < 16; i++) w[i] = (u32)blk[4 * i] << 24 | (u32)blk[4 * i + 1] << 16 | (u32)blk[4 * i + 2] << 8 | blk[4 * i + 3];
  for (i = 0; i < 64; i++) {
    u32 t1, t2;
    if (i >= 16) {
      u32 w2 = w[(i - 2) & 15], w15 = w[(i - 15) & 15];
      w[i & 15] += (ror(w2, 17) ^ ror(w2, 19) ^ (w2 >> 10)) + w[(i - 7) & 15] + (ror(w15, 7) ^ ror(w15, 18) ^ (w15 >> 3));
    }
    t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i & 15];
    t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += k;
  wipe(w, sizeof w);
}

static void sha_init(struct sha *s) {
  u32 i;
  for (i = 0; i < 8; i++) s->h[i] = H0[i];
  s->n = 0;
}

static void sha_update(struct sha *s, const u8 *p, u32 len) {
  u32 n = s->n;
  while (len--) {
    s->buf[n++ & 63] = *p++;
    if ((n & 63) == 0) compress(s->h, s->buf);
  }
  s->n = n;
}

/* FIPS 180-4 section 5.1.1: 0x80, zeros to 56 mod 64, the length in bits (64, big-endian). */
static void sha_final(struct sha *s, u8 *out) {
  u32 n = s->n, i = n & 63, j;
  s->buf[i++] = 0x80;
  if (i > 56) {
    while (i < 64) s->buf[i++] = 0;
    compress(s->h, s->buf);
    i = 0;
  }
  while (i < 56) s->buf[i++] = 0;
  for (j = 0; j < 4; j++) {
    s->buf[56 + j] = (u8)((n >> 29) >> (24 - 8 * j));
    s->buf[60 + j] = (u8)((n << 3) >> (24 - 8 * j));
  }
  compress(s->h, s->buf);
  for (i = 0; i < 32; i++) out[i] = (u8)(s->h[i >> 2] >> (24 - 8 * (i & 3)));
}

/* RFC 2104: a key longer than the block is hashed first; the key block is zero-padded, so an empty
 * key (RFC 5869's absent salt) equals HashLen zeros. */
static void hmac_init(struct hmac *m, const u8 *key, u32 klen) {
  u8 k[64] __attribute__((aligned(4)));
  u32 i;
  for (i = 0; i < 64; i++) k[i] = 0;
  if (klen > 64) {
    sha_init(&m->in);
    sha_update(&m->in, key, klen);
    sha_final(&m->in, k);
  } else {
    copy(k, key, klen);
  }
  sha_init(&m->in);
  sha_init(&m->out);
  for (i = 0; i < 64; i++) k[i] ^= 0x36;
  compress(m->in.h, k);
  for (i = 0; i < 64; i++) k[i] ^= 0x36 ^ 0x5c;
  compress(m->out.h, k);
  m->in.n = m->out.n = 64;
  wipe(k, sizeof k);
}

/* out = HMAC-SHA256(key, s[0] || .. || s[n - 1]); out may be one of the segments. */
static void hmac(u8 *out, const u8 *key, u32 klen, const struct seg *s, u32 n) {
  struct hmac m;
  u8 inner[NH] __attribute__((aligned(4)));
  hmac_init(&m, key, klen);
  for (; n; n--, s++) sha_update(&m.in, s->p, s->n);
  sha_final(&m.in, inner);
  sha_update(&m.out, inner, NH);
  sha_final(&m.out, out);
  wipe(&m, sizeof m);
  wipe(inner, sizeof inner);
}

/* RFC 5869 section 2.3, info given as s[1 .. n - 2]: s[0] and s[n - 1] are filled here with
 * T(i - 1) and the counter byte. L is 1 .. 255 * 32. */
static void expand(u8 *okm, u32 L, const u8 *prk, struct seg *s, u32 n) {
  u8 t[NH] __attribute__((aligned(4))), ctr = 1;
  s[0].p = t;
  s[0].n = 0;
  s[n - 1].p = &ctr;
  s[n - 1].n = 1;
  while (L) {
    u32 m = L < NH ? L : NH;
    hmac(t, prk, NH, s, n);
    copy(okm, t, m);
    okm += m;
    L -= m;
    s[0].n = NH;
    ctr++;
  }
  wipe(t, sizeof t);
}

static void label(struct seg *s, u32 off, u32 n) {
  s->p = (const u8 *)LABELS + off;
  s->n = n;
}

/* suite_id: "KEM" || 0x0020 (section 4.1) when aead is 0, else "HPKE" || 0x0020 || 0x0001 || aead
 * (section 5.1). Returns its length. */
static u32 suite_id(u8 *id, const u8 *aead) {
  if (!aead) {
    copy(id, (const u8 *)LABELS + 11, 3);
    id[3] = 0x00;
    id[4] = 0x20;
    return 5;
  }
  copy(id, (const u8 *)LABELS + 7, 4);
  id[4] = 0x00;
  id[5] = 0x20;
  id[6] = 0x00;
  id[7] = 0x01;
  id[8] = aead[0];
  id[9] = aead[1];
  return 10;
}

/* LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm)
 * (RFC 9180 section 4). */
static void labeled_extract(u8 *out, const u8 *aead, const u8 *salt, u32 salt_len, u32 loff, u32 llen, const u8 *ikm, u32 ikm_len) {
  u8 id[10];
  struct seg s[4];
  label(&s[0], L_VERSION);
  s[1].p = id;
  s[1].n = suite_id(id, aead);
  label(&s[2], loff, llen);
  s[3].p = ikm;
  s[3].n = ikm_len;
  hmac(out, salt, salt_len, s, 4);
}

/* LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id ||
 * label || info, L), info = info1 || info2. */
static void labeled_expand(u8 *out, u32 L, const u8 *aead, const u8 *prk, u32 loff, u32 llen, const u8 *info1, u32 n1, const u8 *info2, u32 n2) {
  u8 id[10], len2[2];
  struct seg s[8];
  len2[0] = (u8)(L >> 8);
  len2[1] = (u8)L;
  s[1].p = len2;
  s[1].n = 2;
  label(&s[2], L_VERSION);
  s[3].p = id;
  s[3].n = suite_id(id, aead);
  label(&s[4], loff, llen);
  s[5].p = info1;
  s[5].n = n1;
  s[6].p = info2;
  s[6].n = n2;
  expand(out, L, prk, s, 8);
}

/* out (32) = SHA-256(msg[0 .. len)). Returns 0. */
int sha256(u8 *out, const u8 *msg, u32 len) {
  struct sha s;
  sha_init(&s);
  sha_update(&s, msg, len);
  sha_final(&s, out);
  wipe(&s, sizeof s);
  return 0;
}

/* out (32) = HMAC-SHA256(key, msg), lens = key length | message length << 16. This is also
 * HKDF-Extract (RFC 5869 section 2.2): prk = hmac_sha256(prk, salt, ikm, salt_len | ikm_len << 16),
 * an empty salt standing for HashLen zeros. out may be key or msg. Returns 0. */
int hmac_sha256(u8 *out, const u8 *key, const u8 *msg, u32 lens) {
  struct seg s;
  s.p = msg;
  s.n = lens >> 16;
  hmac(out, key, lens & 0xffff, &s, 1);
  return 0;
}

/* HKDF-Expand (RFC 5869 section 2.3): okm[0 .. L) from prk (32) and info, lens = info length |
 * L << 16. Returns 0, or -KERNEL_ERR_LENGTH (nothing written) for L outside 1 .. 8160. */
int hkdf_expand(u8 *okm, const u8 *prk, const u8 *info, u32 lens) {
  struct seg s[3];
  u32 L = lens >> 16;
  if (L < 1 || L > KERNEL_MAX_EXPORT) return -KERNEL_ERR_LENGTH;
  s[1].p = info;
  s[1].n = lens & 0xffff;
  expand(okm, L, prk, s, 3);
  return 0;
}

/* DHKEM(X25519, HKDF-SHA256) ExtractAndExpand (RFC 9180 section 4.1): shared_secret (32) from
 * dh (32) and kem_context = enc (32) || pkR (32). Returns 0, or -KERNEL_ERR_ZERO_DH (nothing written)
 * when dh is all zeros (section 7.1.4). */
int hpke_extract_and_expand(u8 *shared_secret, const u8 *dh, const u8 *enc, const u8 *pkr) {
  u8 prk[NH] __attribute__((aligned(4))), any = 0;
  u32 i;
  for (i = 0; i < NH; i++) any |= dh[i];
  if (!any) return -KERNEL_ERR_ZERO_DH;
  labeled_extract(prk, 0, 0, 0, L_EAE_PRK, dh, NH);
  labeled_expand(shared_secret, NH, 0, prk, L_SHARED_SECRET, enc, NH, pkr, NH);
  wipe(prk, sizeof prk);
  return 0;
}

/* KeySchedule<ROLE>(mode, shared_secret, info, psk, psk_id) of RFC 9180 section 5.1 up to
 * exporter_secret, into the context block ctx (its AEAD id set by the caller); info_lp is LP
 * (0 .. 64 bytes); psk is 0 for base mode or a PSK block (above) for PSK mode. Returns 0,
 * -KERNEL_ERR_LENGTH for info or psk_id longer than 64 bytes, -KERNEL_ERR_PSK for an empty psk_id
 * (ctx untouched on either refusal). */
int hpke_key_schedule(u8 *ctx, const u8 *shared_secret, const u8 *info_lp, const u8 *psk) {
  u8 *ksc = ctx + KERNEL_CTX_KEY_SCHEDULE_CONTEXT;
  u8 *secret = ctx + KERNEL_CTX_SECRET;
  const u8 *psk_id = psk ? psk + KERNEL_PSK_SIZE + 1 : 0;
  u32 psk_id_len = psk ? psk[KERNEL_PSK_SIZE] : 0;
  if (info_lp[0] > KERNEL_MAX_INFO || psk_id_len > KERNEL_MAX_PSK_ID) return -KERNEL_ERR_LENGTH;
  if (psk && psk_id_len == 0) return -KERNEL_ERR_PSK;
  ksc[0] = psk ? 0x01 : 0x00;
  labeled_extract(ksc + 1, ctx, 0, 0, L_PSK_ID_HASH, psk_id, psk_id_len);
  labeled_extract(ksc + 1 + NH, ctx, 0, 0, L_INFO_HASH, info_lp + 1, info_lp[0]);
  labeled_extract(secret, ctx, shared_secret, NH, L_SECRET, psk, psk ? KERNEL_PSK_SIZE : 0);
  labeled_expand(ctx + KERNEL_CTX_EXPORTER_SECRET, NH, ctx, secret, L_EXP, ksc, 1 + 2 * NH, 0, 0);
  return 0;
}

/* Context.Export(exporter_context, L) (RFC 9180 section 5.3): out[0 .. L) = LabeledExpand(
 * exporter_secret, "sec", exporter_context, L) with the block's suite. exporter_context_lp is LP
 * (0 .. 32 bytes). Returns 0, or -KERNEL_ERR_LENGTH (nothing written) for a longer context or L
 * outside 1 .. 8160. */
int hpke_export(u8 *out, const u8 *ctx, const u8 *exporter_context_lp, u32 L) {
  if (exporter_context_lp[0] > KERNEL_MAX_EXPORTER_CONTEXT || L < 1 || L > KERNEL_MAX_EXPORT) return -KERNEL_ERR_LENGTH;
  labeled_expand(out, L, ctx, ctx + KERNEL_CTX_EXPORTER_SECRET, L_SEC, exporter_context_lp + 1, exporter_context_lp[0], 0, 0);
  return 0;
}
