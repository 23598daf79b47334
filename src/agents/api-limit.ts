/**
 * A counting semaphore: at most `limit` tasks run at once, the rest wait in FIFO order. Used to bound
 * the number of requests in flight to one endpoint when several episodes prefetch decisions.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`Semaphore limit must be a positive integer, got ${limit}`);
  }

  /** Tasks running now. */
  get running(): number { return this.active; }

  /** Run `fn` once a slot is free; the slot is released when it settles (success or failure). */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (active stays the same), or free it.
      const next = this.waiting.shift();
      if (next) next(); else this.active--;
    }
  }
}
