// File-system helpers of the factory: durable atomic replacement, directory
// fsync, and the lock that keeps two provisioning runs out of one output tree.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, fchmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** fsync a directory so a rename or create inside it is durable (POSIX: the entry lives in the directory). */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `path` with `data` so that, after a crash or power loss, the path
 * holds either the old or the whole new contents: write a temporary file
 * beside it, fsync, rename over, fsync the directory.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    fchmodSync(fd, mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Creates `path` with `data`, failing if it exists (O_EXCL); fsynced. */
export function writeNewFile(path: string, data: string | Uint8Array, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    fchmodSync(fd, mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface TreeLock {
  release(): void;
}

export const LOCK_FILE = '.sealpost-provision.lock';

/**
 * Takes the output tree's lock file (O_EXCL create holding "pid host"). A
 * lock left by a process on this host that no longer runs (kill -9, power
 * loss) is taken over; a live one is refused with the owner named.
 */
export function lockTree(dir: string): TreeLock {
  const path = join(dir, LOCK_FILE);
  const me = `${process.pid} ${hostname()}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeNewFile(path, me, 0o644);
      return {
        release: () => {
          try {
            if (readFileSync(path, 'utf8') === me) unlinkSync(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = '';
    try {
      owner = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    const [pidText, host] = owner.trim().split(' ');
    const pid = Number(pidText);
    if (host === hostname() && Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      try {
        unlinkSync(path);
      } catch {
        // someone else took it over first; the next attempt tells
      }
      continue;
    }
    throw new Error(
      `another sealpost provision (pid ${pidText} on ${host ?? 'unknown host'}) is working in ${dir}; wait for it to finish, or if it is certainly gone, delete ${path}`,
    );
  }
  throw new Error(`could not take the lock ${path}; retry`);
}
