/* The aes-ccm kernel: AES-128 encryption and the CCM of docs/protocol.md (tag 8, L = 2, no AAD,
 * nonce = salt (8) || counter (4, BE) || domain (1)) as position-independent Thumb-2 for a Cortex-M4,
 * called through E.nativeCall with at most 4 int arguments. Every function that is not static is an
 * entry point (kernel/build.ts lists them with their offsets, and every KERNEL_* macro as a constant).
 * No writable globals, no libc: the only
 * data is the read-only S-box, reached PC-relative; all state lives in the caller's context block.
 *
 * Context block (KERNEL_CTX_SIZE = 188 bytes, 4-byte aligned, written only by aes_ccm_init):
 *   0    176  AES-128 round keys (11 x 16 bytes)
 *   176    8  nonce salt
 *   184    4  plaintext length of a frame (F - 12), 1 .. 232, little-endian u32
 */
typedef unsigned char u8;
typedef unsigned int u32;

#define ROUND_KEYS 176
#define KERNEL_CTX_SIZE 188
#define KERNEL_MAX_MSG 232
#define TAG 8
#define DOMAIN_UPLINK 0x01
#define DOMAIN_ACK 0x02

struct ctx {
  u8 rk[ROUND_KEYS];
  u8 salt[8];
  u32 len;
};

static const u8 SBOX[256] = {
  0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
  0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
  0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
  0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
  0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
  0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
  0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
  0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
  0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
  0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
  0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
  0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
  0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
  0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
  0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
  0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
};

/* Multiplication by x in GF(2^8), without a data-dependent branch. */
static u8 xtime(u8 x) {
  return (u8)((x << 1) ^ (0x1b & (u8)-(x >> 7)));
}

static void expand_key(u8 *rk, const u8 *key) {
  u8 rcon = 1;
  u32 i;
  for (i = 0; i < 16; i++) rk[i] = key[i];
  for (i = 16; i < ROUND_KEYS; i += 4) {
    u8 t0 = rk[i - 4], t1 = rk[i - 3], t2 = rk[i - 2], t3 = rk[i - 1];
    if ((i & 15) == 0) {
      u8 r = t0;
      t0 = SBOX[t1] ^ rcon;
      t1 = SBOX[t2];
      t2 = SBOX[t3];
      t3 = SBOX[r];
      rcon = xtime(rcon);
    }
    rk[i] = rk[i - 16] ^ t0;
    rk[i + 1] = rk[i - 15] ^ t1;
    rk[i + 2] = rk[i - 14] ^ t2;
    rk[i + 3] = rk[i - 13] ^ t3;
  }
}

/* Encrypts the 16-byte block s in place (FIPS-197 section 5.1; s is column-major, s[r + 4c]). */
static void encrypt_block(const u8 *rk, u8 *s) {
  u8 t[16];
  u32 round, i, c;
  for (i = 0; i < 16; i++) s[i] ^= rk[i];
  for (round = 1; round <= 10; round++) {
    /* SubBytes and ShiftRows: row r of column c comes from column c + r. */
    for (i = 0; i < 16; i++) t[i] = SBOX[s[(i + 4 * (i & 3)) & 15]];
    rk += 16;
    for (c = 0; c < 16; c += 4) {
      u8 a0 = t[c], a1 = t[c + 1], a2 = t[c + 2], a3 = t[c + 3];
      if (round != 10) {
        u8 all = a0 ^ a1 ^ a2 ^ a3;
        u8 b0 = a0 ^ all ^ xtime(a0 ^ a1);
        u8 b1 = a1 ^ all ^ xtime(a1 ^ a2);
        u8 b2 = a2 ^ all ^ xtime(a2 ^ a3);
        u8 b3 = a3 ^ all ^ xtime(a3 ^ a0);
        a0 = b0;
        a1 = b1;
        a2 = b2;
        a3 = b3;
      }
      s[c] = a0 ^ rk[c];
      s[c + 1] = a1 ^ rk[c + 1];
      s[c + 2] = a2 ^ rk[c + 2];
      s[c + 3] = a3 ^ rk[c + 3];
    }
  }
  for (i = 0; i < 16; i++) ((volatile u8 *)t)[i] = 0;
}

/* flags || salt || counter (BE) || domain || two bytes (length for B0, block index for A_i). */
static void nonce_block(u8 *b, u8 flags, const struct ctx *c, u32 counter, u8 domain, u32 last2) {
  u32 i;
  b[0] = flags;
  for (i = 0; i < 8; i++) b[1 + i] = c->salt[i];
  b[9] = (u8)(counter >> 24);
  b[10] = (u8)(counter >> 16);
  b[11] = (u8)(counter >> 8);
  b[12] = (u8)counter;
  b[13] = domain;
  b[14] = (u8)(last2 >> 8);
  b[15] = (u8)last2;
}

static void wipe(u8 *b, u32 n) {
  volatile u8 *v = b;
  while (n--) *v++ = 0;
}

/* RFC 3610 with M = 8, L = 2, no AAD: out[0 .. n) = ciphertext, out[n .. n + 8) = tag. msg may be
 * out itself (sealing in place): each plaintext block enters the CBC-MAC before its bytes are
 * overwritten. */
static void ccm(const struct ctx *c, u32 counter, u8 domain, const u8 *msg, u32 n, u8 *out) {
  u8 mac[16], ks[16];
  u32 i, j, blk;
  nonce_block(mac, 0x19, c, counter, domain, n);
  encrypt_block(c->rk, mac);
  for (i = 0, blk = 1; i < n; i += 16, blk++) {
    u32 m = n - i < 16 ? n - i : 16;
    for (j = 0; j < m; j++) mac[j] ^= msg[i + j];
    encrypt_block(c->rk, mac);
    nonce_block(ks, 0x01, c, counter, domain, blk);
    encrypt_block(c->rk, ks);
    for (j = 0; j < m; j++) out[i + j] = msg[i + j] ^ ks[j];
  }
  nonce_block(ks, 0x01, c, counter, domain, 0);
  encrypt_block(c->rk, ks);
  for (j = 0; j < TAG; j++) out[n + j] = mac[j] ^ ks[j];
  wipe(mac, 16);
  wipe(ks, 16);
}

static void put_counter(u8 *dst, u32 counter) {
  dst[0] = (u8)(counter >> 24);
  dst[1] = (u8)(counter >> 16);
  dst[2] = (u8)(counter >> 8);
  dst[3] = (u8)counter;
}

/* Fills the context block: round keys from the 16-byte key, the 8-byte salt, the frame's plaintext
 * length. Returns 0, or -1 (context untouched) when len is outside 1 .. 232. */
int aes_ccm_init(struct ctx *c, const u8 *key, const u8 *salt, u32 len) {
  u32 i;
  if (len < 1 || len > KERNEL_MAX_MSG) return -1;
  expand_key(c->rk, key);
  for (i = 0; i < 8; i++) c->salt[i] = salt[i];
  c->len = len;
  return 0;
}

/* Seals one frame: dst[0 .. len + 12) = counter (4, BE) || ciphertext || tag under domain 0x01.
 * msg is either disjoint from dst or exactly dst + 4 (plaintext already in its ring slot).
 * Returns the frame size, or -1 (nothing written) for counter 0. */
int aes_ccm_seal(const struct ctx *c, const u8 *msg, u8 *dst, u32 counter) {
  if (counter == 0) return -1;
  ccm(c, counter, DOMAIN_UPLINK, msg, c->len, dst + 4);
  put_counter(dst, counter);
  return (int)(c->len + 12);
}

/* Writes the 12-byte ack for counter into dst: counter (4, BE) || CCM tag of the empty message
 * under domain 0x02. Returns 12, or -1 (nothing written) for counter 0. */
int aes_ccm_ack(const struct ctx *c, u8 *dst, u32 counter) {
  if (counter == 0) return -1;
  ccm(c, counter, DOMAIN_ACK, 0, 0, dst + 4);
  put_counter(dst, counter);
  return 12;
}

/* Checks a 12-byte ack: 1 when its counter is not 0 and its tag verifies (constant-time
 * comparison), else 0. The caller checks the length and reads the counter. */
int aes_ccm_ack_check(const struct ctx *c, const u8 *ack) {
  u8 tag[TAG];
  u32 counter = (u32)ack[0] << 24 | (u32)ack[1] << 16 | (u32)ack[2] << 8 | ack[3];
  u32 diff = 0, j;
  ccm(c, counter, DOMAIN_ACK, 0, 0, tag);
  for (j = 0; j < TAG; j++) diff |= (u32)(tag[j] ^ ack[4 + j]);
  wipe(tag, TAG);
  return (int)(((diff - 1) >> 8) & 1 & (counter != 0));
}

/* One AES-128 block under the context's key: out = AES(in). in and out may be the same. */
int aes_block(const struct ctx *c, const u8 *in, u8 *out) {
  u32 i;
  for (i = 0; i < 16; i++) out[i] = in[i];
  encrypt_block(c->rk, out);
  return 0;
}

_Static_assert(sizeof(struct ctx) == KERNEL_CTX_SIZE, "the context block layout of the header comment");
