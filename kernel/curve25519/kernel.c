/* The curve25519 kernel: X25519 (RFC 7748) and Ed25519 verification (RFC 8032 section 5.1.7) with its
 * own SHA-512 (FIPS 180-4), as position-independent Thumb-2 for a Cortex-M4, called through
 * E.nativeCall with at most 4 int arguments (pointers into the caller's buffers). Written in this
 * repository from RFC 7748, RFC 8032 and FIPS 180-4; no library source was copied. No writable globals,
 * no libc; the only data are read-only constants reached PC-relative (SHA-512's 80 + 8 words, and four
 * 32-byte constants: d, sqrt(-1), the base point's x, the group order L).
 *
 * Entries (every function that is not static; kernel/build.ts lists their offsets):
 *   x25519(out, scalar, u)             out (32) = X25519(scalar (32), u (32)), RFC 7748 section 5:
 *                                      scalar clamped, bit 255 of u masked, u taken mod p (non-canonical
 *                                      u accepted, as the RFC says), constant-time ladder with cswap.
 *                                      Returns 0, or -1 when the result is all zero (u of small order):
 *                                      the caller MUST reject that key (the 32 zero bytes are written).
 *   x25519_base(out, scalar)           out (32) = X25519(scalar, 9): the public key of scalar. 0 / -1.
 *   ed25519_verify(sig, msg, len, pk)  RFC 8032 section 5.1.7, strict: sig (64) = R (32) || S (32),
 *                                      msg (len bytes, any length), pk (32). Returns 1 when the
 *                                      signature verifies, 0 otherwise (compare with 1, nothing else).
 *   sha512(out, msg, len)              out (64) = SHA-512(msg (len bytes)); returns 0.
 * Every input is read before out is written, so out may be the same buffer as an input; nothing else of
 * the caller's is written. Caller buffers are read and written by bytes (any alignment). The clamped
 * copy of the X25519 scalar is wiped from the stack before returning; the ladder's field elements are not.
 *
 * Verification rule, the same as @noble/curves ed25519.verify(sig, msg, pk, { zip215: false }), which
 * protocol/announce.ts uses on the host:
 *   S (little-endian) < L, else refused;
 *   A and R decoded by section 5.1.3 strictly: y < p, x^2 = (y^2 - 1) / (d y^2 + 1) must have a root,
 *   x = 0 with the sign bit set refused;
 *   A of small order ([8]A = identity) refused (noble's strict mode does; RFC 8032 does not ask it);
 *   k = SHA-512(R || A || M) mod L over the received bytes of R and A;
 *   the cofactored equation [8][S]B = [8]R + [8][k]A, checked as [8]([S]B - [k]A - R) = identity.
 * Verification handles public data only and is variable time; X25519 is constant time.
 *
 * Field elements mod p = 2^255 - 19: ten unsigned 32-bit limbs in radix 2^25.5 (limb i holds 26 bits
 * when i is even, 25 when odd, at bit 25.5 i rounded up), products as 32x32->64-bit UMULL/UMLAL, the
 * Cortex-M4's single-cycle multiply; the 2^255 wrap folds as 19. Every operation returns limbs below
 * 2^26 + 2^15 (limb bound B); inputs to fe_mul below B keep each 64-bit column below 2^61.
 */
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef u32 fe[10];

#define KERNEL_SCALAR_SIZE 32
#define KERNEL_POINT_SIZE 32
#define KERNEL_SIG_SIZE 64
#define KERNEL_HASH_SIZE 64

static const u64 K512[80] = {
  0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
  0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
  0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
  0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
  0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
  0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
  0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
  0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
  0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
  0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
  0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
  0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
  0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
  0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
  0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
  0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
  0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
  0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
  0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
  0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};
static const u64 H512[8] = {
  0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
  0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

/* d = -121665/121666, sqrt(-1) = 2^((p-1)/4), the base point B = (x, 4/5) with x even, and
 * L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 section 5.1), little-endian. */
static const u8 C_D[32] = {
  0xa3, 0x78, 0x59, 0x13, 0xca, 0x4d, 0xeb, 0x75, 0xab, 0xd8, 0x41, 0x41, 0x4d, 0x0a, 0x70, 0x00,
  0x98, 0xe8, 0x79, 0x77, 0x79, 0x40, 0xc7, 0x8c, 0x73, 0xfe, 0x6f, 0x2b, 0xee, 0x6c, 0x03, 0x52,
};
static const u8 C_SQRTM1[32] = {
  0xb0, 0xa0, 0x0e, 0x4a, 0x27, 0x1b, 0xee, 0xc4, 0x78, 0xe4, 0x2f, 0xad, 0x06, 0x18, 0x43, 0x2f,
  0xa7, 0xd7, 0xfb, 0x3d, 0x99, 0x00, 0x4d, 0x2b, 0x0b, 0xdf, 0xc1, 0x4f, 0x80, 0x24, 0x83, 0x2b,
};
static const u8 C_BX[32] = {
  0x1a, 0xd5, 0x25, 0x8f, 0x60, 0x2d, 0x56, 0xc9, 0xb2, 0xa7, 0x25, 0x95, 0x60, 0xc7, 0x2c, 0x69,
  0x5c, 0xdc, 0xd6, 0xfd, 0x31, 0xe2, 0xa4, 0xc0, 0xfe, 0x53, 0x6e, 0xcd, 0xd3, 0x36, 0x69, 0x21,
};
static const u8 C_L[32] = {
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/* ---- field arithmetic mod p (constant time: loops and branches depend on indices only) ---- */

#define WIDTH(i) (26 - ((i) & 1))
#define OFFSET(i) ((i) * 25 + (((i) + 1) >> 1))

static void fe_set(fe h, u32 v) {
  u32 i;
  h[0] = v;
  for (i = 1; i < 10; i++) h[i] = 0;
}

static void fe_copy(fe h, const fe f) {
  u32 i;
  for (i = 0; i < 10; i++) h[i] = f[i];
}

/* Little-endian 32 bytes to limbs; bit 255 is ignored (RFC 7748's mask, RFC 8032's sign bit). A limb
 * and its shift never span more than 4 bytes (offset mod 8 + width <= 32). */
static void fe_frombytes(fe h, const u8 *s) {
  u32 i;
  for (i = 0; i < 10; i++) {
    const u8 *b = s + (OFFSET(i) >> 3);
    u32 w = (u32)b[0] | ((u32)b[1] << 8) | ((u32)b[2] << 16) | ((u32)b[3] << 24);
    h[i] = (w >> (OFFSET(i) & 7)) & ((1u << WIDTH(i)) - 1);
  }
}

/* One carry pass: every limb below 2^width except limb 0, below 2^26 + 19 * 2^7. Written out (constant
 * shifts) rather than as a loop, where they took about half of X25519's instructions. */
#define CARRY32(i) (h[(i) + 1] += h[i] >> WIDTH(i), h[i] &= (1u << WIDTH(i)) - 1)
static void fe_carry(fe h) {
  u32 c;
  CARRY32(0), CARRY32(1), CARRY32(2), CARRY32(3), CARRY32(4), CARRY32(5), CARRY32(6), CARRY32(7), CARRY32(8);
  c = h[9] >> 25;
  h[9] &= (1u << 25) - 1;
  h[0] += 19 * c;
}

static void fe_add(fe h, const fe f, const fe g) {
  u32 i;
  for (i = 0; i < 10; i++) h[i] = f[i] + g[i];
  fe_carry(h);
}

/* h = f - g + 4p: the 4p limbs exceed any limb below B, so nothing goes negative. */
static void fe_sub(fe h, const fe f, const fe g) {
  u32 i;
  for (i = 0; i < 10; i++) h[i] = f[i] + ((i == 0 ? (1u << 28) - 76 : (1u << (WIDTH(i) + 2)) - 4)) - g[i];
  fe_carry(h);
}

/* h = f * g. Schoolbook over the ten limbs, written out column by column so each column is a chain of
 * UMLALs: f_i g_j lands at limb k = i + j mod 10, doubled when i and j are both odd (the half bits of
 * radix 2^25.5), times 19 when i + j >= 10 (2^255 = 19 mod p). TERM's conditions are compile-time
 * constants; nothing depends on the values. */
#define TERM(i, k) ((u64)((((i) & 1) && ((((k) - (i) + 10) % 10) & 1)) ? f2[i] : f[i]) * ((i) > (k) ? g19[((k) - (i) + 10) % 10] : g[((k) - (i) + 10) % 10]))
#define COLUMN(k) (TERM(0, k) + TERM(1, k) + TERM(2, k) + TERM(3, k) + TERM(4, k) + TERM(5, k) + TERM(6, k) + TERM(7, k) + TERM(8, k) + TERM(9, k))

/* Carries ten 64-bit columns (each below 2^61) into limbs below B. */
#define CARRY64(i) (t[(i) + 1] += t[i] >> WIDTH(i), h[i] = (u32)t[i] & ((1u << WIDTH(i)) - 1))
static void fe_carry64(fe h, u64 *t) {
  u64 c;
  CARRY64(0), CARRY64(1), CARRY64(2), CARRY64(3), CARRY64(4), CARRY64(5), CARRY64(6), CARRY64(7), CARRY64(8);
  c = t[9] >> 25;
  h[9] = (u32)t[9] & ((1u << 25) - 1);
  c = (u64)h[0] + 19 * c; /* below 2^26 + 2^40 */
  h[0] = (u32)c & ((1u << 26) - 1);
  h[1] += (u32)(c >> 26);
}

static void fe_mul(fe h, const fe f, const fe g) {
  u64 t[10];
  u32 g19[10], f2[10];
  u32 i;
  for (i = 0; i < 10; i++) {
    g19[i] = 19 * g[i];
    f2[i] = 2 * f[i];
  }
  t[0] = COLUMN(0);
  t[1] = COLUMN(1);
  t[2] = COLUMN(2);
  t[3] = COLUMN(3);
  t[4] = COLUMN(4);
  t[5] = COLUMN(5);
  t[6] = COLUMN(6);
  t[7] = COLUMN(7);
  t[8] = COLUMN(8);
  t[9] = COLUMN(9);
  fe_carry64(h, t);
}

/* h = f^2: fe_mul's columns with each pair f_i f_j (i < j) taken once and doubled, 55 products instead
 * of 100. The factors stay below 2^32: 2 f_i below 2^27.1, and 19 f_j, or 38 f_j for odd j, below 2^30.3. */
#define SQJ(i, k) ((((k) - (i) + 10) % 10))
#define SQTERM(i, k)                                                                                     \
  ((i) > SQJ(i, k) ? 0                                                                                   \
                   : (u64)((i) < SQJ(i, k) ? f2[i] : f[i]) *                                              \
                         (((i) + SQJ(i, k) >= 10) ? ((((i) & SQJ(i, k) & 1)) ? f38[SQJ(i, k)] : f19[SQJ(i, k)]) \
                                                  : ((((i) & SQJ(i, k) & 1)) ? f2[SQJ(i, k)] : f[SQJ(i, k)])))
#define SQCOLUMN(k) (SQTERM(0, k) + SQTERM(1, k) + SQTERM(2, k) + SQTERM(3, k) + SQTERM(4, k) + SQTERM(5, k) + SQTERM(6, k) + SQTERM(7, k) + SQTERM(8, k) + SQTERM(9, k))

static void fe_sq(fe h, const fe f) {
  u64 t[10];
  u32 f2[10], f19[10], f38[10];
  u32 i;
  for (i = 0; i < 10; i++) {
    f2[i] = 2 * f[i];
    f19[i] = 19 * f[i];
    f38[i] = 38 * f[i];
  }
  t[0] = SQCOLUMN(0);
  t[1] = SQCOLUMN(1);
  t[2] = SQCOLUMN(2);
  t[3] = SQCOLUMN(3);
  t[4] = SQCOLUMN(4);
  t[5] = SQCOLUMN(5);
  t[6] = SQCOLUMN(6);
  t[7] = SQCOLUMN(7);
  t[8] = SQCOLUMN(8);
  t[9] = SQCOLUMN(9);
  fe_carry64(h, t);
}

static void fe_sqn(fe h, const fe f, u32 n) {
  fe_sq(h, f);
  while (--n) fe_sq(h, h);
}

/* Canonical little-endian encoding (value reduced below p, bit 255 clear). */
static void fe_tobytes(u8 *s, const fe f) {
  u32 h[10], i, q;
  for (i = 0; i < 10; i++) h[i] = f[i];
  fe_carry(h);
  fe_carry(h); /* now every limb below 2^width: the value is below 2^255 */
  q = (h[0] + 19) >> 26; /* q = 1 exactly when value + 19 >= 2^255, i.e. value >= p */
  for (i = 1; i < 10; i++) q = (h[i] + q) >> WIDTH(i);
  h[0] += 19 * q; /* value - p = value + 19 - 2^255: add 19, then drop bit 255 */
  for (i = 0; i < 9; i++) {
    h[i + 1] += h[i] >> WIDTH(i);
    h[i] &= (1u << WIDTH(i)) - 1;
  }
  h[9] &= (1u << 25) - 1;
  for (i = 0; i < 32; i++) s[i] = 0;
  for (i = 0; i < 10; i++) {
    u8 *b = s + (OFFSET(i) >> 3);
    u32 v = h[i] << (OFFSET(i) & 7);
    b[0] |= (u8)v;
    b[1] |= (u8)(v >> 8);
    b[2] |= (u8)(v >> 16);
    b[3] |= (u8)(v >> 24);
  }
}

/* Swaps f and g when b = 1, leaves them when b = 0, with the same instructions either way. */
static void fe_cswap(fe f, fe g, u32 b) {
  u32 i, mask = 0 - b, x;
  for (i = 0; i < 10; i++) {
    x = mask & (f[i] ^ g[i]);
    f[i] ^= x;
    g[i] ^= x;
  }
}

/* z^(2^255 - 21) = 1/z (invert = 1), or z^(2^252 - 3) = z^((p-5)/8) (invert = 0), by the chain
 * z^(2^250 - 1) from z^(2^5 - 1), z^(2^10 - 1), ... (254 squarings, 11 multiplications). */
static void fe_pow(fe out, const fe z, u32 invert) {
  fe z2, z9, z11, a, b, c;
  fe_sq(z2, z);              /* 2 */
  fe_sqn(a, z2, 2);          /* 8 */
  fe_mul(z9, a, z);          /* 9 */
  fe_mul(z11, z9, z2);       /* 11 */
  fe_sq(a, z11);             /* 22 */
  fe_mul(a, a, z9);          /* 2^5 - 1 */
  fe_sqn(b, a, 5);
  fe_mul(b, b, a);           /* 2^10 - 1 */
  fe_sqn(c, b, 10);
  fe_mul(c, c, b);           /* 2^20 - 1 */
  fe_sqn(z2, c, 20);
  fe_mul(c, z2, c);          /* 2^40 - 1 */
  fe_sqn(c, c, 10);
  fe_mul(b, c, b);           /* 2^50 - 1 */
  fe_sqn(c, b, 50);
  fe_mul(c, c, b);           /* 2^100 - 1 */
  fe_sqn(z2, c, 100);
  fe_mul(c, z2, c);          /* 2^200 - 1 */
  fe_sqn(c, c, 50);
  fe_mul(c, c, b);           /* 2^250 - 1 */
  if (invert) {
    fe_sqn(c, c, 5);
    fe_mul(out, c, z11);     /* 2^255 - 32 + 11 = p - 2 */
  } else {
    fe_sqn(c, c, 2);
    fe_mul(out, c, z);       /* 2^252 - 4 + 1 */
  }
}

/* ---- X25519 (RFC 7748 section 5) ---- */

int x25519(u8 *out, const u8 *scalar, const u8 *u) {
  u8 k[32];
  fe x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d;
  u32 i, swap = 0, bit, acc;
  int t;
  for (i = 0; i < 32; i++) k[i] = scalar[i];
  k[0] &= 248; /* decodeScalar25519: clamp */
  k[31] &= 127;
  k[31] |= 64;
  fe_frombytes(x1, u); /* decodeUCoordinate: bit 255 masked; a value >= p works as value - p */
  fe_set(x2, 1);
  fe_set(z2, 0);
  fe_copy(x3, x1);
  fe_set(z3, 1);
  for (t = 254; t >= 0; t--) {
    bit = (k[t >> 3] >> (t & 7)) & 1;
    swap ^= bit;
    fe_cswap(x2, x3, swap);
    fe_cswap(z2, z3, swap);
    swap = bit;
    fe_add(a, x2, z2);
    fe_sq(aa, a);
    fe_sub(b, x2, z2);
    fe_sq(bb, b);
    fe_sub(e, aa, bb);
    fe_add(c, x3, z3);
    fe_sub(d, x3, z3);
    fe_mul(d, d, a);         /* DA */
    fe_mul(c, c, b);         /* CB */
    fe_add(x3, d, c);
    fe_sq(x3, x3);           /* x3 = (DA + CB)^2 */
    fe_sub(z3, d, c);
    fe_sq(z3, z3);
    fe_mul(z3, z3, x1);      /* z3 = x1 * (DA - CB)^2 */
    fe_mul(x2, aa, bb);      /* x2 = AA * BB */
    fe_set(a, 121665);
    fe_mul(a, a, e);
    fe_add(a, a, aa);
    fe_mul(z2, e, a);        /* z2 = E * (AA + a24 * E) */
  }
  fe_cswap(x2, x3, swap);
  fe_cswap(z2, z3, swap);
  fe_pow(z2, z2, 1);
  fe_mul(x2, x2, z2);
  fe_tobytes(out, x2);
  for (i = 0; i < 32; i++) ((volatile u8 *)k)[i] = 0; /* the clamped scalar does not stay on the stack */
  acc = 0;
  for (i = 0; i < 32; i++) acc |= out[i];
  return -(int)((acc - 1) >> 31); /* -1 exactly when every byte is 0, without a branch */
}

int x25519_base(u8 *out, const u8 *scalar) {
  u8 nine[32];
  u32 i;
  nine[0] = 9;
  for (i = 1; i < 32; i++) nine[i] = 0;
  return x25519(out, scalar, nine);
}

/* ---- SHA-512 (FIPS 180-4 section 6.4), 16-word rolling message schedule ---- */

struct sha512 {
  u64 h[8];
  u8 buf[128];
  u32 fill;
  u32 total;
};

#define ROR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static void sha512_block(u64 *hs, const u8 *p) {
  u64 w[16], v[8], t1, t2;
  u32 t, i;
  for (i = 0; i < 8; i++) v[i] = hs[i];
  for (t = 0; t < 80; t++) {
    if (t < 16) {
      u64 x = 0;
      for (i = 0; i < 8; i++) x = (x << 8) | p[8 * t + i];
      w[t] = x;
    } else {
      u64 a = w[(t - 15) & 15], b = w[(t - 2) & 15];
      w[t & 15] += (ROR64(b, 19) ^ ROR64(b, 61) ^ (b >> 6)) + w[(t - 7) & 15] + (ROR64(a, 1) ^ ROR64(a, 8) ^ (a >> 7));
    }
    t1 = v[7] + (ROR64(v[4], 14) ^ ROR64(v[4], 18) ^ ROR64(v[4], 41)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) + K512[t] + w[t & 15];
    t2 = (ROR64(v[0], 28) ^ ROR64(v[0], 34) ^ ROR64(v[0], 39)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
    for (i = 7; i > 0; i--) v[i] = v[i - 1];
    v[4] += t1;
    v[0] = t1 + t2;
  }
  for (i = 0; i < 8; i++) hs[i] += v[i];
}

static void sha512_init(struct sha512 *s) {
  u32 i;
  for (i = 0; i < 8; i++) s->h[i] = H512[i];
  s->fill = 0;
  s->total = 0;
}

static void sha512_update(struct sha512 *s, const u8 *m, u32 len) {
  s->total += len;
  while (len--) {
    s->buf[s->fill++] = *m++;
    if (s->fill == 128) {
      sha512_block(s->h, s->buf);
      s->fill = 0;
    }
  }
}

/* Pads with 0x80, zeros and the 128-bit big-endian bit length (messages below 2^32 bytes). */
static void sha512_final(struct sha512 *s, u8 *out) {
  u32 i, bits_hi = s->total >> 29, bits_lo = s->total << 3;
  u8 one = 0x80, zero = 0;
  sha512_update(s, &one, 1);
  while (s->fill != 112) sha512_update(s, &zero, 1);
  for (i = 112; i < 120; i++) s->buf[i] = 0;
  for (i = 0; i < 4; i++) {
    s->buf[120 + i] = (u8)(bits_hi >> (24 - 8 * i));
    s->buf[124 + i] = (u8)(bits_lo >> (24 - 8 * i));
  }
  sha512_block(s->h, s->buf);
  for (i = 0; i < 64; i++) out[i] = (u8)(s->h[i >> 3] >> (56 - 8 * (i & 7)));
}

int sha512(u8 *out, const u8 *msg, u32 len) {
  struct sha512 s;
  sha512_init(&s);
  sha512_update(&s, msg, len);
  sha512_final(&s, out);
  return 0;
}

/* ---- Ed25519 verification (RFC 8032 sections 5.1.3, 5.1.4, 5.1.7); public data, variable time ---- */

/* Extended coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, x y = T/Z. */
typedef struct {
  fe X, Y, Z, T;
} ge;

static void ge_finish(ge *r, const fe e, const fe f, const fe g, const fe h) {
  fe_mul(r->X, e, f);
  fe_mul(r->Y, g, h);
  fe_mul(r->T, e, h);
  fe_mul(r->Z, f, g);
}

/* r = p + q, section 5.1.4's addition (complete: any two points, also equal or of small order). */
static void ge_add(ge *r, const ge *p, const ge *q) {
  fe a, b, c, d, t;
  fe_sub(a, p->Y, p->X);
  fe_sub(t, q->Y, q->X);
  fe_mul(a, a, t);
  fe_add(b, p->Y, p->X);
  fe_add(t, q->Y, q->X);
  fe_mul(b, b, t);
  fe_frombytes(t, C_D);
  fe_add(t, t, t);
  fe_mul(c, p->T, t);
  fe_mul(c, c, q->T);
  fe_mul(d, p->Z, q->Z);
  fe_add(d, d, d);
  fe_sub(t, b, a); /* E */
  fe_add(b, b, a); /* H */
  fe_sub(a, d, c); /* F */
  fe_add(d, d, c); /* G */
  ge_finish(r, t, a, d, b);
}

/* r = 2p, section 5.1.4's doubling. */
static void ge_dbl(ge *r, const ge *p) {
  fe a, b, c, h, t;
  fe_sq(a, p->X);
  fe_sq(b, p->Y);
  fe_sq(c, p->Z);
  fe_add(c, c, c);
  fe_add(h, a, b);
  fe_add(t, p->X, p->Y);
  fe_sq(t, t);
  fe_sub(t, h, t);  /* E */
  fe_sub(a, a, b);  /* G */
  fe_add(c, c, a);  /* F */
  ge_finish(r, t, c, a, h);
}

static void ge_neg(ge *p) {
  fe zero;
  fe_set(zero, 0);
  fe_sub(p->X, zero, p->X);
  fe_sub(p->T, zero, p->T);
}

static int fe_equal(const fe f, const fe g) {
  u8 a[32], b[32];
  u32 i, diff = 0;
  fe_tobytes(a, f);
  fe_tobytes(b, g);
  for (i = 0; i < 32; i++) diff |= a[i] ^ b[i];
  return diff == 0;
}

/* The identity (0 : 1 : 1 : 0): X = 0 and Y = Z. */
static int ge_is_identity(const ge *p) {
  fe zero;
  fe_set(zero, 0);
  return fe_equal(p->X, zero) && fe_equal(p->Y, p->Z);
}

/* [8]p = identity: p has small order (divides the cofactor). */
static __attribute__((noinline)) int ge_small_order(const ge *p) {
  ge q;
  ge_dbl(&q, p);
  ge_dbl(&q, &q);
  ge_dbl(&q, &q);
  return ge_is_identity(&q);
}

/* Section 5.1.3, strict: 0 if s encodes a point (written to p), -1 if not. */
static __attribute__((noinline)) int ge_decode(ge *p, const u8 *s) {
  fe u, v, w, x;
  u8 y[32];
  u32 i, sign = s[31] >> 7, diff = 0;
  fe_frombytes(p->Y, s);
  fe_tobytes(y, p->Y);
  for (i = 0; i < 31; i++) diff |= y[i] ^ s[i];
  diff |= y[31] ^ (s[31] & 0x7f);
  if (diff != 0) return -1; /* y >= p */
  fe_sq(u, p->Y);
  fe_frombytes(v, C_D);
  fe_mul(v, v, u);
  fe_set(w, 1);
  fe_sub(u, u, w); /* u = y^2 - 1 */
  fe_add(v, v, w); /* v = d y^2 + 1 */
  fe_sq(w, v);
  fe_mul(w, w, v);     /* v^3 */
  fe_sq(x, w);
  fe_mul(x, x, v);     /* v^7 */
  fe_mul(x, x, u);     /* u v^7 */
  fe_pow(x, x, 0);     /* (u v^7)^((p-5)/8) */
  fe_mul(x, x, w);
  fe_mul(x, x, u);     /* x = u v^3 (u v^7)^((p-5)/8) */
  fe_sq(w, x);
  fe_mul(w, w, v);     /* v x^2 */
  if (!fe_equal(w, u)) {
    fe_set(v, 0);
    fe_sub(u, v, u);
    if (!fe_equal(w, u)) return -1; /* v x^2 = -u neither: no square root */
    fe_frombytes(w, C_SQRTM1);
    fe_mul(x, x, w);
  }
  fe_tobytes(y, x);
  diff = 0;
  for (i = 0; i < 32; i++) diff |= y[i];
  if (diff == 0 && sign)
    return -1; /* x = 0 with the sign bit set */
  if ((y[0] & 1) != sign) {
    fe_set(w, 0);
    fe_sub(x, w, x);
  }
  fe_copy(p->X, x);
  fe_set(p->Z, 1);
  fe_mul(p->T, x, p->Y);
  return 0;
}

/* Little-endian 256-bit numbers as eight words, for S < L and k mod L. */
static void load256(u32 *w, const u8 *s) {
  u32 i;
  for (i = 0; i < 8; i++) w[i] = (u32)s[4 * i] | ((u32)s[4 * i + 1] << 8) | ((u32)s[4 * i + 2] << 16) | ((u32)s[4 * i + 3] << 24);
}

/* a >= b */
static int ge256(const u32 *a, const u32 *b) {
  int i;
  for (i = 7; i >= 0; i--)
    if (a[i] != b[i]) return a[i] > b[i];
  return 1;
}

/* k = h (64 bytes, little-endian) mod L, bit by bit from the top: r = 2r + bit, minus L when r >= L. */
static void reduce_mod_l(u8 *k, const u8 *h) {
  u32 r[8], l[8], i, bit;
  int n;
  load256(l, C_L);
  for (i = 0; i < 8; i++) r[i] = 0;
  for (n = 511; n >= 0; n--) {
    bit = (h[n >> 3] >> (n & 7)) & 1;
    for (i = 7; i > 0; i--) r[i] = (r[i] << 1) | (r[i - 1] >> 31); /* r < L < 2^253: no overflow */
    r[0] = (r[0] << 1) | bit;
    if (ge256(r, l)) {
      u64 borrow = 0;
      for (i = 0; i < 8; i++) {
        u64 d = (u64)r[i] - l[i] - borrow;
        r[i] = (u32)d;
        borrow = (d >> 32) & 1;
      }
    }
  }
  for (i = 0; i < 32; i++) k[i] = (u8)(r[i >> 2] >> (8 * (i & 3)));
}

static __attribute__((noinline)) void challenge(u8 *k, const u8 *sig, const u8 *msg, u32 len, const u8 *pk) {
  struct sha512 s;
  u8 h[64];
  sha512_init(&s);
  sha512_update(&s, sig, 32);
  sha512_update(&s, pk, 32);
  sha512_update(&s, msg, len);
  sha512_final(&s, h);
  reduce_mod_l(k, h);
}

#define BIT(s, i) (((s)[(i) >> 3] >> ((i) & 7)) & 1)

int ed25519_verify(const u8 *sig, const u8 *msg, u32 len, const u8 *pk) {
  ge a, r, b, ab, p;
  u8 k[32];
  u32 sw[8], lw[8];
  int i;
  load256(sw, sig + 32);
  load256(lw, C_L);
  if (ge256(sw, lw)) return 0;                   /* S >= L */
  if (ge_decode(&a, pk) != 0) return 0;          /* A not a point */
  if (ge_small_order(&a)) return 0;              /* A of small order */
  if (ge_decode(&r, sig) != 0) return 0;         /* R not a point */
  challenge(k, sig, msg, len, pk);
  fe_frombytes(b.X, C_BX);
  fe_set(b.Y, 4);
  fe_set(b.Z, 5); /* y = 4/5: (x : 4 : 5 : 4x) is B in extended coordinates */
  fe_mul(b.X, b.X, b.Z);
  fe_frombytes(b.T, C_BX);
  fe_mul(b.T, b.T, b.Y);
  ge_neg(&a);
  ge_add(&ab, &b, &a);                           /* B - A */
  fe_set(p.X, 0);
  fe_set(p.Y, 1);
  fe_set(p.Z, 1);
  fe_set(p.T, 0);
  for (i = 252; i >= 0; i--) {                   /* S, k < L < 2^253 */
    u32 sb = BIT(sig + 32, i), kb = BIT(k, i);
    ge_dbl(&p, &p);
    if (sb && kb) ge_add(&p, &p, &ab);
    else if (sb) ge_add(&p, &p, &b);
    else if (kb) ge_add(&p, &p, &a);
  }
  ge_neg(&r);
  ge_add(&p, &p, &r);                            /* [S]B - [k]A - R */
  return ge_small_order(&p);                     /* [8](...) = identity */
}
