/**
 * Timers of one operator instance, as Flink's InternalTimerService: event-time timers fire when the
 * watermark passes them (in timestamp order), processing-time timers when the wall clock does. Timers
 * are per key when the operator is keyed; a timer registered twice for the same key and time fires once.
 */
import { keyString } from './key-groups.js';
import type { KeyedStateBackend } from './keyed-state-backend.js';

/** The longest delay setTimeout takes. */
const MAX_TIMEOUT_MS = 2_147_483_647;

export interface TimerHandler {
  onEventTime(timestamp: number, key: unknown): void;
  onProcessingTime(timestamp: number, key: unknown): void;
}

export interface TimerSnapshot {
  event: unknown[];
  processing: unknown[];
}

interface Timer {
  timestamp: number;
  key: unknown;
  id: string;
}

export interface TimerServiceOptions {
  keyed: KeyedStateBackend | undefined;
  now?: () => number;
  /** Runs `fn` on the task's thread later; returns a cancel function. */
  schedule?: (fn: () => void, delayMs: number) => () => void;
  /** Called when a processing-time timer callback throws: the task fails. */
  onError?: (err: unknown) => void;
}

export class TimerService {
  readonly #keyed: KeyedStateBackend | undefined;
  readonly #now: () => number;
  readonly #schedule: (fn: () => void, delayMs: number) => () => void;
  readonly #onError: (err: unknown) => void;
  #handler: TimerHandler | undefined;
  #watermark = Number.NEGATIVE_INFINITY;
  readonly #eventTimers = new Map<string, Timer>();
  readonly #processingTimers = new Map<string, Timer & { cancel: () => void }>();

  constructor(options: TimerServiceOptions) {
    this.#keyed = options.keyed;
    this.#now = options.now ?? Date.now;
    this.#schedule =
      options.schedule ??
      ((fn, delayMs) => {
        // setTimeout takes at most 2^31-1 ms (more fires at once): a farther timer re-arms until due.
        let t: NodeJS.Timeout;
        const arm = (left: number) => {
          t = setTimeout(
            () => (left > MAX_TIMEOUT_MS ? arm(left - MAX_TIMEOUT_MS) : fn()),
            Math.min(Math.max(0, left), MAX_TIMEOUT_MS),
          );
        };
        arm(delayMs);
        return () => clearTimeout(t);
      });
    this.#onError =
      options.onError ??
      ((err) =>
        setImmediate(() => {
          throw err;
        }));
  }

  /** The operator that receives the timer callbacks. */
  setHandler(handler: TimerHandler): void {
    this.#handler = handler;
  }

  get currentWatermark(): number {
    return this.#watermark;
  }

  currentProcessingTime(): number {
    return this.#now();
  }

  registerEventTimeTimer(timestamp: number): void {
    const timer = this.#timer(timestamp);
    this.#eventTimers.set(timer.id, timer);
  }

  deleteEventTimeTimer(timestamp: number): void {
    this.#eventTimers.delete(this.#timer(timestamp).id);
  }

  registerProcessingTimeTimer(timestamp: number): void {
    const timer = this.#timer(timestamp);
    if (this.#processingTimers.has(timer.id)) return;
    const cancel = this.#schedule(() => this.#fireProcessingTimer(timer.id), timestamp - this.#now());
    this.#processingTimers.set(timer.id, { ...timer, cancel });
  }

  deleteProcessingTimeTimer(timestamp: number): void {
    const id = this.#timer(timestamp).id;
    this.#processingTimers.get(id)?.cancel();
    this.#processingTimers.delete(id);
  }

  /**
   * Fires every event-time timer at or before `watermark`, oldest first, including timers that the
   * callbacks themselves register at or before it (as Flink does).
   */
  advanceWatermark(watermark: number): void {
    if (watermark <= this.#watermark) return;
    this.#watermark = watermark;
    for (;;) {
      if (this.#eventTimers.size === 0) return;
      const due = [...this.#eventTimers.values()]
        .filter((t) => t.timestamp <= watermark)
        .sort((a, b) => a.timestamp - b.timestamp);
      if (due.length === 0) return;
      for (const t of due) {
        // A callback may have deleted a later timer of this batch.
        if (!this.#eventTimers.delete(t.id)) continue;
        this.#setKey(t.key);
        this.#handler?.onEventTime(t.timestamp, t.key);
      }
    }
  }

  get pendingEventTimers(): number {
    return this.#eventTimers.size;
  }

  /** The timers for a checkpoint: flat [timestamp, key, …] per domain. */
  snapshot(): TimerSnapshot {
    const event: unknown[] = [];
    for (const t of this.#eventTimers.values()) event.push(t.timestamp, t.key);
    const processing: unknown[] = [];
    for (const t of this.#processingTimers.values()) processing.push(t.timestamp, t.key);
    return { event, processing };
  }

  /**
   * Registers restored timers whose key passes `keep` (a rescaled subtask keeps its key groups).
   * Processing-time timers already due fire soon after, as in Flink.
   */
  restore(snapshot: TimerSnapshot, keep: (key: unknown) => boolean): void {
    const add = (flat: unknown[], register: (ts: number) => void) => {
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const ts = flat[i];
        const key = flat[i + 1];
        if (typeof ts !== 'number' || !keep(key)) continue;
        this.#setKey(key);
        register(ts);
      }
    };
    add(snapshot.event, (ts) => this.registerEventTimeTimer(ts));
    add(snapshot.processing, (ts) => this.registerProcessingTimeTimer(ts));
  }

  /**
   * Fires every pending processing-time timer now, oldest first (then by key), as if the clock had
   * reached the end of time: a bounded input has ended. Timers the callbacks register meanwhile fire too,
   * up to a few rounds (a trigger that re-registers forever does not loop forever).
   */
  fireAllProcessingTimers(): void {
    for (let round = 0; round < 10 && this.#processingTimers.size > 0; round++) {
      const due = [...this.#processingTimers.values()].sort(
        (a, b) => a.timestamp - b.timestamp || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      );
      for (const t of due) {
        t.cancel();
        this.#fireProcessingTimer(t.id);
      }
    }
  }

  /** Cancels every scheduled processing-time timer (the task ends). */
  close(): void {
    for (const t of this.#processingTimers.values()) t.cancel();
    this.#processingTimers.clear();
  }

  #fireProcessingTimer(id: string): void {
    const timer = this.#processingTimers.get(id);
    if (!timer) return;
    this.#processingTimers.delete(id);
    try {
      this.#setKey(timer.key);
      this.#handler?.onProcessingTime(timer.timestamp, timer.key);
    } catch (err) {
      this.#onError(err);
    }
  }

  #timer(timestamp: number): Timer {
    const key = this.#keyed ? this.#keyed.currentKey : undefined;
    const id = this.#keyed ? `${timestamp}|${keyString(key)}` : String(timestamp);
    return { timestamp, key, id };
  }

  #setKey(key: unknown): void {
    if (this.#keyed && key !== undefined) this.#keyed.setCurrentKey(key);
  }
}
