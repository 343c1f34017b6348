// The bounded FIFO the MQTT publisher keeps its messages in while the broker
// is slow or unreachable: pushing onto a full queue drops the oldest.

/** A FIFO of messages with a bound: pushing onto a full queue drops the oldest. */
export class BoundedQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  constructor(readonly capacity: number) {}
  get length(): number {
    return this.items.length - this.head;
  }
  /** Appends; returns how many old items were dropped to make room (0 or 1). */
  push(item: T): number {
    let dropped = 0;
    if (this.length >= this.capacity) {
      this.shift();
      dropped = 1;
    }
    this.items.push(item);
    return dropped;
  }
  /** Puts items back at the front, in their order; if that overfills the queue the oldest are dropped. Returns how many. */
  unshiftAll(list: T[]): number {
    const rest = this.items.slice(this.head) as T[];
    const all = [...list, ...rest];
    const dropped = Math.max(0, all.length - this.capacity);
    this.items = all.slice(dropped);
    this.head = 0;
    return dropped;
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
