/**
 * Window joins (tumbling and sliding, event time) and interval joins (inclusive and exclusive bounds) on
 * the local environment with a real nats-server: at parallelism 1 and 4, out-of-order input, checkpoints
 * every 100 ms and one failure half-way; the exactly-once sink holds exactly the pairs a plain-JS
 * reference finds. And a throwing join or co-function fails the job naming the operator.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  GeneratorSource,
  JobExecutionError,
  SlidingEventTimeWindows,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  type WindowAssigner,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import {
  bag,
  type Ev,
  eventSource,
  FailOnce,
  jsonSink,
  makeEvents,
  readJsonLines,
} from './two-input-helpers.js';

const N = 1_200;
const BOUND = 40;
const A = makeEvents(N, 12, 3, 2, BOUND);
const B = makeEvents(N, 12, 4, 2, BOUND);

/** Every pair with equal keys in a common window, once per window (the plain-JS reference). */
function windowJoinReference(assigner: WindowAssigner): string[] {
  const out: string[] = [];
  for (const a of A) {
    const windowsOfA = assigner.assignWindows(a.ts).map((w) => String(w));
    for (const b of B) {
      if (a.k !== b.k) continue;
      for (const start of assigner.assignWindows(b.ts).map((w) => String(w))) {
        if (windowsOfA.includes(start)) out.push(`${a.i}-${b.i}`);
      }
    }
  }
  return out;
}

function intervalJoinReference(lower: number, upper: number): string[] {
  const out: string[] = [];
  for (const l of A) {
    for (const r of B) {
      if (l.k === r.k && r.ts >= l.ts + lower && r.ts <= l.ts + upper)
        out.push(`${l.i}-${r.i}@${Math.max(l.ts, r.ts)}`);
    }
  }
  return out;
}

describe('joins through a restart', () => {
  let nats: NatsServerHandle;
  let dir: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-joins-'));
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const windowCases: Array<[string, WindowAssigner, number]> = [
    ['tumbling', TumblingEventTimeWindows.of(100), 1],
    ['tumbling', TumblingEventTimeWindows.of(100), 4],
    ['sliding', SlidingEventTimeWindows.of(200, 100), 1],
    ['sliding', SlidingEventTimeWindows.of(200, 100), 4],
  ];
  for (const [kind, assigner, parallelism] of windowCases) {
    it(`window join, ${kind} event-time windows, parallelism ${parallelism}`, async () => {
      const expected = windowJoinReference(assigner);
      expect(expected.length).toBeGreaterThan(1_000);
      const out = join(dir, `window-${kind}-${parallelism}`);
      const env = StreamExecutionEnvironment.createLocalEnvironment(
        parallelism,
        nats.url,
      ).enableCheckpointing(100);
      const rate = Math.ceil(800 / parallelism);
      const fail = new FailOnce(Math.floor(expected.length / 2), 'Window Join');
      eventSource(env, A, rate, BOUND, 'a')
        .join(eventSource(env, B, rate, BOUND, 'b'))
        .where((a) => a.k)
        .equalTo((b) => b.k)
        .window(assigner)
        .apply((a: Ev, b: Ev) => {
          fail.hit();
          return `${a.i}-${b.i}`;
        })
        .uid('join')
        .sinkTo(jsonSink<string>(out))
        .uid('out');
      await env.execute(`window join ${kind} p${parallelism}`);

      expect(fail.failed).toBe(true);
      expect(fail.callsAfterFailure).toBeGreaterThan(0);
      expect(fail.callsAfterFailure).toBeLessThan(expected.length);
      expect(bag(await readJsonLines(out))).toEqual(bag(expected));
    }, 60_000);
  }

  const intervalCases: Array<[number, boolean, boolean]> = [
    [1, false, false],
    [4, false, false],
    [4, true, true],
  ];
  for (const [parallelism, lowerExclusive, upperExclusive] of intervalCases) {
    const bounds = lowerExclusive ? 'exclusive' : 'inclusive';
    it(`interval join between(-30, 20), ${bounds} bounds, parallelism ${parallelism}`, async () => {
      const expected = intervalJoinReference(lowerExclusive ? -29 : -30, upperExclusive ? 19 : 20);
      expect(expected.length).toBeGreaterThan(1_000);
      const out = join(dir, `interval-${bounds}-${parallelism}`);
      const env = StreamExecutionEnvironment.createLocalEnvironment(
        parallelism,
        nats.url,
      ).enableCheckpointing(100);
      const rate = Math.ceil(800 / parallelism);
      const fail = new FailOnce(Math.floor(expected.length / 2), 'Interval Join');
      let joined = eventSource(env, A, rate, BOUND, 'a')
        .keyBy((a) => a.k)
        .intervalJoin(eventSource(env, B, rate, BOUND, 'b').keyBy((b) => b.k))
        .between(-30, 20);
      if (lowerExclusive) joined = joined.lowerBoundExclusive();
      if (upperExclusive) joined = joined.upperBoundExclusive();
      joined
        .process<string>({
          processElement(l, r, ctx, c) {
            fail.hit();
            c.collect(`${l.i}-${r.i}@${ctx.getTimestamp()}`);
          },
        })
        .uid('join')
        .sinkTo(jsonSink<string>(out))
        .uid('out');
      await env.execute(`interval join p${parallelism}`);

      expect(fail.failed).toBe(true);
      expect(fail.callsAfterFailure).toBeGreaterThan(0);
      expect(fail.callsAfterFailure).toBeLessThan(expected.length);
      expect(bag(await readJsonLines(out))).toEqual(bag(expected));
    }, 60_000);
  }
});

describe('a throwing join or co-function fails the job, naming the operator', () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
  });

  const timed = (env: StreamExecutionEnvironment) =>
    env.fromSource(
      new GeneratorSource(400, (i) => ({ k: i % 3, ts: 1_000 + i * 10 })),
      WatermarkStrategy.forMonotonousTimestamps<{ k: number; ts: number }>().withTimestampAssigner(
        (e) => e.ts,
      ),
    );

  async function failure(run: Promise<unknown>): Promise<JobExecutionError> {
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JobExecutionError);
    expect((err as JobExecutionError).status).toBe('FAILED');
    return err as JobExecutionError;
  }

  it('window join', async () => {
    const env = StreamExecutionEnvironment.createLocalEnvironment(2, nats.url);
    const run = timed(env)
      .join(timed(env))
      .where((a) => a.k)
      .equalTo((b) => b.k)
      .window(TumblingEventTimeWindows.of(500))
      .apply(function pairUp(a, b): string {
        if (a.ts > 2_000) throw new RangeError(`no pairs after 2000 (${a.ts}, ${b.ts})`);
        return `${a.ts}/${b.ts}`;
      })
      .executeAndCollect('throwing join');
    const err = await failure(run);
    expect(err.message).toContain('RangeError: no pairs after 2000');
    expect(err.message).toMatch(/at Window Join\(TumblingEventTimeWindows\(500\)\)/);
    expect(err.remoteStack).toContain('pairUp');
  }, 30_000);

  it('interval join', async () => {
    const env = StreamExecutionEnvironment.createLocalEnvironment(2, nats.url);
    const run = timed(env)
      .keyBy((a) => a.k)
      .intervalJoin(timed(env).keyBy((b) => b.k))
      .between(0, 0)
      .process<string>({
        processElement(l) {
          if (l.ts > 2_000) throw new Error(`interval join refuses ${l.ts}`);
        },
      })
      .executeAndCollect('throwing interval join');
    const err = await failure(run);
    expect(err.message).toMatch(/interval join refuses \d+/);
    expect(err.message).toMatch(/at Interval Join/);
  }, 30_000);

  it('co-map', async () => {
    const env = StreamExecutionEnvironment.createLocalEnvironment(2, nats.url);
    const run = env
      .fromSource(new GeneratorSource(300, (i) => i))
      .connect(env.fromSource(new GeneratorSource(300, (i) => `s${i}`)))
      .map({
        map1: (n: number) => n,
        map2: (s: string): number => {
          if (s === 's150') throw new TypeError(`cannot map ${s}`);
          return s.length;
        },
      })
      .executeAndCollect('throwing co-map');
    const err = await failure(run);
    expect(err.message).toContain('TypeError: cannot map s150');
    expect(err.message).toMatch(/at Co-Map/);
  }, 30_000);

  it('an interval join without event time', async () => {
    const env = StreamExecutionEnvironment.createLocalEnvironment(1, nats.url);
    const run = env
      .fromElements({ k: 1 })
      .keyBy((a) => a.k)
      .intervalJoin(env.fromElements({ k: 1 }).keyBy((b) => b.k))
      .between(-1, 1)
      .process<string>({ processElement: () => undefined })
      .executeAndCollect('no timestamps');
    const err = await failure(run);
    expect(err.message).toMatch(/interval join needs event time.*assignTimestampsAndWatermarks/);
  }, 30_000);

  it('refuses bounds that leave no interval', () => {
    const env = StreamExecutionEnvironment.createLocalEnvironment(1, nats.url);
    const left = env.fromElements(1).keyBy((x) => x);
    const right = env.fromElements(1).keyBy((x) => x);
    expect(() => left.intervalJoin(right).between(5, 1)).toThrow(/lower <= upper/);
    expect(() =>
      left
        .intervalJoin(right)
        .between(0, 0)
        .lowerBoundExclusive()
        .process({ processElement: () => undefined }),
    ).toThrow(/exclusive bounds leave no interval/);
  });
});
