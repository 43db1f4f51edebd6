/**
 * The DataStream operators on the local environment: a real local cluster (nats-server child,
 * JobManager and TaskManager actors), records crossing NATS wherever an edge is not chained.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import { GeneratorSource, StreamExecutionEnvironment } from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { lastPerKey, RecordingSink, sorted } from './recording-sink.js';

describe('DataStream operators', () => {
  let nats: NatsServerHandle;
  const env = (parallelism = 1) => StreamExecutionEnvironment.createLocalEnvironment(parallelism, nats.url);

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
  });

  it('map, filter and flatMap (collector and iterable forms)', async () => {
    const e = env();
    const out = await e
      .fromElements(1, 2, 3, 4, 5, 6)
      .map((x) => x * 10)
      .filter((x) => x % 20 === 0)
      .flatMap<number>((x, c) => {
        c.collect(x);
        c.collect(x + 1);
      })
      .flatMap((x) => [x, -x])
      .executeAndCollect();
    expect(out).toEqual([20, -20, 21, -21, 40, -40, 41, -41, 60, -60, 61, -61]);
  });

  it('keyBy with rolling reduce, sum, min and max per key', async () => {
    const input: Array<[string, number]> = [
      ['a', 3],
      ['b', 5],
      ['a', 1],
      ['b', 7],
      ['a', 4],
    ];
    const e = env(2);
    const sums = await e
      .fromCollection(input)
      .keyBy(([k]) => k)
      .sum(1)
      .executeAndCollect();
    expect(lastPerKey(sums, ([k]) => k)).toEqual(
      new Map([
        ['a', ['a', 8]],
        ['b', ['b', 12]],
      ]),
    );
    expect(sums).toHaveLength(5);
    const mins = await env(2)
      .fromCollection(input)
      .keyBy(([k]) => k)
      .min(1)
      .executeAndCollect();
    expect([...lastPerKey(mins, ([k]) => k).values()].map(([, v]) => v).sort()).toEqual([1, 5]);
    const maxs = await env(2)
      .fromCollection(input)
      .keyBy(([k]) => k)
      .max(1)
      .executeAndCollect();
    expect([...lastPerKey(maxs, ([k]) => k).values()].map(([, v]) => v).sort()).toEqual([4, 7]);
    const reduced = await env(3)
      .fromCollection([
        { user: 'u1', n: 1 },
        { user: 'u2', n: 2 },
        { user: 'u1', n: 3 },
      ])
      .keyBy((r) => r.user)
      .reduce((a, b) => ({ user: a.user, n: a.n + b.n }))
      .executeAndCollect();
    expect(lastPerKey(reduced, (r) => r.user).get('u1')).toEqual({ user: 'u1', n: 4 });
    expect(lastPerKey(reduced, (r) => r.user).get('u2')).toEqual({ user: 'u2', n: 2 });
  });

  it('union merges streams', async () => {
    const e = env(2);
    const a = e.fromElements('a1', 'a2');
    const b = e.fromElements('b1');
    const c = e.fromSource(new GeneratorSource(4, (i) => `c${i}`));
    const out = await a
      .union(b, c)
      .map((s) => s.toUpperCase())
      .executeAndCollect();
    expect(sorted(out)).toEqual(['A1', 'A2', 'B1', 'C0', 'C1', 'C2', 'C3']);
  });

  it('partitions with rebalance, broadcast, shuffle, forward and hash', async () => {
    const n = 3_000;
    /** Runs numbers 0..n-1 from one source subtask through `shape` into a sink of parallelism 3. */
    const run = async (shape: 'rebalance' | 'broadcast' | 'shuffle' | 'hash') => {
      const sink = new RecordingSink<number>();
      const e = env(1);
      const numbers = e.fromSource(new GeneratorSource(n, (i) => i));
      const shaped =
        shape === 'hash'
          ? numbers.keyBy((x) => x % 10)
          : shape === 'rebalance'
            ? numbers.rebalance()
            : shape === 'broadcast'
              ? numbers.broadcast()
              : numbers.shuffle();
      shaped.sinkTo(sink).setParallelism(3);
      await e.execute(shape);
      return sink;
    };

    const rebalanced = await run('rebalance');
    expect([...rebalanced.bySubtask().values()].map((v) => v.length)).toEqual([1_000, 1_000, 1_000]);

    const broadcasted = await run('broadcast');
    expect(broadcasted.bySubtask().size).toBe(3);
    for (const values of broadcasted.bySubtask().values())
      expect(sorted(values)).toEqual(sorted([...Array(n).keys()]));

    const shuffled = await run('shuffle');
    expect(sorted(shuffled.values())).toEqual(sorted([...Array(n).keys()]));
    expect(shuffled.bySubtask().size).toBe(3);

    const hashed = await run('hash');
    const owner = new Map<number, number>();
    for (const r of hashed.records) {
      const key = r.value % 10;
      expect(owner.get(key) ?? r.subtask).toBe(r.subtask);
      owner.set(key, r.subtask);
    }
    expect(hashed.records).toHaveLength(n);

    const forwarded = new RecordingSink<number>();
    const e = env(2);
    e.fromSource(new GeneratorSource(100, (i) => i))
      .forward()
      .map((x) => x)
      .sinkTo(forwarded);
    await e.execute('forward');
    expect(forwarded.records).toHaveLength(100);
    for (const r of forwarded.records) expect(r.value % 2).toBe(r.subtask);
  });

  it('gives the same word counts at parallelism 1 and 4', async () => {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta'];
    const count = async (p: number) => {
      const out = await env(p)
        .fromSource(
          new GeneratorSource(20_000, (i) => `${words[i % 7]} ${words[(i * 3) % 7]} ${words[(i * 5) % 6]}`),
        )
        .flatMap((line: string) => line.split(' ').map((w) => [w, 1] as [string, number]))
        .keyBy(([w]) => w)
        .sum(1)
        .executeAndCollect();
      return new Map([...lastPerKey(out, ([w]) => w).values()]);
    };
    const one = await count(1);
    const four = await count(4);
    expect(four).toEqual(one);
    expect([...one.values()].reduce((a, b) => a + b, 0)).toBe(60_000);
  });
});
