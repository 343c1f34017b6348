// A one-line progress bar for terminals. Counts only: it never sees a serial
// or a secret. On anything but a TTY it prints nothing.
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
}

const SILENT: Progress = { update: () => {}, finish: () => {} };

export function createProgress(stream: ProgressStream, label: string, now: () => number = () => performance.now()): Progress {
  if (!stream.isTTY) return SILENT;
  const start = now();
  let last = -Infinity;
  let shown = false;
  let first = -1;
  const draw = (done: number, total: number) => {
    if (first < 0) first = done;
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 50));
    const fill = total === 0 ? width : Math.round((done / total) * width);
    const seconds = (now() - start) / 1000;
    const rate = seconds > 0 ? Math.round((done - first) / seconds) : 0;
    stream.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} ${rate}/s `);
    shown = true;
  };
  return {
    update(done, total) {
      const t = now();
      if (done < total && t - last < 100) return;
      last = t;
      draw(done, total);
    },
    finish() {
      if (shown) stream.write('\n');
    },
  };
}
