// Virtual time for simulations and tests: timers run in time order when the
// test advances the clock, so hours of device life take milliseconds. One
// VirtualClock can drive a whole fleet; each device gets a scope whose timers
// all die with it when it loses power.
import type { ClockHal } from '../types.js';

interface Timer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
  scope: number;
}

export class VirtualClock {
  #now = 0;
  #seq = 0;
  #nextId = 1;
  #nextScope = 1;
  #timers: Timer[] = [];

  now(): number {
    return this.#now;
  }

  /** A ClockHal for one device, whose uptime starts now. */
  scope(): ClockHal & { powerOff(): void } {
    const scope = this.#nextScope++;
    const bootAt = this.#now;
    return {
      uptimeMs: () => this.#now - bootAt,
      // Passes its argument on, as Espruino's setTimeout(fn, ms, arg) does (ClockHal).
      setTimeout: (fn: (arg: number) => void, ms: number, arg: number) => this.#add(() => fn(arg), ms, scope),
      clearTimeout: (handle: unknown) => this.#remove(handle as number),
      powerOff: () => {
        this.#timers = this.#timers.filter((t) => t.scope !== scope);
      },
    };
  }

  /** A timer outside any device (relays, test drivers). */
  setTimeout(fn: () => void, ms: number): number {
    return this.#add(fn, ms, 0);
  }

  clearTimeout(id: number): void {
    this.#remove(id);
  }

  /** Runs every timer due within the next `ms` milliseconds, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers) if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (!next) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }

  pending(): number {
    return this.#timers.length;
  }

  #add(fn: () => void, ms: number, scope: number): number {
    const id = this.#nextId++;
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, scope });
    return id;
  }

  #remove(id: number): void {
    const i = this.#timers.findIndex((t) => t.id === id);
    if (i >= 0) this.#timers.splice(i, 1);
  }
}
