/*
 * AES-128 under many keys in one call, through the OpenSSL that node itself
 * links (docs/server.md, "Junk uplinks"; docs/decisions.md, "Junk uplinks,
 * fourth pass").
 *
 *   encrypt(keys, counts, input, output)
 *     keys    Uint8Array, 16 bytes per key
 *     counts  Uint32Array, one per key: how many 16-byte blocks it encrypts
 *     input   Uint8Array, the blocks of key 0, then of key 1, ... (sum(counts) blocks)
 *     output  Uint8Array of the same length; may be input itself
 *
 * Each key's blocks are encrypted as AES-128-ECB (FIPS 197) on one
 * EVP_CIPHER_CTX that is re-keyed per key: EVP_EncryptInit_ex2 with a new key
 * runs only the key schedule. node:crypto has no such call: a cipher object
 * is bound to one key, and making one costs about 2 us of JavaScript and C++
 * wrapping around the same OpenSSL work (bench/junk-uplink.ts made 100 per
 * request). The AES itself is OpenSSL's, the code node:crypto runs: AES-NI,
 * or vector-permutation AES, both constant time, per OpenSSL's CPU dispatch.
 * The context is freed (and its key schedule cleansed by OpenSSL) before
 * returning; keys with a count of 0 are skipped.
 */
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <stdint.h>

#define BLOCK 16

static napi_value fail(napi_env env, const char *code, const char *message, int range) {
  if (range) napi_throw_range_error(env, code, message);
  else napi_throw_type_error(env, code, message);
  return NULL;
}

/* A Uint8Array (or Buffer) argument's bytes; false when it is something else. */
static int bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *length) {
  bool is;
  napi_typedarray_type type;
  void *p;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

static const EVP_CIPHER *aes128_ecb(napi_env env) {
  void *cipher = NULL;
  napi_get_instance_data(env, &cipher);
  return cipher;
}

static napi_value encrypt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 4) return fail(env, "ERR_INVALID_ARG_COUNT", "encrypt(keys, counts, input, output) takes 4 arguments", 0);
  uint8_t *keys, *input, *output;
  size_t keys_len, input_len, output_len, n;
  uint32_t *counts;
  bool is;
  napi_typedarray_type type;
  void *p;
  if (!bytes_of(env, argv[0], &keys, &keys_len)) return fail(env, "ERR_INVALID_ARG_TYPE", "keys: expected a Uint8Array", 0);
  if (napi_is_typedarray(env, argv[1], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[1], &type, &n, &p, NULL, NULL) != napi_ok || type != napi_uint32_array)
    return fail(env, "ERR_INVALID_ARG_TYPE", "counts: expected a Uint32Array", 0);
  counts = p;
  if (!bytes_of(env, argv[2], &input, &input_len)) return fail(env, "ERR_INVALID_ARG_TYPE", "input: expected a Uint8Array", 0);
  if (!bytes_of(env, argv[3], &output, &output_len)) return fail(env, "ERR_INVALID_ARG_TYPE", "output: expected a Uint8Array", 0);
  if (keys_len != n * BLOCK) return fail(env, "ERR_OUT_OF_RANGE", "keys: expected 16 bytes per entry of counts", 1);
  uint64_t blocks = 0;
  for (size_t i = 0; i < n; i++) blocks += counts[i];
  if (blocks * BLOCK != input_len) return fail(env, "ERR_OUT_OF_RANGE", "input: expected 16 bytes per block that counts names", 1);
  if (output_len != input_len) return fail(env, "ERR_OUT_OF_RANGE", "output: expected as many bytes as input", 1);
  /* OpenSSL allows exactly the same buffer in and out, not a partial overlap. */
  if (output != input && output < input + input_len && input < output + output_len)
    return fail(env, "ERR_OUT_OF_RANGE", "output: overlaps input without being input", 1);
  if (blocks == 0) return NULL;

  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int ok = ctx != NULL;
#if OPENSSL_VERSION_MAJOR >= 3
  ok = ok && EVP_EncryptInit_ex2(ctx, aes128_ecb(env), NULL, NULL, NULL);
#else
  ok = ok && EVP_EncryptInit_ex(ctx, aes128_ecb(env), NULL, NULL, NULL);
#endif
  ok = ok && EVP_CIPHER_CTX_set_padding(ctx, 0);
  size_t at = 0;
  for (size_t i = 0; ok && i < n; i++) {
    size_t len = (size_t)counts[i] * BLOCK;
    if (len == 0) continue;
    int out_len = 0;
#if OPENSSL_VERSION_MAJOR >= 3
    ok = EVP_EncryptInit_ex2(ctx, NULL, keys + i * BLOCK, NULL, NULL);
#else
    ok = EVP_EncryptInit_ex(ctx, NULL, NULL, keys + i * BLOCK, NULL);
#endif
    /* EVP lengths are int: a count above 2^27 blocks is split. */
    for (size_t done = 0; ok && done < len;) {
      size_t part = len - done > ((size_t)1 << 30) ? ((size_t)1 << 30) : len - done;
      ok = EVP_EncryptUpdate(ctx, output + at + done, &out_len, input + at + done, (int)part) && (size_t)out_len == part;
      done += part;
    }
    at += len;
  }
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return fail(env, "ERR_CRYPTO_OPERATION_FAILED", "AES-128-ECB failed in OpenSSL", 0);
  return NULL;
}

static void free_cipher(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
#if OPENSSL_VERSION_MAJOR >= 3
  EVP_CIPHER_free(data);
#else
  (void)data;
#endif
}

NAPI_MODULE_INIT() {
  /* Fetched once per module instance: an implicit fetch per EVP_EncryptInit would cost a lookup each. */
#if OPENSSL_VERSION_MAJOR >= 3
  EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
#else
  EVP_CIPHER *cipher = (EVP_CIPHER *)EVP_aes_128_ecb();
#endif
  if (cipher == NULL) {
    napi_throw_error(env, "ERR_CRYPTO_UNKNOWN_CIPHER", "OpenSSL has no AES-128-ECB");
    return NULL;
  }
  if (napi_set_instance_data(env, cipher, free_cipher, NULL) != napi_ok) return NULL;
  napi_value fn;
  if (napi_create_function(env, "encrypt", NAPI_AUTO_LENGTH, encrypt, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "encrypt", fn) != napi_ok) return NULL;
  return exports;
}
