/**
 * Side outputs and the new window kinds through whole jobs on the local environment (real nats-server),
 * at parallelism 1 and 4, each against a plain-JS reference: side outputs leaving a chain mid-way and
 * crossing the network through keyBy at another parallelism, from ProcessFunction, KeyedProcessFunction
 * and ProcessWindowFunction; late data to a side output; event-time sessions with out-of-order input;
 * count windows (tumbling, sliding) and a global window with a purging count trigger.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/common/errors.js';
import type { JobId } from '../../src/common/ids.js';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  type Collector,
  CountTrigger,
  EventTimeSessionWindows,
  GeneratorSource,
  GlobalWindows,
  type KeyedProcessFunction,
  OutputTag,
  type ProcessWindowFunction,
  PurgingTrigger,
  type Source,
  StreamExecutionEnvironment,
  type TimeWindow,
  TumblingEventTimeWindows,
  WatermarkStrategy,
} from '../../src/index.js';
import { toJobGraph } from '../../src/jobgraph/chaining.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { lastPerKey, RecordingSink, sorted } from './recording-sink.js';

interface Event {
  user: string;
  amount: number;
  ts: number;
}

/** mulberry32 */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Events with timestamps that are multiples of 3 (never exactly a session gap of 10 apart). */
function events(count: number, users: number, seed: number): Event[] {
  const rnd = prng(seed);
  let t = 0;
  return Array.from({ length: count }, () => {
    t += 3 * Math.floor(rnd() * 3);
    return { user: `u${Math.floor(rnd() * users)}`, amount: 1 + Math.floor(rnd() * 100), ts: t };
  });
}

/** Each event arrives up to `bound` ms after its timestamp (never behind the bounded watermark). */
function outOfOrder(sortedEvents: Event[], bound: number, seed: number): Event[] {
  const rnd = prng(seed);
  return sortedEvents
    .map((e, i) => ({ e, i, arrival: e.ts + Math.floor(rnd() * (bound + 1)) }))
    .sort((a, b) => a.arrival - b.arrival || a.i - b.i)
    .map((x) => x.e);
}

const watermarks = (bound: number) =>
  WatermarkStrategy.forBoundedOutOfOrderness<Event>(bound)
    .withTimestampAssigner((e) => e.ts)
    .withAutoWatermarkInterval(20);

interface Session {
  user: string;
  start: number;
  end: number;
  n: number;
  sum: number;
}

function referenceSessions(input: Event[], gap: number): Session[] {
  const byUser = new Map<string, Event[]>();
  for (const e of input) byUser.set(e.user, [...(byUser.get(e.user) ?? []), e]);
  const out: Session[] = [];
  for (const [user, list] of byUser) {
    list.sort((a, b) => a.ts - b.ts);
    let cur: Session | undefined;
    for (const e of list) {
      if (cur && e.ts < cur.end) {
        cur.end = e.ts + gap;
        cur.n++;
        cur.sum += e.amount;
      } else {
        if (cur) out.push(cur);
        cur = { user, start: e.ts, end: e.ts + gap, n: 1, sum: e.amount };
      }
    }
    if (cur) out.push(cur);
  }
  return out;
}

const sessionSummary: ProcessWindowFunction<Event, Session, string, TimeWindow> = {
  process(user, ctx, elements, out) {
    out.collect({
      user,
      start: ctx.window.start,
      end: ctx.window.end,
      n: elements.length,
      sum: elements.reduce((s, e) => s + e.amount, 0),
    });
  },
};

describe('side outputs and more windows, on the local environment', () => {
  let nats: NatsServerHandle;
  const env = (parallelism: number) =>
    StreamExecutionEnvironment.createLocalEnvironment(parallelism, nats.url);

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
  });

  for (const p of [1, 4]) {
    it(`side output of a ProcessFunction inside a chain, read across the network by keyBy at another parallelism (p=${p})`, async () => {
      const odd = new OutputTag<[number, number]>('odd');
      const e = env(p);
      const split = e
        .fromSource(new GeneratorSource(3_000, (i) => i))
        .process<number>({
          processElement(v, ctx, out) {
            if (v % 2 === 1) ctx.output(odd, [v % 7, v]);
            else out.collect(v);
          },
        })
        .name('Split');
      const main = new RecordingSink<number>();
      split.map((v) => v * 10).sinkTo(main);
      const side = new RecordingSink<[number, number]>();
      split
        .getSideOutput(odd)
        .keyBy(([k]) => k)
        .reduce(([k, a], [, b]) => [k, a + b])
        .setParallelism(p === 1 ? 2 : 3)
        .sinkTo(side);

      // The process function is chained with the source and the main map; its side output leaves the
      // chain from there, hash-partitioned to the reduce at another parallelism.
      const graph = toJobGraph(e.getStreamGraph(), { jobId: '0'.repeat(32) as JobId, name: 't' });
      const chain = graph.vertices.find((v) => v.name.includes('Split'))!;
      expect(chain.name).toMatch(/^Source: Generator Source -> Split -> Map -> Sink/);
      expect(graph.edges.filter((ed) => ed.source === chain.id).map((ed) => ed.partitioner)).toEqual([
        'hash',
      ]);

      await e.execute();
      const evens = Array.from({ length: 1_500 }, (_, i) => i * 2 * 10);
      expect(sorted(main.values())).toEqual(sorted(evens));
      const expected = new Map<number, number>();
      for (let v = 1; v < 3_000; v += 2) expected.set(v % 7, (expected.get(v % 7) ?? 0) + v);
      // Rolling sums of positive numbers: the largest per key is the final one (the reduce's output is
      // rebalanced to the sink, so arrival order across sink subtasks says nothing).
      const finals = new Map<number, number>();
      for (const [k, sum] of side.values()) finals.set(k, Math.max(finals.get(k) ?? 0, sum));
      expect(finals).toEqual(expected);
    });

    it(`side outputs of a KeyedProcessFunction (element and timer) and a ProcessWindowFunction (p=${p})`, async () => {
      const input = outOfOrder(events(2_000, 6, 5), 40, 9);
      const big = new OutputTag<string>('big');
      const firstSeen = new OutputTag<string>('first');
      const e = env(p);
      const stream = e.fromCollection(input).assignTimestampsAndWatermarks(watermarks(40));
      const marker: KeyedProcessFunction<string, Event, number> = {
        processElement(ev, ctx, out: Collector<number>) {
          if (ev.amount > 95) ctx.output(big, `${ev.user}@${ev.ts}`);
          ctx.timerService().registerEventTimeTimer(1_000_000);
          out.collect(ev.amount);
        },
        onTimer(_ts, ctx) {
          ctx.output(firstSeen, ctx.getCurrentKey());
        },
      };
      const keyed = stream.keyBy((ev) => ev.user).process(marker);
      const bigSink = new RecordingSink<string>();
      keyed.getSideOutput(big).sinkTo(bigSink);
      const usersSink = new RecordingSink<string>();
      keyed.getSideOutput(firstSeen).rebalance().sinkTo(usersSink);
      const mainSink = new RecordingSink<number>();
      keyed.sinkTo(mainSink);

      const heavy = new OutputTag<string>('heavy windows');
      const windowed = stream
        .keyBy((ev) => ev.user)
        .window(TumblingEventTimeWindows.of(100))
        .process<number>({
          process(user, ctx, elements, out) {
            const sum = elements.reduce((s, x) => s + x.amount, 0);
            out.collect(sum);
            if (elements.length >= 5) ctx.output(heavy, `${user}[${ctx.window.start}]=${elements.length}`);
          },
        });
      const heavySink = new RecordingSink<string>();
      windowed.getSideOutput(heavy).setParallelism(1).sinkTo(heavySink);
      await e.execute();

      expect(sorted(bigSink.values())).toEqual(
        sorted(input.filter((x) => x.amount > 95).map((x) => `${x.user}@${x.ts}`)),
      );
      expect(sorted(usersSink.values())).toEqual(sorted([...new Set(input.map((x) => x.user))]));
      expect(sorted(mainSink.values())).toEqual(sorted(input.map((x) => x.amount)));
      const windows = new Map<string, number>();
      for (const x of input) {
        const id = `${x.user}[${Math.floor(x.ts / 100) * 100}]`;
        windows.set(id, (windows.get(id) ?? 0) + 1);
      }
      const expectedHeavy = [...windows].filter(([, n]) => n >= 5).map(([id, n]) => `${id}=${n}`);
      expect(expectedHeavy.length).toBeGreaterThan(0);
      expect(sorted(heavySink.values())).toEqual(sorted(expectedHeavy));
    });

    it(`event-time session windows, out of order, match the reference (p=${p})`, async () => {
      const sortedInput = events(3_000, 8, 21);
      const expected = referenceSessions(sortedInput, 10);
      expect(expected.some((s) => s.n >= 4)).toBe(true);
      for (const seed of [1, 2]) {
        const out = await env(p)
          .fromCollection(outOfOrder(sortedInput, 50, seed))
          .assignTimestampsAndWatermarks(watermarks(50))
          .keyBy((ev) => ev.user)
          .window(EventTimeSessionWindows.withGap(10))
          .process(sessionSummary)
          .executeAndCollect();
        expect(sorted(out)).toEqual(sorted(expected));
      }
    });

    it(`count windows (tumbling, sliding) and a global window with a purging count trigger (p=${p})`, async () => {
      const input = outOfOrder(events(2_000, 5, 33), 30, 4);
      const e = env(p);
      const keyed = e.fromCollection(input).keyBy((ev) => ev.user);
      const sum = (a: Event, b: Event): Event => ({ user: a.user, amount: a.amount + b.amount, ts: b.ts });
      const tumbling = new RecordingSink<Event>();
      keyed.countWindow(7).reduce(sum).sinkTo(tumbling);
      const sliding = new RecordingSink<Event>();
      keyed.countWindow(5, 2).reduce(sum).sinkTo(sliding);
      const purging = new RecordingSink<number>();
      keyed
        .window(GlobalWindows.create())
        .trigger(PurgingTrigger.of(CountTrigger.of(7)))
        .aggregate({
          createAccumulator: () => 0,
          add: (ev: Event, acc: number) => acc + ev.amount,
          getResult: (acc: number) => acc,
        })
        .sinkTo(purging);
      await e.execute();

      // Per key in arrival order (one source subtask: each key's order is kept through keyBy).
      const perUser = new Map<string, number[]>();
      for (const x of input) perUser.set(x.user, [...(perUser.get(x.user) ?? []), x.amount]);
      const total = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
      const expTumbling: string[] = [];
      const expSliding: string[] = [];
      for (const [user, amounts] of perUser) {
        for (let i = 7; i <= amounts.length; i += 7)
          expTumbling.push(`${user}:${total(amounts.slice(i - 7, i))}`);
        for (let i = 2; i <= amounts.length; i += 2)
          expSliding.push(`${user}:${total(amounts.slice(Math.max(0, i - 5), i))}`);
      }
      const label = (x: Event) => `${x.user}:${x.amount}`;
      expect(sorted(tumbling.values().map(label))).toEqual(sorted(expTumbling));
      expect(sorted(sliding.values().map(label))).toEqual(sorted(expSliding));
      expect(sorted(purging.values().map(String))).toEqual(sorted(expTumbling.map((s) => s.split(':')[1]!)));
    });

    it(`late data goes to the side output; allowed lateness fires windows again (p=${p})`, async () => {
      // Records in time order (10 ms of event time each), from one source subtask that pauses before
      // each late record, so the watermark (trailing by 100 ms, every 20 ms) has reached the windows
      // first. Every 400th record from 1000 on is 5 s old: beyond the 2 s allowed lateness, it goes to
      // the side output. Every 400th + 200 is 1050 ms old: its window fired already, the lateness has not
      // run out: it updates the window, which fires again.
      const count = 2_400;
      const make = (i: number): Event => {
        const user = `u${i % 3}`;
        if (i >= 1_000 && i % 400 === 0) return { user, amount: 1_000 + i, ts: i * 10 - 5_000 };
        if (i >= 1_000 && i % 400 === 200) return { user, amount: 7, ts: i * 10 - 1_050 };
        return { user, amount: 1, ts: i * 10 };
      };
      const source: Source<Event> = {
        name: 'Pausing Source',
        maxParallelism: 1,
        async run(ctx) {
          for (let i = 0; i < count; i++) {
            if (i >= 1_000 && i % 200 === 0) await new Promise((r) => setTimeout(r, 150));
            ctx.collect(make(i));
            if (!ctx.writable) await ctx.ready();
          }
        },
      };
      const lateTag = new OutputTag<Event>('late');
      const e = env(p);
      const windowed = e
        .fromSource(source, watermarks(100))
        .keyBy((x) => x.user)
        .window(TumblingEventTimeWindows.of(1_000))
        .allowedLateness(2_000)
        .sideOutputLateData(lateTag)
        .reduce((a, b) => ({ user: a.user, amount: a.amount + b.amount, ts: Math.max(a.ts, b.ts) }));
      const lateSink = new RecordingSink<Event>();
      windowed.getSideOutput(lateTag).sinkTo(lateSink);
      const results = new RecordingSink<Event>();
      windowed.sinkTo(results);
      await e.execute();

      const all = Array.from({ length: count }, (_, i) => make(i));
      const late = all.filter((x) => x.amount > 1_000);
      expect(sorted(lateSink.values().map((x) => x.ts))).toEqual(sorted(late.map((x) => x.ts)));
      const expected = new Map<string, number>();
      for (const x of all) {
        if (x.amount > 1_000) continue;
        const id = `${x.user}|${Math.floor(x.ts / 1_000)}`;
        expected.set(id, (expected.get(id) ?? 0) + x.amount);
      }
      const finals = lastPerKey(results.values(), (x) => `${x.user}|${Math.floor(x.ts / 1_000)}`);
      expect(new Map([...finals].map(([id, x]) => [id, x.amount]))).toEqual(expected);
      // Late firings: more results than windows.
      expect(results.values().length).toBeGreaterThan(finals.size);
    });
  }

  it('refuses invalid gaps, sizes and counts when the graph is built', () => {
    const keyed = env(1)
      .fromElements<Event>({ user: 'a', amount: 1, ts: 0 })
      .keyBy((x) => x.user);
    for (const bad of [0, -1, Number.NaN]) {
      expect(() => EventTimeSessionWindows.withGap(bad)).toThrow(SluiceError);
      expect(() => TumblingEventTimeWindows.of(bad)).toThrow(/window size must be a finite number/);
      expect(() => keyed.countWindow(bad)).toThrow(/countWindow size must be a whole number >= 1/);
      expect(() => keyed.countWindow(5, bad)).toThrow(/countWindow slide/);
      expect(() =>
        keyed.window(TumblingEventTimeWindows.of(10)).allowedLateness(bad === 0 ? -1 : bad),
      ).toThrow(/allowed lateness/);
    }
    expect(() => new OutputTag('')).toThrow(/OutputTag needs an id/);
  });
});
