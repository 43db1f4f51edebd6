/**
 * Clocks for lease decisions. High availability decides only on a **monotonic** clock (`performance.now()`
 * by default): wall-clock jumps (NTP steps, a VM resumed, an operator's `date -s`) must never make a leader
 * believe its lease is longer than it is. The wall clock is used for informational timestamps only.
 *
 * {@link ManualClock} is the test double: time moves only when a test says so, so lease deadlines, renewals
 * and polls are deterministic.
 */

/** An opaque timer handle of a {@link Clock}. */
export type TimerHandle = object;

/** A monotonic clock with timers. */
export interface Clock {
  /** Milliseconds on a monotonic scale (any origin); never goes back. */
  now(): number;
  /** Calls `fn` once, `ms` from now on this clock. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** A wall clock: milliseconds since the epoch. Used for timestamps people read, never for decisions. */
export type WallClock = () => number;

/** `performance.now()` and the runtime's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const systemWallClock: WallClock = () => Date.now();

interface ManualTimer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told. {@link advance} fires due timers in time order and lets promise
 * callbacks run between them (so async work started by a timer, e.g. a call to an in-memory store,
 * completes before the next timer); {@link jump} moves time without firing anything — a process that was
 * paused (GC, SIGSTOP, a blocked event loop) and has not yet noticed.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<object, ManualTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {};
    this.#timers.set(handle, { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle);
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      let next: [object, ManualTimer] | undefined;
      for (const entry of this.#timers) {
        const [, t] = entry;
        if (t.at > target) continue;
        if (next === undefined || t.at < next[1].at || (t.at === next[1].at && t.seq < next[1].seq)) {
          next = entry;
        }
      }
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Moves time forward by `ms` without firing timers (they fire on the next {@link advance}). */
  jump(ms: number): void {
    this.#now += ms;
  }
}

/** Lets pending promise callbacks (and what they chain) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
