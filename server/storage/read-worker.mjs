// Entry of a read worker thread when sealpost runs from its TypeScript
// sources (tests, tsx): the thread registers tsx's loader itself (a worker
// inherits neither tsx nor vitest's transform) before importing them.
// Compiled (build/), read-workers.ts starts read-worker.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./read-worker.ts');
