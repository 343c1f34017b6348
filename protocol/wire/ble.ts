// The GATT interface (design brief, "BLE interface"; docs/protocol.md section 7).
// Shared with the firmware and the relay, so plain constants only.

/**
 * The service's UUID (n = 1) and its characteristics' (2 frames, 3 ack, 4
 * info). A function rather than four constants for the firmware: on the
 * interpreter a top-level string constant stays in RAM for good (about 7
 * variables each), so the radio makes them when it needs them: the table at
 * start-up, the service and frames UUIDs per notification (docs/firmware.md,
 * "Fourth pass").
 */
export function gattUuid(n: number): string {
  return '7a1d000' + n + '-5ea1-4f05-9b2e-2d0c1e5a7f10';
}
export const SERVICE_UUID = /*@__PURE__*/ gattUuid(1);
/** notify: one frame per notification. */
export const FRAMES_UUID = /*@__PURE__*/ gattUuid(2);
/** write: one 12-byte acknowledgement per write. */
export const ACK_UUID = /*@__PURE__*/ gattUuid(3);
/** read: public device info, UTF-8 JSON. */
export const INFO_UUID = /*@__PURE__*/ gattUuid(4);

/** Advertised name prefix; the name is this plus the serial's last 6 characters. */
export const NAME_PREFIX = 'sealpost ';
