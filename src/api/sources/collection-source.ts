import type { Source, SourceContext } from '../connector.js';

const BATCH = 1_000;

/** The elements of an in-memory collection, in order (not parallel, as in Flink). */
export class CollectionSource<T> implements Source<T> {
  readonly name = 'Collection Source';
  readonly maxParallelism = 1;
  readonly #elements: readonly T[];

  constructor(elements: Iterable<T>) {
    this.#elements = [...elements];
  }

  async run(ctx: SourceContext<T>): Promise<void> {
    for (let i = 0; i < this.#elements.length; i++) {
      ctx.collect(this.#elements[i] as T);
      if (i % BATCH === BATCH - 1 || !ctx.writable) {
        await ctx.ready();
        ctx.signal.throwIfAborted();
      }
    }
  }
}
