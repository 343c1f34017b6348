// Power cuts for the sim storage models (hal/sim/nor-flash.ts,
// hal/sim/log-file.ts): a budget of units (word writes and erases, or bytes)
// after which the next unit is interrupted and throws PowerLoss; until
// powerOn() every operation throws PowerLoss again. The model keeps its
// memory, so a counter store opened on it after powerOn() is a reboot.

/** Thrown by the sim HALs when the injected power cut happens. Test with isPowerLoss. */
export class PowerLoss extends Error {
  readonly powerLoss = true;
  constructor(where: string) {
    super('simulated power loss ' + where);
    this.name = 'PowerLoss';
  }
}

export function isPowerLoss(e: unknown): e is PowerLoss {
  return e instanceof PowerLoss;
}

export abstract class PowerCuts {
  #budget = Infinity;
  #dead = false;

  /** `what` names the model in argument errors. */
  constructor(private readonly what: string) {}

  /** Cuts power after `units` more units have completed: the next one is interrupted. */
  cutAfter(units: number): void {
    if (!Number.isInteger(units) || units < 0) throw new Error(`${this.what}: cutAfter expected an integer >= 0, got ${units}`);
    this.#budget = units;
  }

  /** No power cut pending. */
  noCut(): void {
    this.#budget = Infinity;
  }

  /** Power comes back after a cut (the reboot); no cut pending. Memory is kept. */
  powerOn(): void {
    this.#dead = false;
    this.#budget = Infinity;
  }

  /** True between a power cut and powerOn(). */
  get off(): boolean {
    return this.#dead;
  }

  protected alive(): void {
    if (this.#dead) throw new PowerLoss('(the device is off until powerOn())');
  }

  /** True when the next unit is the one the cut interrupts. */
  protected cutDue(): boolean {
    return this.#budget === 0;
  }

  /** One unit completed. */
  protected spend(): void {
    if (this.#budget !== Infinity) this.#budget--;
  }

  /** The cut: power is off from here on. */
  protected fail(where: string): never {
    this.#dead = true;
    this.#budget = Infinity;
    throw new PowerLoss(where);
  }
}
