// What test/relay/react-native.test.ts bundles with esbuild: the adapter, the relay core and react-native-ble-plx's
// compiled JavaScript, with 'react-native' replaced by test/helpers/react-native-bridge.ts (one instance of each).
export { ReactNativeRelay, KvQueueStore, MemoryKeyValueStore, BLE_ERROR } from '../../relay/adapters/react-native.js';
export { Relay, MemoryQueueStore } from '../../relay/index.js';
export { bridge } from '../helpers/react-native-bridge.js';
export { BleManager } from 'react-native-ble-plx';
