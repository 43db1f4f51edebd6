/**
 * Aligns checkpoint barriers over a task's input channels (as Flink's aligned checkpoints):
 * - exactly-once: a channel that delivered checkpoint n's barrier is blocked (its frames wait in the input
 *   gate, its sender runs out of credit) until every channel delivered it, so no record after the barrier
 *   reaches the state taken for n;
 * - at-least-once: nothing is blocked; the snapshot is taken when the last barrier arrives (records after
 *   an early barrier may be in it, and are replayed after a restore: duplicates, never loss).
 * An ended channel counts as aligned. A barrier of a newer checkpoint abandons an older alignment (that
 * checkpoint was aborted upstream); barriers of older or finished checkpoints are ignored.
 */
export interface ChannelBlocker {
  block(channel: number): void;
  unblockAll(): void;
}

export class BarrierAligner {
  readonly #channels: number;
  readonly #exactlyOnce: boolean;
  readonly #gate: ChannelBlocker;
  readonly #onAligned: (checkpointId: number, target: string) => void;
  readonly #ended = new Set<number>();
  #pending: { id: number; target: string; seen: Set<number> } | undefined;
  /** The newest checkpoint aligned (or abandoned): its late barriers, and older ones, are ignored. */
  #last = 0;

  constructor(
    channels: number,
    exactlyOnce: boolean,
    gate: ChannelBlocker,
    onAligned: (checkpointId: number, target: string) => void,
  ) {
    this.#channels = channels;
    this.#exactlyOnce = exactlyOnce;
    this.#gate = gate;
    this.#onAligned = onAligned;
  }

  /** The checkpoint being aligned, if any. */
  get pending(): number | undefined {
    return this.#pending?.id;
  }

  onBarrier(channel: number, checkpointId: number, target: string): void {
    if (checkpointId <= this.#last) return;
    let pending = this.#pending;
    if (pending !== undefined && checkpointId < pending.id) return;
    if (pending !== undefined && checkpointId > pending.id) {
      this.#last = pending.id;
      this.#gate.unblockAll();
      pending = undefined;
    }
    if (pending === undefined) {
      pending = { id: checkpointId, target, seen: new Set() };
      this.#pending = pending;
    }
    pending.seen.add(channel);
    if (this.#exactlyOnce) this.#gate.block(channel);
    this.#maybeAligned();
  }

  onEnd(channel: number): void {
    this.#ended.add(channel);
    this.#maybeAligned();
  }

  #maybeAligned(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    let aligned = pending.seen.size;
    for (const c of this.#ended) if (!pending.seen.has(c)) aligned++;
    if (aligned < this.#channels) return;
    this.#pending = undefined;
    this.#last = pending.id;
    // The snapshot (and the barrier forwarded downstream) come before any record of a blocked channel.
    this.#onAligned(pending.id, pending.target);
    if (this.#exactlyOnce) this.#gate.unblockAll();
  }
}
