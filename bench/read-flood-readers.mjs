// Entry of the read-flood benchmark's reader thread: worker threads do not
// inherit tsx's loader, so the thread registers it before importing the
// TypeScript (as server/storage/read-worker.mjs does).
import { register } from 'tsx/esm/api';

register();
await import('./read-flood-readers.ts');
