// Worker thread of factory/device-writer.ts: writes a group of device files
// and then appends the group's journal rows with one fdatasync, with plain
// synchronous system calls, so the main thread only computes keys (measured
// here: promise-based writes cost the main thread more than the keys did).
// Plain CommonJS so it loads in a worker without the TypeScript loader.
// Messages never carry an error's file contents, only its path and code.
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');

function writeFile(path, data, replace) {
  if (replace) fs.rmSync(path, { force: true });
  const fd = fs.openSync(path, 'wx', 0o600);
  try {
    let at = 0;
    while (at < data.length) at += fs.writeSync(fd, data, at, data.length - at);
  } finally {
    fs.closeSync(fd);
  }
}

parentPort.on('message', (job) => {
  try {
    for (const f of job.files) {
      writeFile(f.path, f.data, f.replace);
      f.data.fill(0);
    }
    if (job.journalFd !== undefined && job.rows.length > 0) {
      let at = 0;
      while (at < job.rows.length) at += fs.writeSync(job.journalFd, job.rows, at, job.rows.length - at);
      fs.fdatasyncSync(job.journalFd);
    }
    if (job.syncDir !== undefined) {
      const fd = fs.openSync(job.syncDir, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    parentPort.postMessage({ id: job.id });
  } catch (e) {
    parentPort.postMessage({ id: job.id, error: `${e.code || 'error'}: ${e.syscall || ''} ${e.path || ''}`.trim() });
  }
});
