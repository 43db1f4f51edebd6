/**
 * Joins of two streams (Flink's names):
 * - window join: `a.join(b).where(keyA).equalTo(keyB).window(assigner).apply(joinFunction)` — every pair
 *   of elements with equal keys in the same window; and `coGroup` (same shape, `apply` gets both lists).
 *   As in Flink, a coGroup is built from existing parts: each input is tagged with its side (a map), the
 *   two are unioned, keyed by their side's key, windowed, and a window function splits the window's
 *   elements by side. So windowed joins get the window operator's state, checkpoints and lateness.
 * - interval join: `a.keyBy(..).intervalJoin(b.keyBy(..)).between(lower, upper).process(fn)` — a
 *   two-input keyed operator (see interval-join-operator.ts), in event time.
 * Refuses: streams of different environments, bounds with lower > upper, functions of the wrong shape.
 */
import type { CoGroupFunction, JoinFunction, ProcessJoinFunction } from './co-functions.js';
import { ConnectedStreams, requireMethods } from './connected-streams.js';
import type { DataStream, KeyedStream } from './datastream.js';
import type { KeySelector } from './functions.js';
import type { WindowAssigner } from './windows.js';

/** An element of either input of a coGroup, tagged with its side (0: first, 1: second). */
export interface TaggedUnion {
  side: 0 | 1;
  value: unknown;
}

function assignerName(assigner: WindowAssigner): string {
  const kind = assigner.kind === 'tumbling' ? 'Tumbling' : 'Sliding';
  const domain = assigner.eventTime ? 'Event' : 'Processing';
  return `${kind}${domain}TimeWindows(${assigner.sizeMs})`;
}

/** The window coGroup both window joins and coGroups run as. */
function windowedCoGroup<T1, T2, K, R>(
  first: DataStream<T1>,
  second: DataStream<T2>,
  key1: KeySelector<T1, K>,
  key2: KeySelector<T2, K>,
  assigner: WindowAssigner,
  allowedLatenessMs: number,
  name: string,
  fn: CoGroupFunction<T1, T2, R>,
): DataStream<R> {
  if (first.environment !== second.environment) {
    throw new Error(`${name}: streams belong to different environments`);
  }
  const left = first.map((value): TaggedUnion => ({ side: 0, value })).name(`${name}: Tag Input 1`);
  const right = second.map((value): TaggedUnion => ({ side: 1, value })).name(`${name}: Tag Input 2`);
  return left
    .union(right)
    .keyBy((t) => (t.side === 0 ? key1(t.value as T1) : key2(t.value as T2)))
    .window(assigner)
    .allowedLateness(allowedLatenessMs)
    .process<R>({
      process(_key, _ctx, elements, out) {
        const a: T1[] = [];
        const b: T2[] = [];
        for (const t of elements) {
          if (t.side === 0) a.push(t.value as T1);
          else b.push(t.value as T2);
        }
        fn(a, b, out);
      },
    })
    .name(`${name}(${assignerName(assigner)})`);
}

export class JoinedStreams<T1, T2> {
  constructor(
    readonly first: DataStream<T1>,
    readonly second: DataStream<T2>,
  ) {}

  where<K>(key1: KeySelector<T1, K>) {
    return {
      equalTo: (key2: KeySelector<T2, K>) => ({
        window: (assigner: WindowAssigner) =>
          new WindowedJoin<T1, T2, K>(this.first, this.second, key1, key2, assigner),
      }),
    };
  }
}

export class WindowedJoin<T1, T2, K> {
  #allowedLatenessMs = 0;
  constructor(
    readonly first: DataStream<T1>,
    readonly second: DataStream<T2>,
    readonly key1: KeySelector<T1, K>,
    readonly key2: KeySelector<T2, K>,
    readonly assigner: WindowAssigner,
  ) {}

  allowedLateness(ms: number): this {
    this.#allowedLatenessMs = ms;
    return this;
  }

  /** `fn(a, b)` for every pair of a window's elements with equal keys; results get the window's end - 1. */
  apply<R>(fn: JoinFunction<T1, T2, R>): DataStream<R> {
    if (typeof fn !== 'function')
      throw new TypeError('join(...).apply needs a JoinFunction (a, b) => result');
    return windowedCoGroup<T1, T2, K, R>(
      this.first,
      this.second,
      this.key1,
      this.key2,
      this.assigner,
      this.#allowedLatenessMs,
      'Window Join',
      (as, bs, out) => {
        for (const a of as) for (const b of bs) out.collect(fn(a, b));
      },
    );
  }
}

export class CoGroupedStreams<T1, T2> {
  constructor(
    readonly first: DataStream<T1>,
    readonly second: DataStream<T2>,
  ) {}

  where<K>(key1: KeySelector<T1, K>) {
    return {
      equalTo: (key2: KeySelector<T2, K>) => ({
        window: (assigner: WindowAssigner) => ({
          apply: <R>(fn: CoGroupFunction<T1, T2, R>): DataStream<R> => {
            if (typeof fn !== 'function') throw new TypeError('coGroup(...).apply needs a CoGroupFunction');
            return windowedCoGroup<T1, T2, K, R>(
              this.first,
              this.second,
              key1,
              key2,
              assigner,
              0,
              'Window CoGroup',
              fn,
            );
          },
        }),
      }),
    };
  }
}

export class IntervalJoin<T1, T2, K> {
  constructor(
    readonly left: KeyedStream<T1, K>,
    readonly right: KeyedStream<T2, K>,
  ) {}

  /** Joins `l` and `r` when `l.ts + lowerMs <= r.ts <= l.ts + upperMs` (both bounds inclusive by default). */
  between(lowerMs: number, upperMs: number): IntervalJoined<T1, T2, K> {
    if (!Number.isFinite(lowerMs) || !Number.isFinite(upperMs) || lowerMs > upperMs) {
      throw new RangeError(
        `intervalJoin: between(lower, upper) needs lower <= upper, got (${lowerMs}, ${upperMs})`,
      );
    }
    return new IntervalJoined<T1, T2, K>(this.left, this.right, lowerMs, upperMs);
  }
}

export class IntervalJoined<T1, T2, K> {
  #lowerExclusive = false;
  #upperExclusive = false;
  constructor(
    readonly left: KeyedStream<T1, K>,
    readonly right: KeyedStream<T2, K>,
    readonly lowerMs: number,
    readonly upperMs: number,
  ) {}

  lowerBoundExclusive(): this {
    this.#lowerExclusive = true;
    return this;
  }

  upperBoundExclusive(): this {
    this.#upperExclusive = true;
    return this;
  }

  process<R>(fn: ProcessJoinFunction<T1, T2, R>): DataStream<R> {
    requireMethods(fn, ['processElement'], 'ProcessJoinFunction');
    const lower = this.#lowerExclusive ? this.lowerMs + 1 : this.lowerMs;
    const upper = this.#upperExclusive ? this.upperMs - 1 : this.upperMs;
    if (lower > upper) {
      throw new RangeError(
        `intervalJoin: the exclusive bounds leave no interval (${this.lowerMs}, ${this.upperMs})`,
      );
    }
    return new ConnectedStreams<T1, T2>(this.left, this.right).transform<R>('Interval Join', {
      kind: 'intervalJoin',
      lowerMs: this.lowerMs,
      upperMs: this.upperMs,
      lowerExclusive: this.#lowerExclusive,
      upperExclusive: this.#upperExclusive,
      fn: fn as ProcessJoinFunction<unknown, unknown, unknown>,
    });
  }
}
