/**
 * Async I/O through whole jobs on the local environment (a real nats-server): ordered and unordered results
 * against a plain-JS reference at parallelism 1 and 4 with out-of-order event time, capacity backpressure,
 * timeouts and retries.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  AsyncDataStream,
  type AsyncOutputMode,
  AsyncRetryStrategies,
  GeneratorSource,
  type ResultFuture,
  RetryPredicates,
  StreamExecutionEnvironment,
  Time,
  TumblingEventTimeWindows,
  WatermarkStrategy,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { prng } from '../operators/harness.js';
import { RecordingSink, sorted } from './recording-sink.js';

interface Click {
  i: number;
  user: string;
  ts: number;
}
interface Priced extends Click {
  cents: number;
}

const USERS = ['ann', 'bob', 'cy', 'dee', 'eve', 'fay', 'gus'];
/** The "database" the async function looks prices up in. */
const PRICE: Record<string, number> = Object.fromEntries(USERS.map((u, k) => [u, 100 + k * 7]));

/** Click i: event time advances 10 ms per click, shuffled back by up to 150 ms (out of order). */
function click(i: number): Click {
  const rnd = prng(i + 1);
  return {
    i,
    user: USERS[Math.floor(rnd() * USERS.length)]!,
    ts: 1_000_000 + i * 10 - Math.floor(rnd() * 150),
  };
}

/** Looks the price up after a pseudo-random 0–15 ms (so completions come out of order). */
async function lookup(c: Click): Promise<Priced[]> {
  await sleep(Math.floor(prng(c.i * 31 + 7)() * 15));
  return [{ ...c, cents: PRICE[c.user]! }];
}

describe('async I/O in jobs', () => {
  let nats: NatsServerHandle;
  const env = (parallelism = 1) => StreamExecutionEnvironment.createLocalEnvironment(parallelism, nats.url);

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
  });

  const COUNT = 1_500;
  const expectedWindows = () => {
    const sums = new Map<string, number>();
    for (let i = 0; i < COUNT; i++) {
      const c = click(i);
      const k = `${c.user}@${Math.floor(c.ts / 1_000)}`;
      sums.set(k, (sums.get(k) ?? 0) + PRICE[c.user]!);
    }
    return [...sums.entries()].map(([k, cents]) => `${k}=${cents}`).sort();
  };

  for (const mode of ['ordered', 'unordered'] as AsyncOutputMode[]) {
    for (const parallelism of [1, 4]) {
      it(`${mode} at parallelism ${parallelism}: the same results and event-time windows as a plain-JS reference`, async () => {
        const e = env(parallelism);
        const direct = new RecordingSink<Priced>();
        const windows = new RecordingSink<string>();
        const clicks = e
          .fromSource(
            new GeneratorSource(COUNT, click, { ratePerSecond: 3_000 }),
            WatermarkStrategy.forBoundedOutOfOrderness<Click>(200)
              .withTimestampAssigner((c) => c.ts)
              .withAutoWatermarkInterval(10),
          )
          .setParallelism(1)
          .rebalance();
        const wait = mode === 'ordered' ? AsyncDataStream.orderedWait : AsyncDataStream.unorderedWait;
        const priced = wait(clicks, lookup, 5_000, 20).name('Price lookup');
        priced.sinkTo(direct);
        priced
          .keyBy((p) => p.user)
          .window(TumblingEventTimeWindows.of(Time.seconds(1)))
          .aggregate({
            createAccumulator: () => ({ key: '', cents: 0, ts: 0 }),
            add: (p: Priced, acc) => ({ key: p.user, cents: acc.cents + p.cents, ts: p.ts }),
            getResult: (acc) => `${acc.key}@${Math.floor(acc.ts / 1_000)}=${acc.cents}`,
          })
          .sinkTo(windows);
        await e.execute(`async ${mode} p${parallelism}`);

        // Every click once, priced; a result keeps its input's timestamp.
        expect(direct.records.map((r) => r.value.i).sort((a, b) => a - b)).toEqual([...Array(COUNT).keys()]);
        for (const r of direct.records) {
          expect(r.value.cents).toBe(PRICE[r.value.user]);
          expect(r.timestamp).toBe(r.value.ts);
        }
        // No result crossed a watermark: a late one would be dropped by its window and a sum would differ.
        expect(sorted(windows.values())).toEqual(expectedWindows());

        const bySubtask = direct.bySubtask();
        expect(bySubtask.size).toBe(parallelism);
        const increasing = [...bySubtask.values()].every((rs) =>
          rs.every((r, k) => k === 0 || r.i > rs[k - 1]!.i),
        );
        // Ordered: each subtask emits in its input order (rebalance feeds it increasing i). Unordered: as
        // completed, which the random delays make differ from the input order.
        expect(increasing).toBe(mode === 'ordered');
      }, 60_000);
    }
  }

  it('capacity: at most `capacity` requests in flight, and the source waits (backpressure)', async () => {
    const capacity = 8;
    let generated = 0;
    let running = 0;
    let peak = 0;
    let completed = 0;
    let peakAhead = 0;
    const e = env(1);
    const numbers = e.fromSource(
      new GeneratorSource(600, (i) => {
        generated++;
        return i;
      }),
    );
    const sink = new RecordingSink<number>();
    AsyncDataStream.unorderedWait(
      numbers,
      async (x: number) => {
        running++;
        peak = Math.max(peak, running);
        peakAhead = Math.max(peakAhead, generated - completed);
        await sleep(2);
        running--;
        completed++;
        return [x];
      },
      5_000,
      capacity,
    ).sinkTo(sink);
    await e.execute('capacity');
    expect(sink.values().sort((a, b) => a - b)).toEqual([...Array(600).keys()]);
    expect(peak).toBe(capacity);
    // The source runs at most one record ahead of the requests the operator holds.
    expect(peakAhead).toBeLessThanOrEqual(capacity + 1);
  }, 30_000);

  it('a request that never completes: the timeout hook gives its result', async () => {
    const e = env(2);
    const out = await AsyncDataStream.orderedWait(
      e.fromElements(1, 2, 3, 4, 5, 6).rebalance(),
      {
        asyncInvoke(x: number, future: ResultFuture<string>) {
          if (x !== 4) future.complete([`found ${x}`]);
        },
        timeout(x: number, future: ResultFuture<string>) {
          future.complete([`default ${x}`]);
        },
      },
      300,
      4,
    ).executeAndCollect('timeout hook');
    expect(sorted(out)).toEqual(['default 4', 'found 1', 'found 2', 'found 3', 'found 5', 'found 6']);
  }, 30_000);

  it('a request that never completes, without a timeout hook: the job fails naming the operator', async () => {
    const e = env(2);
    const started = Date.now();
    const failure = await AsyncDataStream.unorderedWait(
      // Unbounded input: the job would never end on its own.
      e.fromSource(new GeneratorSource(Number.POSITIVE_INFINITY, (i) => i, { ratePerSecond: 200 })),
      (x: number) => (x === 25 ? new Promise<number[]>(() => {}) : Promise.resolve([x])),
      400,
      10,
    )
      .name('Stuck lookup')
      .executeAndCollect('timeout fails')
      .catch((err: unknown) => err as Error);
    expect(failure).toBeInstanceOf(Error);
    expect(String((failure as Error).message)).toMatch(
      /async function of operator 'Stuck lookup' timed out after 400 ms \(1 attempt\(s\)\) for input 25/,
    );
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);

  it('retries: a flaky lookup succeeds within its retries; one that keeps failing fails the job', async () => {
    const attempts = new Map<number, number>();
    const flaky = async (x: number): Promise<number[]> => {
      const n = (attempts.get(x) ?? 0) + 1;
      attempts.set(x, n);
      if (x % 3 === 0 && n <= 2) throw new Error(`service unavailable for ${x}`);
      if (x % 3 === 1 && n <= 1) return [];
      return [x * 2];
    };
    const retry = AsyncRetryStrategies.fixedDelay<number>(3, 10)
      .ifException(RetryPredicates.HAS_EXCEPTION_PREDICATE)
      .ifResult(RetryPredicates.EMPTY_RESULT_PREDICATE)
      .build();
    const e = env(2);
    const out = await AsyncDataStream.orderedWaitWithRetry(
      e.fromCollection([...Array(30).keys()]).rebalance(),
      flaky,
      5_000,
      5,
      retry,
    ).executeAndCollect('retries');
    expect(out.sort((a, b) => a - b)).toEqual([...Array(30).keys()].map((x) => x * 2));
    for (let x = 0; x < 30; x++) expect(attempts.get(x), `attempts of ${x}`).toBe([3, 2, 1][x % 3]);

    const down = env(1);
    const failure = await AsyncDataStream.unorderedWaitWithRetry(
      down.fromElements(1, 2, 3),
      async (x: number): Promise<number[]> => {
        if (x === 2) throw new Error('connection refused');
        return [x];
      },
      5_000,
      5,
      AsyncRetryStrategies.exponentialBackoff<number>(2, 5, 50)
        .ifException(RetryPredicates.HAS_EXCEPTION_PREDICATE)
        .build(),
    )
      .name('Enrich')
      .executeAndCollect('retries exhausted')
      .catch((err: unknown) => err as Error);
    expect(String((failure as Error).message)).toMatch(
      /async function of operator 'Enrich' failed after 3 attempt\(s\) for input 2: connection refused/,
    );
  }, 60_000);
});
