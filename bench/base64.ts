// Base64 decoding cost per frame: protocol/base64.ts (the decoder the server
// and the relay share) against a regex check plus Buffer.from, which the
// server used until both sides shared one rule. If the portable decoder ever
// became much slower, the server would want a Buffer fast path under the
// same rule. Run: npx tsx bench/base64.ts
import { randomBytes } from 'node:crypto';
import { fromBase64 } from '../protocol/base64.js';

/** The earlier server check: padded alphabet text, then Node's lenient decoder. */
const PADDED = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
function regexThenBuffer(text: string): Uint8Array | undefined {
  if (!PADDED.test(text)) return undefined;
  const b = Buffer.from(text, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const decoders: Record<string, (text: string) => Uint8Array | undefined> = { 'protocol/base64': fromBase64, 'regex + Buffer': regexThenBuffer };
const TEXTS = 1000;
const ROUNDS = 200;

console.log(`decoder            frame   ns/frame   (Node ${process.version}, median of 7 runs of ${TEXTS * ROUNDS} decodes)`);
for (const size of [20, 64, 244]) {
  const texts = Array.from({ length: TEXTS }, () => randomBytes(size).toString('base64'));
  for (const [name, decode] of Object.entries(decoders)) {
    for (const t of texts) if (decode(t)?.length !== size) throw new Error(`${name} failed on ${t}`);
    const runs: number[] = [];
    for (let run = 0; run < 8; run++) {
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < ROUNDS; r++) for (const t of texts) decode(t);
      // The first run warms the JIT up and is not counted.
      if (run > 0) runs.push(Number(process.hrtime.bigint() - t0) / (TEXTS * ROUNDS));
    }
    runs.sort((a, b) => a - b);
    console.log(`${name.padEnd(18)} ${String(size).padStart(5)}   ${runs[3]!.toFixed(0).padStart(8)}`);
  }
}
