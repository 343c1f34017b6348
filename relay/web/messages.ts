// What the relay page says, in plain words: Bluetooth errors (the DOMException
// names of the Web Bluetooth spec, section "Error handling"), upload results
// from the relay core, and times. Pure functions, no DOM.
import { RelayError, type RelayStatus, type UploadResult } from '../index.js';
import { LinkError } from './ble-link.js';

const NO_WEB_BLUETOOTH = 'This browser has no Web Bluetooth: use Chrome on Android or desktop.';
export const MESSAGES = {
  noWebBluetooth: NO_WEB_BLUETOOTH,
  insecure: 'Web Bluetooth works only on a secure page: open this page over HTTPS (or on localhost).',
  bluetoothOff: 'Bluetooth is off, or this browser may not use it: turn Bluetooth on (on Android also Location, or "Nearby devices" for Chrome) to connect devices.',
};

function errorName(e: unknown): string {
  return e !== null && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : '';
}

function errorMessage(e: unknown): string {
  if (e instanceof Error || (e !== null && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string')) {
    return (e as { message: string }).message;
  }
  return String(e);
}

/** True when the user closed the device chooser without picking one. */
export function isChooserCancelled(e: unknown): boolean {
  return errorName(e) === 'NotFoundError' && /cancel/i.test(errorMessage(e));
}

/** True when the browser has no Bluetooth adapter to use (requestDevice: NotFoundError "Bluetooth adapter not available."). */
export function isAdapterMissing(e: unknown): boolean {
  return errorName(e) === 'NotFoundError' && /adapter/i.test(errorMessage(e));
}

/** A Bluetooth or relay error as a sentence for the page. */
export function plainError(e: unknown): string {
  const message = errorMessage(e);
  if (e instanceof RelayError) return `the device sent something the relay cannot use (${message})`;
  if (e instanceof LinkError) {
    if (e.kind === 'not-sealpost') return `this is not a sealpost device: ${message}`;
    return message;
  }
  switch (errorName(e)) {
    case 'NotFoundError':
      if (isChooserCancelled(e)) return 'no device was chosen';
      if (isAdapterMissing(e)) return 'Bluetooth is off or this device has no Bluetooth: turn Bluetooth on and try again';
      return `the device does not offer what the relay needs (${message})`;
    case 'SecurityError':
      return `the browser blocked Bluetooth (${message}); open the page over HTTPS and tap Connect`;
    case 'NetworkError':
      return 'could not reach the device: it may be out of range, switched off or connected to another phone, or Bluetooth on this phone is off';
    case 'NotSupportedError':
      return `the device does not support what the relay needs (${message})`;
    case 'InvalidStateError':
      return `Bluetooth is busy (${message}); try again`;
    case 'NotAllowedError':
      return 'Bluetooth permission was denied: allow it in the browser settings and try again';
    default:
      return message || 'unknown error';
  }
}

export function plural(n: number, one: string, many = one + 's'): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** "just now", "12 s ago", "4 min ago", "3 h ago" */
export function ago(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 2) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function clockTime(at: number): string {
  return new Date(at).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "in 4 s" for a time ahead. */
export function inSeconds(at: number, now: number): string {
  return `in ${Math.max(1, Math.ceil((at - now) / 1000))} s`;
}

/** The last upload as a sentence: what happened, not the HTTP jargon. */
export function describeUpload(u: UploadResult): string {
  if (u.ok) return `${plural(u.frames, 'frame')} delivered (${u.message})`;
  const what = plural(u.frames, 'frame');
  if (u.status === null) return `could not reach the server while sending ${what} (${u.message})`;
  if (u.status === 429) return `the server is busy and asked the relay to wait (${what} kept)`;
  if (u.status >= 500) return `the server had a problem (HTTP ${u.status}: ${u.message}); ${what} kept`;
  if (u.status === 200) return `the server's answer could not be read (${u.message}); ${what} will go again`;
  return `the server refused the upload (HTTP ${u.status}: ${u.message})`;
}

export type UploadHealth = 'idle' | 'ok' | 'failing';

export function uploadHealth(s: RelayStatus): UploadHealth {
  if (!s.lastUpload) return 'idle';
  return s.lastUpload.ok && s.failures === 0 ? 'ok' : 'failing';
}
