/**
 * Operators of `connect(...)`: CoStreamMap, CoStreamFlatMap, CoProcessOperator (non-keyed) and
 * KeyedCoProcessOperator (both inputs keyed alike: keyed state and per-key timers shared by the inputs).
 *
 * Timestamps of emitted records, as the one-input operators: the current element's timestamp; from an
 * event-time timer the timer's timestamp; from a processing-time timer none. Watermarks pass through
 * (after the timers they fire). Refuses: a KeyedCoProcessFunction on streams that are not both keyed.
 */
import type {
  CoFlatMapFunction,
  CoMapFunction,
  CoProcessContext,
  CoProcessFunction,
  KeyedCoProcessFunction,
} from '../../api/co-functions.js';
import type { Collector, KeyedProcessContext, OnTimerContext } from '../../api/functions.js';
import type { OutputTag } from '../../api/output-tag.js';
import type { OperatorContext, Output } from './operator.js';
import { keyedTimerService, runtimeContext } from './runtime-context.js';
import type { TwoInputStreamOperator } from './two-input-operator.js';

export class CoStreamMap implements TwoInputStreamOperator {
  #out!: Output<unknown>;
  constructor(readonly fn: CoMapFunction<unknown, unknown, unknown>) {}
  open(ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
    this.fn.open?.(runtimeContext(ctx));
  }
  processElement(value: unknown, timestamp: number | undefined): void {
    this.#out.collect(this.fn.map1(value), timestamp);
  }
  processElement1(value: unknown, timestamp: number | undefined): void {
    this.#out.collect(this.fn.map1(value), timestamp);
  }
  processElement2(value: unknown, timestamp: number | undefined): void {
    this.#out.collect(this.fn.map2(value), timestamp);
  }
  close(): void {
    this.fn.close?.();
  }
}

export class CoStreamFlatMap implements TwoInputStreamOperator {
  #out!: Output<unknown>;
  #timestamp: number | undefined;
  readonly #collector: Collector<unknown> = { collect: (v) => this.#out.collect(v, this.#timestamp) };
  constructor(readonly fn: CoFlatMapFunction<unknown, unknown, unknown>) {}
  open(ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
    this.fn.open?.(runtimeContext(ctx));
  }
  processElement(value: unknown, timestamp: number | undefined): void {
    this.processElement1(value, timestamp);
  }
  processElement1(value: unknown, timestamp: number | undefined): void {
    this.#timestamp = timestamp;
    const result = this.fn.flatMap1(value, this.#collector);
    if (result) for (const r of result) this.#out.collect(r, timestamp);
  }
  processElement2(value: unknown, timestamp: number | undefined): void {
    this.#timestamp = timestamp;
    const result = this.fn.flatMap2(value, this.#collector);
    if (result) for (const r of result) this.#out.collect(r, timestamp);
  }
  close(): void {
    this.fn.close?.();
  }
}

export class CoProcessOperator implements TwoInputStreamOperator {
  #out!: Output<unknown>;
  #timestamp: number | undefined;
  readonly #collector: Collector<unknown> = { collect: (v) => this.#out.collect(v, this.#timestamp) };
  #context!: CoProcessContext;
  constructor(readonly fn: CoProcessFunction<unknown, unknown, unknown>) {}
  open(ctx: OperatorContext, output: Output<unknown>): void {
    this.#out = output;
    const timerService = {
      currentProcessingTime: () => ctx.processingTime(),
      currentWatermark: () => ctx.currentWatermark(),
    };
    this.#context = { timestamp: () => this.#timestamp, timerService: () => timerService };
    this.fn.open?.(runtimeContext(ctx));
  }
  processElement(value: unknown, timestamp: number | undefined): void {
    this.processElement1(value, timestamp);
  }
  processElement1(value: unknown, timestamp: number | undefined): void {
    this.#timestamp = timestamp;
    this.fn.processElement1(value, this.#context, this.#collector);
  }
  processElement2(value: unknown, timestamp: number | undefined): void {
    this.#timestamp = timestamp;
    this.fn.processElement2(value, this.#context, this.#collector);
  }
  close(): void {
    this.fn.close?.();
  }
}

type TimeDomain = 'EVENT_TIME' | 'PROCESSING_TIME';

export class KeyedCoProcessOperator implements TwoInputStreamOperator {
  #ctx!: OperatorContext;
  #out!: Output<unknown>;
  #elementTimestamp: number | undefined;
  #outputTimestamp: number | undefined;
  #timerTimestamp = 0;
  #timeDomain: TimeDomain = 'EVENT_TIME';
  readonly #collector: Collector<unknown> = { collect: (v) => this.#out.collect(v, this.#outputTimestamp) };
  #processContext!: KeyedProcessContext<unknown>;
  #onTimerContext!: OnTimerContext<unknown>;

  constructor(readonly fn: KeyedCoProcessFunction<unknown, unknown, unknown, unknown>) {}

  open(ctx: OperatorContext, output: Output<unknown>): void {
    if (!ctx.keyedState) {
      throw new Error(
        `process() with a KeyedCoProcessFunction needs two keyed streams: connect two KeyedStreams or call keyBy(key1, key2) on the ConnectedStreams (operator '${ctx.operatorName}')`,
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
    this.processElement1(value, timestamp);
  }

  processElement1(value: unknown, timestamp: number | undefined): void {
    this.#elementTimestamp = timestamp;
    this.#outputTimestamp = timestamp;
    this.fn.processElement1(value, this.#processContext, this.#collector);
  }

  processElement2(value: unknown, timestamp: number | undefined): void {
    this.#elementTimestamp = timestamp;
    this.#outputTimestamp = timestamp;
    this.fn.processElement2(value, this.#processContext, this.#collector);
  }

  processWatermark(watermark: number): void {
    this.#ctx.timers.advanceWatermark(watermark);
    this.#out.emitWatermark(watermark);
  }

  close(): void {
    this.#ctx?.timers.close();
    this.fn.close?.();
  }

  #onTimer(timestamp: number, domain: TimeDomain): void {
    if (!this.fn.onTimer) return;
    this.#timerTimestamp = timestamp;
    this.#timeDomain = domain;
    this.#outputTimestamp = domain === 'EVENT_TIME' ? timestamp : undefined;
    this.fn.onTimer(timestamp, this.#onTimerContext, this.#collector);
  }
}
