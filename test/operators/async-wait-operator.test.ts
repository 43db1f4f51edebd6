/**
 * The async wait operator driven as a task drives it: order of results, watermarks as barriers, capacity,
 * timeouts, retries, and the pending requests of a checkpoint invoked again after a restore.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pack, unpack } from 'msgpackr';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  type AsyncFunction,
  type AsyncFunctionLike,
  AsyncRetryStrategies,
  type AsyncRetryStrategy,
  type ResultFuture,
  RetryPredicates,
} from '../../src/index.js';
import { ownsKey } from '../../src/runtime/checkpoint/subtask-state.js';
import { AsyncWaitOperator } from '../../src/runtime/operators/async-wait-operator.js';
import { keyGroupRange } from '../../src/runtime/state/key-groups.js';
import { TimerService } from '../../src/runtime/state/timer-service.js';
import { prng } from './harness.js';

type Out = { kind: 'record'; value: unknown; timestamp: number | undefined } | { kind: 'wm'; wm: number };

interface Driven {
  op: AsyncWaitOperator;
  out: Out[];
  errors: unknown[];
  records(): unknown[];
  trace(): unknown[];
}

async function drive(
  fn: AsyncFunctionLike<number, unknown>,
  o: {
    mode?: 'ordered' | 'unordered';
    timeoutMs?: number;
    capacity?: number;
    retry?: AsyncRetryStrategy<unknown>;
    restored?: unknown[];
    keySelector?: (value: unknown) => unknown;
    subtaskIndex?: number;
    parallelism?: number;
  } = {},
): Promise<Driven> {
  const out: Out[] = [];
  const errors: unknown[] = [];
  const asFn = typeof fn === 'function' ? { asyncInvoke: fn } : fn;
  const op = new AsyncWaitOperator(
    {
      kind: 'async',
      fn: asFn as AsyncFunction<unknown, unknown>,
      mode: o.mode ?? 'ordered',
      timeoutMs: o.timeoutMs ?? 5_000,
      capacity: o.capacity ?? 100,
      retry: o.retry,
    },
    {
      restored: o.restored === undefined ? undefined : (unpack(pack(o.restored)) as unknown[]),
      keySelector: o.keySelector,
    },
  );
  await op.open(
    {
      jobId: 'job',
      operatorUid: 'async-1',
      operatorName: 'Lookup',
      subtaskIndex: o.subtaskIndex ?? 0,
      parallelism: o.parallelism ?? 1,
      maxParallelism: 128,
      log: pino({ level: 'silent' }),
      signal: new AbortController().signal,
      keyedState: undefined,
      timers: new TimerService({ keyed: undefined }),
      processingTime: () => Date.now(),
      currentWatermark: () => Number.NEGATIVE_INFINITY,
      fail: (err) => errors.push(err),
    },
    {
      collect: (value, timestamp) => void out.push({ kind: 'record', value, timestamp }),
      emitWatermark: (wm) => void out.push({ kind: 'wm', wm }),
    },
  );
  op.start();
  return {
    op,
    out,
    errors,
    records: () => out.flatMap((e) => (e.kind === 'record' ? [e.value] : [])),
    trace: () => out.map((e) => (e.kind === 'record' ? e.value : `wm:${e.wm}`)),
  };
}

/** Completes after a pseudo-random delay of up to `maxMs`, with `[x * 10]`. */
function randomDelay(maxMs: number, seed = 1): (x: number) => Promise<number[]> {
  const rnd = prng(seed);
  return async (x) => {
    await sleep(Math.floor(rnd() * maxMs));
    return [x * 10];
  };
}

describe('AsyncWaitOperator', () => {
  it('ordered: results in input order with their timestamps, watermarks after the records before them', async () => {
    const d = await drive(randomDelay(20));
    for (let i = 0; i < 30; i++) {
      d.op.processElement(i, 1_000 + i);
      if (i % 10 === 9) d.op.processWatermark(1_000 + i);
    }
    await d.op.endInput();
    const expected: unknown[] = [];
    for (let i = 0; i < 30; i++) {
      expected.push(i * 10);
      if (i % 10 === 9) expected.push(`wm:${1_000 + i}`);
    }
    expect(d.trace()).toEqual(expected);
    expect(
      d.out.filter((e) => e.kind === 'record').map((e) => (e as { timestamp: number }).timestamp),
    ).toEqual(Array.from({ length: 30 }, (_, i) => 1_000 + i));
    await d.op.close();
  });

  it('unordered: results as they complete, but never across a watermark', async () => {
    const d = await drive(randomDelay(30, 5), { mode: 'unordered' });
    for (let i = 0; i < 60; i++) {
      d.op.processElement(i, i);
      if (i % 20 === 19) d.op.processWatermark(i);
    }
    await d.op.endInput();
    const trace = d.trace();
    // Segments between watermarks hold exactly the records of that segment, in some order.
    const segments: number[][] = [[]];
    for (const t of trace) {
      if (typeof t === 'string') segments.push([]);
      else segments.at(-1)!.push((t as number) / 10);
    }
    expect(trace.filter((t) => typeof t === 'string')).toEqual(['wm:19', 'wm:39', 'wm:59']);
    expect(segments.slice(0, 3).map((s) => [...s].sort((a, b) => a - b))).toEqual(
      [0, 1, 2].map((k) => Array.from({ length: 20 }, (_, i) => k * 20 + i)),
    );
    // Completion order differs from input order somewhere (random delays).
    expect(segments.flat()).not.toEqual(Array.from({ length: 60 }, (_, i) => i));
    await d.op.close();
  });

  it('holds at most `capacity` requests; beyond that it is not writable, and ready() waits for room', async () => {
    let running = 0;
    let peak = 0;
    const d = await drive(
      async (x: number) => {
        running++;
        peak = Math.max(peak, running);
        await sleep(5);
        running--;
        return [x];
      },
      { capacity: 4 },
    );
    for (let i = 0; i < 3; i++) d.op.processElement(i, undefined);
    expect(d.op.writable).toBe(true);
    // A frame may bring more at once: the excess waits uninvoked.
    for (let i = 3; i < 10; i++) d.op.processElement(i, undefined);
    expect(d.op.writable).toBe(false);
    expect(running).toBe(4);
    await d.op.ready();
    expect(d.op.writable).toBe(true);
    await d.op.endInput();
    expect(d.records()).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(peak).toBe(4);
    expect(d.op.peakInFlight).toBe(4);
    await d.op.close();
  });

  it('takes results through the ResultFuture (Flink style) or a returned Promise; a second completion is ignored', async () => {
    const d = await drive({
      asyncInvoke(x: number, future: ResultFuture<string>) {
        if (x % 2 === 0) {
          setTimeout(() => {
            future.complete([`even ${x}`]);
            future.complete(['again']);
            future.completeExceptionally(new Error('late'));
          }, 1);
          return;
        }
        return Promise.resolve([`odd ${x}`, `odd ${x} bis`]);
      },
    });
    for (let i = 0; i < 4; i++) d.op.processElement(i, undefined);
    await d.op.endInput();
    expect(d.records()).toEqual(['even 0', 'odd 1', 'odd 1 bis', 'even 2', 'odd 3', 'odd 3 bis']);
    expect(d.errors).toEqual([]);
    await d.op.close();
  });

  it('calls the timeout hook for a request that never completes, aborting its signal', async () => {
    const signals: AbortSignal[] = [];
    const timedOut: number[] = [];
    const d = await drive(
      {
        asyncInvoke(x: number, future: ResultFuture<string>) {
          signals.push(future.signal);
          if (x !== 1) future.complete([`ok ${x}`]);
          // 1 never completes
        },
        timeout(x: number, future: ResultFuture<string>) {
          timedOut.push(x);
          future.complete([`default ${x}`]);
        },
      },
      { timeoutMs: 50 },
    );
    for (let i = 0; i < 3; i++) d.op.processElement(i, undefined);
    await d.op.endInput();
    expect(d.records()).toEqual(['ok 0', 'default 1', 'ok 2']);
    expect(timedOut).toEqual([1]);
    expect(signals[1]!.aborted).toBe(true);
    expect(signals[0]!.aborted).toBe(false);
    await d.op.close();
  });

  it('without a timeout hook, a timeout fails the task with an error naming the operator and the input', async () => {
    const d = await drive(() => new Promise<never>(() => {}), { timeoutMs: 30 });
    d.op.processElement(7, undefined);
    await expect(d.op.endInput()).rejects.toThrow(
      "async function of operator 'Lookup' timed out after 30 ms (1 attempt(s)) for input 7",
    );
    expect(d.errors).toHaveLength(1);
    expect(d.op.writable).toBe(false);
    expect(() => d.op.processElement(8, undefined)).toThrow(/timed out/);
    await d.op.close();
  });

  it('retries on a matching error or result, with the strategy’s delays, then emits or fails', async () => {
    const calls = new Map<number, number[]>();
    const fn = async (x: number) => {
      const times = calls.get(x) ?? [];
      times.push(Date.now());
      calls.set(x, times);
      if (x === 0 && times.length < 3) throw new Error('flaky');
      if (x === 1 && times.length < 2) return [];
      if (x === 2) return [];
      if (x === 3) throw new Error('always');
      return [x];
    };
    const retry = AsyncRetryStrategies.fixedDelay<number>(2, 20)
      .ifException(RetryPredicates.HAS_EXCEPTION_PREDICATE)
      .ifResult(RetryPredicates.EMPTY_RESULT_PREDICATE)
      .build();
    const ok = await drive(fn, { retry: retry as AsyncRetryStrategy<unknown> });
    for (const x of [0, 1, 2, 4]) ok.op.processElement(x, undefined);
    await ok.op.endInput();
    // 2 still returns nothing after its retries: that empty result is final.
    expect(ok.records()).toEqual([0, 1, 4]);
    expect(calls.get(0)).toHaveLength(3);
    expect(calls.get(1)).toHaveLength(2);
    expect(calls.get(2)).toHaveLength(3); // the first call and maxAttempts = 2 retries, as Flink
    const gaps = calls
      .get(0)!
      .slice(1)
      .map((t, i) => t - calls.get(0)![i]!);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(18);
    await ok.op.close();

    const failing = await drive(fn, { retry: retry as AsyncRetryStrategy<unknown> });
    failing.op.processElement(3, undefined);
    await expect(failing.op.endInput()).rejects.toThrow(
      "async function of operator 'Lookup' failed after 3 attempt(s) for input 3: always",
    );
    await failing.op.close();

    // Only matching errors are retried.
    const picky = AsyncRetryStrategies.exponentialBackoff<number>(5, 1, 10)
      .ifException((e) => (e as Error).message === 'flaky')
      .build();
    calls.clear();
    const d = await drive(fn, { retry: picky as AsyncRetryStrategy<unknown> });
    d.op.processElement(3, undefined);
    await expect(d.op.endInput()).rejects.toThrow(/failed after 1 attempt\(s\) for input 3: always/);
    await d.op.close();
  });

  it('the timeout covers the retries: a request retried past it times out', async () => {
    const retry = AsyncRetryStrategies.fixedDelay<number>(100, 20)
      .ifResult(RetryPredicates.EMPTY_RESULT_PREDICATE)
      .build();
    let calls = 0;
    const d = await drive(
      async () => {
        calls++;
        return [];
      },
      { retry: retry as AsyncRetryStrategy<unknown>, timeoutMs: 100 },
    );
    d.op.processElement(1, undefined);
    await expect(d.op.endInput()).rejects.toThrow(/timed out after 100 ms/);
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThan(10);
    await d.op.close();
  });

  it('stores the pending requests in a checkpoint and invokes them again after a restore, at any parallelism', async () => {
    const release: Array<() => void> = [];
    const first = await drive(
      (x: number) =>
        new Promise<number[]>((resolve) => {
          if (x < 3) resolve([x]);
          else release.push(() => resolve([x]));
        }),
      { capacity: 5 },
    );
    for (let i = 0; i < 8; i++) first.op.processElement(i, 100 + i);
    await sleep(5);
    expect(first.records()).toEqual([0, 1, 2]);
    const state = first.op.snapshotState();
    // 3..7 are pending (3, 4 invoked; 5, 6, 7 beyond capacity): all in the checkpoint, with timestamps.
    expect(state?.records).toEqual([3, 4, 5, 6, 7].map((i) => [i, 100 + i]));
    await first.op.close();
    for (const r of release) r();

    // Restored at parallelism 1: every pending request again, before new input.
    const again = await drive(async (x: number) => [x], { restored: [state] });
    again.op.processElement(8, 108);
    await again.op.endInput();
    expect(again.records()).toEqual([3, 4, 5, 6, 7, 8]);
    expect(again.out.map((e) => (e.kind === 'record' ? e.timestamp : undefined))).toEqual([
      103, 104, 105, 106, 107, 108,
    ]);
    await again.op.close();

    // Two old subtasks' states at parallelism 2: old subtask k goes to new subtask k mod 2.
    const other = { v: 1, records: [[50, null]] };
    const shares: unknown[][] = [];
    for (const s of [0, 1]) {
      const d = await drive(async (x: number) => [x], {
        restored: [state, other, undefined],
        subtaskIndex: s,
        parallelism: 2,
      });
      await d.op.endInput();
      shares.push(d.records());
      await d.op.close();
    }
    expect(shares).toEqual([[3, 4, 5, 6, 7], [50]]);
  });

  it('on a keyed stream, a restored request goes to the subtask that owns its key', async () => {
    const records = Array.from({ length: 40 }, (_, i) => [i, null]);
    const restored = [
      { v: 1, records: records.slice(0, 25) },
      { v: 1, records: records.slice(25) },
    ];
    const shares: number[][] = [];
    for (const s of [0, 1, 2]) {
      const d = await drive(async (x: number) => [x], {
        restored,
        keySelector: (x) => `k${x}`,
        subtaskIndex: s,
        parallelism: 3,
      });
      await d.op.endInput();
      shares.push(d.records() as number[]);
      await d.op.close();
    }
    const range = (s: number) => keyGroupRange(s, 128, 3);
    for (const [s, share] of shares.entries()) {
      for (const x of share) expect(ownsKey(`k${x}`, 128, range(s))).toBe(true);
    }
    expect(shares.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(shares.every((share) => share.length > 0)).toBe(true);
  });

  it('refuses a checkpointed state that is not its own', async () => {
    await expect(drive(async (x: number) => [x], { restored: [{ v: 1, records: 'x' }] })).rejects.toThrow(
      /not a list of pending requests/,
    );
  });
});
