// A BLE board bundle on a real interpreter bridged to a real `sealpost server` over HTTP (issue #17
// item 5(d)): the fleet made by `keys init` (test/helpers/renewal.ts), one device provisioned from it
// with a format-2 device file, its Storage as the factory writes it (bundle as .bootcde, sealpost.dev,
// sealpost.ctr, sealpost.krn, sealpost.c25, sealpost.hkd, and any further file such as the renewal
// module), the board prelude in .boot0 in its host-driven mode (test/helpers/board-prelude.ts), and a
// relay: the notifications the stand-in radio prints are POSTed as the relays do (the uplink body of
// docs/api.md), and each answer is read with the relays' own parser (relay/answer.ts) and written back
// on the ack characteristic, the ack first, then the other downlink writes (RENEW_ACK, ANNOUNCE parts),
// in order, as relay/acks.ts does. Used by test/firmware/board-server-arm.test.ts.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { MODULE_NAME } from '../../bench/renewal-module.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importManifest } from '../../server/index.js';
import { encodeKeyFile, toHex } from '../../protocol/index.js';
import { COUNTER_LOG_NAME, CURVE_KERNEL_FILE_NAME, DEVICE_FILE_NAME, HKDF_KERNEL_FILE_NAME, KERNEL_FILE_NAME } from '../../protocol/wire/names.js';
import { counterLogImage } from '../../protocol/wire/counter-log.js';
import { readU32BE } from '../../protocol/wire/be.js';
import { parseAnswer, type DeviceAnswer } from '../../relay/answer.js';
import { boardProfile } from '../../boards/index.js';
import { kernelImage } from '../../sim/espruino/kernel.js';
import { curveKernel, hkdfKernel } from './renewal-check.js';
import { makeRenewalFleet, type RenewalFleet } from './renewal.js';
import { format2File } from './sim-renewal.js';
import { body, manifestFor, readToken, testDb, type TestDb } from './server.js';
import { startServerProcess, writeConfig, type ServerProcess } from './server-files.js';
import { flashLikeABoard, startEspruino, type Session } from './espruino-process.js';
import { prelude } from './board-prelude.js';

const DIST = new URL('../../dist/', import.meta.url).pathname;

export interface BoardWorld {
  board: string;
  fleet: RenewalFleet;
  serial: string;
  db: TestDb;
  /** The board's directory: its Storage is ./espruino.flash there. */
  dir: string;
  auth: { authorization: string };
  /** Every counter the board has notified, over all its boots. */
  sent: Set<number>;
  server: ServerProcess | undefined;
  /** Starts (or restarts) `sealpost server` with every ingest key of the fleet so far, and the renewal section once `keys renew` has run. */
  startServer(): Promise<ServerProcess>;
  stopServer(): Promise<void>;
  /** GET on the server with the read token. */
  get(path: string): Promise<any>;
  close(): Promise<void>;
}

/**
 * The renewal module as the build leaves it next to the bundles (dist/sealpost.rnw, the Storage name
 * bench/renewal-module.ts gives it), by Storage name; none while the build makes no such file.
 */
export function renewalModuleFiles(): Record<string, Uint8Array> {
  const file = `${DIST}${MODULE_NAME}`;
  return existsSync(file) ? { [MODULE_NAME]: new Uint8Array(readFileSync(file)) } : {};
}

/**
 * A one-device fleet of `board` imported into a fresh SQLite database, and the board's Storage
 * flashed; `extra`: more Storage files (the renewal module, once the build makes one for boards).
 */
export async function boardWorld(bin: string, board = 'mdbt42q', serial = 'SP-E2E00001', extra: Record<string, Uint8Array> = {}): Promise<BoardWorld> {
  const profile = boardProfile(board);
  const fleet = makeRenewalFleet(1, serial.slice(0, -5));
  const device = fleet.devices[0]!;
  fleet.manifest = manifestFor(fleet, fleet.devices, fleet.batch, profile.frameSize, board);
  const db = await testDb('sqlite');
  const storage = await db.open();
  await importManifest(storage, fleet.manifest, { trusted: [fleet.factory.publicFile], ingestKeyIds: [fleet.ingest.privateFile.id] });
  const auth = (await readToken(storage)).auth;
  await storage.close();
  const factoryPub = join(fleet.dir, 'factory.pub');
  writeFileSync(factoryPub, encodeKeyFile(fleet.factory.publicFile));

  const dir = mkdtempSync(join(tmpdir(), `sealpost-board-server-${board}-`));
  const files: Record<string, Uint8Array> = {
    [DEVICE_FILE_NAME]: format2File(fleet, device, profile.frameSize),
    [COUNTER_LOG_NAME]: counterLogImage(profile.counterStore.kind === 'storage-log' ? profile.counterStore.bytes : 8192),
    [KERNEL_FILE_NAME]: kernelImage(),
    [CURVE_KERNEL_FILE_NAME]: curveKernel(),
    [HKDF_KERNEL_FILE_NAME]: hkdfKernel(),
    '.bootcde': new Uint8Array(readFileSync(`${DIST}${board}.js`)),
    ...extra,
  };
  flashLikeABoard(bin, dir, files, prelude({}, '', { hostDriven: true }));

  const world: BoardWorld = {
    board,
    fleet,
    serial: device.serial,
    db,
    dir,
    auth,
    sent: new Set(),
    server: undefined,
    async startServer() {
      const renewed = fleet.ingestKeyFiles.length > 1;
      const config = writeConfig(fleet.dir, {
        db: db.url,
        listen: '127.0.0.1:0',
        ingest_keys: fleet.ingestKeyFiles,
        trust: [factoryPub],
        log_level: 'info',
        rate_limit: false,
        ...(renewed ? { renewal: { public_key: fleet.paths.renewalPublic, announce: fleet.dir } } : {}),
      });
      world.server = await startServerProcess(config, 60_000);
      return world.server;
    },
    async stopServer() {
      const s = world.server;
      world.server = undefined;
      if (!s) return;
      s.child.kill('SIGTERM');
      await s.exited;
    },
    async get(path) {
      const r = await fetch(`${world.server!.url}${path}`, { headers: auth });
      if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status} ${await r.text()}`);
      return r.json();
    },
    async close() {
      await world.stopServer();
      await db.drop();
    },
  };
  return world;
}

/** One notification the stand-in radio printed, and where in the console output it came. */
export interface Notified {
  line: number;
  counter: number;
  hex: string;
}

/**
 * The interpreter booted from the board's Storage (a power-on) and a relay between it and the world's
 * server: every `everyMs` it uploads the notifications not yet uploaded (kept while the server is
 * down, as a relay's queue does) and writes the answer's downlink back.
 */
export class BoardRelay {
  readonly session: Session;
  readonly notified: Notified[] = [];
  readonly answers: DeviceAnswer[] = [];
  /** Every write on the ack characteristic, hex, in order. */
  readonly writes: string[] = [];
  /** Errors of uploads (server down, ...), as a relay would log them. */
  readonly failures: string[] = [];
  paused = false;
  private queue: Notified[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> = Promise.resolve();
  private answerId = 0;
  private seen = 0;

  constructor(
    readonly bin: string,
    readonly world: BoardWorld,
    readonly everyMs = 400,
  ) {
    this.session = startEspruino(bin, world.dir);
    this.timer = setInterval(() => {
      this.collect();
      if (!this.paused) this.busy = this.busy.then(() => this.upload());
    }, everyMs);
  }

  /** The FRAME lines printed since the last call, into `notified` and the upload queue. */
  collect(): void {
    const lines = this.session.lines;
    for (; this.seen < lines.length; this.seen++) {
      const l = lines[this.seen]!;
      if (!l.startsWith('FRAME ')) continue;
      const hex = l.slice(6);
      const n: Notified = { line: this.seen, counter: readU32BE(Buffer.from(hex, 'hex'), 0), hex };
      this.notified.push(n);
      this.world.sent.add(n.counter);
      this.queue.push(n);
    }
  }

  /** Resolves once every upload under way has ended. */
  settle(): Promise<void> {
    return this.busy;
  }

  private async upload(): Promise<void> {
    const server = this.world.server;
    if (!server || this.queue.length === 0) return;
    const batch = this.queue.splice(0);
    const now = Date.now();
    const group = { serial: this.world.serial, frames: batch.map((n) => ({ frame: new Uint8Array(Buffer.from(n.hex, 'hex')), rx: now })) };
    let answer: DeviceAnswer | undefined;
    try {
      const r = await fetch(`${server.url}/v1/uplink`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body('board-relay', now, [group])) });
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
      const parsed = parseAnswer(await r.json(), [{ serial: group.serial, entries: group.frames }]);
      if (typeof parsed === 'string') throw new Error(`answer ${parsed}`);
      answer = parsed[0];
    } catch (e) {
      this.failures.push((e as Error).message);
      this.queue.unshift(...batch);
      return;
    }
    if (!answer) return;
    this.answers.push(answer);
    for (const w of [...(answer.ack ? [answer.ack] : []), ...answer.extra]) this.write(toHex(w));
  }

  /** A write on the ack characteristic (RADIO_ACK through the stand-in), sent without echo (DLE). */
  write(hex: string): void {
    this.writes.push(hex);
    this.session.send(`\x10SP_WRITE("${hex}")`);
  }

  /** Runs `expr` on the interpreter and resolves with what it printed (one line, no echo). */
  async eval(expr: string, ms = 60_000): Promise<string> {
    const id = `Q${++this.answerId}`;
    this.session.send(`\x10print("${id} "+(${expr}))`);
    const line = await this.session.waitFor((l) => l.startsWith(`${id} `), ms);
    return line.slice(id.length + 1);
  }

  /** process.memory().usage (after a collection), in variables. */
  async variables(): Promise<number> {
    return Number(await this.eval('process.memory().usage'));
  }

  /** The highest counter the server has acked to the device so far. */
  get acked(): number {
    return this.answers.reduce((m, a) => Math.max(m, a.ackN), 0);
  }

  /** Polls `pred` until it holds, or fails after `ms` with the console's last lines. */
  async until(what: string, pred: () => boolean | Promise<boolean>, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while ((this.collect(), !(await pred()))) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; failures ${JSON.stringify(this.failures.slice(-3))}; console:\n${this.session.lines.slice(-40).join('\n')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * A disconnect and a new connection with notifications on (SP_RELINK of the prelude); resolves with
   * the index of its DISCONNECT line in the console output: what follows was sent on the new link.
   */
  async relink(): Promise<number> {
    const from = this.session.lines.length;
    this.session.send('\x10SP_RELINK()');
    await this.session.waitFor((l) => l === 'LINKED' && this.session.lines.lastIndexOf('LINKED') >= from, 60_000);
    return this.session.lines.indexOf('DISCONNECT', from);
  }

  /** Stops uploading and kills the interpreter (a power loss). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.busy;
    await this.session.stop();
  }
}
