/**
 * Triggers (as Flink's): a trigger decides when a window's contents are evaluated (FIRE) and when they
 * are dropped (PURGE). The window operator calls it for every element added to a window, for timers, and
 * when session windows merge.
 *
 * Built in: EventTimeTrigger (fires when the watermark passes the window's end, and again for each late
 * element within the allowed lateness), ProcessingTimeTrigger (when the wall clock does), CountTrigger
 * (every n elements), PurgingTrigger (turns another trigger's FIRE into FIRE_AND_PURGE), and the never
 * firing default of GlobalWindows.
 *
 * Timers are per key and time, shared by a key's windows: `onEventTime` / `onProcessingTime` may be
 * called for a time this trigger did not register for this window (a timer of another window of the
 * key), so a trigger checks the time, as the built-in ones do. Deleting a timer another window of the key
 * also uses would stop that window's firing, so the built-in triggers never delete timers; a timer that
 * fires for nothing is harmless. Trigger state (`getPartitionedState`) is per key and window, kept in
 * keyed state: it is in checkpoints and follows its key group when a job is rescaled.
 */

import { ErrorCode, SluiceError } from '../../common/errors.js';
import { ValueStateDescriptor } from '../functions.js';
import type { ValueState } from '../state.js';
import type { Window } from './window.js';

export const TriggerResult = {
  CONTINUE: 'CONTINUE',
  FIRE: 'FIRE',
  PURGE: 'PURGE',
  FIRE_AND_PURGE: 'FIRE_AND_PURGE',
} as const;
export type TriggerResult = (typeof TriggerResult)[keyof typeof TriggerResult];

export interface TriggerContext {
  getCurrentProcessingTime(): number;
  getCurrentWatermark(): number;
  registerEventTimeTimer(time: number): void;
  registerProcessingTimeTimer(time: number): void;
  deleteEventTimeTimer(time: number): void;
  deleteProcessingTimeTimer(time: number): void;
  /** State of this trigger for the current key and window. */
  getPartitionedState<T>(descriptor: ValueStateDescriptor<T>): ValueState<T>;
}

export interface OnMergeContext extends TriggerContext {
  /**
   * Combines this state of the windows being merged into the merged window's (Flink's
   * mergePartitionedState, which takes the combining function from a ReducingStateDescriptor).
   */
  mergePartitionedState<T>(descriptor: ValueStateDescriptor<T>, combine: (a: T, b: T) => T): void;
}

export abstract class Trigger<W extends Window = Window> {
  abstract onElement(element: unknown, timestamp: number, window: W, ctx: TriggerContext): TriggerResult;
  abstract onEventTime(time: number, window: W, ctx: TriggerContext): TriggerResult;
  abstract onProcessingTime(time: number, window: W, ctx: TriggerContext): TriggerResult;
  /** Whether the trigger works with merging (session) windows. */
  canMerge(): boolean {
    return false;
  }
  /** Windows were merged into `window`: combine their trigger state, re-register timers. */
  onMerge(_window: W, _ctx: OnMergeContext): void {
    throw new SluiceError(ErrorCode.InvalidJob, `${this.toString()} does not support merging windows`);
  }
  /** The window is dropped: clear its trigger state. */
  abstract clear(window: W, ctx: TriggerContext): void;
  abstract toString(): string;
}

/** Fires once the watermark passes the window's end; again for each late element (allowed lateness). */
export class EventTimeTrigger extends Trigger {
  private constructor() {
    super();
  }
  static create(): EventTimeTrigger {
    return new EventTimeTrigger();
  }
  onElement(_element: unknown, _timestamp: number, window: Window, ctx: TriggerContext): TriggerResult {
    if (window.maxTimestamp() <= ctx.getCurrentWatermark()) return TriggerResult.FIRE;
    ctx.registerEventTimeTimer(window.maxTimestamp());
    return TriggerResult.CONTINUE;
  }
  onEventTime(time: number, window: Window): TriggerResult {
    return time === window.maxTimestamp() ? TriggerResult.FIRE : TriggerResult.CONTINUE;
  }
  onProcessingTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  override canMerge(): boolean {
    return true;
  }
  override onMerge(window: Window, ctx: OnMergeContext): void {
    if (window.maxTimestamp() > ctx.getCurrentWatermark()) ctx.registerEventTimeTimer(window.maxTimestamp());
  }
  clear(): void {}
  toString(): string {
    return 'EventTimeTrigger()';
  }
}

/** Fires once the wall clock passes the window's end. */
export class ProcessingTimeTrigger extends Trigger {
  private constructor() {
    super();
  }
  static create(): ProcessingTimeTrigger {
    return new ProcessingTimeTrigger();
  }
  onElement(_element: unknown, _timestamp: number, window: Window, ctx: TriggerContext): TriggerResult {
    ctx.registerProcessingTimeTimer(window.maxTimestamp());
    return TriggerResult.CONTINUE;
  }
  onEventTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  onProcessingTime(time: number, window: Window): TriggerResult {
    return time === window.maxTimestamp() ? TriggerResult.FIRE : TriggerResult.CONTINUE;
  }
  override canMerge(): boolean {
    return true;
  }
  override onMerge(window: Window, ctx: OnMergeContext): void {
    ctx.registerProcessingTimeTimer(window.maxTimestamp());
  }
  clear(): void {}
  toString(): string {
    return 'ProcessingTimeTrigger()';
  }
}

const COUNT = new ValueStateDescriptor<number>('count', 0);
const add = (a: number, b: number) => a + b;

/** Fires every `maxCount` elements of a window (the count then starts again). */
export class CountTrigger extends Trigger {
  private constructor(readonly maxCount: number) {
    super();
  }
  static of(maxCount: number): CountTrigger {
    if (!Number.isInteger(maxCount) || maxCount < 1) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `CountTrigger needs a whole count >= 1, got ${String(maxCount)}`,
      );
    }
    return new CountTrigger(maxCount);
  }
  onElement(_element: unknown, _timestamp: number, _window: Window, ctx: TriggerContext): TriggerResult {
    const count = ctx.getPartitionedState(COUNT);
    const n = (count.value() ?? 0) + 1;
    if (n >= this.maxCount) {
      count.clear();
      return TriggerResult.FIRE;
    }
    count.update(n);
    return TriggerResult.CONTINUE;
  }
  onEventTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  onProcessingTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  override canMerge(): boolean {
    return true;
  }
  override onMerge(_window: Window, ctx: OnMergeContext): void {
    ctx.mergePartitionedState(COUNT, add);
  }
  clear(_window: Window, ctx: TriggerContext): void {
    ctx.getPartitionedState(COUNT).clear();
  }
  toString(): string {
    return `CountTrigger(${this.maxCount})`;
  }
}

/** Another trigger whose every FIRE becomes FIRE_AND_PURGE: the window's contents go after each firing. */
export class PurgingTrigger<W extends Window = Window> extends Trigger<W> {
  private constructor(readonly nested: Trigger<W>) {
    super();
  }
  static of<W extends Window>(nested: Trigger<W>): PurgingTrigger<W> {
    if (!(nested instanceof Trigger)) {
      throw new SluiceError(ErrorCode.InvalidJob, 'PurgingTrigger.of needs a Trigger');
    }
    return new PurgingTrigger(nested);
  }
  static #purging(result: TriggerResult): TriggerResult {
    return result === TriggerResult.FIRE ? TriggerResult.FIRE_AND_PURGE : result;
  }
  onElement(element: unknown, timestamp: number, window: W, ctx: TriggerContext): TriggerResult {
    return PurgingTrigger.#purging(this.nested.onElement(element, timestamp, window, ctx));
  }
  onEventTime(time: number, window: W, ctx: TriggerContext): TriggerResult {
    return PurgingTrigger.#purging(this.nested.onEventTime(time, window, ctx));
  }
  onProcessingTime(time: number, window: W, ctx: TriggerContext): TriggerResult {
    return PurgingTrigger.#purging(this.nested.onProcessingTime(time, window, ctx));
  }
  override canMerge(): boolean {
    return this.nested.canMerge();
  }
  override onMerge(window: W, ctx: OnMergeContext): void {
    this.nested.onMerge(window, ctx);
  }
  clear(window: W, ctx: TriggerContext): void {
    this.nested.clear(window, ctx);
  }
  toString(): string {
    return `PurgingTrigger(${this.nested.toString()})`;
  }
}

/** The default trigger of GlobalWindows: never fires (set one with `.trigger(...)`). */
export class NeverTrigger extends Trigger {
  onElement(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  onEventTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  onProcessingTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  override canMerge(): boolean {
    return true;
  }
  override onMerge(): void {}
  clear(): void {}
  toString(): string {
    return 'NeverTrigger()';
  }
}
