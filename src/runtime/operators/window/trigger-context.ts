/**
 * The TriggerContext a window operator hands its trigger: timers of the current key, and trigger state
 * per key and window in one keyed MapState ([window name, state name] → value), so it is in checkpoints
 * and moves with its key group. One context object serves every call (the trigger is called for one
 * window at a time); `of(window)` points it at the window. Deleting a timer does nothing: timers are per
 * key and time, shared by the key's windows (see triggers.ts); a timer that fires for nothing is
 * harmless.
 */
import type { ValueStateDescriptor } from '../../../api/functions.js';
import type { OnMergeContext, TriggerContext } from '../../../api/windowing/triggers.js';
import type { Window } from '../../../api/windows.js';
import type { MapState, ValueState } from '../../state/keyed-state-backend.js';
import type { TimerService } from '../../state/timer-service.js';
import type { WindowKey, WindowNames } from './window-keys.js';

export class TriggerContexts {
  #window: WindowKey = 'global';
  /** The last event-time timer registered through the context (the operator skips registering it twice). */
  lastEventTimer: number | undefined;
  readonly #context: TriggerContext;

  constructor(
    readonly state: MapState<[WindowKey, string], unknown>,
    readonly timers: TimerService,
    readonly names: WindowNames,
    now: () => number,
  ) {
    this.#context = {
      getCurrentProcessingTime: now,
      getCurrentWatermark: () => timers.currentWatermark,
      registerEventTimeTimer: (t) => {
        this.lastEventTimer = t;
        timers.registerEventTimeTimer(t);
      },
      registerProcessingTimeTimer: (t) => timers.registerProcessingTimeTimer(t),
      deleteEventTimeTimer: () => {},
      deleteProcessingTimeTimer: () => {},
      getPartitionedState: <T>(d: ValueStateDescriptor<T>) => this.#valueState<T>(this.#window, d),
    };
  }

  of(window: Window): TriggerContext {
    this.#window = this.names.key(window);
    this.lastEventTimer = undefined;
    return this.#context;
  }

  /** The context for `onMerge(merged)`: merges state of the `absorbed` windows into the merged one's. */
  onMerge(merged: Window, absorbed: readonly Window[]): OnMergeContext {
    const target = this.names.key(merged);
    return {
      ...this.of(merged),
      mergePartitionedState: <T>(d: ValueStateDescriptor<T>, combine: (a: T, b: T) => T) => {
        let acc = this.state.get([target, d.name]) as T | undefined;
        for (const w of absorbed) {
          const k: [WindowKey, string] = [this.names.key(w), d.name];
          if (!this.state.contains(k)) continue;
          const v = this.state.get(k) as T;
          acc = acc === undefined ? v : combine(acc, v);
          this.state.remove(k);
        }
        if (acc !== undefined) this.state.put([target, d.name], acc);
      },
    };
  }

  /** Windows of the current key that hold trigger state. */
  windowKeys(): WindowKey[] {
    return this.state.keys().map(([wk]) => wk);
  }

  /** Drops whatever trigger state the window still holds. */
  clearWindow(window: Window): void {
    const wk = this.names.key(window);
    for (const k of this.state.keys()) if (k[0] === wk) this.state.remove(k);
    if (this.state.isEmpty()) this.state.clear();
  }

  #valueState<T>(wk: WindowKey, d: ValueStateDescriptor<T>): ValueState<T> {
    const k: [WindowKey, string] = [wk, d.name];
    const state = this.state;
    return {
      value: () => (state.contains(k) ? (state.get(k) as T) : d.defaultValue),
      update: (v) => state.put(k, v),
      clear: () => {
        state.remove(k);
        if (state.isEmpty()) state.clear();
      },
    };
  }
}
