// Storage file names, the one home for them: the factory writes these files,
// the firmware and the simulation read them (at most 28 characters on Espruino).
export const DEVICE_FILE_NAME = 'sealpost.dev';
export const COUNTER_LOG_NAME = 'sealpost.ctr';
/** The compiled AES-CCM kernel (kernel/aes-ccm/aes-ccm.bin) on native-kernel boards, executed in place. */
export const KERNEL_FILE_NAME = 'sealpost.krn';
/** What the firmware tells the operator when one of them is missing: one copy of the text in a bundle. */
export const PROVISION_HINT = 'provision this device with sealpost flash';
/**
 * The renewal kernels (issue #17; docs/firmware.md "Renewal crypto on the board"), written by the
 * factory on boards whose profile has renewalCrypto 'native-kernel': kernel/curve25519/curve25519.bin
 * (X25519, Ed25519 verification) and kernel/hkdf-sha256/hkdf-sha256.bin (HMAC, HKDF, the RFC 9180
 * key schedule), read only while a renewal runs.
 */
export const CURVE_KERNEL_FILE_NAME = 'sealpost.c25';
export const HKDF_KERNEL_FILE_NAME = 'sealpost.hkd';
