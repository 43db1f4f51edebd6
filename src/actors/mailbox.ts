/**
 * An actor's mailbox: a small FIFO of work items run strictly one at a time, so the state an actor owns
 * is only ever touched by one item. The owner supplies the error handler; a failing item never stops
 * the items behind it.
 */
export type MailboxItem = () => unknown | Promise<unknown>;

export class Mailbox {
  readonly #queue: MailboxItem[] = [];
  readonly #onError: (err: unknown) => void;
  #running = false;
  #closed = false;
  #idleWaiters: Array<() => void> = [];

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Queued items, not counting the one running. */
  get size(): number {
    return this.#queue.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues an item; returns false (and drops it) once the mailbox is closed. */
  enqueue(item: MailboxItem): boolean {
    if (this.#closed) return false;
    this.#queue.push(item);
    if (!this.#running) void this.#run();
    return true;
  }

  /** Stops accepting items; items already queued still run. */
  close(): void {
    this.#closed = true;
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        try {
          await item();
        } catch (err) {
          this.#onError(err);
        }
      }
    } finally {
      this.#running = false;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
