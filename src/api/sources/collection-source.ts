import type { Source, SourceContext } from '../connector.js';

const BATCH = 1_000;

/**
 * The elements of an in-memory collection, in order (not parallel, as in Flink). Checkpoints store the
 * index of the next element (`{ next }`); a restored run starts there.
 */
export class CollectionSource<T> implements Source<T> {
  readonly name = 'Collection Source';
  readonly maxParallelism = 1;
  readonly #elements: readonly T[];

  constructor(elements: Iterable<T>) {
    this.#elements = [...elements];
  }

  async run(ctx: SourceContext<T>): Promise<void> {
    let next = restoredNext(ctx.restoredState, this.name);
    ctx.onCheckpoint(() => ({ next }));
    while (next < this.#elements.length) {
      const i = next++;
      ctx.collect(this.#elements[i] as T);
      if (i % BATCH === BATCH - 1 || !ctx.writable) {
        await ctx.ready();
        ctx.signal.throwIfAborted();
      }
    }
  }
}

function restoredNext(restored: readonly unknown[] | undefined, what: string): number {
  const state = restored?.find((s) => s !== undefined && s !== null) as { next?: unknown } | undefined;
  if (state === undefined) return 0;
  if (typeof state !== 'object' || !Number.isSafeInteger(state.next) || (state.next as number) < 0) {
    throw new Error(`${what}: cannot restore from the checkpointed state ${JSON.stringify(state)}`);
  }
  return state.next as number;
}
