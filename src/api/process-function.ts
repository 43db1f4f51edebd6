/**
 * Flink's ProcessFunction: per-element logic on a stream that is not keyed, with the element's
 * timestamp, the time service and side outputs. Timers need a key: registering one here throws (use
 * keyBy(...).process(KeyedProcessFunction) for timers), as in Flink.
 */
import type { Collector, RuntimeContext, TimerServiceApi } from './functions.js';
import type { OutputTag } from './output-tag.js';

export interface ProcessContext {
  /** Event time of the current element (undefined when it has none). */
  timestamp(): number | undefined;
  /** Current processing time and watermark; registering timers throws on a non-keyed stream. */
  timerService(): TimerServiceApi;
  /** Emits to a side output (read with `getSideOutput(tag)`), with the element's timestamp. */
  output<X>(tag: OutputTag<X>, value: X): void;
}

export interface ProcessFunction<IN, OUT> {
  open?(context: RuntimeContext): void;
  processElement(value: IN, ctx: ProcessContext, out: Collector<OUT>): void;
  close?(): void;
}
