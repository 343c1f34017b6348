// How the dashboard writes numbers, values with units, times and channel
// names (the browser's locale).

export const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
export const intf = new Intl.NumberFormat();

export function fmtValue(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const n = Math.abs(v) >= 100 ? Math.round(v * 10) / 10 : v;
  return unit === '' || unit === 'ratio' ? nf.format(n) : `${nf.format(n)} ${unit}`;
}

export function ago(t: number | null, now = Date.now()): string {
  if (t === null) return 'never';
  const s = Math.round((now - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export const isoTime = (t: number): string => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export const shortTime = (t: number): string => new Date(t).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
export const pretty = (name: string): string => (name.charAt(0).toUpperCase() + name.slice(1)).replace(/_/g, ' ');
