// The device program: boot, sample, seal, keep, send, free on valid acks.
// It sees only the Hal it is given (style.md rule 1) and the board profile
// (rule 3); hal/espruino and hal/sim provide the two implementations.
//
// Boot: read the device file, open the counter store (one boot = one durable
// record), print "sealpost <serial> kcv <hex> fw <version>" for the factory's
// check, seal a boot anchor, start the radio, close the console.
// Frames leave in counter order through the outbox; see firmware/outbox.ts
// for loss accounting and docs/firmware.md for the delivery rules.
import { ANCHOR_BOOT, ANCHOR_CONNECT, ANCHOR_PERIODIC, channelId, encodeAnchor, encodeGap, encodeSample, type Reading } from '../protocol/wire/codec.js';
import { DEVICE_FILE_NAME } from '../protocol/wire/names.js';
import { PROTOCOL_VERSION } from '../protocol/wire/constants.js';
import { NAME_PREFIX } from '../protocol/wire/ble.js';
import { toHex } from '../protocol/wire/hex.js';
import type { DeviceSettings } from '../boards/types.js';
import { RADIO_ACK, RADIO_CONNECT, RADIO_SUBSCRIBE, type Ccm, type CounterSource, type CryptoHal, type Hal, type RenewalHal, type Sensor } from '../hal/types.js';
import { readU32BE } from '../protocol/wire/be.js';
import { createOutbox, gapCount, offsetOf, type Outbox } from './outbox.js';
import type { Renewal, RenewalContext, RenewalModule, RenewalRecords } from './renewal.js';
import { ackCounter, createSealer, type Sealer } from './sealer.js';
import { readIdentity, type IdentityResult } from './identity.js';
import { FIRMWARE_VERSION } from './version.js';
import { RENEWAL } from '../hal/features.js';

/** Console stays open this long after boot so the factory can read the boot line. */
export const CONSOLE_GRACE_MS = 3000;
/**
 * Fallback only: sending starts when the central enables notifications (the
 * frames CCCD write, onWriteDesc); a central that never writes the
 * descriptor gets its first notification this long after connecting.
 */
export const CONNECT_SETTLE_MS = 1500;
/** With everything sent and no ack for this long, send the unacknowledged frames again. */
export const RESEND_AFTER_MS = 4000;
/**
 * Slowest pacing. Every resend (the radio dropped something) doubles the gap
 * between notifications, up to this; every ack that frees frames takes a
 * quarter of it back, down to the profile's interval.
 */
export const MAX_NOTIFY_INTERVAL_MS = 1000;
const MAX_GAP_COUNT = 16777215;
// onTimer's argument: which timer fired.
const TIMER_PUMP = 0;
const TIMER_RESEND = 1;
const TIMER_SAMPLE = 2;
const TIMER_ANCHOR = 3;
const TIMER_LOCK = 4;

export interface DeviceStatus {
  serial: string;
  boot: number;
  sealed: number;
  outbox: number;
  dropped: number;
  acked: number;
  connected: boolean;
  stopped: string;
}

export interface Device {
  status(): DeviceStatus;
  /** Takes one set of readings now (the sampling timer calls this). */
  sample(): void;
  outbox: Outbox;
}

export function startDevice(hal: Hal, profile: DeviceSettings): Device | undefined {
  // got, id, ccm: boot-only, dropped below like hal (the closures keep this
  // scope alive; the identity object alone holds about 20 variables).
  let got: IdentityResult | undefined = readIdentity(hal.readFile(DEVICE_FILE_NAME), hal.crc32);
  let id = got.identity;
  if (!id) {
    hal.console.print('sealpost: ' + got.problem);
    return undefined;
  }
  got = undefined;
  const serial = id.serial;
  // Before the counter store records a boot: a backend that cannot run (the native-kernel
  // backend's file missing, damaged or failing its self-test) seals nothing and says why.
  let kcv: Uint8Array;
  let ccm: Ccm;
  try {
    kcv = hal.crypto.encryptBlock(id.sealKey, new Uint8Array(16));
    ccm = hal.crypto.ccm(id.sealKey, id.frameSize - 12);
  } catch (e) {
    hal.console.print('sealpost ' + serial + ': crypto unusable: ' + (e as Error).message);
    return undefined;
  }
  // Key renewal (firmware/renewal.ts; RENEWAL, hal/features.ts): a
  // format-2 device on a board that can renew reads the renewal records of
  // its counter log at boot; after a COMMIT it seals under that epoch's keys.
  let rh: RenewalHal | undefined;
  let records: RenewalRecords | undefined;
  if (RENEWAL) rh = hal.renewal;
  let counters: CounterSource;
  try {
    counters =
      RENEWAL && rh && id.renewal
        ? hal.counters(profile.counterBlock, function (read: (slot: number) => Uint8Array, used: number): Uint8Array | undefined {
            records = (hal.renewal!.load() as RenewalModule).scan(read, used, hal.crc32);
            return records.carry;
          })
        : hal.counters(profile.counterBlock);
  } catch (e) {
    hal.console.print('sealpost ' + serial + ': counter store unusable: ' + (e as Error).message);
    return undefined;
  }
  if (RENEWAL && records && records.keys) {
    try {
      ccm = hal.crypto.ccm(records.keys.subarray(36, 52), id.frameSize - 12);
    } catch (e) {
      hal.console.print('sealpost ' + serial + ': crypto unusable: ' + (e as Error).message);
      return undefined;
    }
  }
  const frameSize = id.frameSize;
  hal.console.print('sealpost ' + serial + ' kcv ' + toHex(kcv, 3) + ' fw ' + FIRMWARE_VERSION);
  kcv = undefined as unknown as Uint8Array; // boot-only, like hal below

  const clock = hal.clock;
  const radio = hal.radio;
  const cons = hal.console;
  // Not inlined by terser (used once, it would be): a function made inside
  // a function inlined here keeps a copied array of both scopes on the
  // interpreter, about 3 variables per closure (docs/firmware.md).
  const outbox = /*@__NOINLINE__*/ createOutbox(profile.outboxFrames, frameSize);
  let sealer: Sealer = /*@__NOINLINE__*/ createSealer({ ccm: ccm, nonceSalt: RENEWAL && records && records.keys ? records.keys.subarray(52, 60) : id.nonceSalt, frameSize: frameSize, ring: outbox.ring });
  ccm = undefined as unknown as Ccm;
  // The old sealer checks acks below c_e after a renewal commits, until no frame below c_e is left.
  let oldSealer: Sealer | undefined;
  let commitAt = 0;
  let ren: Renewal | undefined;
  let rctx: RenewalContext | undefined;
  if (RENEWAL && rh && id.renewal) {
    const hc: CryptoHal = hal.crypto;
    rctx = {
      serial: serial,
      frameSize: frameSize,
      fleetId: id.renewal.subarray(0, 4),
      renewalKey: id.renewal.subarray(4, 36),
      epoch: records!.epoch,
      chain: records!.keys ? records!.keys.subarray(60, 92) : id.renewal.subarray(36, 68),
      records: records!,
      crypto: rh.crypto(),
      ccm: function (key: Uint8Array, max: number): Ccm {
        return hc.ccm(key, max);
      },
      crc32: hal.crc32,
      counters: counters,
      ring: outbox.ring,
      seal: function (msg: Uint8Array): number {
        pt.set(msg);
        return seal(0) ? readU32BE(outbox.ring, offsetOf(outbox, outbox.count - 1)) : 0;
      },
      held: function (c: number): boolean {
        return outbox.count > 0 && readU32BE(outbox.ring, offsetOf(outbox, 0)) <= c;
      },
      use: function (s: Sealer, c: number): void {
        oldSealer = sealer;
        sealer = s;
        commitAt = c;
      },
      print: function (line: string): void {
        cons.print(line);
      },
    };
  }
  let renewalTold = false;
  records = undefined;
  id = undefined;
  // The profile's sensors in order, as objects: neither the id list nor the
  // HAL's table by id stays alive (about 19 variables, docs/firmware.md
  // "Third pass"). A sensor the HAL lacks is skipped, as it always was.
  // In a callback, so its loop names are not names of this scope, kept for good (docs/firmware.md,
  // "Fifth pass").
  const sensors: Sensor[] = [];
  profile.sensors.forEach(function (id) {
    const sensor = hal.sensors[id];
    if (sensor) sensors.push(sensor);
  });
  // Every closure below keeps this function's whole scope alive on the
  // interpreter, parameters included: drop the HAL object, whose device-file
  // reader, CRC, crypto factory and counter opener are needed only at boot
  // (about 50 variables, docs/firmware.md "Memory on the interpreter").
  hal = undefined as unknown as Hal;
  // The same for the profile: the closures need four of its settings.
  const minInterval = profile.notifyIntervalMs;
  const sampleMs = profile.samplePeriodMs;
  const anchorMs = profile.anchorPeriodMs;
  const pt = new Uint8Array(frameSize - 12);
  const boot = counters.boot;
  let sealed = 0;
  // The last counter sealed on this power-up (renewal builds): a renewal's PENDING and COMMIT records
  // move the counters to a fresh block, and seal() reports the counters skipped there as a gap, or
  // the server's ack N could never pass them (docs/decisions.md, "Key renewal under chaos"). A skip
  // report that dropped a frame left the outbox full: the frame's own push drops one too and reports.
  // The frame waiting in pt is kept in a new Uint8Array, not pt.slice(): on Espruino 2v29 (Linux
  // builds, seen) a typed array's slice() is a plain Array.
  let lastSealed = 0;
  let acked = 0;
  let stopped = '';
  let cursor = 0;
  let interval = minInterval;
  let lastRewind = 0;
  let reporting = false;
  // The central's last CCCD write on this connection: 0 none yet, 1 on, 2 off.
  let subscription = 0;
  let pumpTimer: unknown;
  let resendTimer: unknown;

  function seal(gapFirst: number): boolean {
    if (stopped) return false;
    let counter: number;
    try {
      counter = counters.next();
      if (RENEWAL && lastSealed !== 0 && counter !== lastSealed + 1) {
        const msg = new Uint8Array(pt);
        encodeGap(pt, lastSealed + 1, counter - lastSealed - 1);
        const d = outbox.dropped;
        const g = outbox.push(counter, lastSealed + 1);
        if (outbox.dropped !== d && cursor > 0) cursor--;
        sealer.sealInto(counter, pt, g);
        sealed++;
        pt.set(msg);
        counter = counters.next();
      }
    } catch (e) {
      stopped = (e as Error).message;
      cons.print('sealpost ' + serial + ': stopped sealing: ' + stopped);
      return false;
    }
    if (RENEWAL) lastSealed = counter;
    const dropped = outbox.dropped;
    const at = outbox.push(counter, gapFirst);
    if (outbox.dropped !== dropped && cursor > 0) cursor--;
    sealer.sealInto(counter, pt, at);
    sealed++;
    if (outbox.dropped !== dropped && radio.connected() && !reporting) sealGapReport();
    kick();
    return true;
  }

  function sealAnchor(reason: number): void {
    encodeAnchor(pt, boot & 0xffff, Math.floor(clock.uptimeMs() / 1000), reason);
    seal(0);
  }

  function sealGapReport(): void {
    if (outbox.gapFirst === 0) return;
    reporting = true;
    // Sealing the report may itself drop the oldest frame: make that room
    // first so the report covers it too.
    if (outbox.count === outbox.capacity) {
      outbox.makeRoom();
      if (cursor > 0) cursor--;
    }
    const first = outbox.gapFirst;
    const count = gapCount(outbox);
    encodeGap(pt, count > MAX_GAP_COUNT ? first + count - MAX_GAP_COUNT : first, count > MAX_GAP_COUNT ? MAX_GAP_COUNT : count);
    outbox.gapFirst = 0;
    seal(first);
    reporting = false;
  }

  function sample(): void {
    const readings: Reading[] = [];
    for (let i = 0; i < sensors.length; i++) {
      const values = sensors[i]!.sample();
      if (!values) continue;
      for (const name in values) {
        const ch = channelId(name);
        if (ch) readings.push({ channel: ch, value: values[name]! });
      }
    }
    const t = Math.floor(clock.uptimeMs() / 1000);
    let from = 0;
    while (from < readings.length) {
      from = encodeSample(pt, boot, t, readings, from);
      if (pt[5] !== 0 && !seal(0)) return;
    }
  }

  // One handler for every timer the device sets, told by its argument which
  // one (ClockHal.setTimeout), and one for every radio event: on the
  // interpreter each function object is kept for good, about 5 variables
  // (docs/firmware.md, "Fourth pass").
  function onTimer(t: number): void {
    if (t === TIMER_PUMP) {
      pumpTimer = undefined;
      if (!radio.connected() || subscription === 2) return;
      if (cursor < outbox.count) {
        const at = offsetOf(outbox, cursor);
        radio.notify(outbox.ring.subarray(at, at + frameSize));
        cursor++;
        pumpTimer = clock.setTimeout(onTimer, interval, TIMER_PUMP);
        return;
      }
      if (outbox.count > 0 && resendTimer === undefined) resendTimer = clock.setTimeout(onTimer, RESEND_AFTER_MS, TIMER_RESEND);
    } else if (t === TIMER_RESEND) {
      resendTimer = undefined;
      rewind();
    } else if (t === TIMER_SAMPLE) {
      sample();
      clock.setTimeout(onTimer, sampleMs, TIMER_SAMPLE);
    } else if (t === TIMER_ANCHOR) {
      sealAnchor(ANCHOR_PERIODIC);
      clock.setTimeout(onTimer, anchorMs, TIMER_ANCHOR);
    } else cons.lock();
  }

  function kick(): void {
    if (pumpTimer === undefined && radio.connected() && subscription !== 2) pumpTimer = clock.setTimeout(onTimer, interval, TIMER_PUMP);
  }

  function cancelResend(): void {
    if (resendTimer !== undefined) clock.clearTimeout(resendTimer);
    resendTimer = undefined;
  }

  function rewind(): void {
    cancelResend();
    lastRewind = clock.uptimeMs();
    cursor = 0;
    interval = interval * 2 > MAX_NOTIFY_INTERVAL_MS ? MAX_NOTIFY_INTERVAL_MS : interval * 2;
    kick();
  }

  // Writes on `ack` that are not acks: ANNOUNCE parts and RENEW_ACK. The
  // renewal code is loaded on the first one and dropped at the next
  // connection once no renewal is open.
  function renewalWrite(d: Uint8Array): void {
    if (!rctx) {
      if (renewalTold || d.length !== 20 || (d[0]! & 0xf0) !== 0xb0) return;
      renewalTold = true;
      cons.print('sealpost ' + serial + ': cannot renew: ' + (rh ? 'device file format 1 has no renewal key; provision the device again with --renewal-pub' : 'this board has no renewal module'));
      return;
    }
    if (!ren && !(d.length === 20 && (d[0]! & 0xf0) === 0xb0)) return;
    if (!ren) ren = (rh!.load() as RenewalModule).start(rctx);
    ren.write(d);
  }

  function onRadio(e: number, data?: Uint8Array): void {
    if (e === RADIO_ACK) {
      if (RENEWAL && data!.length !== 12) return renewalWrite(data!);
      if (RENEWAL && oldSealer && (outbox.count === 0 || readU32BE(outbox.ring, offsetOf(outbox, 0)) >= commitAt)) {
        oldSealer = undefined;
        commitAt = 0;
      }
      if (!(RENEWAL && commitAt > ackCounter(data!) ? oldSealer! : sealer).ackValid(data!)) return;
      const freed = outbox.ack(ackCounter(data!));
      if (freed === 0) {
        // The oldest frame was sent and the server still lacks it: the radio
        // dropped it. Start again from the oldest, more slowly; at most once
        // per RESEND_AFTER_MS, since an ack may simply predate the relay's
        // latest upload. This must not wait for the pump to go idle: a device
        // that seals faster than it sends never does.
        if (cursor > 0 && outbox.count > 0 && clock.uptimeMs() - lastRewind >= RESEND_AFTER_MS) rewind();
        return;
      }
      acked += freed;
      cursor = cursor > freed ? cursor - freed : 0;
      interval = interval - (interval >> 2) < minInterval ? minInterval : interval - (interval >> 2);
      cancelResend();
      kick();
      return;
    }
    if (e === RADIO_CONNECT) {
      if (RENEWAL && ren && !ren.open()) ren = undefined;
      if (RENEWAL && ren) ren.connect();
      cursor = 0;
      interval = minInterval;
      lastRewind = clock.uptimeMs();
      subscription = 0;
      sealAnchor(ANCHOR_CONNECT);
      sealGapReport();
    } else {
      // RADIO_SUBSCRIBE: send from the oldest frame now instead of after the
      // fallback delay. RADIO_UNSUBSCRIBE, and RADIO_DISCONNECT the same way
      // (a connection resets the subscription): nothing goes out until the
      // central enables notifications again.
      subscription = e === RADIO_SUBSCRIBE ? 1 : 2;
      cancelResend();
    }
    // After the seals above, whose kick may have set the pump going.
    if (pumpTimer !== undefined) clock.clearTimeout(pumpTimer);
    pumpTimer = undefined;
    cursor = 0;
    // On a connection the fallback for a central that never writes the CCCD.
    if (e === RADIO_CONNECT) pumpTimer = clock.setTimeout(onTimer, CONNECT_SETTLE_MS, TIMER_PUMP);
    else if (subscription === 1 && radio.connected()) pumpTimer = clock.setTimeout(onTimer, 0, TIMER_PUMP);
  }

  sealAnchor(ANCHOR_BOOT);
  if (RENEWAL && rctx && rctx.records.pending) ren = (rh!.load() as RenewalModule).start(rctx);
  radio.start({
    name: NAME_PREFIX + serial.substr(serial.length > 6 ? serial.length - 6 : 0),
    info: '{"serial":"' + serial + '","v":' + PROTOCOL_VERSION + ',"f":' + frameSize + ',"b":"' + profile.id + '","fw":"' + FIRMWARE_VERSION + '"}',
    frameSize: frameSize,
    onEvent: onRadio,
  });
  profile = undefined as unknown as DeviceSettings;
  clock.setTimeout(onTimer, CONSOLE_GRACE_MS, TIMER_LOCK);
  clock.setTimeout(onTimer, sampleMs, TIMER_SAMPLE);
  clock.setTimeout(onTimer, anchorMs, TIMER_ANCHOR);

  return {
    outbox: outbox,
    sample: sample,
    status: function (): DeviceStatus {
      return {
        serial: serial,
        boot: boot,
        sealed: sealed,
        outbox: outbox.count,
        dropped: outbox.dropped,
        acked: acked,
        connected: radio.connected(),
        stopped: stopped,
      };
    },
  };
}
