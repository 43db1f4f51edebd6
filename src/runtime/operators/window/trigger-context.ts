/**
 * The TriggerContext a window operator hands its trigger, per window: timers of the current key, and
 * trigger state per key and window in one keyed MapState ([window, state name] → value), so it is in
 * checkpoints and moves with its key group. Deleting a timer does nothing: timers are per key and time,
 * shared by the key's windows (see triggers.ts); a timer that fires for nothing is harmless.
 */
import type { ValueStateDescriptor } from '../../../api/functions.js';
import type { OnMergeContext, TriggerContext } from '../../../api/windowing/triggers.js';
import type { Window } from '../../../api/windows.js';
import type { MapState, ValueState } from '../../state/keyed-state-backend.js';
import type { TimerService } from '../../state/timer-service.js';
import { type WindowKey, windowKey } from './window-keys.js';

export class TriggerContexts {
  constructor(
    readonly state: MapState<[WindowKey, string], unknown>,
    readonly timers: TimerService,
    readonly now: () => number,
  ) {}

  of(window: Window): TriggerContext {
    const wk = windowKey(window);
    const timers = this.timers;
    return {
      getCurrentProcessingTime: this.now,
      getCurrentWatermark: () => timers.currentWatermark,
      registerEventTimeTimer: (t) => timers.registerEventTimeTimer(t),
      registerProcessingTimeTimer: (t) => timers.registerProcessingTimeTimer(t),
      deleteEventTimeTimer: () => {},
      deleteProcessingTimeTimer: () => {},
      getPartitionedState: <T>(d: ValueStateDescriptor<T>) => this.#valueState<T>(wk, d),
    };
  }

  /** The context for `onMerge(merged)`: merges state of the `absorbed` windows into the merged one's. */
  onMerge(merged: Window, absorbed: readonly Window[]): OnMergeContext {
    const target = windowKey(merged);
    return {
      ...this.of(merged),
      mergePartitionedState: <T>(d: ValueStateDescriptor<T>, combine: (a: T, b: T) => T) => {
        let acc = this.state.get([target, d.name]) as T | undefined;
        for (const w of absorbed) {
          const k: [WindowKey, string] = [windowKey(w), d.name];
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
    const wk = JSON.stringify(windowKey(window));
    for (const k of this.state.keys()) if (JSON.stringify(k[0]) === wk) this.state.remove(k);
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
