// The part of the Web Bluetooth API the relay page uses
// (https://webbluetoothcg.github.io/web-bluetooth/), typed here because
// TypeScript's DOM library does not include it. Local types, not a global
// declaration: the page reaches the API through `bluetoothOf(navigator)`, so
// a browser without it is a value the code has to handle, not a crash.

export interface RequestDeviceOptions {
  filters?: { services?: string[]; name?: string; namePrefix?: string }[];
  optionalServices?: string[];
  acceptAllDevices?: boolean;
}

export interface Bluetooth {
  requestDevice(options: RequestDeviceOptions): Promise<BluetoothDevice>;
  /** Whether the system has a Bluetooth adapter that is on (Chrome: false also when the OS denies access). */
  getAvailability?(): Promise<boolean>;
  /** 'availabilitychanged' events, where the browser has them. */
  addEventListener?(type: 'availabilitychanged', listener: (e: Event & { value?: boolean }) => void): void;
}

export interface BluetoothDevice extends EventTarget {
  readonly id: string;
  readonly name?: string | undefined;
  readonly gatt?: BluetoothRemoteGATTServer | undefined;
}

export interface BluetoothRemoteGATTServer {
  readonly device: BluetoothDevice;
  readonly connected: boolean;
  connect(): Promise<BluetoothRemoteGATTServer>;
  disconnect(): void;
  getPrimaryService(service: string): Promise<BluetoothRemoteGATTService>;
}

export interface BluetoothRemoteGATTService {
  readonly uuid: string;
  getCharacteristic(characteristic: string): Promise<BluetoothRemoteGATTCharacteristic>;
}

export interface BluetoothRemoteGATTCharacteristic extends EventTarget {
  readonly uuid: string;
  /** The last value read or notified; the browser may reuse its buffer. */
  readonly value?: DataView | undefined;
  readValue(): Promise<DataView>;
  writeValueWithResponse(value: BufferSource): Promise<void>;
  startNotifications(): Promise<BluetoothRemoteGATTCharacteristic>;
  stopNotifications?(): Promise<BluetoothRemoteGATTCharacteristic>;
}

export function bluetoothOf(nav: Navigator): Bluetooth | undefined {
  const bt = (nav as Navigator & { bluetooth?: Bluetooth }).bluetooth;
  return bt && typeof bt.requestDevice === 'function' ? bt : undefined;
}
