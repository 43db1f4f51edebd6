/**
 * Keyed tumbling and sliding windows, in event time or processing time (as Flink's WindowOperator with
 * the default EventTimeTrigger / ProcessingTimeTrigger).
 *
 * State: one MapState per key ('window-contents'), window start → the window's contents: the reduced
 * value (reduce, reduce-process), the accumulator (aggregate) or the list of elements (process). It
 * lives in the keyed state backend, so checkpoints capture it. A window's end is its start plus the
 * assigner's size.
 *
 * Firing: a timer at `window.maxTimestamp()` (event-time or processing-time, for the window's key)
 * emits the window's result with timestamp `maxTimestamp()`. The window's state is dropped at its
 * cleanup time: `maxTimestamp() + allowedLateness` in event time (a second timer when lateness > 0),
 * `maxTimestamp()` in processing time.
 *
 * Late data (event time): an element is not added to a window whose cleanup time the watermark has
 * reached (`maxTimestamp() + allowedLateness <= watermark`). An element that gets into no window for
 * that reason is counted in `droppedLate` (Flink's numLateRecordsDropped; a sliding-window element that
 * still fits a newer window is not counted). An element for a window the watermark passed but whose
 * lateness has not run out updates the window and fires it again at once, with the updated result.
 *
 * Ordering: windows fired by one watermark are emitted by window end, then key, and before the
 * watermark is forwarded. At end of input every remaining window fires, in the same order.
 */
import type { Collector } from '../../api/functions.js';
import type { TransformationSpec, WindowFunctionSpec } from '../../api/transformation.js';
import { type ProcessWindowFunction, TimeWindow, type WindowAssigner } from '../../api/windows.js';
import { keyString } from '../state/key-groups.js';
import type { KeyedStateBackend, MapState } from '../state/keyed-state-backend.js';
import { MAX_WATERMARK, type OperatorContext, type Output, type StreamOperator } from './operator.js';

export type WindowOperatorSpec = Extract<TransformationSpec, { kind: 'window' }>;

/** Name of the keyed MapState holding each key's windows (window start → contents). */
export const WINDOW_STATE_NAME = 'window-contents';

interface FiredWindow {
  window: TimeWindow;
  key: unknown;
  results: unknown[];
}

export class WindowOperator implements StreamOperator {
  readonly assigner: WindowAssigner;
  readonly function: WindowFunctionSpec;
  readonly allowedLatenessMs: number;
  #ctx!: OperatorContext;
  #out!: Output<unknown>;
  #keyed!: KeyedStateBackend;
  #contents!: MapState<number, unknown>;
  #droppedLate = 0;
  #loggedLate = false;
  /** While a watermark fires timers: the fired windows, emitted sorted once every due timer has run. */
  #firing: FiredWindow[] | undefined;

  constructor(spec: WindowOperatorSpec) {
    if (!(spec.allowedLatenessMs >= 0)) throw new RangeError('allowed lateness must be >= 0 ms');
    this.assigner = spec.assigner;
    this.function = spec.fn;
    this.allowedLatenessMs = spec.allowedLatenessMs;
  }

  /** Elements dropped because every window they belong to was past its allowed lateness. */
  get droppedLate(): number {
    return this.#droppedLate;
  }

  open(ctx: OperatorContext, output: Output<unknown>): void {
    if (!ctx.keyedState) {
      throw new Error(
        `window() needs a keyed stream: call keyBy() before window() (operator '${ctx.operatorName}')`,
      );
    }
    this.#ctx = ctx;
    this.#out = output;
    this.#keyed = ctx.keyedState;
    this.#contents = ctx.keyedState.mapState<number, unknown>(WINDOW_STATE_NAME);
    // Event-time windows only register event-time timers, processing-time windows only processing-time
    // ones; either way the timer service has set the timer's key before the callback.
    ctx.timers.setHandler({
      onEventTime: (timestamp, key) => this.#onTimer(timestamp, key),
      onProcessingTime: (timestamp, key) => this.#onTimer(timestamp, key),
    });
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    const eventTime = this.assigner.eventTime;
    let time: number;
    if (eventTime) {
      if (timestamp === undefined) {
        throw new Error(
          `event-time windows need timestamps: call assignTimestampsAndWatermarks(...) before keyBy/window (operator '${this.#ctx.operatorName}')`,
        );
      }
      time = timestamp;
    } else {
      time = this.#ctx.processingTime();
    }
    const timers = this.#ctx.timers;
    const watermark = timers.currentWatermark;
    let added = false;
    for (const window of this.assigner.assignWindows(time)) {
      const cleanupTime = this.#cleanupTime(window);
      if (eventTime && cleanupTime <= watermark) continue; // late beyond allowed lateness
      added = true;
      this.#add(window, value);
      if (!eventTime) {
        timers.registerProcessingTimeTimer(window.maxTimestamp());
        continue;
      }
      if (window.maxTimestamp() <= watermark) {
        // Late, but within the allowed lateness: the window fired already; it fires again with this
        // element (Flink's EventTimeTrigger).
        const key = this.#keyed.currentKey;
        this.#emit({ window, key, results: this.#results(window, key) });
      } else {
        timers.registerEventTimeTimer(window.maxTimestamp());
      }
      if (cleanupTime !== window.maxTimestamp()) timers.registerEventTimeTimer(cleanupTime);
    }
    if (!added && eventTime && time + this.allowedLatenessMs <= watermark) this.#dropLate(time, watermark);
  }

  /** Fires the windows the watermark closes (their results first, by window end then key), then forwards it. */
  processWatermark(watermark: number): void {
    this.#advance(watermark);
    this.#out.emitWatermark(watermark);
  }

  /**
   * Every input has ended: every window still held fires, by window end then key.
   *
   * Event time: as Flink at the end of a bounded input, event time advances to the end of time. Usually
   * MAX_WATERMARK has arrived before (the watermark generator sends it when its input ends) and nothing
   * is left; without a watermark strategy it has not, and the windows fire here. No watermark is
   * emitted: downstream operators end their own input next.
   *
   * Processing time: the windows are drained too (their results are emitted, their timers cancelled)
   * rather than lost with the timers when the task closes, as Flink does for bounded input in BATCH
   * execution (where a key's processing-time timers all fire when its input ends). A streaming Flink job
   * would drop them; a bounded Sluice job would then lose its last windows.
   */
  endInput(): void {
    if (this.assigner.eventTime) {
      this.#advance(MAX_WATERMARK);
      return;
    }
    const keys: unknown[] = [];
    for (const entry of this.#keyed.entries()) if (entry.state === WINDOW_STATE_NAME) keys.push(entry.key);
    const held: Array<{ key: unknown; window: TimeWindow }> = [];
    for (const key of keys) {
      this.#keyed.setCurrentKey(key);
      for (const start of this.#contents.keys()) held.push({ key, window: this.#window(start) });
    }
    held.sort((a, b) => a.window.end - b.window.end || compareKeys(a.key, b.key));
    for (const { key, window } of held) {
      this.#keyed.setCurrentKey(key);
      this.#emit({ window, key, results: this.#results(window, key) });
      this.#removeWindow(window);
      this.#ctx.timers.deleteProcessingTimeTimer(window.maxTimestamp());
    }
  }

  close(): void {
    this.#ctx?.timers.close();
  }

  #advance(watermark: number): void {
    const fired: FiredWindow[] = [];
    this.#firing = fired;
    try {
      this.#ctx.timers.advanceWatermark(watermark);
    } finally {
      this.#firing = undefined;
    }
    // Timers fire by timestamp; at equal timestamps, order by key so the output is deterministic.
    fired.sort((a, b) => a.window.end - b.window.end || compareKeys(a.key, b.key));
    for (const f of fired) this.#emit(f);
  }

  /** A timer of the current key (`key`): fires the window ending there, drops the one whose cleanup is due. */
  #onTimer(timestamp: number, key: unknown): void {
    for (const start of this.#contents.keys()) {
      const window = this.#window(start);
      if (window.maxTimestamp() === timestamp) {
        this.#emit({ window, key, results: this.#results(window, key) });
      }
      if (this.#cleanupTime(window) === timestamp) this.#removeWindow(window);
    }
  }

  #emit(fired: FiredWindow): void {
    if (this.#firing) {
      this.#firing.push(fired);
      return;
    }
    const timestamp = fired.window.maxTimestamp();
    for (const r of fired.results) this.#out.collect(r, timestamp);
  }

  #add(window: TimeWindow, value: unknown): void {
    const contents = this.#contents;
    const start = window.start;
    const has = contents.contains(start);
    const fn = this.function;
    switch (fn.kind) {
      case 'reduce':
      case 'reduce-process':
        contents.put(start, has ? fn.reduce(contents.get(start), value) : value);
        break;
      case 'aggregate': {
        const acc = has ? contents.get(start) : fn.aggregate.createAccumulator();
        contents.put(start, fn.aggregate.add(value, acc));
        break;
      }
      case 'process': {
        const elements = has ? (contents.get(start) as unknown[]) : [];
        elements.push(value);
        contents.put(start, elements);
        break;
      }
    }
  }

  /** The window's result(s) for the current key, from its state (which stays). */
  #results(window: TimeWindow, key: unknown): unknown[] {
    const contents = this.#contents.get(window.start);
    const fn = this.function;
    switch (fn.kind) {
      case 'reduce':
        return [contents];
      case 'aggregate':
        return [fn.aggregate.getResult(contents)];
      case 'process':
        return this.#process(fn.process, key, window, [...(contents as unknown[])]);
      case 'reduce-process':
        return this.#process(fn.process, key, window, [contents]);
    }
  }

  #process(
    fn: ProcessWindowFunction<unknown, unknown, unknown>,
    key: unknown,
    window: TimeWindow,
    elements: unknown[],
  ): unknown[] {
    const results: unknown[] = [];
    const out: Collector<unknown> = { collect: (v) => void results.push(v) };
    const ctx = this.#ctx;
    fn.process(
      key,
      {
        window,
        currentWatermark: () => ctx.timers.currentWatermark,
        currentProcessingTime: () => ctx.processingTime(),
      },
      elements,
      out,
    );
    return results;
  }

  #removeWindow(window: TimeWindow): void {
    this.#contents.remove(window.start);
    // Leave no empty map behind for the key: a key without windows holds no state.
    if (this.#contents.isEmpty()) this.#contents.clear();
  }

  #window(start: number): TimeWindow {
    return new TimeWindow(start, start + this.assigner.sizeMs);
  }

  /** When a window's state goes: capped at MAX_WATERMARK, so the final watermark clears everything. */
  #cleanupTime(window: TimeWindow): number {
    if (!this.assigner.eventTime) return window.maxTimestamp();
    return Math.min(window.maxTimestamp() + this.allowedLatenessMs, MAX_WATERMARK);
  }

  #dropLate(timestamp: number, watermark: number): void {
    this.#droppedLate++;
    if (this.#loggedLate) return;
    this.#loggedLate = true;
    this.#ctx.log.debug(
      { operator: this.#ctx.operatorName, timestamp, watermark, allowedLatenessMs: this.allowedLatenessMs },
      'dropping elements that arrive after their windows closed (allowed lateness exceeded); further drops are only counted',
    );
  }
}

/** Orders keys of the same primitive type naturally, anything else by their canonical string. */
function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === typeof b && (typeof a === 'number' || typeof a === 'string' || typeof a === 'bigint')) {
    return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  }
  const sa = keyString(a);
  const sb = keyString(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}
