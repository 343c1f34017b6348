// Stand-ins for unit tests of the relay core (relay/): a device link that the test
// drives by hand, frames that carry only a counter (the relay never looks
// further), and a scripted server that answers like POST /v1/uplink.
import type { DeviceLink, UploadResponse, UplinkRequest } from '../../relay/index.js';

export function frame(counter: number, size = 20, fill = 0xab): Uint8Array {
  const f = new Uint8Array(size).fill(fill);
  new DataView(f.buffer).setUint32(0, counter);
  return f;
}

/** An ack for N: 4 bytes of N and 8 bytes the relay cannot check. */
export function ackFor(n: number): Uint8Array {
  const a = new Uint8Array(12).fill(0x5a);
  new DataView(a.buffer).setUint32(0, n);
  return a;
}

export const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
export const counterOfAck = (a: Uint8Array): number => new DataView(a.buffer, a.byteOffset).getUint32(0);

export class FakeLink implements DeviceLink {
  readonly acks: Uint8Array[] = [];
  open = true;
  disconnects = 0;
  #cb: ((f: Uint8Array) => void) | undefined;
  #gone: (() => void) | undefined;

  constructor(
    readonly serial: string,
    readonly frameSize = 20,
    readonly infoText = JSON.stringify({ serial, v: 1, f: frameSize, b: 'sim', fw: '0.1.0' }),
  ) {}

  info(): string {
    return this.infoText;
  }
  onFrame(cb: (f: Uint8Array) => void): void {
    this.#cb = cb;
  }
  onDisconnect(cb: () => void): void {
    this.#gone = cb;
  }
  write(writes: readonly Uint8Array[]): void {
    if (!this.open) throw new Error('not connected');
    for (const w of writes) this.acks.push(w.slice());
  }
  disconnect(): void {
    if (!this.open) return;
    this.open = false;
    this.disconnects++;
  }
  connected(): boolean {
    return this.open;
  }
  /** The device notifies one frame. */
  send(...frames: Uint8Array[]): void {
    if (!this.open) throw new Error('link is down');
    for (const f of frames) this.#cb?.(f);
  }
  /** The link drops from the device side. */
  drop(): void {
    this.open = false;
    this.#gone?.();
  }
  lastAck(): number | undefined {
    const a = this.acks[this.acks.length - 1];
    return a ? counterOfAck(a) : undefined;
  }
}

export function response(status: number, body: unknown, headers: Record<string, string> = {}): UploadResponse {
  return {
    status,
    headers: { get: (name: string) => headers[name.toLowerCase()] ?? null },
    json: async () => (typeof body === 'string' ? JSON.parse(body) : body),
  };
}

/**
 * A server model that stores by (serial, counter) and acks the highest N
 * with 1..N stored. `script` may override the answer to any request.
 */
export class FakeServer {
  readonly requests: UplinkRequest[] = [];
  readonly stored = new Map<string, Set<number>>();
  script: ((body: UplinkRequest, n: number) => UploadResponse | Promise<UploadResponse> | undefined) | undefined;

  upload = async (body: UplinkRequest): Promise<UploadResponse> => {
    this.requests.push(structuredClone(body));
    const scripted = await this.script?.(body, this.requests.length);
    if (scripted) return scripted;
    return response(200, this.answer(body));
  };

  answer(body: UplinkRequest) {
    return {
      devices: body.devices.map((d) => {
        const set = this.stored.get(d.serial) ?? new Set<number>();
        this.stored.set(d.serial, set);
        let accepted = 0;
        let duplicates = 0;
        for (const f of d.frames) {
          const c = Buffer.from(f.data, 'base64').readUInt32BE(0);
          if (set.has(c)) duplicates++;
          else {
            set.add(c);
            accepted++;
          }
        }
        let n = 0;
        while (set.has(n + 1)) n++;
        return { serial: d.serial, ack: n > 0 ? b64(ackFor(n)) : null, accepted, duplicates, rejected: [] as { index: number; reason: string }[] };
      }),
    };
  }

  frames(): number {
    return this.requests.reduce((s, r) => s + r.devices.reduce((t, d) => t + d.frames.length, 0), 0);
  }
}
