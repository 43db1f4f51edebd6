/**
 * Keyed windows (as Flink's WindowOperator): any window assigner (tumbling, sliding, session, global),
 * with its default trigger or the one set by `.trigger(...)`, allowed lateness, and late data to a side
 * output.
 *
 * State (keyed state, so checkpoints capture it and a rescaled job moves it by key group):
 * - 'window-contents': MapState per key, window name (see window/window-keys.ts) → the window's contents
 *   (the reduced value, the accumulator, or the list of elements; see window/window-contents.ts);
 * - 'window-trigger-state': MapState per key, [window, state name] → a trigger's partitioned state (the
 *   CountTrigger's count).
 * A key's windows are the windows named in either. Timers (per key and time) live in the timer service.
 *
 * Elements: each goes to the windows the assigner gives for its timestamp (event time) or the current
 * processing time. Session windows (merging assigners) merge a new window with every window of the key
 * it overlaps: contents are combined, the trigger's state merged (`onMerge`), the old windows cleared.
 * Then the trigger's `onElement` decides: FIRE emits the window's result(s) at once, PURGE drops its
 * contents.
 *
 * Firing: a result carries the window's `maxTimestamp()` as its timestamp. Timers call the trigger for
 * each window of the timer's key; windows fired by one watermark (or at end of input) are emitted by
 * window end, then key, before the watermark is forwarded.
 *
 * Cleanup: a window's state goes at `maxTimestamp() + allowedLateness` in event time, at
 * `maxTimestamp()` in processing time; never for the global window (it lives until the job ends).
 *
 * Late data (event-time assigners only): an element is not added to a window whose cleanup time the
 * watermark has reached. One that gets into no window for that reason and is itself beyond the allowed
 * lateness goes to the late-data side output when `sideOutputLateData` set one, else it is dropped and
 * counted in `droppedLate` (Flink's numLateRecordsDropped). A late element within the allowed lateness
 * updates its window, and EventTimeTrigger fires the window again at once with the updated result.
 *
 * End of input: event time advances to the end of time (every event-time timer fires), then every
 * pending processing-time timer fires, in time order, as in a bounded (BATCH) Flink job; windows whose
 * trigger never fires (a count not reached) emit nothing, as in Flink.
 */
import type { Collector } from '../../api/functions.js';
import type { TransformationSpec, WindowFunctionSpec } from '../../api/transformation.js';
import { checkWindowSpec } from '../../api/windowing/check-window-spec.js';
import { TriggerResult as Result, type Trigger, type TriggerResult } from '../../api/windowing/triggers.js';
import type { TimeWindow, Window, WindowAssigner } from '../../api/windows.js';
import { keyString } from '../state/key-groups.js';
import type { KeyedStateBackend, MapState } from '../state/keyed-state-backend.js';
import { MAX_WATERMARK, type OperatorContext, type Output, type StreamOperator } from './operator.js';
import { TriggerContexts } from './window/trigger-context.js';
import { WindowContents } from './window/window-contents.js';
import { isTimeWindow, sameWindow, type WindowKey, WindowNames } from './window/window-keys.js';

export type WindowOperatorSpec = Extract<TransformationSpec, { kind: 'window' }>;

/** Name of the keyed MapState holding each key's windows (window → contents). */
export const WINDOW_STATE_NAME = 'window-contents';
/** Name of the keyed MapState holding trigger state ([window, state name] → value). */
export const TRIGGER_STATE_NAME = 'window-trigger-state';

interface Emission {
  /** Side output tag id; undefined for the main output. */
  tag: string | undefined;
  value: unknown;
}

interface FiredWindow {
  window: Window;
  key: unknown;
  results: Emission[];
}

type TimeDomain = 'event' | 'processing';

export class WindowOperator implements StreamOperator {
  readonly assigner: WindowAssigner;
  readonly trigger: Trigger;
  readonly function: WindowFunctionSpec;
  readonly allowedLatenessMs: number;
  readonly #contentsFn: WindowContents;
  readonly #lateDataTag: string | undefined;
  #ctx!: OperatorContext;
  #out!: Output<unknown>;
  #keyed!: KeyedStateBackend;
  #contents!: MapState<WindowKey, unknown>;
  #triggers!: TriggerContexts;
  readonly #names: WindowNames;
  #droppedLate = 0;
  #loggedLate = false;
  /** While a watermark (or end of input) fires timers: the fired windows, emitted sorted afterwards. */
  #firing: FiredWindow[] | undefined;

  constructor(spec: WindowOperatorSpec) {
    if (!(spec.allowedLatenessMs >= 0)) throw new RangeError('allowed lateness must be >= 0 ms');
    checkWindowSpec(spec);
    this.assigner = spec.assigner;
    this.trigger = spec.trigger ?? spec.assigner.getDefaultTrigger();
    this.function = spec.fn;
    this.allowedLatenessMs = spec.allowedLatenessMs;
    this.#contentsFn = new WindowContents(spec.fn, spec.keepLast);
    this.#lateDataTag = spec.lateDataTag?.id;
    this.#names = new WindowNames(spec.assigner);
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
    this.#contents = ctx.keyedState.mapState<WindowKey, unknown>(WINDOW_STATE_NAME);
    this.#triggers = new TriggerContexts(
      ctx.keyedState.mapState<[WindowKey, string], unknown>(TRIGGER_STATE_NAME),
      ctx.timers,
      this.#names,
      () => ctx.processingTime(),
    );
    // The timer service has set the timer's key before each callback.
    ctx.timers.setHandler({
      onEventTime: (timestamp, key) => this.#onTimer(timestamp, key, 'event'),
      onProcessingTime: (timestamp, key) => this.#onTimer(timestamp, key, 'processing'),
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
    const key = this.#keyed.currentKey;
    let skipped = true;
    for (const assigned of this.assigner.assignWindows(time)) {
      const window = this.assigner.isMerging ? this.#merge(assigned as TimeWindow) : assigned;
      if (this.#isLate(window)) continue;
      skipped = false;
      const wk = this.#names.key(window);
      this.#contents.put(wk, this.#contentsFn.add(this.#contents.get(wk), value));
      const result = this.trigger.onElement(value, timestamp ?? time, window, this.#triggers.of(window));
      // The trigger's timer at the window's end is often the cleanup timer too: register it once.
      const registered = this.#triggers.lastEventTimer;
      this.#act(result, window, key);
      if (registered === undefined || registered !== this.#cleanupTime(window))
        this.#registerCleanupTimer(window);
    }
    if (skipped && eventTime && time + this.allowedLatenessMs <= this.#ctx.timers.currentWatermark) {
      this.#late(value, time);
    }
  }

  /** Fires the windows the watermark closes (their results first, by window end then key), then forwards it. */
  processWatermark(watermark: number): void {
    this.#collectFired(() => this.#ctx.timers.advanceWatermark(watermark));
    this.#out.emitWatermark(watermark);
  }

  /**
   * Every input has ended. Event time advances to the end of time: usually MAX_WATERMARK has arrived
   * before (the watermark generator sends it) and nothing is left; without a watermark strategy it has
   * not, and the windows fire here. Then pending processing-time timers fire, rather than being lost when
   * the task closes (as Flink's BATCH execution of a bounded input). No watermark is emitted: downstream
   * operators end their own input next.
   */
  endInput(): void {
    this.#collectFired(() => this.#ctx.timers.advanceWatermark(MAX_WATERMARK));
    this.#collectFired(() => this.#ctx.timers.fireAllProcessingTimers());
  }

  close(): void {
    this.#ctx?.timers.close();
  }

  #collectFired(run: () => void): void {
    const fired: FiredWindow[] = [];
    this.#firing = fired;
    try {
      run();
    } finally {
      this.#firing = undefined;
    }
    // Timers fire by timestamp; at equal timestamps, order by key so the output is deterministic.
    fired.sort((a, b) => a.window.maxTimestamp() - b.window.maxTimestamp() || compareKeys(a.key, b.key));
    for (const f of fired) this.#emit(f);
  }

  /** A timer of the current key (`key`): asks the trigger about each window of the key, then cleans up. */
  #onTimer(timestamp: number, key: unknown, domain: TimeDomain): void {
    const cleanupDomain: TimeDomain = this.assigner.eventTime ? 'event' : 'processing';
    for (const window of this.#windowsOfKey()) {
      const ctx = this.#triggers.of(window);
      const result =
        domain === 'event'
          ? this.trigger.onEventTime(timestamp, window, ctx)
          : this.trigger.onProcessingTime(timestamp, window, ctx);
      this.#act(result, window, key);
      if (domain === cleanupDomain && this.#cleanupTime(window) <= timestamp) this.#clearWindow(window);
    }
  }

  #act(result: TriggerResult, window: Window, key: unknown): void {
    if (result === Result.CONTINUE) return;
    const wk = this.#names.key(window);
    const contents = this.#contents.get(wk);
    if ((result === Result.FIRE || result === Result.FIRE_AND_PURGE) && contents !== undefined) {
      this.#emit({ window, key, results: this.#results(window, key, contents) });
    }
    if (result === Result.PURGE || result === Result.FIRE_AND_PURGE) this.#removeContents(wk);
  }

  /**
   * Session windows: merges `window` with the key's windows it overlaps; returns the window the element
   * goes to. A late result is returned untouched (the caller skips it; it overlaps no window then, since
   * a window still held is not past its cleanup time).
   */
  #merge(window: TimeWindow): Window {
    const overlapping: TimeWindow[] = [];
    let merged = window;
    for (const w of this.#windowsOfKey()) {
      if (isTimeWindow(w) && w.intersects(window)) {
        overlapping.push(w);
        merged = merged.cover(w);
      }
    }
    if (this.#isLate(merged)) return merged;
    const absorbed = overlapping.filter((w) => !sameWindow(w, merged));
    if (absorbed.length === 0) return merged;
    absorbed.sort((a, b) => a.start - b.start);
    const target = this.#names.key(merged);
    let contents = this.#contents.get(target);
    for (const w of absorbed) {
      const wk = this.#names.key(w);
      contents = this.#contentsFn.merge(contents, this.#contents.get(wk));
      this.#contents.remove(wk);
    }
    if (contents !== undefined) this.#contents.put(target, contents);
    this.trigger.onMerge(merged, this.#triggers.onMerge(merged, absorbed));
    for (const w of absorbed) {
      this.trigger.clear(w, this.#triggers.of(w));
      this.#triggers.clearWindow(w);
    }
    this.#registerCleanupTimer(merged);
    return merged;
  }

  /** The current key's windows: those with contents or trigger state. */
  #windowsOfKey(): Window[] {
    const seen = new Set<string>();
    const windows: Window[] = [];
    const add = (wk: unknown) => {
      const id = keyString(wk);
      if (seen.has(id)) return;
      seen.add(id);
      windows.push(this.#names.window(wk));
    };
    for (const wk of this.#contents.keys()) add(wk);
    for (const wk of this.#triggers.windowKeys()) add(wk);
    return windows;
  }

  #emit(fired: FiredWindow): void {
    if (this.#firing) {
      this.#firing.push(fired);
      return;
    }
    const timestamp = fired.window.maxTimestamp();
    for (const r of fired.results) {
      if (r.tag === undefined) this.#out.collect(r.value, timestamp);
      else this.#out.sideOutput?.(r.tag, r.value, timestamp);
    }
  }

  /** The window's result(s) for the current key, from its contents (which stay unless purged). */
  #results(window: Window, key: unknown, contents: unknown): Emission[] {
    const evaluated = this.#contentsFn.evaluate(contents);
    if ('value' in evaluated) return [{ tag: undefined, value: evaluated.value }];
    const fn = this.function;
    if (fn.kind !== 'process' && fn.kind !== 'reduce-process') {
      throw new Error(`window function '${fn.kind}' has no process step`);
    }
    const results: Emission[] = [];
    const out: Collector<unknown> = { collect: (value) => void results.push({ tag: undefined, value }) };
    const ctx = this.#ctx;
    fn.process.process(
      key,
      {
        window: window as TimeWindow,
        currentWatermark: () => ctx.timers.currentWatermark,
        currentProcessingTime: () => ctx.processingTime(),
        output: (tag, value) => void results.push({ tag: tag.id, value }),
      },
      evaluated.elements,
      out,
    );
    return results;
  }

  #removeContents(wk: WindowKey): void {
    this.#contents.remove(wk);
    // Leave no empty map behind for the key: a key without windows holds no state.
    if (this.#contents.isEmpty()) this.#contents.clear();
  }

  #clearWindow(window: Window): void {
    this.#removeContents(this.#names.key(window));
    this.trigger.clear(window, this.#triggers.of(window));
    this.#triggers.clearWindow(window);
  }

  #isLate(window: Window): boolean {
    return this.assigner.eventTime && this.#cleanupTime(window) <= this.#ctx.timers.currentWatermark;
  }

  /** When a window's state goes: capped at MAX_WATERMARK, so the final watermark clears everything. */
  #cleanupTime(window: Window): number {
    if (!this.assigner.eventTime) return window.maxTimestamp();
    return Math.min(window.maxTimestamp() + this.allowedLatenessMs, MAX_WATERMARK);
  }

  #registerCleanupTimer(window: Window): void {
    const cleanup = this.#cleanupTime(window);
    if (this.assigner.eventTime) this.#ctx.timers.registerEventTimeTimer(cleanup);
    // The global window is never cleaned up (its end is the end of time).
    else if (cleanup < MAX_WATERMARK) this.#ctx.timers.registerProcessingTimeTimer(cleanup);
  }

  #late(value: unknown, timestamp: number): void {
    if (this.#lateDataTag !== undefined) {
      this.#out.sideOutput?.(this.#lateDataTag, value, timestamp);
      return;
    }
    this.#droppedLate++;
    if (this.#loggedLate) return;
    this.#loggedLate = true;
    this.#ctx.log.debug(
      {
        operator: this.#ctx.operatorName,
        timestamp,
        watermark: this.#ctx.timers.currentWatermark,
        allowedLatenessMs: this.allowedLatenessMs,
      },
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
