// The relay's public API in one import, for the page, the simulated relay and
// the tests (docs/relay.md). Browser-safe: nothing here or below imports node:
// (test/sim/relay-sim.test.ts checks the import graph); relay/file-queue.ts,
// the Node store, is imported on its own.
export * from './contracts.js';
export { parseDeviceInfo, type DeviceInfo } from './device-info.js';
export { parseRetryAfter } from './answer.js';
export { backoffDelay } from './uploads.js';
export { fetchUploader, type FetchUploaderOptions } from './uploader.js';
export { MemoryQueueStore } from './memory-queue.js';
export { Relay } from './relay.js';
