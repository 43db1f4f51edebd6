/** The windows elements are assigned to: a time interval, or the one global window. */
const END_OF_TIME = Number.MAX_SAFE_INTEGER;

export class TimeWindow {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  /** The last timestamp that belongs to the window. */
  maxTimestamp(): number {
    return this.end - 1;
  }

  /** Whether the windows overlap or touch (session windows that do are merged). */
  intersects(other: TimeWindow): boolean {
    return this.start <= other.end && this.end >= other.start;
  }

  /** The smallest window that covers both. */
  cover(other: TimeWindow): TimeWindow {
    return new TimeWindow(Math.min(this.start, other.start), Math.max(this.end, other.end));
  }

  toString(): string {
    return `TimeWindow{start=${this.start}, end=${this.end}}`;
  }
}

/** The one window of GlobalWindows: every element of a key; it ends at the end of time. */
export class GlobalWindow {
  static readonly #instance = new GlobalWindow();
  private constructor() {}

  static get(): GlobalWindow {
    return GlobalWindow.#instance;
  }

  maxTimestamp(): number {
    return END_OF_TIME;
  }

  toString(): string {
    return 'GlobalWindow';
  }
}

export type Window = TimeWindow | GlobalWindow;
