// Per-device secrets (design brief, "Provisioning"):
//   (enc, ctx) = SetupBaseS(pk_ingest, info = "sealpost/v1 device " || serial)
//   seal_key   = ctx.Export("sealpost/v1 seal key", 16)
//   nonce_salt = ctx.Export("sealpost/v1 nonce salt", 8)
//   chain_0    = ctx.Export("sealpost/v1 chain", 32)   (design brief, "Key renewal")
import { KEY_LEN, NONCE_SALT_LEN } from './wire/constants.js';
import { expectBytes, utf8 } from './bytes.js';
import { ArgumentError } from './errors.js';
import type { DeviceKeys } from './frame.js';
import { setupBaseR, setupBaseS, type ExportContext } from './hpke.js';
import { keyCheckValue } from './kcv.js';
import { SERIAL_RE, SERIAL_RULE } from './serial.js';

export const INFO_PREFIX = 'sealpost/v1 device ';
export const SEAL_KEY_CONTEXT = 'sealpost/v1 seal key';
export const NONCE_SALT_CONTEXT = 'sealpost/v1 nonce salt';
export const CHAIN_CONTEXT = 'sealpost/v1 chain';

/** The serial rule of protocol/serial.ts, with an ArgumentError naming what is wrong. */
export function checkSerial(serial: unknown): string {
  if (typeof serial !== 'string') throw new ArgumentError('serial', `expected a string, got ${typeof serial}`);
  if (!SERIAL_RE.test(serial)) {
    throw new ArgumentError(
      'serial',
      `"${serial.slice(0, 40)}" is not valid: use ${SERIAL_RULE}`,
    );
  }
  return serial;
}

export function deviceInfo(serial: string): Uint8Array {
  return utf8(INFO_PREFIX + checkSerial(serial));
}

function exportKeys(context: ExportContext): DeviceKeys {
  return {
    sealKey: context.export(utf8(SEAL_KEY_CONTEXT), KEY_LEN),
    nonceSalt: context.export(utf8(NONCE_SALT_CONTEXT), NONCE_SALT_LEN),
  };
}

export interface ProvisionedDevice extends DeviceKeys {
  serial: string;
  /** HPKE encapsulated key: public, goes to the registry. */
  enc: Uint8Array;
  /** Key check value of sealKey. */
  kcv: Uint8Array;
  /** chain_0, the PSK of the device's first renewal (device file format 2). Secret. */
  chain: Uint8Array;
}

export interface ProvisionOptions {
  /** Fixed ephemeral private key, for test vectors only. */
  ephemeralPrivateKey?: Uint8Array;
  random?: (n: number) => Uint8Array;
}

/** Factory side: fresh secrets for one device, sealed to the ingest public key. */
export function provisionDevice(ingestPublicKey: Uint8Array, serial: string, options: ProvisionOptions = {}): ProvisionedDevice {
  expectBytes('ingestPublicKey', ingestPublicKey, 32);
  const { enc, context } = setupBaseS(ingestPublicKey, deviceInfo(serial), options);
  const keys = exportKeys(context);
  const chain = context.export(utf8(CHAIN_CONTEXT), 32);
  return { serial, enc, sealKey: keys.sealKey, nonceSalt: keys.nonceSalt, kcv: keyCheckValue(keys.sealKey), chain };
}

/** Server side: re-derives a device's secrets from its registry row. */
export function recoverDeviceKeys(ingestPrivateKey: Uint8Array, enc: Uint8Array, serial: string): DeviceKeys {
  expectBytes('ingestPrivateKey', ingestPrivateKey, 32);
  return exportKeys(setupBaseR(enc, ingestPrivateKey, deviceInfo(serial)));
}
