// `sealpost demo`: the whole trust chain of the protocol in one process.
// A fleet key is made, devices are provisioned as the factory would, each
// device seals frames with one of the three device crypto backends, and the
// "server" re-derives each device's keys from nothing but its public
// registry row (serial, enc) to open the frames and answer with acks the
// devices verify. A relay that flips a bit is caught. The full demo with the
// ingest server, the database and the dashboard replaces this as those parts
// land (see the issues).
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { generateKeyPair, makeAck, openFrame, provisionDevice, recoverDeviceKeys, AuthenticationError, toHex, DEFAULT_FRAME_SIZE } from '../protocol/index.js';
import { createSealer, ackCounter } from '../firmware/sealer.js';
import { createEspruinoAes } from '../hal/sim/espruino-aes.js';
import { nativeAesCcm, nativeCcm } from '../hal/espruino/crypto.js';
import { plainCcm } from '../hal/plain/crypto.js';
import type { Ccm, CryptoBackend } from '../hal/types.js';

const BACKENDS: CryptoBackend[] = ['native-ccm', 'native-aes', 'plain-js'];

function engine(backend: CryptoBackend, key: Uint8Array, maxMsgLen: number): Ccm {
  const aes = createEspruinoAes({ print: (line) => console.error(line) });
  if (backend === 'native-ccm') return nativeCcm(aes, key);
  if (backend === 'native-aes') return nativeAesCcm(aes, key, maxMsgLen);
  return plainCcm(key, maxMsgLen);
}

function positive(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} expects a whole number from 1 to ${max}, got "${value}"`);
  return n;
}

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { devices: { type: 'string' }, frames: { type: 'string' } }, strict: true });
  const deviceCount = positive('devices', values.devices, 6, 1000);
  const frameCount = positive('frames', values.frames, 20, 100000);
  const frameSize = DEFAULT_FRAME_SIZE;

  const ingest = generateKeyPair();
  console.log(`ingest key   X25519 public ${toHex(ingest.publicKey).slice(0, 16)}... (private key stays with the server)`);

  let opened = 0;
  let acked = 0;
  let caught = 0;
  for (let d = 0; d < deviceCount; d++) {
    const serial = `SP-DEMO-${String(d + 1).padStart(4, '0')}`;
    const backend = BACKENDS[d % BACKENDS.length]!;
    const device = provisionDevice(ingest.publicKey, serial);
    const sealer = createSealer({ ccm: engine(backend, device.sealKey, frameSize - 12), nonceSalt: device.nonceSalt, frameSize });

    // The server side knows only the registry row (serial, enc) and its private key.
    const serverKeys = recoverDeviceKeys(ingest.privateKey, device.enc, serial);
    let highest = 0;
    for (let counter = 1; counter <= frameCount; counter++) {
      const plaintext = new Uint8Array(randomBytes(sealer.plaintextSize));
      const frame = sealer.seal(counter, plaintext);
      if (counter % 7 === 0) {
        const tampered = frame.slice();
        tampered[frame.length - 1]! ^= 0x01;
        try {
          openFrame(serverKeys, tampered, frameSize);
        } catch (e) {
          if (e instanceof AuthenticationError) caught++;
        }
      }
      const result = openFrame(serverKeys, frame, frameSize);
      if (toHex(result.plaintext) === toHex(plaintext)) opened++;
      highest = result.counter;
    }
    const ack = makeAck(serverKeys, highest);
    if (sealer.ackValid(ack) && ackCounter(ack) === highest) acked++;
    console.log(`device       ${serial}  backend ${backend.padEnd(10)}  enc ${toHex(device.enc).slice(0, 12)}...  kcv ${toHex(device.kcv)}  frames 1..${highest} opened, ack verified`);
  }
  console.log('');
  console.log(`summary      ${deviceCount} devices, ${opened} of ${deviceCount * frameCount} frames opened by the server, ${acked} acks verified by devices, ${caught} tampered frames rejected`);
  return opened === deviceCount * frameCount && acked === deviceCount ? 0 : 1;
}
