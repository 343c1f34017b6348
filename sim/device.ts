// A simulated device in the simulated world: the board's parts (the hal/sim
// models) around the sim target's entry (firmware/targets/sim.ts), which
// builds the Hal and runs the real firmware on it. What survives a power cut
// lives here (Storage files, the NOR flash or the counter-log file); what does
// not (RAM: outbox, timers, the radio link) is rebuilt by every boot(). Tests
// and the simulated fleet watch it through the console, the radio and a tap
// on the crypto engine.
import { randomBytes } from 'node:crypto';
import type { BoardProfile } from '../boards/types.js';
import type { Device } from '../firmware/device.js';
import { startSimDevice, type SimBoard } from '../firmware/targets/sim.js';
import { COUNTER_LOG_NAME, DEVICE_FILE_NAME, KERNEL_FILE_NAME } from '../protocol/wire/names.js';
import { DOMAIN_UPLINK } from '../protocol/wire/constants.js';
import { initialPageHeader } from '../protocol/wire/counter-log.js';
import type { Ccm, CryptoBackend, CryptoHal, Sensor } from '../hal/types.js';
import type { VirtualClock } from '../hal/sim/clock.js';
import { boardAesFeatures, createEspruinoAes } from './espruino/aes.js';
import { kernelImage, kernelMachine } from './espruino/kernel.js';
import { SimLogFile } from '../hal/sim/log-file.js';
import { NorFlash } from '../hal/sim/nor-flash.js';
import { SimRadio, type SimRadioOptions } from '../hal/sim/radio.js';
import { simSensor } from '../hal/sim/sensors.js';

export interface SimDeviceOptions {
  clock: VirtualClock;
  profile: BoardProfile;
  /** The device secret file exactly as the factory writes it. */
  deviceFile: Uint8Array;
  /** Defaults to the profile's backend. */
  crypto?: CryptoBackend;
  /** Defaults to the profile's counter store. */
  counterStore?: 'flash-pages' | 'storage-log';
  seed: number;
  radio?: Omit<SimRadioOptions, 'setTimeout'>;
  /**
   * Key renewal's hardware random source (one 32-bit word per call; may throw), node:crypto by
   * default; `false`: the board has no renewal module (it cannot renew).
   */
  hwRand?: (() => number) | false;
  /** The NOR flash model's page size and torn-word behaviour (default 1024-byte pages, whole words). */
  flash?: { pageSize?: number; tornWords?: boolean; random?: () => number };
}

export interface SealedFrame {
  /** Which power-up of this SimDevice sealed it (1 = first boot()). */
  power: number;
  counter: number;
  plaintext: Uint8Array;
  /** The seal key it was sealed under, hex (key renewal changes it). */
  key: string;
}

export interface SampledValues {
  boot: number;
  /** World time (the VirtualClock) when the sensors were read. */
  at: number;
  values: { [channel: string]: number };
}

export class SimDevice {
  readonly files = new Map<string, Uint8Array>();
  readonly flash: NorFlash;
  readonly log: SimLogFile | undefined;
  readonly consoleLines: string[] = [];
  /** Every set of readings the firmware took, for checking what reaches the server. */
  readonly sampled: SampledValues[] = [];
  /**
   * Every frame the firmware sealed, across boots, from a tap on the crypto
   * engine: the counter (from the nonce) and the plaintext. Tests use it to
   * prove no counter was sealed twice and to account for every sample.
   */
  readonly sealedLog: SealedFrame[] = [];
  radio: SimRadio | undefined;
  device: Device | undefined;
  locked = false;
  boots = 0;
  /** Times the firmware loaded its renewal module (at boot with renewal records, on ANNOUNCE writes). */
  renewalLoads = 0;
  /** Ed25519 verifications the firmware asked for (at most one per connection). */
  renewalVerifies = 0;
  /** The hardware random source key renewal draws from (SimDeviceOptions.hwRand); tests may swap it between power-ups or connections. */
  hwRand: (() => number) | false | undefined;
  readonly #opts: SimDeviceOptions;
  /** The profile with the options' crypto backend and counter store: what the sim entry is told. */
  readonly #profile: BoardProfile;
  #powerOff: (() => void) | undefined;

  constructor(opts: SimDeviceOptions) {
    this.#opts = opts;
    this.hwRand = opts.hwRand;
    this.files.set(DEVICE_FILE_NAME, opts.deviceFile.slice());
    const pageSize = opts.flash?.pageSize ?? 1024;
    this.flash = new NorFlash({ pageSize, pageCount: 2, base: pageSize * 64, tornWords: opts.flash?.tornWords, random: opts.flash?.random });
    // As the factory does for flash-pages boards (factory/, docs/firmware.md).
    this.flash.bytes.set(initialPageHeader(), 0);
    const { profile } = opts;
    const store = opts.counterStore ?? profile.counterStore.kind;
    let counterStore = profile.counterStore;
    if (store === 'storage-log') {
      const bytes = profile.counterStore.kind === 'storage-log' ? profile.counterStore.bytes : 8192;
      this.log = new SimLogFile({ size: bytes });
      this.files.set(COUNTER_LOG_NAME, this.log.bytes);
      counterStore = { kind: 'storage-log', bytes };
    } else {
      counterStore = { kind: 'flash-pages' };
    }
    this.#profile = { ...profile, crypto: opts.crypto ?? profile.crypto, counterStore };
    // As the factory does for native-kernel boards: the compiled kernel as a Storage file.
    if (this.#profile.crypto === 'native-kernel') this.files.set(KERNEL_FILE_NAME, kernelImage());
  }

  /** Powers the device up: a fresh RAM state running the firmware from the start. */
  boot(): Device | undefined {
    if (this.#powerOff) throw new Error('device is already on');
    const { clock, seed } = this.#opts;
    const profile = this.#profile;
    const scope = clock.scope();
    const radio = new SimRadio({ ...this.#opts.radio, setTimeout: (fn: () => void, ms: number) => scope.setTimeout(fn, ms, 0) });
    const bootIndex = ++this.boots;
    const sensors: { [id: string]: Sensor } = {};
    for (const id of profile.device.sensors) {
      const model = simSensor(id, { now: () => clock.now(), seed: seed * 1000 + bootIndex * 31 + id.length });
      sensors[id] = {
        sample: () => {
          const values = model.sample();
          if (values) this.sampled.push({ boot: this.device?.status().boot ?? -1, at: clock.now(), values });
          return values;
        },
        close: model.close,
      };
    }
    this.flash.powerOn();
    this.log?.powerOn();
    this.radio = radio;
    this.locked = false;
    this.#powerOff = () => {
      scope.powerOff();
      radio.powerOff();
    };
    this.device = startSimDevice(
      {
        clock: scope,
        radio,
        console: {
          print: (line) => this.consoleLines.push(line),
          lock: () => {
            this.locked = true;
          },
        },
        readFile: (name) => this.files.get(name)?.slice(),
        // The AES builtins the profile's board has; an error it prints is a bug here.
        aes: createEspruinoAes({
          features: boardAesFeatures(profile.crypto),
          print: (line) => {
            throw new Error(`Espruino AES stand-in reported ${line}`);
          },
        }),
        flash: this.flash,
        log: this.log,
        kernel: (() => {
          const m = kernelMachine({ files: () => this.files });
          return { E: m.E, Storage: { read: m.read } } as unknown as SimBoard['kernel'];
        })(),
        sensors,
        renewal:
          this.hwRand === false
            ? undefined
            : {
                hwRand: () => (this.hwRand ? this.hwRand() : randomBytes(4).readUInt32BE(0)),
                loaded: () => {
                  this.renewalLoads++;
                },
                tap: (c) => ({ ...c, verify: (k, m, sig) => (this.renewalVerifies++, c.verify(k, m, sig)) }),
              },
        tapCrypto: (crypto) => this.#tap(crypto, bootIndex),
      },
      profile,
    );
    return this.device;
  }

  #tap(crypto: CryptoHal, power: number): CryptoHal {
    const log = this.sealedLog;
    return {
      encryptBlock: crypto.encryptBlock,
      ccm: (key, max) => {
        const engine = crypto.ccm(key, max);
        const hex = Buffer.from(key).toString('hex');
        const tapped: Ccm = {
          framer: (salt, len, ring, domain) => {
            const frame = engine.framer(salt, len, ring, domain);
            return (counter, msg, at) => {
              if (domain === DOMAIN_UPLINK) log.push({ power, counter, plaintext: msg.slice(), key: hex });
              frame(counter, msg, at);
            };
          },
        };
        return tapped;
      },
    };
  }

  /** Power loss: timers stop, the radio link drops, RAM is gone; flash and Storage stay. */
  powerOff(): void {
    this.#powerOff?.();
    this.#powerOff = undefined;
    this.device = undefined;
    this.radio = undefined;
  }

  get on(): boolean {
    return this.#powerOff !== undefined;
  }
}
