/**
 * connect: co-map, co-flatMap and co-process (non-keyed), and a keyed co-process with keyed state and
 * event-time timers, on the local environment with a real nats-server. Each job runs at parallelism 1
 * and 4 on out-of-order input, checkpoints every 100 ms and fails once half-way: the restarted job
 * resumes from a checkpoint (the function sees fewer records after the failure than the job has) and the
 * exactly-once sink holds exactly the plain-JS reference.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  type Collector,
  type KeyedCoProcessFunction,
  type KeyedProcessContext,
  type MapState,
  MapStateDescriptor,
  type OnTimerContext,
  type RuntimeContext,
  StreamExecutionEnvironment,
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
const A = makeEvents(N, 12, 1, 2, BOUND);
const B = makeEvents(N, 12, 2, 2, BOUND);

describe('connect: co-functions through a restart', () => {
  let nats: NatsServerHandle;
  let dir: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-connect-'));
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const checkpointingEnv = (parallelism: number) =>
    StreamExecutionEnvironment.createLocalEnvironment(parallelism, nats.url).enableCheckpointing(100);

  for (const parallelism of [1, 4]) {
    it(`co-map, co-flatMap and co-process at parallelism ${parallelism}`, async () => {
      const out = join(dir, `co-${parallelism}`);
      const env = checkpointingEnv(parallelism);
      const rate = Math.ceil(800 / parallelism);
      const fail = new FailOnce(N, 'Co-Map');
      const connected = eventSource(env, A, rate, BOUND, 'a').connect(eventSource(env, B, rate, BOUND, 'b'));
      connected
        .map({
          map1: (e: Ev) => {
            fail.hit();
            return `A${e.i}:${e.v * 2}`;
          },
          map2: (e: Ev) => {
            fail.hit();
            return `B${e.i}:${e.v + 1}`;
          },
        })
        .uid('co-map')
        .sinkTo(jsonSink<string>(join(out, 'map')))
        .uid('map-out');
      connected
        .flatMap<string>({
          flatMap1: (e, c) => {
            for (let j = 0; j < e.v % 3; j++) c.collect(`A${e.i}/${j}`);
          },
          flatMap2: (e) => [`B${e.i}`, `B${e.i}'`],
        })
        .uid('co-flat-map')
        .sinkTo(jsonSink<string>(join(out, 'flat')))
        .uid('flat-out');
      connected
        .process<string>({
          processElement1: (e, ctx, c) => c.collect(`A${e.i}@${ctx.timestamp()}`),
          processElement2: (e, ctx, c) => c.collect(`B${e.i}@${ctx.timestamp()}`),
        })
        .uid('co-process')
        .sinkTo(jsonSink<string>(join(out, 'process')))
        .uid('process-out');
      await env.execute(`co-functions p${parallelism}`);

      expect(fail.failed).toBe(true);
      // Restored from a checkpoint: the sources did not start over.
      expect(fail.callsAfterFailure).toBeGreaterThan(0);
      expect(fail.callsAfterFailure).toBeLessThan(2 * N);
      expect(bag(await readJsonLines(join(out, 'map')))).toEqual(
        bag([...A.map((e) => `A${e.i}:${e.v * 2}`), ...B.map((e) => `B${e.i}:${e.v + 1}`)]),
      );
      expect(bag(await readJsonLines(join(out, 'flat')))).toEqual(
        bag([
          ...A.flatMap((e) => Array.from({ length: e.v % 3 }, (_, j) => `A${e.i}/${j}`)),
          ...B.flatMap((e) => [`B${e.i}`, `B${e.i}'`]),
        ]),
      );
      expect(bag(await readJsonLines(join(out, 'process')))).toEqual(
        bag([...A.map((e) => `A${e.i}@${e.ts}`), ...B.map((e) => `B${e.i}@${e.ts}`)]),
      );
    }, 60_000);
  }

  interface WindowSum {
    k: number;
    start: number;
    sum: number;
    count: number;
    firedAt: number;
  }

  /** Per key and 100 ms of event time: the sum of input 1's values and the count of input 2's elements. */
  class TwoInputWindows implements KeyedCoProcessFunction<number, Ev, Ev, WindowSum> {
    windows!: MapState<number, [number, number]>;
    constructor(readonly fail: FailOnce) {}
    open(ctx: RuntimeContext): void {
      this.windows = ctx.getMapState(new MapStateDescriptor<number, [number, number]>('windows'));
    }
    #add(ctx: KeyedProcessContext<number>, ts: number, sum: number, count: number): void {
      this.fail.hit();
      const start = Math.floor(ts / 100) * 100;
      const [s, c] = this.windows.get(start) ?? [0, 0];
      this.windows.put(start, [s + sum, c + count]);
      ctx.timerService().registerEventTimeTimer(start + 99);
    }
    processElement1(e: Ev, ctx: KeyedProcessContext<number>): void {
      this.#add(ctx, e.ts, e.v, 0);
    }
    processElement2(e: Ev, ctx: KeyedProcessContext<number>): void {
      this.#add(ctx, e.ts, 0, 1);
    }
    onTimer(timestamp: number, ctx: OnTimerContext<number>, out: Collector<WindowSum>): void {
      const start = timestamp - 99;
      const [sum, count] = this.windows.get(start)!;
      this.windows.remove(start);
      out.collect({ k: ctx.getCurrentKey(), start, sum, count, firedAt: ctx.timestamp()! });
    }
  }

  for (const parallelism of [1, 4]) {
    it(`keyed co-process with keyed state and timers at parallelism ${parallelism}`, async () => {
      const out = join(dir, `keyed-${parallelism}`);
      const env = checkpointingEnv(parallelism);
      const rate = Math.ceil(800 / parallelism);
      const fail = new FailOnce(N, 'Keyed Co-Process');
      const a = eventSource(env, A, rate, BOUND, 'a');
      const b = eventSource(env, B, rate, BOUND, 'b');
      // Both ways of keying two connected streams.
      const connected =
        parallelism === 1
          ? a.connect(b).keyBy(
              (e) => e.k,
              (e) => e.k,
            )
          : a.keyBy((e) => e.k).connect(b.keyBy((e) => e.k));
      connected.process(new TwoInputWindows(fail)).uid('windows').sinkTo(jsonSink<WindowSum>(out)).uid('out');
      await env.execute(`keyed co-process p${parallelism}`);

      expect(fail.failed).toBe(true);
      expect(fail.callsAfterFailure).toBeGreaterThan(0);
      expect(fail.callsAfterFailure).toBeLessThan(2 * N);
      const expected = new Map<string, WindowSum>();
      const add = (e: Ev, sum: number, count: number) => {
        const start = Math.floor(e.ts / 100) * 100;
        const id = `${e.k}/${start}`;
        const w = expected.get(id) ?? { k: e.k, start, sum: 0, count: 0, firedAt: start + 99 };
        w.sum += sum;
        w.count += count;
        expected.set(id, w);
      };
      for (const e of A) add(e, e.v, 0);
      for (const e of B) add(e, 0, 1);
      expect(bag(await readJsonLines<WindowSum>(out))).toEqual(bag([...expected.values()]));
    }, 60_000);
  }
});
