/**
 * Window assigners (tumbling and sliding, in event time or processing time) and the window type.
 */
import type { Collector } from './functions.js';

export class TimeWindow {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  /** The last timestamp that belongs to the window. */
  maxTimestamp(): number {
    return this.end - 1;
  }

  toString(): string {
    return `TimeWindow{start=${this.start}, end=${this.end}}`;
  }
}

export class WindowAssigner {
  protected constructor(
    readonly kind: 'tumbling' | 'sliding',
    readonly eventTime: boolean,
    readonly sizeMs: number,
    readonly slideMs: number,
    readonly offsetMs: number,
  ) {
    if (!(sizeMs > 0)) throw new RangeError('window size must be > 0 ms');
    if (!(slideMs > 0)) throw new RangeError('window slide must be > 0 ms');
  }

  /** The windows an element with this timestamp belongs to. */
  assignWindows(timestamp: number): TimeWindow[] {
    const lastStart =
      timestamp - ((((timestamp - this.offsetMs) % this.slideMs) + this.slideMs) % this.slideMs);
    const windows: TimeWindow[] = [];
    for (let start = lastStart; start > timestamp - this.sizeMs; start -= this.slideMs) {
      windows.push(new TimeWindow(start, start + this.sizeMs));
    }
    return windows;
  }
}

export class TumblingEventTimeWindows extends WindowAssigner {
  static of(sizeMs: number, offsetMs = 0): TumblingEventTimeWindows {
    return new TumblingEventTimeWindows('tumbling', true, sizeMs, sizeMs, offsetMs);
  }
}

export class SlidingEventTimeWindows extends WindowAssigner {
  static of(sizeMs: number, slideMs: number, offsetMs = 0): SlidingEventTimeWindows {
    return new SlidingEventTimeWindows('sliding', true, sizeMs, slideMs, offsetMs);
  }
}

export class TumblingProcessingTimeWindows extends WindowAssigner {
  static of(sizeMs: number, offsetMs = 0): TumblingProcessingTimeWindows {
    return new TumblingProcessingTimeWindows('tumbling', false, sizeMs, sizeMs, offsetMs);
  }
}

export class SlidingProcessingTimeWindows extends WindowAssigner {
  static of(sizeMs: number, slideMs: number, offsetMs = 0): SlidingProcessingTimeWindows {
    return new SlidingProcessingTimeWindows('sliding', false, sizeMs, slideMs, offsetMs);
  }
}

export interface ProcessWindowContext {
  readonly window: TimeWindow;
  currentWatermark(): number;
  currentProcessingTime(): number;
}

/** Gets all elements of a window at once, with the window's key and bounds. */
export interface ProcessWindowFunction<IN, OUT, K> {
  process(key: K, context: ProcessWindowContext, elements: IN[], out: Collector<OUT>): void;
}
