// The GATT interface (design brief, "BLE interface"; docs/protocol.md section 7).
// Shared with the firmware and the relay, so plain constants only.

const UUID_TAIL = '-5ea1-4f05-9b2e-2d0c1e5a7f10';
export const SERVICE_UUID = '7a1d0001' + UUID_TAIL;
/** notify: one frame per notification. */
export const FRAMES_UUID = '7a1d0002' + UUID_TAIL;
/** write: one 12-byte acknowledgement per write. */
export const ACK_UUID = '7a1d0003' + UUID_TAIL;
/** read: public device info, UTF-8 JSON. */
export const INFO_UUID = '7a1d0004' + UUID_TAIL;

/** Advertised name prefix; the name is this plus the serial's last 6 characters. */
export const NAME_PREFIX = 'sealpost ';
