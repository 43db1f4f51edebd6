/**
 * Runs a ProcessFunction on a stream that is not keyed (as Flink's ProcessOperator): per-record logic
 * with the record's timestamp, the current processing time and watermark, and side outputs. Records it
 * emits (main or side) carry the input record's timestamp. Registering a timer throws: timers need a
 * key (keyBy(...).process(KeyedProcessFunction)).
 */
import type { Collector, TimerServiceApi } from '../../api/functions.js';
import type { OutputTag } from '../../api/output-tag.js';
import type { ProcessContext, ProcessFunction } from '../../api/process-function.js';
import type { OperatorContext, Output, StreamOperator } from './operator.js';
import { runtimeContext } from './runtime-context.js';

export class ProcessOperator implements StreamOperator {
  #out!: Output<unknown>;
  #timestamp: number | undefined;
  readonly #collector: Collector<unknown> = { collect: (v) => this.#out.collect(v, this.#timestamp) };
  #context!: ProcessContext;

  constructor(readonly fn: ProcessFunction<unknown, unknown>) {}

  open(ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
    const noTimers = (): never => {
      throw new Error(
        `timers are only supported on keyed streams: use keyBy(...).process(...) (operator '${ctx.operatorName}')`,
      );
    };
    const timerService: TimerServiceApi = {
      currentProcessingTime: () => ctx.processingTime(),
      currentWatermark: () => ctx.currentWatermark(),
      registerEventTimeTimer: noTimers,
      registerProcessingTimeTimer: noTimers,
      deleteEventTimeTimer: noTimers,
      deleteProcessingTimeTimer: noTimers,
    };
    this.#context = {
      timestamp: () => this.#timestamp,
      timerService: () => timerService,
      output: <X>(tag: OutputTag<X>, value: X) => this.#out.sideOutput?.(tag.id, value, this.#timestamp),
    };
    this.fn.open?.(runtimeContext(ctx));
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    this.#timestamp = timestamp;
    this.fn.processElement(value, this.#context, this.#collector);
  }

  close(): void {
    this.fn.close?.();
  }
}
