import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Source, SourceContext } from '../connector.js';
import { SplitReader } from './split-positions.js';

export interface GeneratorSourceOptions {
  /** Records per second per subtask; unlimited when absent. */
  ratePerSecond?: number;
}

/**
 * A deterministic generator: record i (0 ≤ i < count, or unbounded when count is Infinity) is
 * `generate(i)`. Subtask s of p produces the indexes i ≡ s (mod p), so the whole sequence is produced
 * exactly once at any parallelism.
 *
 * Checkpoints store each subtask's next index (`{ parallelism, subtask, next }`); after a restore, at any
 * parallelism, the subtasks produce exactly the indexes that were not produced before the checkpoint.
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
    // Per-subtask state lives in the reader (the source object is shared by the subtasks of a process).
    const reader = new SplitReader(ctx.parallelism, ctx.subtaskIndex, 0, ctx.restoredState, this.name);
    ctx.onCheckpoint(() => reader.snapshot());
    const p = ctx.parallelism;
    const started = Date.now();
    let emitted = 0;
    let skipped = 0;
    reader.next = reader.firstOfShareFrom(reader.next);
    while (reader.next < this.#count) {
      const i = reader.next;
      // Advanced before any await: a snapshot taken there must not cover index i again.
      reader.next = i + p;
      if (reader.emittedBefore(i)) {
        if (++skipped % 10_000 === 0) {
          await yieldToEventLoop();
          ctx.signal.throwIfAborted();
        }
        continue;
      }
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
