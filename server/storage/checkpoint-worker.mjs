// Entry of the checkpoint thread when sealpost runs from its TypeScript
// sources (tests, tsx): the thread registers tsx's loader itself (a worker
// inherits neither tsx nor vitest's transform) before importing it.
// Compiled (build/), checkpointer.ts starts checkpoint-worker.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./checkpoint-worker.ts');
