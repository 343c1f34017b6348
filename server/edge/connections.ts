// Connection limits (issue #10, item 5; docs/server.md, "Connection limits").
//
// Measured before: 21,000 half-sent requests exhausted the server's file
// descriptors, and slow headers were held 60 s, slow bodies 86 s, although
// docs/api.md promised 408 after 30 s. Node checks headersTimeout and
// requestTimeout only every `connectionsCheckingInterval` (30 s by default,
// lib/_http_server.js), so a limit of 30 s fired at 30 to 60 s; and fastify
// sets no headersTimeout of its own, so Node's 60 s applied. Here the server
// is made with every timeout explicit and the check every second at most,
// and three caps bound what a client can hold open:
//
// - per source address (IPv6: per /64), counted on the server's
//   'connection' event; an excess socket is destroyed at once, before TLS or
//   HTTP parsing cost anything;
// - in all, below the process's descriptor limit so the database, logs and
//   key files always get one: at the cap the connection with the oldest
//   useful activity is closed for the newcomer (ConnectionGuard), and
//   `server.maxConnections` a little above it is the backstop (Node closes
//   the accepted descriptor before a JS socket exists);
// - per keep-alive connection: keepAliveTimeout and maxRequestsPerSocket.
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerConfig } from '../config.js';
import { addressKey } from './rate-limit.js';

/** Descriptors kept for everything that is not a client socket (database, WAL, logs, key files, pools). */
const FD_RESERVE = 256;
/** The automatic cap stops here: an idle or half-sent connection costs the server 12 to 25 KB (bench/idle-connections.ts), so about 1 GB at the cap. */
const AUTO_MAX = 50_000;
/** Without a readable limit (not Linux). */
const FALLBACK_MAX = 10_000;

/**
 * The soft RLIMIT_NOFILE of this process from /proc/self/limits, or null
 * where that file does not exist. Node raises the soft limit to the hard one
 * at start (src/node.cc, PlatformInit), so this is what the server can use.
 */
export function fileDescriptorLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | null {
  let text: string;
  try {
    text = read();
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m) return null;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

export interface ConnectionCap {
  max: number;
  fdLimit: number | null;
  /** Set when the configured cap leaves too few descriptors. */
  warning?: string;
}

/** The global cap: as configured, or automatic from the descriptor limit. */
export function connectionCap(configured: number | null, fdLimit: number | null): ConnectionCap {
  if (configured !== null) {
    if (fdLimit !== null && configured > fdLimit - FD_RESERVE) {
      return {
        max: configured,
        fdLimit,
        warning:
          `connections.max (${configured}) is above the file-descriptor limit (${fdLimit}) minus ${FD_RESERVE} for the database and logs: ` +
          `a connection flood can leave the server unable to open files. Lower connections.max, or raise the limit (ulimit -n, LimitNOFILE= in systemd)`,
      };
    }
    return { max: configured, fdLimit };
  }
  if (fdLimit === null) return { max: FALLBACK_MAX, fdLimit };
  return { max: Math.max(16, Math.min(AUTO_MAX, fdLimit - Math.max(FD_RESERVE, Math.floor(fdLimit / 10)))), fdLimit };
}

/** Sockets above connections.max that Node itself closes unaccepted, should nothing be evictable. */
const BACKSTOP = 64;

/**
 * Counts connections per source address and refuses the excess; one per
 * buildServer, shared by every listening socket.
 *
 * At the global cap a new connection is not refused: the connection whose
 * last completed response is oldest, or that never completed one, is closed
 * to make room. A flood of idle or half-sent connections from many addresses
 * (a botnet, or carrier-grade NAT on the attacker's side) would otherwise
 * keep every slot and shut new relays out for as long as it lasts; with
 * eviction the flood loses its oldest sockets to every newcomer, while a
 * relay that keeps getting answers stays at the young end. (The same idea as
 * Apache's mod_reqtimeout and nginx's reset of timed-out connections, made
 * to act at the cap instead of after a fixed time.)
 */
export class ConnectionGuard {
  private readonly open = new Map<string, number>();
  /** Every open socket by "address|port", oldest useful activity first (Map keeps insertion order). */
  private readonly byActivity = new Map<string, Socket>();
  /** Connections refused or closed since start, by cause. */
  readonly refused = { perAddress: 0, evicted: 0, total: 0 };
  private readonly logged = { perAddress: { at: -Infinity, count: 0 }, evicted: { at: -Infinity, count: 0 }, total: { at: -Infinity, count: 0 } };

  constructor(
    readonly max: number,
    readonly perAddress: number | null,
    private readonly log: () => FastifyBaseLogger | undefined,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Open connections from one address key. */
  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  /** Open connections over every listening socket. */
  get size(): number {
    return this.byActivity.size;
  }

  attach(server: Server): void {
    server.maxConnections = this.max + BACKSTOP;
    server.on('drop', (data?: { remoteAddress?: string }) => this.note('total', data?.remoteAddress ?? 'unknown'));
    const cap = this.perAddress;
    server.on('connection', (socket: Socket) => {
      const key = addressKey(socket.remoteAddress ?? 'unknown');
      if (cap !== null) {
        const n = this.open.get(key) ?? 0;
        if (n >= cap) {
          socket.destroy();
          this.note('perAddress', key);
          return;
        }
        this.open.set(key, n + 1);
      }
      // The raw socket and, under TLS, the TLSSocket of a request share this id.
      const id = `${socket.remoteAddress}|${socket.remotePort}`;
      this.byActivity.set(id, socket);
      socket.once('close', () => {
        if (this.byActivity.get(id) === socket) this.byActivity.delete(id);
        if (cap === null) return;
        const left = (this.open.get(key) ?? 1) - 1;
        if (left <= 0) this.open.delete(key);
        else this.open.set(key, left);
      });
      while (this.byActivity.size > this.max) {
        const [oldId, oldest] = this.byActivity.entries().next().value as [string, Socket];
        this.byActivity.delete(oldId);
        oldest.destroy();
        this.note('evicted', oldest.remoteAddress ?? 'unknown');
      }
    });
    // A completed response moves its connection to the young end.
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const id = `${req.socket.remoteAddress}|${req.socket.remotePort}`;
      res.once('finish', () => {
        const s = this.byActivity.get(id);
        if (s === undefined) return;
        this.byActivity.delete(id);
        this.byActivity.set(id, s);
      });
    });
  }

  /** Counts a refusal; logs the first at once, then at most one line a minute per cause, with the count. */
  private note(cause: 'perAddress' | 'evicted' | 'total', address: string): void {
    this.refused[cause]++;
    const l = this.logged[cause];
    l.count++;
    const now = this.clock();
    if (now - l.at < 60_000) return;
    const why = {
      perAddress: `connection refused: ${address} has ${this.perAddress} connections open (connections.per_address)`,
      evicted: `connection closed to make room: ${this.max} connections open (connections.max); the one with the oldest activity goes`,
      total: `connection refused: more than ${this.max + BACKSTOP} connections open (connections.max)`,
    }[cause];
    this.log()?.warn({ refused: l.count, refusedTotal: this.refused[cause] }, why);
    l.at = now;
    l.count = 0;
  }
}

/**
 * fastify's clientErrorHandler: a late request gets 408 with the usual error
 * body naming the limits; other client errors as fastify answers them (400,
 * 431), then the socket is closed. Runs with `this` = the fastify instance.
 */
export function clientErrorHandler(config: ServerConfig) {
  const h = config.timeouts.headersMs / 1000;
  const r = config.timeouts.requestMs / 1000;
  const timeout = JSON.stringify({
    error: 'Request Timeout',
    message: `the request was not received in time: its headers must arrive within ${h} s (timeouts.headers_s) and all of it within ${r} s (timeouts.request_s); send it again`,
    statusCode: 408,
  });
  return function (this: { log: FastifyBaseLogger }, err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let head: string;
    let body: string;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      head = '408 Request Timeout';
      body = timeout;
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      head = '431 Request Header Fields Too Large';
      body = '{"error":"Request Header Fields Too Large","message":"the request headers are larger than the server accepts (16 KB)","statusCode":431}';
    } else {
      head = '400 Bad Request';
      body = '{"error":"Bad Request","message":"the request is not valid HTTP/1.1","statusCode":400}';
    }
    this.log.trace({ err }, 'client error');
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${head}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    }
    socket.destroy();
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A fastify serverFactory: an HTTP or HTTPS server with the configured
 * timeouts and the guard's caps. Node answers a request whose headers or
 * whole body are late with a bare `408 Request Timeout` and closes the
 * connection.
 */
export function makeServerFactory(config: ServerConfig, guard: ConnectionGuard, tls?: { cert: string | Buffer; key: string | Buffer }) {
  const { headersMs, requestMs, keepAliveMs } = config.timeouts;
  const options = {
    headersTimeout: headersMs,
    requestTimeout: requestMs,
    // A late request is noticed at most this long after its limit (Node's default is 30 s).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersMs / 4))),
  };
  return (handler: Handler): Server => {
    // A TLS handshake comes before any header: bound it like the headers
    // (tls.createServer's handshakeTimeout is 120 s by default).
    const server = tls ? createHttps({ ...tls, ...options, handshakeTimeout: headersMs }, handler) : createHttp(options, handler);
    server.keepAliveTimeout = keepAliveMs;
    server.maxRequestsPerSocket = config.connections.requestsPerSocket;
    guard.attach(server);
    return server;
  };
}
