/**
 * Windows and window assigners (as Flink's): time windows (tumbling and sliding, in event time or
 * processing time), the base class every assigner extends, and the process-window function shape.
 * Session windows and global windows live in `windowing/`; triggers in `windowing/triggers.ts`.
 *
 * Sizes, slides and gaps are checked when the program builds its graph: anything but a finite number
 * of milliseconds > 0 is refused with a SluiceError (INVALID_JOB) naming the value.
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { Collector } from './functions.js';
import type { OutputTag } from './output-tag.js';
import { EventTimeTrigger, ProcessingTimeTrigger, type Trigger } from './windowing/triggers.js';
import { TimeWindow, type Window } from './windowing/window.js';

/** The largest timestamp (the global window's end; Sluice's MAX_WATERMARK). */

export { GlobalWindow, TimeWindow, type Window } from './windowing/window.js';

/** Refuses a size, slide or gap that is not a finite number of milliseconds > 0. */
export function checkPositiveMs(what: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SluiceError(
      ErrorCode.InvalidJob,
      `${what} must be a finite number of milliseconds > 0, got ${String(value)}`,
    );
  }
  return value;
}

/** Puts each element into zero or more windows; its default trigger says when they fire. */
export abstract class WindowAssigner<W extends Window = Window> {
  /** Whether windows close by event time (watermarks) rather than the wall clock or a count. */
  abstract readonly eventTime: boolean;

  /** Session windows: a key's windows that overlap are merged into one, with merged state. */
  get isMerging(): boolean {
    return false;
  }

  /** The windows an element with this timestamp (event time or processing time) belongs to. */
  abstract assignWindows(timestamp: number): W[];

  /** The trigger used unless `.trigger(...)` sets another. */
  abstract getDefaultTrigger(): Trigger<W>;

  /** As Flink names the assigner in operator names, e.g. `TumblingEventTimeWindows(5000)`. */
  abstract toString(): string;
}

/** Tumbling (slide = size) and sliding windows of a fixed size. */
export class FixedSizeTimeWindows extends WindowAssigner<TimeWindow> {
  protected constructor(
    readonly kind: 'tumbling' | 'sliding',
    readonly eventTime: boolean,
    readonly sizeMs: number,
    readonly slideMs: number,
    readonly offsetMs: number,
  ) {
    super();
    checkPositiveMs('window size', sizeMs);
    checkPositiveMs('window slide', slideMs);
    if (!Number.isFinite(offsetMs)) {
      throw new SluiceError(ErrorCode.InvalidJob, `window offset must be finite, got ${String(offsetMs)}`);
    }
  }

  assignWindows(timestamp: number): TimeWindow[] {
    const lastStart =
      timestamp - ((((timestamp - this.offsetMs) % this.slideMs) + this.slideMs) % this.slideMs);
    const windows: TimeWindow[] = [];
    for (let start = lastStart; start > timestamp - this.sizeMs; start -= this.slideMs) {
      windows.push(new TimeWindow(start, start + this.sizeMs));
    }
    return windows;
  }

  getDefaultTrigger(): Trigger<TimeWindow> {
    return this.eventTime ? EventTimeTrigger.create() : ProcessingTimeTrigger.create();
  }

  toString(): string {
    const name = `${this.kind === 'tumbling' ? 'Tumbling' : 'Sliding'}${this.eventTime ? 'Event' : 'Processing'}TimeWindows`;
    return this.kind === 'tumbling' ? `${name}(${this.sizeMs})` : `${name}(${this.sizeMs}, ${this.slideMs})`;
  }
}

export class TumblingEventTimeWindows extends FixedSizeTimeWindows {
  static of(sizeMs: number, offsetMs = 0): TumblingEventTimeWindows {
    return new TumblingEventTimeWindows('tumbling', true, sizeMs, sizeMs, offsetMs);
  }
}

export class SlidingEventTimeWindows extends FixedSizeTimeWindows {
  static of(sizeMs: number, slideMs: number, offsetMs = 0): SlidingEventTimeWindows {
    return new SlidingEventTimeWindows('sliding', true, sizeMs, slideMs, offsetMs);
  }
}

export class TumblingProcessingTimeWindows extends FixedSizeTimeWindows {
  static of(sizeMs: number, offsetMs = 0): TumblingProcessingTimeWindows {
    return new TumblingProcessingTimeWindows('tumbling', false, sizeMs, sizeMs, offsetMs);
  }
}

export class SlidingProcessingTimeWindows extends FixedSizeTimeWindows {
  static of(sizeMs: number, slideMs: number, offsetMs = 0): SlidingProcessingTimeWindows {
    return new SlidingProcessingTimeWindows('sliding', false, sizeMs, slideMs, offsetMs);
  }
}

export interface ProcessWindowContext<W extends Window = TimeWindow> {
  readonly window: W;
  currentWatermark(): number;
  currentProcessingTime(): number;
  /** Emits to a side output (read with `getSideOutput(tag)`), with the window's last timestamp. */
  output<X>(tag: OutputTag<X>, value: X): void;
}

/** Gets all elements of a window at once, with the window's key and bounds. */
export interface ProcessWindowFunction<IN, OUT, K, W extends Window = TimeWindow> {
  process(key: K, context: ProcessWindowContext<W>, elements: IN[], out: Collector<OUT>): void;
}
