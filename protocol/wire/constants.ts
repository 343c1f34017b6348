// Fixed numbers of the sealpost v1 wire format (../shared/design.md, "Frames").
// This file is shared with the firmware, so it holds plain constants only and
// compiles to ES5.

export const PROTOCOL_VERSION = 1;

export const KEY_LEN = 16;
export const NONCE_SALT_LEN = 8;
export const NONCE_LEN = 13;
export const COUNTER_LEN = 4;
export const TAG_LEN = 8;
/** Bytes of a frame that are not plaintext: counter + tag. */
export const FRAME_OVERHEAD = COUNTER_LEN + TAG_LEN;
/** counter (4) + at least one plaintext byte + tag (8). */
export const MIN_FRAME_SIZE = 13;
/** Largest payload of one notification on an nRF52840 build with a 247-byte ATT MTU (247 - 3). */
export const MAX_FRAME_SIZE = 244;
/** Fits a 23-byte ATT MTU, so any phone works without MTU negotiation. */
export const DEFAULT_FRAME_SIZE = 20;
export const ACK_LEN = COUNTER_LEN + TAG_LEN;
export const MAX_COUNTER = 0xffffffff;

/** Last byte of the CCM nonce: which kind of message the tag covers. */
export const DOMAIN_UPLINK = 0x01;
export const DOMAIN_ACK = 0x02;

/** Length of the key check value: first bytes of AES-128-ECB(seal_key, 0^16). */
export const KCV_LEN = 3;
