import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Source, SourceContext } from '../connector.js';

export interface GeneratorSourceOptions {
  /** Records per second per subtask; unlimited when absent. */
  ratePerSecond?: number;
}

/**
 * A deterministic generator: record i (0 ≤ i < count, or unbounded when count is Infinity) is
 * `generate(i)`. Subtask s of p produces the indexes i ≡ s (mod p), so the whole sequence is produced
 * exactly once at any parallelism.
 */
export class GeneratorSource<T> implements Source<T> {
  readonly name = 'Generator Source';
  readonly #count: number;
  readonly #generate: (index: number) => T;
  readonly #rate: number | undefined;

  constructor(count: number, generate: (index: number) => T, options: GeneratorSourceOptions = {}) {
    if (!(count >= 0)) throw new RangeError('GeneratorSource count must be >= 0 (or Infinity)');
    this.#count = count;
    this.#generate = generate;
    this.#rate = options.ratePerSecond;
  }

  async run(ctx: SourceContext<T>): Promise<void> {
    const started = Date.now();
    let emitted = 0;
    for (let i = ctx.subtaskIndex; i < this.#count; i += ctx.parallelism) {
      ctx.collect(this.#generate(i));
      emitted++;
      if (this.#rate !== undefined) {
        const due = started + (emitted * 1_000) / this.#rate;
        const wait = due - Date.now();
        if (wait > 1) await sleep(wait, undefined, { signal: ctx.signal });
      }
      if (!ctx.writable) await ctx.ready();
      if (emitted % 1_000 === 0) {
        await yieldToEventLoop();
        ctx.signal.throwIfAborted();
      }
    }
  }
}
