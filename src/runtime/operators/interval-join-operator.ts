/**
 * Interval join of two keyed streams in event time (as Flink's IntervalJoinOperator): a left element `l`
 * and a right element `r` with the same key are joined when
 * `l.ts + lower <= r.ts <= l.ts + upper` (a bound marked exclusive is moved in by 1 ms). Each pair is
 * given to the ProcessJoinFunction once, with timestamp `max(l.ts, r.ts)`.
 *
 * State: per key and side a MapState (element timestamp → elements), so checkpoints capture it and a
 * rescaled job gets its key groups. An element is buffered until the watermark passes the last time a
 * partner could still come: a left element until `l.ts + upper`, a right one until `r.ts - lower`; an
 * event-time timer at that time + 1 removes it (state is cleaned up as the watermark passes).
 *
 * Refuses: elements without a timestamp (the job fails: assign timestamps first). Drops, as Flink, late
 * elements (timestamp below the current watermark), counted in `droppedLate`.
 */
import type { ProcessJoinContext, ProcessJoinFunction } from '../../api/co-functions.js';
import type { Collector } from '../../api/functions.js';
import type { TwoInputSpec } from '../../api/two-input-specs.js';
import type { MapState } from '../state/keyed-state-backend.js';
import type { OperatorContext, Output } from './operator.js';
import { runtimeContext } from './runtime-context.js';
import type { TwoInputStreamOperator } from './two-input-operator.js';

export type IntervalJoinSpec = Extract<TwoInputSpec, { kind: 'intervalJoin' }>;

/** Names of the keyed MapStates holding each side's buffered elements (timestamp → elements). */
export const LEFT_BUFFER = 'interval-join-left';
export const RIGHT_BUFFER = 'interval-join-right';

export class IntervalJoinOperator implements TwoInputStreamOperator {
  readonly lowerMs: number;
  readonly upperMs: number;
  readonly fn: ProcessJoinFunction<unknown, unknown, unknown>;
  #ctx!: OperatorContext;
  #out!: Output<unknown>;
  #left!: MapState<number, unknown[]>;
  #right!: MapState<number, unknown[]>;
  #droppedLate = 0;
  #leftTs = 0;
  #rightTs = 0;
  readonly #joinContext: ProcessJoinContext = {
    getLeftTimestamp: () => this.#leftTs,
    getRightTimestamp: () => this.#rightTs,
    getTimestamp: () => Math.max(this.#leftTs, this.#rightTs),
  };
  readonly #collector: Collector<unknown> = {
    collect: (v) => this.#out.collect(v, Math.max(this.#leftTs, this.#rightTs)),
  };

  constructor(spec: IntervalJoinSpec) {
    this.lowerMs = spec.lowerExclusive ? spec.lowerMs + 1 : spec.lowerMs;
    this.upperMs = spec.upperExclusive ? spec.upperMs - 1 : spec.upperMs;
    if (!Number.isFinite(this.lowerMs) || !Number.isFinite(this.upperMs) || this.lowerMs > this.upperMs) {
      throw new RangeError(
        `interval join bounds must be finite with lower <= upper (after exclusive bounds), got [${this.lowerMs}, ${this.upperMs}]`,
      );
    }
    this.fn = spec.fn;
  }

  /** Elements dropped because they came after the watermark passed their timestamp. */
  get droppedLate(): number {
    return this.#droppedLate;
  }

  open(ctx: OperatorContext, output: Output<unknown>): void {
    if (!ctx.keyedState) {
      throw new Error(
        `intervalJoin needs two keyed streams: a.keyBy(...).intervalJoin(b.keyBy(...)) (operator '${ctx.operatorName}')`,
      );
    }
    this.#ctx = ctx;
    this.#out = output;
    this.#left = ctx.keyedState.mapState<number, unknown[]>(LEFT_BUFFER);
    this.#right = ctx.keyedState.mapState<number, unknown[]>(RIGHT_BUFFER);
    ctx.timers.setHandler({
      onEventTime: (timestamp) => this.#cleanUp(timestamp),
      onProcessingTime: () => undefined,
    });
    this.fn.open?.(runtimeContext(ctx));
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    this.processElement1(value, timestamp);
  }

  processElement1(value: unknown, timestamp: number | undefined): void {
    const ts = this.#checkTimestamp(timestamp);
    if (this.#isLate(ts)) return;
    this.#buffer(this.#left, ts, value);
    this.#leftTs = ts;
    for (const [rts, rights] of this.#right.entries()) {
      if (rts < ts + this.lowerMs || rts > ts + this.upperMs) continue;
      this.#rightTs = rts;
      for (const r of rights) this.fn.processElement(value, r, this.#joinContext, this.#collector);
    }
    this.#ctx.timers.registerEventTimeTimer(ts + this.upperMs + 1);
  }

  processElement2(value: unknown, timestamp: number | undefined): void {
    const ts = this.#checkTimestamp(timestamp);
    if (this.#isLate(ts)) return;
    this.#buffer(this.#right, ts, value);
    this.#rightTs = ts;
    for (const [lts, lefts] of this.#left.entries()) {
      if (ts < lts + this.lowerMs || ts > lts + this.upperMs) continue;
      this.#leftTs = lts;
      for (const l of lefts) this.fn.processElement(l, value, this.#joinContext, this.#collector);
    }
    this.#ctx.timers.registerEventTimeTimer(ts - this.lowerMs + 1);
  }

  processWatermark(watermark: number): void {
    this.#ctx.timers.advanceWatermark(watermark);
    this.#out.emitWatermark(watermark);
  }

  close(): void {
    this.#ctx?.timers.close();
    this.fn.close?.();
  }

  #checkTimestamp(timestamp: number | undefined): number {
    if (timestamp === undefined) {
      throw new Error(
        `interval join needs event time: elements have no timestamp; call assignTimestampsAndWatermarks(...) on both inputs (operator '${this.#ctx.operatorName}')`,
      );
    }
    return timestamp;
  }

  #isLate(ts: number): boolean {
    const late = ts < this.#ctx.timers.currentWatermark;
    if (late) this.#droppedLate++;
    return late;
  }

  #buffer(state: MapState<number, unknown[]>, ts: number, value: unknown): void {
    const bucket = state.get(ts);
    if (bucket) bucket.push(value);
    else state.put(ts, [value]);
  }

  /** The timer's key is current: drop the buffered elements no later element can join any more. */
  #cleanUp(timerTs: number): void {
    for (const lts of this.#left.keys()) if (lts + this.upperMs + 1 <= timerTs) this.#left.remove(lts);
    for (const rts of this.#right.keys()) if (rts - this.lowerMs + 1 <= timerTs) this.#right.remove(rts);
    if (this.#left.isEmpty()) this.#left.clear();
    if (this.#right.isEmpty()) this.#right.clear();
  }
}
