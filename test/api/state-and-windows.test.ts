/**
 * Keyed state, timers and windows through whole jobs on the local environment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  type Collector,
  type KeyedProcessContext,
  type KeyedProcessFunction,
  ListStateDescriptor,
  MapStateDescriptor,
  type OnTimerContext,
  type RuntimeContext,
  SlidingEventTimeWindows,
  StreamExecutionEnvironment,
  Time,
  TumblingEventTimeWindows,
  type ValueState,
  ValueStateDescriptor,
  WatermarkStrategy,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { sorted } from './recording-sink.js';

interface Event {
  user: string;
  amount: number;
  ts: number;
}

/** Deterministic pseudo-random numbers (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function events(count: number): Event[] {
  const rnd = prng(7);
  return Array.from({ length: count }, (_, i) => ({
    user: `u${Math.floor(rnd() * 5)}`,
    amount: 1 + Math.floor(rnd() * 100),
    ts: 1_000_000 + i * 37,
  }));
}

/** Shuffles each element by at most `bound` ms of event time. */
function outOfOrder(sortedEvents: Event[], bound: number, seed: number): Event[] {
  const rnd = prng(seed);
  return sortedEvents
    .map((e) => ({ e, key: e.ts + rnd() * bound }))
    .sort((a, b) => a.key - b.key)
    .map(({ e }) => e);
}

describe('keyed state, timers and windows', () => {
  let nats: NatsServerHandle;
  const env = (parallelism = 1) => StreamExecutionEnvironment.createLocalEnvironment(parallelism, nats.url);

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
  });

  it('keeps ValueState, ListState and MapState per key in a KeyedProcessFunction', async () => {
    class Tracker implements KeyedProcessFunction<string, [string, string], string> {
      count!: ValueState<number>;
      seen!: ReturnType<RuntimeContext['getListState']>;
      distinct!: ReturnType<RuntimeContext['getMapState']>;
      open(ctx: RuntimeContext): void {
        this.count = ctx.getState(new ValueStateDescriptor<number>('count', 0));
        this.seen = ctx.getListState(new ListStateDescriptor<string>('seen'));
        this.distinct = ctx.getMapState(new MapStateDescriptor<string, boolean>('distinct'));
      }
      processElement(
        [key, item]: [string, string],
        ctx: KeyedProcessContext<string>,
        out: Collector<string>,
      ): void {
        this.count.update((this.count.value() ?? 0) + 1);
        this.seen.add(item);
        this.distinct.put(item, true);
        out.collect(
          `${ctx.getCurrentKey()}=${key}:${this.count.value()}:${this.seen.get().join('')}:${this.distinct.keys().length}`,
        );
      }
    }
    const out = await env(2)
      .fromElements<[string, string]>(['a', 'x'], ['b', 'y'], ['a', 'x'], ['a', 'z'], ['b', 'y'])
      .keyBy(([k]) => k)
      .process(new Tracker())
      .executeAndCollect();
    expect(sorted(out)).toEqual(
      sorted(['a=a:1:x:1', 'b=b:1:y:1', 'a=a:2:xx:1', 'a=a:3:xxz:2', 'b=b:2:yy:1']),
    );
  });

  it('fires event-time timers per key when the watermark passes them', async () => {
    const fn: KeyedProcessFunction<string, Event, string> = {
      processElement(e, ctx) {
        ctx.timerService().registerEventTimeTimer(e.ts + 1_000);
      },
      onTimer(timestamp: number, ctx: OnTimerContext<string>, out: Collector<string>) {
        out.collect(`${ctx.getCurrentKey()}@${timestamp}:${ctx.timeDomain()}`);
      },
    };
    const out = await env(2)
      .fromElements<Event>(
        { user: 'a', amount: 1, ts: 0 },
        { user: 'b', amount: 1, ts: 500 },
        { user: 'a', amount: 1, ts: 0 },
      )
      .assignTimestampsAndWatermarks(
        WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner((e) => e.ts),
      )
      .keyBy((e) => e.user)
      .process(fn)
      .executeAndCollect();
    // Registered twice for a@1000: fires once.
    expect(sorted(out)).toEqual(['a@1000:EVENT_TIME', 'b@1500:EVENT_TIME']);
  });

  it('computes tumbling event-time windows; out-of-order input gives the same result as sorted input', async () => {
    const input = events(2_000);
    const windowSums = async (data: Event[], parallelism: number) =>
      sorted(
        await env(parallelism)
          .fromCollection(data)
          .assignTimestampsAndWatermarks(
            WatermarkStrategy.forBoundedOutOfOrderness<Event>(500).withTimestampAssigner((e) => e.ts),
          )
          .keyBy((e) => e.user)
          .window(TumblingEventTimeWindows.of(Time.seconds(5)))
          .reduce((a, b) => ({ user: a.user, amount: a.amount + b.amount, ts: Math.max(a.ts, b.ts) }))
          .map((e) => ({ user: e.user, amount: e.amount, window: Math.floor(e.ts / 5_000) }))
          .executeAndCollect(),
      );
    const inOrder = await windowSums(input, 1);
    // Expected from first principles.
    const expected = new Map<string, number>();
    for (const e of input) {
      const k = `${e.user}|${Math.floor(e.ts / 5_000)}`;
      expected.set(k, (expected.get(k) ?? 0) + e.amount);
    }
    expect(inOrder).toHaveLength(expected.size);
    for (const r of inOrder) expect(r.amount).toBe(expected.get(`${r.user}|${r.window}`));
    for (const seed of [1, 2, 3]) {
      expect(await windowSums(outOfOrder(input, 500, seed), 2)).toEqual(inOrder);
    }
    expect(await windowSums(input, 4)).toEqual(inOrder);
  });

  it('assigns each element to size/slide sliding windows', async () => {
    const out = await env(1)
      .fromElements<Event>({ user: 'a', amount: 1, ts: 1_000 }, { user: 'a', amount: 10, ts: 3_500 })
      .assignTimestampsAndWatermarks(
        WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner((e) => e.ts),
      )
      .keyBy((e) => e.user)
      .window(SlidingEventTimeWindows.of(Time.seconds(4), Time.seconds(2)))
      .aggregate({
        createAccumulator: () => 0,
        add: (e: Event, acc: number) => acc + e.amount,
        getResult: (acc: number) => acc,
      })
      .executeAndCollect();
    // Windows [-2,2) → 1; [0,4) → 11; [2,6) → 10.
    expect(out).toEqual([1, 11, 10]);
  });
});
