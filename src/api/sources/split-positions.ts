/**
 * Checkpoint positions of the sources that split a numbered sequence of items (generator indexes,
 * JetStream stream sequences, line numbers) among their subtasks by number: subtask s of p takes the
 * items n ≡ s (mod p), in increasing order.
 *
 * A subtask's position says which of its items it has emitted: all those below `next`. After a restore at
 * another parallelism, a new subtask's share mixes items of several old subtasks, some of which may have
 * been emitted beyond its own `next`: until it has passed them, its position keeps the old positions
 * (`before`), so that a checkpoint taken then and restored again still knows them.
 */

/** A subtask's position, as stored in checkpoints (plain data). */
export interface SplitPosition {
  parallelism: number;
  subtask: number;
  /** Every item n ≡ subtask (mod parallelism) below `next` was emitted (or is not part of the read). */
  next: number;
  /** For sources that can seek: where item `next` starts (a byte offset in a file). */
  offset?: number;
  /**
   * Only after a restore, while this subtask is behind them: the positions restored (indexed by the old
   * subtask; null where an old subtask had stored nothing), for its items at or above `next` that the old
   * subtasks had already emitted.
   */
  before?: Array<SplitPosition | null>;
}

type Positions = Array<SplitPosition | null>;

/** Whether item `n` was emitted according to `positions` (one per old subtask, indexed by subtask). */
function emittedIn(positions: Positions, n: number): boolean {
  const p = positions[n % positions.length];
  if (!p) return false;
  if (n < p.next) return true;
  return p.before !== undefined && emittedIn(p.before, n);
}

/** Above this, no item was emitted according to `positions`. */
function upperBound(positions: Positions): number {
  let max = 0;
  for (const p of positions) {
    if (!p) continue;
    max = Math.max(max, p.next, p.before ? upperBound(p.before) : 0);
  }
  return max;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Checks and arranges restored positions: one entry per old subtask, by its subtask index. Undefined when
 * nothing is restored (a fresh start, or no old subtask had emitted anything).
 */
export function parsePositions(
  restored: readonly unknown[] | undefined,
  what: string,
): Positions | undefined {
  if (restored === undefined) return undefined;
  const present = restored.filter((s) => s !== undefined && s !== null);
  if (present.length === 0) return undefined;
  const bad = (why: string) => new Error(`${what}: cannot restore from the checkpointed state: ${why}`);
  const check = (s: unknown): SplitPosition => {
    const p = s as Partial<SplitPosition> | null;
    if (
      typeof p !== 'object' ||
      p === null ||
      !Number.isSafeInteger(p.parallelism) ||
      p.parallelism! < 1 ||
      !Number.isSafeInteger(p.subtask) ||
      p.subtask! < 0 ||
      p.subtask! >= p.parallelism! ||
      typeof p.next !== 'number' ||
      !(p.next >= 0)
    ) {
      throw bad(`not a position: ${JSON.stringify(s)}`);
    }
    return p as SplitPosition;
  };
  const arrange = (entries: readonly unknown[]): Positions => {
    const checked = entries.filter((s) => s !== undefined && s !== null).map(check);
    const parallelism = checked[0]!.parallelism;
    const out: Positions = new Array(parallelism).fill(null);
    for (const p of checked) {
      if (p.parallelism !== parallelism) throw bad('positions of different parallelisms');
      if (out[p.subtask]) throw bad(`two positions of subtask ${p.subtask}`);
      const before =
        Array.isArray(p.before) && p.before.some((b) => b !== null && b !== undefined)
          ? arrange(p.before)
          : undefined;
      if (p.offset !== undefined && !(Number.isSafeInteger(p.offset) && p.offset >= 0)) {
        throw bad(`not an offset: ${JSON.stringify(p.offset)}`);
      }
      out[p.subtask] = {
        parallelism,
        subtask: p.subtask,
        next: p.next,
        ...(p.offset !== undefined ? { offset: p.offset } : {}),
        ...(before ? { before } : {}),
      };
    }
    return out;
  };
  return arrange(present);
}

/** One subtask's share of the items and its position in them. */
export class SplitReader {
  /** The position: every item of this subtask's share below it was emitted. Advance it as items pass. */
  next: number;
  /** For sources that can seek: where item `next` starts (advance it with `next`). */
  offset: number | undefined;
  readonly parallelism: number;
  readonly subtask: number;
  #before: Positions | undefined;
  /** At and above this, no item was emitted before the restore. */
  readonly #upper: number;

  /**
   * @param first the first item of the read (0, or a stream's start sequence)
   * @param restored `ctx.restoredState`
   */
  constructor(
    parallelism: number,
    subtask: number,
    first: number,
    restored: readonly unknown[] | undefined,
    what: string,
  ) {
    this.parallelism = parallelism;
    this.subtask = subtask;
    const before = parsePositions(restored, what);
    if (before === undefined) {
      this.#before = undefined;
      this.#upper = 0;
      this.next = first;
      this.offset = undefined;
      return;
    }
    // Items of this share below the old positions of every old subtask whose share meets it were all
    // emitted: start there. (Old subtask k's share meets this one iff k ≡ subtask mod gcd of the two
    // parallelisms; at an unchanged parallelism, that is the same subtask only.)
    const oldP = before.length;
    const g = gcd(oldP, parallelism);
    let start = Number.POSITIVE_INFINITY;
    let offset: number | undefined;
    for (let k = 0; k < oldP; k++) {
      if (k % g !== subtask % g) continue;
      const next = before[k]?.next ?? 0;
      if (next < start) {
        start = next;
        offset = before[k]?.offset;
      }
    }
    this.#before = before;
    this.#upper = upperBound(before);
    this.next = Math.max(first, start);
    this.offset = this.next === start ? offset : undefined;
  }

  /** The first item of this share at or after `n`. */
  firstOfShareFrom(n: number): number {
    const r = (((this.subtask - n) % this.parallelism) + this.parallelism) % this.parallelism;
    return n + r;
  }

  /** Whether item `n` of this share was emitted before the restore (then it is skipped). */
  emittedBefore(n: number): boolean {
    if (this.#before === undefined || n >= this.#upper) return false;
    return emittedIn(this.#before, n);
  }

  /** Whether items at or above `n` may still have been emitted before the restore. */
  get restoring(): boolean {
    return this.#before !== undefined && this.next < this.#upper;
  }

  /** The position to store in a checkpoint. */
  snapshot(): SplitPosition {
    if (this.#before !== undefined && this.next >= this.#upper) this.#before = undefined;
    return {
      parallelism: this.parallelism,
      subtask: this.subtask,
      next: this.next,
      ...(this.offset !== undefined ? { offset: this.offset } : {}),
      ...(this.#before !== undefined ? { before: this.#before } : {}),
    };
  }
}
