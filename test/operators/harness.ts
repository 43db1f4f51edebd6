/**
 * Drives one keyed operator the way a stream task does: a real KeyedStateBackend and TimerService, the
 * current key set before each record, watermarks through `processWatermark` (or forwarded when the
 * operator has none), then `endInput` and `close`. Processing time is a manual clock; processing-time
 * timers run on a manual scheduler when the clock is advanced, so tests never sleep.
 */
import { type Logger, pino } from 'pino';
import {
  MAX_WATERMARK,
  type OperatorContext,
  type StreamOperator,
} from '../../src/runtime/operators/operator.js';
import type { TwoInputStreamOperator } from '../../src/runtime/operators/two-input-operator.js';
import { KeyedStateBackend } from '../../src/runtime/state/keyed-state-backend.js';
import { TimerService } from '../../src/runtime/state/timer-service.js';

export type Emitted =
  | { kind: 'record'; value: unknown; timestamp: number | undefined }
  | { kind: 'watermark'; watermark: number };

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock moved by hand and a scheduler whose tasks run, in time order, as the clock passes them. */
export class ManualTime {
  #now: number;
  #seq = 0;
  #tasks: Scheduled[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now = (): number => this.#now;

  schedule = (fn: () => void, delayMs: number): (() => void) => {
    const task: Scheduled = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    this.#tasks.push(task);
    return () => {
      task.cancelled = true;
    };
  };

  /** Scheduled tasks not yet run nor cancelled. */
  get pending(): number {
    return this.#tasks.filter((t) => !t.cancelled).length;
  }

  /** Moves the clock to `time`, running each due task at its own time, oldest first. */
  advanceTo(time: number): void {
    for (;;) {
      this.#tasks = this.#tasks.filter((t) => !t.cancelled);
      const due = this.#tasks.filter((t) => t.at <= time).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#tasks.splice(this.#tasks.indexOf(due), 1);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = Math.max(this.#now, time);
  }
}

export interface HarnessOptions<IN> {
  keySelector: (value: IN) => unknown;
  /** Two-input operators: the key of records of input 1 (default: `keySelector`; null: none, a broadcast input). */
  secondKeySelector?: ((value: never) => unknown) | null;
  maxParallelism?: number;
  /** Start of the manual processing-time clock. */
  startTime?: number;
  log?: Logger;
  /** No keyed state (to test that keyed operators refuse to open). */
  unkeyed?: boolean;
}

export class OperatorHarness<IN = unknown> {
  readonly output: Emitted[] = [];
  /** Records emitted to side outputs, by OutputTag id. */
  readonly side: Array<{ tag: string; value: unknown; timestamp: number | undefined }> = [];
  readonly backend: KeyedStateBackend | undefined;
  readonly timers: TimerService;
  readonly time: ManualTime;
  readonly ctx: OperatorContext;
  readonly errors: unknown[] = [];
  #watermark = Number.NEGATIVE_INFINITY;

  constructor(
    readonly operator: StreamOperator<IN, unknown>,
    readonly options: HarnessOptions<IN>,
  ) {
    this.time = new ManualTime(options.startTime ?? 0);
    this.backend = options.unkeyed ? undefined : new KeyedStateBackend(options.maxParallelism ?? 128);
    this.timers = new TimerService({
      keyed: this.backend,
      now: this.time.now,
      schedule: this.time.schedule,
      onError: (err) => this.errors.push(err),
    });
    this.ctx = {
      jobId: 'job',
      operatorUid: 'op',
      operatorName: 'test operator',
      subtaskIndex: 0,
      parallelism: 1,
      maxParallelism: options.maxParallelism ?? 128,
      log: options.log ?? pino({ level: 'silent' }),
      signal: new AbortController().signal,
      keyedState: this.backend,
      timers: this.timers,
      processingTime: this.time.now,
      currentWatermark: () => this.#watermark,
    };
  }

  async open(): Promise<this> {
    await this.operator.open?.(this.ctx, {
      collect: (value, timestamp) => void this.output.push({ kind: 'record', value, timestamp }),
      emitWatermark: (watermark) => void this.output.push({ kind: 'watermark', watermark }),
      sideOutput: (tag, value, timestamp) => void this.side.push({ tag, value, timestamp }),
    });
    return this;
  }

  element(value: IN, timestamp?: number): this {
    this.backend?.setCurrentKey(this.options.keySelector(value));
    this.operator.processElement(value, timestamp);
    return this;
  }

  /** A record of a two-input operator's second input (input 1). */
  element2(value: unknown, timestamp?: number): this {
    const selector = this.options.secondKeySelector;
    if (selector === null) {
      this.backend?.clearCurrentKey();
    } else {
      const key = (selector ?? this.options.keySelector) as (v: unknown) => unknown;
      this.backend?.setCurrentKey(key(value));
    }
    (this.operator as unknown as TwoInputStreamOperator).processElement2(value, timestamp);
    return this;
  }

  /** As the task: a watermark that does not advance is not passed on. */
  watermark(watermark: number): this {
    if (watermark <= this.#watermark) return this;
    this.#watermark = watermark;
    if (this.operator.processWatermark) this.operator.processWatermark(watermark);
    else this.output.push({ kind: 'watermark', watermark });
    return this;
  }

  /** Moves processing time forward, firing due processing-time timers. */
  advanceProcessingTime(to: number): this {
    this.time.advanceTo(to);
    return this;
  }

  /** End of a bounded input: optionally MAX_WATERMARK first (as a watermark strategy sends), then endInput and close. */
  async finish(options: { maxWatermark?: boolean } = {}): Promise<this> {
    if (options.maxWatermark) this.watermark(MAX_WATERMARK);
    await this.operator.endInput?.();
    await this.operator.close?.();
    return this;
  }

  records(): unknown[] {
    return this.output.flatMap((e) => (e.kind === 'record' ? [e.value] : []));
  }

  /** Records as [value, timestamp] pairs. */
  timestamped(): Array<[unknown, number | undefined]> {
    return this.output.flatMap((e) =>
      e.kind === 'record' ? [[e.value, e.timestamp] as [unknown, number | undefined]] : [],
    );
  }

  /** Every emitted element, watermarks as 'wm:<n>' strings: checks records precede the watermark that closed them. */
  trace(): unknown[] {
    return this.output.map((e) => (e.kind === 'record' ? e.value : `wm:${e.watermark}`));
  }

  /** Number of (state, key) entries in the backend: 0 once every window is cleaned up. */
  stateEntries(state?: string): number {
    let n = 0;
    for (const e of this.backend?.entries() ?? []) if (state === undefined || e.state === state) n++;
    return n;
  }
}

/** mulberry32: a small seeded PRNG, for reproducible shuffles. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
