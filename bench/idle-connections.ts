// Connection-flood benchmark (issue #10, item 5): does the server keep
// serving good uploads while 20,000 idle or half-sent connections are open?
//
//   npx tsx bench/idle-connections.ts [--connections 20000] [--addresses 200]
//       [--baseline 10] [--seconds 60] [--rate 20] [--batch 50] [--nofile 65536]
//
// Three processes on loopback only (127.0.0.0/8):
// - the server, `node bin/sealpost.mjs server` (the production entry, default
//   timeouts and caps, rate limits on, SQLite), started under
//   `prlimit --nofile=N:N` so its descriptor limit is not what decides;
// - the attacker (this file with --role attacker), under the same prlimit: it
//   holds `connections` sockets from `addresses` source addresses
//   127.0.0.2 .. (connections/addresses each, below the per-address cap of
//   256, so that cap is not what saves the server): a third idle, a third
//   sending headers a byte every 5 s (slowloris), a third sending a body a
//   byte every 5 s after complete headers; every socket the server closes is
//   opened again, so the pressure stays;
// - this process: posts good uploads from 127.0.0.1 at `rate` requests per
//   second (open loop, `batch` sealed frames each, each answer and ack
//   checked), first `baseline` seconds without the attack, then `seconds`
//   with it; samples the server's RSS and open descriptors each second.
//
// Output: good-upload latency p50/p99 and errors without and with the flood,
// the connections the attacker held, 408s it received, server RSS and fds.
// Needs root for prlimit beyond the hard limit (otherwise runs with the
// current limit and says so).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { verifyAck, type ProvisionedDevice } from '../protocol/index.js';
import { benchDb, freePort, importFleet, pct, post, startServer, stopServer, uploadBody, writeConfig, type BenchServer } from './harness.js';

const SELF = new URL(import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    port: { type: 'string' },
    connections: { type: 'string', default: '20000' },
    addresses: { type: 'string', default: '200' },
    baseline: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string', default: '20' },
    batch: { type: 'string', default: '50' },
    nofile: { type: 'string', default: '65536' },
    attackers: { type: 'string', default: '2' },
    index: { type: 'string', default: '0' },
  },
  strict: true,
});
const CONNECTIONS = Number(values.connections);
const ADDRESSES = Number(values.addresses);
const NOFILE = Number(values.nofile);

// ---- attacker ----------------------------------------------------------------

async function attacker(port: number): Promise<void> {
  const stats = { open: 0, opened: 0, closed: 0, got408: 0, refused: 0, errors: 0 };
  const slow = new Set<Socket>();
  let inFlight = 0;
  const queue: number[] = [];
  const kindOf = (i: number) => i % 3; // 0 idle, 1 slow headers, 2 slow body
  const open = (i: number) => {
    inFlight++;
    const localAddress = `127.0.0.${2 + (i % ADDRESSES)}`;
    const s = connect({ host: '127.0.0.1', port, localAddress });
    let connected = false;
    let got = '';
    let at = 0;
    s.on('connect', () => {
      connected = true;
      at = performance.now();
      inFlight--;
      stats.open++;
      stats.opened++;
      const k = kindOf(i);
      if (k === 1) s.write('POST /v1/uplink HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      if (k === 2) s.write('POST /v1/uplink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"relay":');
      if (k !== 0) slow.add(s);
      pump();
    });
    s.on('data', (c) => (got += String(c)));
    s.on('error', () => undefined);
    s.on('close', () => {
      slow.delete(s);
      if (connected) {
        stats.open--;
        stats.closed++;
        if (got.startsWith('HTTP/1.1 408')) stats.got408++;
        else if (got === '' && performance.now() - at < 1000) stats.refused++;
      } else {
        inFlight--;
        stats.errors++;
      }
      // Open it again, as an attacker would, after a short pause.
      setTimeout(() => {
        queue.push(i);
        pump();
      }, connected ? 50 : 500);
    });
  };
  const pump = () => {
    while (inFlight < 500 && queue.length > 0) open(queue.shift()!);
  };
  // Attacker process `index` of `attackers` opens every attackers-th connection.
  const step = Number(values.attackers);
  for (let i = Number(values.index); i < CONNECTIONS; i += step) queue.push(i);
  pump();
  setInterval(() => {
    for (const s of slow) if (s.writable) s.write(s.bytesWritten % 2 ? 'a' : 'X');
  }, 5000);
  setInterval(() => process.stdout.write(`${JSON.stringify(stats)}\n`), 1000);
}

// ---- main --------------------------------------------------------------------

interface Job {
  device: ProvisionedDevice;
  body: string;
  last: number;
}

function makeJobs(devices: ProvisionedDevice[], rounds: number, batch: number): Job[] {
  const t0 = Date.now() - 86_400_000;
  const jobs: Job[] = [];
  for (let r = 0; r < rounds; r++) for (const device of devices) jobs.push({ device, ...uploadBody(device, r, batch, 'good-relay', t0) });
  return jobs;
}

/** Posts a good upload; the relay gives up after 20 s (relay/settings.ts requestTimeoutMs). */
const upload = (agent: Agent, port: number, job: Job) => post(agent, port, job.body, { timeoutMs: 20_000 });

/** Throws unless the answer accepted every frame with an ack the device verifies. */
function checkAnswer(job: Job, r: { status: number; text: string }, batch: number): void {
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
  const d = JSON.parse(r.text).devices[0];
  if (d.accepted !== batch || d.ack === null || verifyAck(job.device, new Uint8Array(Buffer.from(d.ack, 'base64'))) < 1) {
    throw new Error(`unexpected answer for ${job.device.serial}: ${r.text.slice(0, 200)}`);
  }
}

interface Phase {
  sent: number;
  /** Of answered requests. */
  latencies: number[];
  errors: string[];
}

/** Open loop: a request every 1000/rate ms for `seconds`, whatever the answers do. */
async function goodUploads(port: number, jobs: Job[], seconds: number, rate: number, batch: number): Promise<Phase> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const phase: Phase = { sent: 0, latencies: [], errors: [] };
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let n = 0; n < seconds * rate; n++) {
    const due = start + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const job = jobs.shift();
    if (!job) throw new Error('ran out of prepared requests');
    phase.sent++;
    pending.push(
      (async () => {
        const t = performance.now();
        try {
          const r = await upload(agent, port, job);
          phase.latencies.push(performance.now() - t);
          checkAnswer(job, r, batch);
        } catch (e) {
          phase.errors.push((e as Error).message);
        }
      })(),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return phase;
}

/** One upload a second, each on a new connection. */
async function freshUploads(port: number, jobs: Job[], seconds: number, batch: number): Promise<Phase> {
  const phase: Phase = { sent: 0, latencies: [], errors: [] };
  for (let n = 0; n < seconds; n++) {
    const t = performance.now();
    const job = jobs.shift();
    if (!job) throw new Error('ran out of prepared requests');
    phase.sent++;
    try {
      const agent = new Agent({ keepAlive: false });
      const r = await upload(agent, port, job);
      phase.latencies.push(performance.now() - t);
      checkAnswer(job, r, batch);
    } catch (e) {
      phase.errors.push((e as Error).message);
    }
    const wait = t + 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return phase;
}

/** `prlimit --nofile=N:N --` to run node under, when it works here (root, or N within the hard limit), else nothing. */
function limitWrapper(): { wrapper: string[]; note: string } {
  const wrapper = ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'];
  const probe = spawnSync(wrapper[0]!, [...wrapper.slice(1), process.execPath, '-e', '0']);
  if (probe.status === 0) return { wrapper, note: `RLIMIT_NOFILE ${NOFILE} (prlimit)` };
  return { wrapper: [], note: `RLIMIT_NOFILE unchanged at ${fileDescriptorLimitText()} (prlimit could not raise it: needs CAP_SYS_RESOURCE)` };
}

const fileDescriptorLimitText = () => /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'unknown';

function procStatus(pid: number): { rssMb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
  return { rssMb: rss, fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function main(): Promise<void> {
  const baseline = Number(values.baseline);
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const batch = Number(values.batch);
  const wrap = limitWrapper();
  console.log(
    `sealpost idle-connections bench: ${CONNECTIONS} attack connections from ${ADDRESSES} addresses (${Math.ceil(CONNECTIONS / ADDRESSES)} each), ` +
      `good uploads ${rate}/s of ${batch} frames, ${baseline} s baseline + ${seconds} s under attack, ${wrap.note}, ${cpus().length} CPUs, node ${process.version}`,
  );
  const bench = benchDb('sqlite');
  let server: BenchServer | undefined;
  const attack: ChildProcess[] = [];
  try {
    const { devices, keyFile } = await importFleet(bench, 100, { serialPrefix: 'SP-I', batch: 'IDLE' });
    const port = await freePort();
    // Defaults for everything at the edge: timeouts, caps, rate limits.
    const config = writeConfig(bench, { db: bench.db, listen: `127.0.0.1:${port}`, ingest_keys: [keyFile], log_level: 'warn' });
    const good = devices.slice(0, 90);
    const jobs = makeJobs(good, Math.ceil(((baseline + seconds) * rate) / good.length) + 1, batch);
    const freshJobs = makeJobs(devices.slice(90), Math.ceil(seconds / 10) + 1, batch);

    server = await startServer(config, port, { wrapper: wrap.wrapper });
    const pid = server.child.pid!;
    const idle = procStatus(pid);

    const base = await goodUploads(port, jobs, baseline, rate, batch);
    const afterBase = procStatus(pid);

    const attackers = Number(values.attackers);
    const states = Array.from({ length: attackers }, () => ({ open: 0, opened: 0, closed: 0, got408: 0, refused: 0, errors: 0 }));
    for (let a = 0; a < attackers; a++) {
      const [command, ...args] = [...wrap.wrapper, process.execPath, '--import', 'tsx', SELF];
      const child = spawn(
        command!,
        [...args, '--role', 'attacker', '--port', String(port), '--connections', String(CONNECTIONS), '--addresses', String(ADDRESSES), '--attackers', String(attackers), '--index', String(a)],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      attack.push(child);
      createInterface({ input: child.stdout! }).on('line', (l) => {
        try {
          states[a] = JSON.parse(l);
        } catch {
          console.log(`attacker: ${l}`);
        }
      });
    }
    const total = () => states.reduce((t, x) => ({ open: t.open + x.open, opened: t.opened + x.opened, closed: t.closed + x.closed, got408: t.got408 + x.got408, refused: t.refused + x.refused, errors: t.errors + x.errors }));
    let last = total();
    const rampStart = performance.now();
    // Until the attack holds what it can (the server's cap may be below CONNECTIONS) and stops growing.
    let prev = -1;
    while (performance.now() - rampStart < 60_000) {
      await new Promise((r) => setTimeout(r, 2000));
      last = total();
      if (last.open >= CONNECTIONS * 0.98 || (last.open > 0 && last.open <= prev)) break;
      prev = last.open;
    }
    const ramp = (performance.now() - rampStart) / 1000;
    console.log(`attack: ${last.open} connections open after ${ramp.toFixed(1)} s`);

    const samples: { rssMb: number; fds: number; open: number }[] = [];
    const sampler = setInterval(() => samples.push({ ...procStatus(pid), open: total().open }), 1000);
    // Meanwhile, once a second, a relay that connects afresh (no keep-alive connection to reuse).
    const fresh = freshUploads(port, freshJobs, seconds, batch);
    const under = await goodUploads(port, jobs, seconds, rate, batch);
    const freshPhase = await fresh;
    clearInterval(sampler);
    const end = total();

    const line = (name: string, p: Phase) =>
      `${name.padEnd(14)} ${p.sent} requests, ` +
      `p50 ${pct(p.latencies, 0.5).toFixed(1)} ms, p99 ${pct(p.latencies, 0.99).toFixed(1)} ms, max ${pct(p.latencies, 1).toFixed(1)} ms, errors ${p.errors.length}`;
    console.log(line('baseline', base));
    console.log(line('under attack', under));
    console.log(line('new connection', freshPhase));
    if (freshPhase.errors.length > 0) console.log(`  first errors: ${[...new Set(freshPhase.errors)].slice(0, 3).join(' | ')}`);
    if (under.errors.length > 0) console.log(`  first errors: ${[...new Set(under.errors)].slice(0, 3).join(' | ')}`);
    const opens = samples.map((s) => s.open);
    console.log(
      `attack held ${Math.min(...opens)} to ${Math.max(...opens)} connections during the measurement (${end.opened} opened in all, ` +
        `${end.got408} closed by the server with 408, ${end.refused} refused unanswered, ${end.errors} connect errors)`,
    );
    console.log(
      `server: RSS ${idle.rssMb.toFixed(0)} MB idle, ${afterBase.rssMb.toFixed(0)} MB after the baseline, ` +
        `max ${Math.max(...samples.map((s) => s.rssMb)).toFixed(0)} MB under attack; open descriptors max ${Math.max(...samples.map((s) => s.fds))}`,
    );
    if (under.errors.length > 0 || freshPhase.errors.length > 0) process.exitCode = 1;
  } finally {
    for (const a of attack) a.kill('SIGKILL');
    await stopServer(server, { killAfterMs: 40_000 });
    await bench.drop();
  }
}

if (values.role === 'attacker') await attacker(Number(values.port));
else await main();
