// The firmware bundles in dist/ (built by npm run build): they pass the checker and run the crypto self-test and a board under the Node stand-in and, with ESPRUINO_BIN, on the real interpreter.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { BOARDS } from '../../boards/index.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSource } from '../../tools/espruino-check/checker.js';
import { runBundle } from '../../sim/espruino/vm.js';
import { kernelImage } from '../../sim/espruino/kernel.js';
import { ackVectors, sealVectors } from '../helpers/vectors.js';

const DIST = new URL('../../dist/', import.meta.url).pathname;
const SELFTEST = join(DIST, 'crypto-selftest.js');
// renew: test/vectors/renewal.json's RENEW_ACKs (domain 3), which the self-test runs through every backend.
const VECTORS = { seal: sealVectors(), ack: ackVectors(), renew: (JSON.parse(readFileSync(new URL('../vectors/renewal.json', import.meta.url), 'utf8')) as { renew_ack: unknown[] }).renew_ack };

describe('firmware bundles in dist/ (built by npm run build)', () => {
  it('exist', () => {
    expect(existsSync(SELFTEST), 'run npm run build first').toBe(true);
  });

  it('every bundle passes the Espruino checker', () => {
    const bundles = readdirSync(DIST).filter((f) => f.endsWith('.js'));
    expect(bundles.length).toBeGreaterThan(0);
    for (const name of bundles) {
      const findings = checkSource(readFileSync(join(DIST, name), 'utf8'), name);
      expect(findings, `${name}: ${findings.map((f) => `${f.line}:${f.column} ${f.construct}`).join(', ')}`).toEqual([]);
    }
  });

  it('every board bundle fits the bundleBytes of its profile (12 KB on nRF52832 boards)', () => {
    for (const b of BOARDS.filter((p) => p.bundleBytes !== undefined)) {
      const size = statSync(join(DIST, `${b.id}.js`)).size;
      expect(size, `${b.id}.js`).toBeLessThanOrEqual(b.bundleBytes!);
    }
  });

  const all = `seal ${VECTORS.seal.length}/${VECTORS.seal.length} ack ${VECTORS.ack.length}/${VECTORS.ack.length} renew ${VECTORS.renew.length}/${VECTORS.renew.length}`;

  it('the minified crypto self-test passes every vector on all four backends (native-kernel on the interpreter stand-in)', () => {
    const lines = runBundle(SELFTEST, { SEALPOST_VECTORS: VECTORS }, {}, { 'sealpost.krn': kernelImage() });
    expect(lines).toEqual([`SELFTEST plain-js ${all}`, `SELFTEST native-aes ${all}`, `SELFTEST native-ccm ${all}`, `SELFTEST native-kernel ${all}`, 'SELFTEST PASS']);
  });

  it('on a build without AES builtins (MDBT42Q, Pixl.js) it runs plain-js and the kernel, and says the others are unavailable', () => {
    const lines = runBundle(SELFTEST, { SEALPOST_VECTORS: VECTORS }, { aes: false, ccm: false }, { 'sealpost.krn': kernelImage() });
    expect(lines.slice(1)).toEqual(['SELFTEST native-aes unavailable on this build', 'SELFTEST native-ccm unavailable on this build', `SELFTEST native-kernel ${all}`, 'SELFTEST PASS']);
  });

  it('without the kernel file it says native-kernel is unavailable; with a damaged one it fails', () => {
    expect(runBundle(SELFTEST, { SEALPOST_VECTORS: VECTORS }).slice(3)).toEqual(['SELFTEST native-kernel unavailable (no sealpost.krn in Storage)', 'SELFTEST PASS']);
    const damaged = kernelImage();
    damaged[1] ^= 4;
    expect(runBundle(SELFTEST, { SEALPOST_VECTORS: VECTORS }, {}, { 'sealpost.krn': damaged }).slice(3)).toEqual([
      expect.stringMatching(/^SELFTEST native-kernel kernel sealpost.krn is damaged or not this firmware's/),
      'SELFTEST FAIL',
    ]);
  });

  it('reports FAIL when a vector is wrong', () => {
    const seal = VECTORS.seal.map((v, i) => (i === 3 ? { ...v, frame: v.frame.replace(/.$/, (c) => (c === '0' ? '1' : '0')) } : v));
    const lines = runBundle(SELFTEST, { SEALPOST_VECTORS: { seal, ack: VECTORS.ack } });
    expect(lines).toContain('SELFTEST plain-js seal vector 3 differs');
    expect(lines.at(-1)).toBe('SELFTEST FAIL');
  });

  // Opt-in: the real interpreter, built by hand outside the repo (README).
  it.runIf(process.env.ESPRUINO_BIN)('passes on the real Espruino interpreter ($ESPRUINO_BIN)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealpost-espruino-'));
    const file = join(dir, 'selftest.js');
    writeFileSync(file, `var SEALPOST_VECTORS=${JSON.stringify(VECTORS)};\n${readFileSync(SELFTEST, 'utf8')}`);
    const out = execFileSync(process.env.ESPRUINO_BIN!, [file], { cwd: dir, input: '', encoding: 'utf8', timeout: 120_000 });
    const lines = out.replace(/\r/g, '').split('\n').filter((l) => l.startsWith('SELFTEST'));
    expect(lines.at(-1)).toBe('SELFTEST PASS');
    expect(lines).toHaveLength(5);
    expect(lines).toContain('SELFTEST native-kernel unavailable (no sealpost.krn in Storage)');
  });
});
