// The board's renewal crypto (hal/espruino/renewal-crypto.ts on the curve25519 and hkdf-sha256
// kernels) on Espruino 2v29 for 32-bit ARM under qemu-arm (ESPRUINO_ARM_BIN, 2,630 variables of 13
// bytes as on a board; ../shared/espruino/build.sh): dist/renewal-check.js (`npm run build`) as
// .bootcde, the kernel files in Storage and handed to the backend in place as flash is on a board.
// Prints, per round, the wall time of one setupPskS (renewal.json derivation 0) and of one verify
// (its first ANNOUNCE), both timed by the interpreter's getTime() around the call; then the medians,
// the variables in use before, at the deepest kernel call (E.nativeCall wrapped to read
// process.memory() first, in a run of its own) and after a setupPskS, and the kernel files' Storage
// bytes. The times are EMULATION: qemu-arm translating Thumb-2 and the interpreter on a shared x86
// machine, not a board (docs/firmware.md, "Renewal crypto on the board", has the cycle bounds).
//     npx tsx bench/renewal-crypto-arm.ts [--rounds 9]
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { ANNOUNCE_CONTEXT } from '../protocol/announce.js';
import { CURVE_KERNEL_FILE_NAME, HKDF_KERNEL_FILE_NAME } from '../protocol/wire/names.js';
import { storageFootprint } from '../factory/storage-image.js';
import { bootRenewalCheck, curveKernel, hkdfKernel, KERNELS_IN_PLACE } from '../test/helpers/renewal-check.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '9' } } });
const rounds = Number(values.rounds);
const BIN = process.env.ESPRUINO_ARM_BIN;
if (!BIN) throw new Error('set ESPRUINO_ARM_BIN to the 32-bit ARM build of Espruino 2v29 (../shared/espruino/build.sh prints it)');
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds expects a whole number of at least 1, got ${values.rounds}`);

const vectors = JSON.parse(readFileSync(new URL('../test/vectors/renewal.json', import.meta.url), 'utf8')) as {
  derivation: { ingest_public_key: string; info: string; psk: string; psk_id: string; ikm: string; enc: string; seal_key: string; nonce_salt: string; chain: string }[];
  announce: { renewal_public_key: string; announce: string }[];
};
const v = vectors.derivation[0]!;
const a = vectors.announce[0]!;
const msg = Buffer.from(ANNOUNCE_CONTEXT).toString('hex') + a.announce.slice(0, 88);
const sig = a.announce.slice(88, 216);
const curve = curveKernel();
const hkdf = hkdfKernel();

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

const board = await bootRenewalCheck(BIN, { [CURVE_KERNEL_FILE_NAME]: curve, [HKDF_KERNEL_FILE_NAME]: hkdf }, KERNELS_IN_PLACE);
try {
  console.log(`load average at start ${load()}`);
  const setup: number[] = [];
  const verify: number[] = [];
  // One call of each first: qemu translates the kernels' code on first use.
  await board.renew(v);
  await board.verify(a.renewal_public_key, msg, sig);
  for (let r = 0; r < rounds; r++) {
    const s = await board.renew(v);
    if (s[0] !== v.enc + v.seal_key + v.nonce_salt + v.chain) throw new Error(`setupPskS gave ${s.join(' ')}`);
    const t = await board.verify(a.renewal_public_key, msg, sig);
    if (t[0] !== '1') throw new Error(`verify gave ${t.join(' ')}`);
    setup.push(Number(s[1]));
    verify.push(Number(t[1]));
    console.log(`round ${r + 1}: setupPskS ${s[1]} ms, verify ${t[1]} ms`);
  }
  const [, , before, deepest, after] = await board.renew(v, true);
  console.log(`median of ${rounds} (qemu-arm emulation): setupPskS ${median(setup)} ms (${Math.min(...setup)}-${Math.max(...setup)}), verify ${median(verify)} ms (${Math.min(...verify)}-${Math.max(...verify)})`);
  console.log(`variables (process.memory().usage, 13-byte blocks): before ${before}, at the deepest kernel call ${deepest} (+${Number(deepest) - Number(before)}), after ${after} (+${Number(after) - Number(before)}: the 88-byte result)`);
  console.log(
    `Storage: ${CURVE_KERNEL_FILE_NAME} ${curve.length} B (${storageFootprint(curve.length)} with header and padding), ${HKDF_KERNEL_FILE_NAME} ${hkdf.length} B (${storageFootprint(hkdf.length)}), together ${storageFootprint(curve.length) + storageFootprint(hkdf.length)} B`,
  );
  console.log(`load average at end ${load()}`);
} finally {
  await board.session.stop();
}
