// Sealpost peripherals on Chromium's own Web Bluetooth stack, through its CDP
// emulation: the page runs the browser's real navigator.bluetooth (chooser,
// GATT objects, events, errors), and each emulated peripheral is answered by a
// simulated device in this process (sim/device.ts SimDevice: the real firmware
// on the sim HAL), over its SimLink. Measured on Chromium 156 (issue #16):
//
// - BluetoothEmulation answers only on the browser target
//   (browser.newBrowserCDPSession()), DeviceAccess only on the page target.
// - Peripherals are preconnected (simulatePreconnectedPeripheral, upper-case
//   address); the chooser is DeviceAccess.deviceRequestPrompted, which fires
//   twice per request with the same id: each id is answered once (a second
//   answer crashes the browser).
// - Every connection and discovery (gattOperationReceived) and every read,
//   write and subscription (characteristicOperationReceived) waits for an
//   answer from here. simulateGATTDisconnection removes the services, so each
//   discovery adds them again (the frames characteristic with its CCCD 0x2902:
//   without it startNotifications fails with NotSupportedError).
// - Chromium 156 has no command to send a notification. What stands in for
//   one: the test reads the frames characteristic from the page, on the very
//   object the page's GattLink holds (Chromium keeps one object per
//   characteristic), and answers the read with the frame; Chromium then fires
//   `characteristicvaluechanged` on that object, as for a notification. So the
//   emulated frames characteristic also has `read`, which the firmware's does
//   not: the only difference from the device's GATT table, and only for this.
// - The emulation does not tell when the page calls gatt.disconnect(), and
//   keeps the peripheral connected (a later gatt.connect() asks nothing); every
//   pump() asks the page which devices are connected, and for those it has
//   dropped releases the firmware's link and simulates the disconnection.
// - setSimulatedCentralState('absent') makes getAvailability() false;
//   'powered-off' changes nothing the page can see (getAvailability() stays
//   true, the chooser still lists the peripherals, connections still succeed).
//   With the adapter off, this helper fails connections and drops links, as
//   a radio that is off does.
//
// One GATT operation at a time: the emulation itself accepts overlapping
// operations, so this helper answers the page's own operations after a short
// delay and counts any that arrive while another is unanswered (stats.busy).
import type { Browser, CDPSession, Page } from 'playwright-core';
import type { SimLink } from '../../hal/sim/radio.js';
import { ACK_UUID, FRAMES_UUID, INFO_UUID, SERVICE_UUID } from '../../protocol/wire/ble.js';
import type { SimDevice } from '../../sim/device.js';

const CCCD = '00002902-0000-1000-8000-00805f9b34fb';
/** HCI status codes for simulateGATTOperationResponse (Bluetooth Core 5.3, Vol 1 Part F). */
const HCI_SUCCESS = 0x00;
const HCI_CONNECTION_TIMEOUT = 0x08;
/** How long the page's own GATT operations wait for their answer, so that an overlapping one would be seen. */
const ANSWER_DELAY_MS = 3;
/** The address of the one non-sealpost peripheral (stats.listed shows whether a chooser offered it). */
export const STRANGER = '5E:A1:00:00:00:FF';
/** The chooser's list is taken as complete once it has not changed for this long. */
const PROMPT_SETTLE_MS = 60;

export type CentralState = 'absent' | 'powered-off' | 'powered-on';

interface Peripheral {
  address: string;
  name: string;
  sim: SimDevice;
  serial: string;
  inRange: boolean;
  link: SimLink | undefined;
  subscribed: boolean;
  /** Characteristic ids of the current discovery. */
  chars: { frames: string; ack: string; info: string } | undefined;
  /** Notifications from the firmware not yet handed to the page. */
  pending: Uint8Array[];
  /** The next discoveries come back without the sealpost service (stale or failed discovery on a phone). */
  missingServiceDiscoveries: number;
  /** Page operations started and not answered yet. */
  inFlight: number;
  /** When the current link's first discovery was answered (EmulatedBluetooth's sequence); the page is connected from then on until it disconnects. */
  discovered: number | undefined;
}

export interface EmulationStats {
  /** Chooser prompts answered (one per requestDevice). */
  prompts: number;
  connects: number;
  discoveries: number;
  reads: number;
  /** Ack writes that reached a device. */
  writes: number;
  /** Notifications handed to the page (as reads of the frames characteristic). */
  delivered: number;
  /** Notifications the device sent before the page enabled them (lost, as over the air). */
  lostBeforeSubscribe: number;
  /** Page GATT operations that arrived while another of the same device was unanswered. */
  busy: number;
  /** Every characteristic operation of the page: type and which characteristic. */
  operations: string[];
  /** Addresses Chromium listed in any chooser (after the page's filters). */
  listed: Set<string>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class EmulatedBluetooth {
  readonly stats: EmulationStats = { prompts: 0, connects: 0, discoveries: 0, reads: 0, writes: 0, delivered: 0, lostBeforeSubscribe: 0, busy: 0, operations: [], listed: new Set() };
  readonly #browser: CDPSession;
  readonly #page: Page;
  readonly #peripherals = new Map<string, Peripheral>();
  readonly #answered = new Set<string>();
  readonly #prompts = new Map<string, { timer: ReturnType<typeof setTimeout>; resolve: () => void }>();
  /** The chooser's next pick: a serial, null for "the user cancels", undefined for the first device in range. */
  #choice: string | null | undefined;
  #central: CentralState = 'powered-on';
  /** Set while pump() reads the frames characteristic itself (not a page operation). */
  #delivering = new Set<string>();
  readonly #errors: string[] = [];
  #navigatedOnce = false;
  #sequence = 0;
  #ready: Promise<void> = Promise.resolve();

  private constructor(browser: CDPSession, page: Page, devices: { sim: SimDevice; serial: string }[]) {
    this.#browser = browser;
    this.#page = page;
    devices.forEach(({ sim, serial }, i) => {
      const address = `5E:A1:00:00:00:${(i + 1).toString(16).padStart(2, '0').toUpperCase()}`;
      this.#peripherals.set(address, { address, name: `sealpost ${serial.slice(-6)}`, sim, serial, inRange: true, link: undefined, subscribed: false, chars: undefined, pending: [], missingServiceDiscoveries: 0, inFlight: 0, discovered: undefined });
    });
  }

  /** Turns the emulation on for `page` (before its first navigation) with these devices as preconnected peripherals. */
  static async install(browser: Browser, page: Page, devices: { sim: SimDevice; serial: string }[], state: CentralState = 'powered-on'): Promise<EmulatedBluetooth> {
    const session = await browser.newBrowserCDPSession();
    const self = new EmulatedBluetooth(session, page, devices);
    self.#central = state;
    await self.#enable();
    session.on('BluetoothEmulation.gattOperationReceived' as never, (e: { address: string; type: string }) => self.#guard(self.#gatt(e)));
    session.on('BluetoothEmulation.characteristicOperationReceived' as never, (e: { characteristicId: string; type: string; data?: string }) => self.#guard(self.#characteristic(e)));
    const pageSession = await page.context().newCDPSession(page);
    await pageSession.send('DeviceAccess.enable' as never);
    pageSession.on('DeviceAccess.deviceRequestPrompted' as never, (e: { id: string; devices: { id: string; name: string }[] }) => self.#guard(self.#prompt(pageSession, e)));
    // Leaving or reloading the page ends its connections, as in Chrome. The
    // emulated adapter does not survive a navigation either (measured: after a
    // reload requestDevice fails with "Bluetooth adapter not available."), so
    // it is made again, with the same peripherals and adapter state.
    page.on('framenavigated', (frame) => {
      if (frame !== page.mainFrame() || !self.#navigatedOnce) {
        self.#navigatedOnce ||= frame === page.mainFrame();
        return;
      }
      for (const p of self.#peripherals.values()) self.#release(p);
      self.#ready = self.#ready.then(async () => {
        await session.send('BluetoothEmulation.disable' as never);
        await self.#enable();
        await pageSession.send('DeviceAccess.enable' as never);
      });
      self.#guard(self.#ready);
    });
    return self;
  }

  async #enable(): Promise<void> {
    await this.#browser.send('BluetoothEmulation.enable' as never, { state: this.#central, leSupported: true } as never);
    for (const p of this.#peripherals.values()) {
      await this.#browser.send('BluetoothEmulation.simulatePreconnectedPeripheral' as never, { address: p.address, name: p.name, manufacturerData: [], knownServiceUuids: [SERVICE_UUID] } as never);
    }
    // A device nearby that is not a sealpost device (another service, another name): the page's filters keep it out of the chooser.
    await this.#browser.send('BluetoothEmulation.simulatePreconnectedPeripheral' as never, { address: STRANGER, name: 'Heart Rate 42', manufacturerData: [], knownServiceUuids: ['0000180d-0000-1000-8000-00805f9b34fb'] } as never);
  }

  /** Resolves once the emulation is set up again after the page navigated. */
  ready(): Promise<void> {
    return this.#ready.catch(() => undefined);
  }

  /** Failures of the answering side (a CDP call refused); a test checks this is empty. */
  get errors(): string[] {
    return this.#errors;
  }

  /** What the chooser picks next: a serial, or null to cancel. Used once. */
  choose(serial: string | null): void {
    this.#choice = serial;
  }

  /** The phone's adapter: 'absent' (no adapter, or the OS denies it), 'powered-off', 'powered-on'. */
  async setCentralState(state: CentralState): Promise<void> {
    this.#central = state;
    await this.#browser.send('BluetoothEmulation.setSimulatedCentralState' as never, { state } as never);
    if (state !== 'powered-on') for (const p of this.#peripherals.values()) await this.#disconnect(p);
  }

  /** Out of range: connections fail; and the current link, if any, drops. */
  async setInRange(serial: string, inRange: boolean): Promise<void> {
    const p = this.#bySerial(serial);
    p.inRange = inRange;
    if (!inRange) await this.#disconnect(p);
  }

  /** The next `count` discoveries of this device come back without the sealpost service. */
  missServiceOnDiscovery(serial: string, count = 1): void {
    this.#bySerial(serial).missingServiceDiscoveries = count;
  }

  /** The radio link breaks: both sides see a disconnection. */
  async drop(serial: string): Promise<void> {
    await this.#disconnect(this.#bySerial(serial));
  }

  /** The emulated address of a device. */
  address(serial: string): string {
    return this.#bySerial(serial).address;
  }

  /** Whether the firmware has a link (the page side is asked by pump()). */
  connected(serial: string): boolean {
    return this.#bySerial(serial).link?.connected() === true;
  }

  /**
   * Delivers what happened since the last call: links found dead (a device
   * that lost power), notifications (one read of the frames characteristic
   * each), and links the page closed. Call after advancing the clock.
   */
  async pump(): Promise<void> {
    await this.ready();
    for (const p of this.#peripherals.values()) if (p.link && !p.link.connected()) await this.#disconnect(p);
    const deliveries: { name: string; count: number }[] = [];
    for (const p of this.#peripherals.values()) {
      // Never alongside one of the page's own operations: the page may run only one at a time, and so does this.
      if (p.link && p.subscribed && p.pending.length > 0 && p.inFlight === 0) deliveries.push({ name: p.name, count: p.pending.length });
    }
    for (const d of deliveries) this.#delivering.add(d.name);
    const mark = this.#sequence;
    let pageConnected: Record<string, boolean>;
    try {
      pageConnected = await this.#page.evaluate(pageSide, { deliveries, service: SERVICE_UUID, frames: FRAMES_UUID });
    } catch {
      // The page is navigating: whatever was in the air is lost, as it would be.
      return;
    } finally {
      for (const d of deliveries) this.#delivering.delete(d.name);
    }
    for (const p of this.#peripherals.values()) {
      // A connection still being set up reads as not connected too: only a link discovered before this look is released.
      // The emulated peripheral stays connected to the adapter after the page's gatt.disconnect(): disconnect it too, so the next connect is a connection.
      if (p.link && pageConnected[p.name] === false && p.discovered !== undefined && p.discovered <= mark) await this.#disconnect(p);
    }
  }

  #bySerial(serial: string): Peripheral {
    for (const p of this.#peripherals.values()) if (p.serial === serial) return p;
    throw new Error(`no simulated device ${serial}`);
  }

  #guard(work: Promise<void>): void {
    work.catch((e: unknown) => this.#errors.push((e as Error).message));
  }

  async #disconnect(p: Peripheral): Promise<void> {
    if (!p.link) return;
    this.#release(p);
    await this.#browser.send('BluetoothEmulation.simulateGATTDisconnection' as never, { address: p.address } as never);
  }

  #release(p: Peripheral): void {
    p.link?.disconnect();
    p.link = undefined;
    p.subscribed = false;
    p.chars = undefined;
    p.pending = [];
    p.discovered = undefined;
  }

  /**
   * The chooser: the prompt event repeats with the same id as the list fills
   * (one device, then all of them), so the answer goes once, after the list has
   * been quiet for PROMPT_SETTLE_MS, with the latest list.
   */
  #prompt(session: CDPSession, e: { id: string; devices: { id: string }[] }): Promise<void> {
    if (this.#answered.has(e.id)) return Promise.resolve();
    const waiting = this.#prompts.get(e.id);
    if (waiting) clearTimeout(waiting.timer);
    // The earlier event's promise ends here; this one carries the answer.
    waiting?.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#prompts.delete(e.id);
        this.#answered.add(e.id);
        this.#answer(session, e).then(resolve, reject);
      }, PROMPT_SETTLE_MS);
      this.#prompts.set(e.id, { timer, resolve: () => resolve() });
    });
  }

  async #answer(session: CDPSession, e: { id: string; devices: { id: string }[] }): Promise<void> {
    this.stats.prompts++;
    for (const d of e.devices) this.stats.listed.add(d.id);
    const choice = this.#choice;
    this.#choice = undefined;
    // The chooser lists what advertises the service (the emulation lists every preconnected peripheral; a device that is off or away does not advertise).
    const listed = e.devices.map((d) => this.#peripherals.get(d.id)).filter((p): p is Peripheral => p !== undefined && p.inRange && p.sim.radio?.advertising() !== undefined);
    const picked = choice === null ? undefined : choice === undefined ? listed[0] : listed.find((p) => p.serial === choice);
    if (picked) await session.send('DeviceAccess.selectPrompt' as never, { id: e.id, deviceId: picked.address } as never);
    else await session.send('DeviceAccess.cancelPrompt' as never, { id: e.id } as never);
  }

  async #gatt(e: { address: string; type: string }): Promise<void> {
    const p = this.#peripherals.get(e.address);
    let code = HCI_SUCCESS;
    if (!p) code = HCI_CONNECTION_TIMEOUT;
    else if (e.type === 'connection') {
      this.#release(p);
      const radio = p.sim.radio;
      if (this.#central !== 'powered-on' || !p.inRange || !radio?.advertising()) code = HCI_CONNECTION_TIMEOUT;
      else {
        const link = radio.connect((frame) => {
          if (p.link !== link) return;
          if (!p.subscribed) this.stats.lostBeforeSubscribe++;
          else p.pending.push(frame.slice());
        });
        p.link = link;
        this.stats.connects++;
      }
    } else if (e.type === 'discovery') {
      this.stats.discoveries++;
      if (p.missingServiceDiscoveries > 0) p.missingServiceDiscoveries--;
      else if (p.link && !p.chars) p.chars = await this.#addService(p.address);
    }
    await this.#browser.send('BluetoothEmulation.simulateGATTOperationResponse' as never, { address: e.address, type: e.type, code } as never);
    if (p?.link && e.type === 'discovery') p.discovered ??= ++this.#sequence;
  }

  async #addService(address: string): Promise<{ frames: string; ack: string; info: string }> {
    const send = <T>(method: string, params: object) => this.#browser.send(`BluetoothEmulation.${method}` as never, params as never) as Promise<T>;
    const { serviceId } = await send<{ serviceId: string }>('addService', { address, serviceUuid: SERVICE_UUID });
    const add = async (uuid: string, properties: object) => (await send<{ characteristicId: string }>('addCharacteristic', { serviceId, characteristicUuid: uuid, properties })).characteristicId;
    // frames: notify as on the device, plus read for the notification stand-in (above).
    const frames = await add(FRAMES_UUID, { notify: true, read: true });
    await send('addDescriptor', { characteristicId: frames, descriptorUuid: CCCD });
    const ack = await add(ACK_UUID, { write: true });
    const info = await add(INFO_UUID, { read: true });
    return { frames, ack, info };
  }

  async #characteristic(e: { characteristicId: string; type: string; data?: string }): Promise<void> {
    const p = [...this.#peripherals.values()].find((x) => x.chars && Object.values(x.chars).includes(e.characteristicId));
    const which = p?.chars ? (Object.entries(p.chars).find(([, id]) => id === e.characteristicId)?.[0] ?? '?') : '?';
    const answer = (code: number, data?: Uint8Array) =>
      this.#browser.send('BluetoothEmulation.simulateCharacteristicOperationResponse' as never, { characteristicId: e.characteristicId, type: e.type, code, ...(data ? { data: Buffer.from(data).toString('base64') } : {}) } as never);
    // A read of frames while pump() delivers is the notification stand-in, not the page's own operation.
    if (p && which === 'frames' && e.type === 'read' && this.#delivering.has(p.name)) {
      const frame = p.pending.shift();
      if (frame) this.stats.delivered++;
      await answer(frame ? HCI_SUCCESS : 0x0e, frame);
      return;
    }
    this.stats.operations.push(`${e.type} ${which}`);
    if (!p?.link?.connected()) {
      await answer(0x0e); // ATT "unlikely error": the device is gone
      return;
    }
    if (p.inFlight > 0) this.stats.busy++;
    p.inFlight++;
    await sleep(ANSWER_DELAY_MS);
    p.inFlight--;
    const link = p.link;
    if (!link?.connected()) return answer(0x0e);
    if (e.type === 'read' && which === 'info') {
      this.stats.reads++;
      return answer(HCI_SUCCESS, new TextEncoder().encode(link.info()));
    }
    if (e.type === 'write' && which === 'ack') {
      link.writeAck(Uint8Array.from(Buffer.from(e.data ?? '', 'base64')));
      this.stats.writes++;
      return answer(HCI_SUCCESS);
    }
    if (e.type === 'subscribe-to-notifications' && which === 'frames') {
      // The CCCD write: the firmware hears it (onWriteDesc, SimLink.subscribe).
      p.subscribed = true;
      link.subscribe(true);
      return answer(HCI_SUCCESS);
    }
    if (e.type === 'unsubscribe-from-notifications' && which === 'frames') {
      p.subscribed = false;
      link.subscribe(false);
      return answer(HCI_SUCCESS);
    }
    return answer(0x03); // ATT "write not permitted" / not supported here
  }
}

/**
 * Runs in the page (page.evaluate): reads the frames characteristic of each
 * named device `count` times, on the characteristic object the page already
 * holds, and reports which devices are connected.
 */
async function pageSide(args: { deliveries: { name: string; count: number }[]; service: string; frames: string }): Promise<Record<string, boolean>> {
  const bt = (navigator as Navigator & { bluetooth: { getDevices(): Promise<{ name?: string; gatt: { connected: boolean; getPrimaryService(u: string): Promise<{ getCharacteristic(u: string): Promise<{ readValue(): Promise<DataView> }> }> } }[]> } }).bluetooth;
  const devices = await bt.getDevices();
  for (const d of args.deliveries) {
    const device = devices.find((x) => x.name === d.name);
    if (!device?.gatt.connected) continue;
    try {
      const c = await (await device.gatt.getPrimaryService(args.service)).getCharacteristic(args.frames);
      for (let i = 0; i < d.count; i++) await c.readValue();
    } catch {
      // Dropped meanwhile: those notifications are lost, as in the air.
    }
  }
  const connected: Record<string, boolean> = {};
  for (const d of devices) if (d.name) connected[d.name] = d.gatt.connected;
  return connected;
}
