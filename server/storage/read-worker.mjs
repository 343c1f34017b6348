// Entry of a SQLite read worker thread (server/storage/read-workers.ts). The
// sources are TypeScript, so the thread registers tsx's loader itself (a
// worker does not inherit the loader the main thread registered in
// bin/sealpost.mjs, nor vitest's transform) before importing them.
import { register } from 'tsx/esm/api';

register();
await import('./read-worker.ts');
