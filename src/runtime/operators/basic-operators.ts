/**
 * Stateless one-input operators (map, flatMap, filter), the keyed rolling reduce, and the operator that
 * assigns timestamps and generates watermarks.
 */
import type {
  Collector,
  FilterFunction,
  FlatMapFunction,
  MapFunction,
  ReduceFunction,
} from '../../api/functions.js';
import type { WatermarkStrategy } from '../../api/watermarks.js';
import type { ValueState } from '../state/keyed-state-backend.js';
import { MAX_WATERMARK, type OperatorContext, type Output, type StreamOperator } from './operator.js';

export class MapOperator implements StreamOperator {
  #out!: Output<unknown>;
  constructor(readonly fn: MapFunction<unknown, unknown>) {}
  open(_ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
  }
  processElement(value: unknown, timestamp: number | undefined): void {
    this.#out.collect(this.fn(value), timestamp);
  }
}

export class FilterOperator implements StreamOperator {
  #out!: Output<unknown>;
  constructor(readonly fn: FilterFunction<unknown>) {}
  open(_ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
  }
  processElement(value: unknown, timestamp: number | undefined): void {
    if (this.fn(value)) this.#out.collect(value, timestamp);
  }
}

export class FlatMapOperator implements StreamOperator {
  #out!: Output<unknown>;
  #timestamp: number | undefined;
  readonly #collector: Collector<unknown> = { collect: (v) => this.#out.collect(v, this.#timestamp) };
  constructor(readonly fn: FlatMapFunction<unknown, unknown>) {}
  open(_ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
  }
  processElement(value: unknown, timestamp: number | undefined): void {
    this.#timestamp = timestamp;
    const result = this.fn(value, this.#collector);
    if (result) for (const r of result) this.#out.collect(r, timestamp);
  }
}

/** Keyed rolling reduce: the key's value so far, combined with each record and emitted. */
export class ReduceOperator implements StreamOperator {
  #out!: Output<unknown>;
  #state!: ValueState<unknown>;
  constructor(readonly fn: ReduceFunction<unknown>) {}
  open(ctx: OperatorContext, output: Output<unknown>): void {
    if (!ctx.keyedState) throw new Error('reduce needs a keyed stream (keyBy before it)');
    this.#out = output;
    this.#state = ctx.keyedState.valueState('reduce');
  }
  processElement(value: unknown, timestamp: number | undefined): void {
    const current = this.#state.value();
    const next = current === undefined ? value : this.fn(current, value);
    this.#state.update(next);
    this.#out.collect(next, timestamp);
  }
}

/**
 * Assigns event timestamps and emits bounded-out-of-orderness watermarks: periodically, and the maximum
 * watermark when the input ends. Incoming watermarks are replaced by its own.
 */
export class TimestampsAndWatermarksOperator implements StreamOperator {
  #out!: Output<unknown>;
  #maxTimestamp = Number.NEGATIVE_INFINITY;
  #lastEmitted = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  constructor(readonly strategy: WatermarkStrategy<unknown>) {}

  open(ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
    if (this.strategy.kind !== 'none') {
      this.#timer = setInterval(() => {
        // The watermark runs through the chain (windows may fire) and into the output gates, outside the
        // task's loop: an error there (a user function, a gate that failed) fails the task.
        try {
          this.#emitWatermark();
        } catch (err) {
          this.#stop();
          if (!ctx.fail) throw err;
          ctx.fail(err);
        }
      }, this.strategy.autoWatermarkIntervalMs);
      this.#timer.unref();
    }
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    const assigner = this.strategy.timestampAssigner;
    const ts = assigner ? assigner(value, timestamp) : timestamp;
    if (ts !== undefined && ts > this.#maxTimestamp) this.#maxTimestamp = ts;
    this.#out.collect(value, ts);
  }

  processWatermark(): void {
    // Upstream watermarks are superseded by the ones generated here.
  }

  endInput(): void {
    this.#stop();
    if (this.strategy.kind !== 'none') this.#out.emitWatermark(MAX_WATERMARK);
  }

  close(): void {
    this.#stop();
  }

  #emitWatermark(): void {
    if (this.#maxTimestamp === Number.NEGATIVE_INFINITY) return;
    const watermark = this.#maxTimestamp - this.strategy.maxOutOfOrdernessMs - 1;
    if (watermark > this.#lastEmitted) {
      this.#lastEmitted = watermark;
      this.#out.emitWatermark(watermark);
    }
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
