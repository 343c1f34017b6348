// The relay's public API in one import: `sealpost/relay` in the npm package
// (package.json "exports", compiled to build/relay/index.js with types), and
// the page, the simulated relay and the tests in this repository
// (docs/relay.md, "The relay as a package"). Browser- and app-safe: nothing
// here or below imports node: or an npm package (test/cli/pack.test.ts checks
// the compiled graph, test/sim/relay-sim.test.ts the sources);
// relay/file-queue.ts, the Node store, is imported on its own.
export * from './contracts.js';
export { parseDeviceInfo, type DeviceInfo } from './device-info.js';
export { parseRetryAfter } from './answer.js';
export { backoffDelay } from './uploads.js';
export { fetchUploader, type FetchUploaderOptions } from './uploader.js';
export { MemoryQueueStore } from './memory-queue.js';
export { MAX_DOWNLINK_WRITE, GattQueue, ackWrites, checkDownlink, writeInOrder } from './downlink.js';
export { Relay } from './relay.js';
// The GATT names a platform's DeviceLink looks for (docs/protocol.md section 7).
export { ACK_UUID, FRAMES_UUID, INFO_UUID, NAME_PREFIX, SERVICE_UUID } from '../protocol/wire/ble.js';
