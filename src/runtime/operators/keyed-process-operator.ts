/**
 * Runs a KeyedProcessFunction (as Flink's KeyedProcessOperator): per-record logic with keyed state and
 * per-key event-time and processing-time timers.
 *
 * Timestamps of emitted records, as Flink: records emitted while processing an element carry that
 * element's timestamp; records emitted from an event-time timer carry the timer's timestamp; records
 * emitted from a processing-time timer carry none (a wall-clock time is not an event time).
 */
import type {
  Collector,
  KeyedProcessContext,
  KeyedProcessFunction,
  OnTimerContext,
} from '../../api/functions.js';
import type { OutputTag } from '../../api/output-tag.js';
import type { OperatorContext, Output, StreamOperator } from './operator.js';
import { keyedTimerService, runtimeContext } from './runtime-context.js';

type TimeDomain = 'EVENT_TIME' | 'PROCESSING_TIME';

export class KeyedProcessOperator implements StreamOperator {
  #ctx!: OperatorContext;
  #out!: Output<unknown>;
  /** Timestamp of the element being processed (what `ctx.timestamp()` returns while processing it). */
  #elementTimestamp: number | undefined;
  /** Timestamp given to records the function emits now. */
  #outputTimestamp: number | undefined;
  #timerTimestamp = 0;
  #timeDomain: TimeDomain = 'EVENT_TIME';
  readonly #collector: Collector<unknown> = { collect: (v) => this.#out.collect(v, this.#outputTimestamp) };
  #processContext!: KeyedProcessContext<unknown>;
  #onTimerContext!: OnTimerContext<unknown>;

  constructor(readonly fn: KeyedProcessFunction<unknown, unknown, unknown>) {}

  open(ctx: OperatorContext, output: Output<unknown>): void {
    if (!ctx.keyedState) {
      throw new Error(
        `process() with a KeyedProcessFunction needs a keyed stream: call keyBy() before it (operator '${ctx.operatorName}')`,
      );
    }
    this.#ctx = ctx;
    this.#out = output;
    const keyed = ctx.keyedState;
    const timers = ctx.timers;
    const timerService = keyedTimerService(ctx);
    const sideOutput = <X>(tag: OutputTag<X>, value: X) =>
      this.#out.sideOutput?.(tag.id, value, this.#outputTimestamp);
    this.#processContext = {
      timestamp: () => this.#elementTimestamp,
      getCurrentKey: () => keyed.currentKey,
      timerService: () => timerService,
      output: sideOutput,
    };
    this.#onTimerContext = {
      timestamp: () => this.#timerTimestamp,
      getCurrentKey: () => keyed.currentKey,
      timerService: () => timerService,
      timeDomain: () => this.#timeDomain,
      output: sideOutput,
    };
    timers.setHandler({
      onEventTime: (timestamp) => this.#onTimer(timestamp, 'EVENT_TIME'),
      onProcessingTime: (timestamp) => this.#onTimer(timestamp, 'PROCESSING_TIME'),
    });
    this.fn.open?.(runtimeContext(ctx));
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    this.#elementTimestamp = timestamp;
    this.#outputTimestamp = timestamp;
    this.fn.processElement(value, this.#processContext, this.#collector);
  }

  /** Fires the event-time timers the watermark passed (their output first), then forwards it. */
  processWatermark(watermark: number): void {
    this.#ctx.timers.advanceWatermark(watermark);
    this.#out.emitWatermark(watermark);
  }

  close(): void {
    this.#ctx?.timers.close();
    this.fn.close?.();
  }

  /** The timer service has set the timer's key as the current key. */
  #onTimer(timestamp: number, domain: TimeDomain): void {
    if (!this.fn.onTimer) return;
    this.#timerTimestamp = timestamp;
    this.#timeDomain = domain;
    this.#outputTimestamp = domain === 'EVENT_TIME' ? timestamp : undefined;
    this.fn.onTimer(timestamp, this.#onTimerContext, this.#collector);
  }
}
