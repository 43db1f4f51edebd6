import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AggregateFunction, ReduceFunction } from '../../src/api/functions.js';
import type { WindowFunctionSpec } from '../../src/api/transformation.js';
import {
  type ProcessWindowFunction,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  type WindowAssigner,
} from '../../src/api/windows.js';
import { MAX_WATERMARK } from '../../src/runtime/operators/operator.js';
import { WINDOW_STATE_NAME, WindowOperator } from '../../src/runtime/operators/window-operator.js';
import { type HarnessOptions, OperatorHarness, prng } from './harness.js';

interface Ev {
  key: string;
  value: number;
  ts: number;
}

const ev = (key: string, value: number, ts: number): Ev => ({ key, value, ts });
const byKey = (e: Ev) => e.key;
const sum: ReduceFunction<Ev> = (a, b) => ({
  key: a.key,
  value: a.value + b.value,
  ts: Math.min(a.ts, b.ts),
});
const label = (r: unknown) => `${(r as Ev).key}:${(r as Ev).value}`;

function windowOperator(
  assigner: WindowAssigner,
  fn: WindowFunctionSpec,
  allowedLatenessMs = 0,
): WindowOperator {
  return new WindowOperator({ kind: 'window', assigner, fn, allowedLatenessMs });
}

function reduceSpec(reduce: ReduceFunction<Ev>): WindowFunctionSpec {
  return { kind: 'reduce', reduce: reduce as ReduceFunction<unknown> };
}

async function harness(
  op: WindowOperator,
  options: Partial<HarnessOptions<Ev>> = {},
): Promise<OperatorHarness<Ev>> {
  return new OperatorHarness<Ev>(op, { keySelector: byKey, ...options }).open();
}

/** Feeds events with their timestamps, each followed by a bounded-out-of-orderness watermark. */
function feedWithWatermarks(h: OperatorHarness<Ev>, events: Ev[], boundMs: number): void {
  let maxSeen = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    h.element(e, e.ts);
    maxSeen = Math.max(maxSeen, e.ts);
    h.watermark(maxSeen - boundMs - 1);
  }
}

describe('WindowOperator: event time', () => {
  it('sums per key in tumbling windows, results before the watermark that closes them', async () => {
    const op = windowOperator(TumblingEventTimeWindows.of(10), reduceSpec(sum));
    const h = await harness(op);
    // b before a: results of one window end are still ordered by key.
    h.element(ev('b', 2, 0), 0)
      .element(ev('a', 1, 1), 1)
      .element(ev('a', 3, 7), 7);
    h.element(ev('a', 4, 12), 12).element(ev('b', 5, 15), 15);
    h.watermark(9);
    h.element(ev('a', 6, 25), 25);
    h.watermark(19);
    await h.finish({ maxWatermark: true });

    expect(h.output.map((e) => (e.kind === 'record' ? label(e.value) : `wm:${e.watermark}`))).toEqual([
      'a:4',
      'b:2',
      'wm:9',
      'a:4',
      'b:5',
      'wm:19',
      'a:6',
      `wm:${MAX_WATERMARK}`,
    ]);
    expect(h.timestamped().map(([, ts]) => ts)).toEqual([9, 9, 19, 19, 29]);
    expect(op.droppedLate).toBe(0);
    expect(h.stateEntries()).toBe(0);
  });

  it('puts each element into size/slide sliding windows', async () => {
    const op = windowOperator(SlidingEventTimeWindows.of(10, 5), reduceSpec(sum));
    const h = await harness(op);
    h.element(ev('a', 1, 2), 2)
      .element(ev('b', 100, 4), 4)
      .element(ev('a', 2, 6), 6);
    h.element(ev('a', 4, 11), 11).element(ev('a', 8, 17), 17);
    await h.finish({ maxWatermark: true });

    expect(h.timestamped().map(([v, ts]) => [label(v), ts])).toEqual([
      ['a:1', 4], // [-5, 5)
      ['b:100', 4],
      ['a:3', 9], // [0, 10)
      ['b:100', 9],
      ['a:6', 14], // [5, 15)
      ['a:12', 19], // [10, 20)
      ['a:8', 24], // [15, 25)
    ]);
  });

  it('keeps its windows in keyed state, one entry per key, cleared after firing', async () => {
    const op = windowOperator(SlidingEventTimeWindows.of(10, 5), reduceSpec(sum));
    const h = await harness(op);
    h.element(ev('a', 1, 2), 2)
      .element(ev('b', 1, 3), 3)
      .element(ev('a', 1, 7), 7);
    expect(h.stateEntries(WINDOW_STATE_NAME)).toBe(2);
    h.backend!.setCurrentKey('a');
    const windows = h.backend!.mapState<number, Ev>(WINDOW_STATE_NAME);
    expect(windows.keys().sort((x, y) => x - y)).toEqual([-5, 0, 5]);
    expect(windows.get(0)?.value).toBe(2);
    h.watermark(9); // fires [-5, 5) and [0, 10)
    expect(h.stateEntries(WINDOW_STATE_NAME)).toBe(1);
    h.watermark(14);
    expect(h.stateEntries()).toBe(0);
  });

  it('orders numeric keys numerically within a window end', async () => {
    const op = windowOperator(TumblingEventTimeWindows.of(10), {
      kind: 'reduce',
      reduce: (a, b) => (a as number) + (b as number),
    });
    const h = await new OperatorHarness<number>(op, { keySelector: (v) => v }).open();
    for (const k of [10, 9, 2, 100]) h.element(k, 5);
    h.watermark(20);
    expect(h.records()).toEqual([2, 9, 10, 100]);
  });

  for (const seed of [1, 7, 42, 1234, 99991]) {
    it(`gives the same results for input shuffled within the out-of-orderness bound (seed ${seed})`, async () => {
      const rnd = prng(seed);
      const bound = 20;
      const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
      const sorted: Ev[] = [];
      let t = 0;
      for (let i = 0; i < 400; i++) {
        t += Math.floor(rnd() * 4);
        sorted.push(ev(keys[Math.floor(rnd() * keys.length)]!, Math.floor(rnd() * 100), t));
      }
      // Each element arrives up to `bound` ms after its timestamp: never behind a watermark that lags by it.
      const shuffled = sorted
        .map((e, i) => ({ e, i, arrival: e.ts + Math.floor(rnd() * (bound + 1)) }))
        .sort((a, b) => a.arrival - b.arrival || a.i - b.i)
        .map((x) => x.e);
      expect(shuffled.some((e, i) => i > 0 && e.ts < shuffled[i - 1]!.ts)).toBe(true);

      const sumValues: ProcessWindowFunction<unknown, unknown, unknown> = {
        process: (key, ctx, elements, out) => {
          const values = (elements as Ev[]).map((e) => e.value).sort((a, b) => a - b);
          out.collect({ key, start: ctx.window.start, values });
        },
      };
      const run = async (events: Ev[], assigner: WindowAssigner, fn: WindowFunctionSpec) => {
        const op = windowOperator(assigner, fn);
        const h = await harness(op);
        feedWithWatermarks(h, events, bound);
        await h.finish({ maxWatermark: true });
        expect(op.droppedLate).toBe(0);
        return h.timestamped();
      };

      const tumbling = TumblingEventTimeWindows.of(25);
      const inOrder = await run(sorted, tumbling, reduceSpec(sum));
      expect(await run(shuffled, tumbling, reduceSpec(sum))).toEqual(inOrder);
      // Against an independent computation: windows by end, then key.
      const expected = new Map<string, { key: string; end: number; value: number }>();
      for (const e of sorted) {
        const end = Math.floor(e.ts / 25) * 25 + 25;
        const id = `${end}|${e.key}`;
        const entry = expected.get(id) ?? { key: e.key, end, value: 0 };
        entry.value += e.value;
        expected.set(id, entry);
      }
      const reference = [...expected.values()]
        .sort((a, b) => a.end - b.end || (a.key < b.key ? -1 : 1))
        .map((w) => [`${w.key}:${w.value}`, w.end - 1]);
      expect(inOrder.map(([v, ts]) => [label(v), ts])).toEqual(reference);

      const sliding = SlidingEventTimeWindows.of(30, 10);
      const processSpec: WindowFunctionSpec = { kind: 'process', process: sumValues };
      const slidingInOrder = await run(sorted, sliding, processSpec);
      expect(slidingInOrder.length).toBeGreaterThan(0);
      expect(await run(shuffled, sliding, processSpec)).toEqual(slidingInOrder);
    });
  }

  it('drops and counts elements beyond the allowed lateness, logging once at debug', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const op = windowOperator(TumblingEventTimeWindows.of(10), reduceSpec(sum));
    const h = await harness(op, { log: pino({ level: 'debug' }, sink) });
    h.element(ev('a', 1, 1), 1).element(ev('a', 5, 5), 5);
    h.watermark(9);
    h.element(ev('a', 100, 3), 3); // [0, 10) has fired and is gone
    h.element(ev('b', 100, 9), 9);
    h.element(ev('a', 7, 12), 12);
    await h.finish({ maxWatermark: true });

    expect(h.records().map(label)).toEqual(['a:6', 'a:7']);
    expect(op.droppedLate).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => l.includes('dropping'))).toHaveLength(1);
  });

  it('with allowed lateness, fires again for late elements until the lateness runs out', async () => {
    const op = windowOperator(TumblingEventTimeWindows.of(10), reduceSpec(sum), 5);
    const h = await harness(op);
    h.element(ev('a', 1, 1), 1).element(ev('a', 2, 5), 5);
    h.watermark(9); // fires [0, 10): 3, keeps its state until 9 + 5
    h.element(ev('a', 4, 3), 3); // late within lateness: fires again at once
    h.watermark(13);
    h.element(ev('a', 8, 8), 8);
    expect(h.stateEntries()).toBe(1);
    h.watermark(14); // cleanup time of [0, 10)
    expect(h.stateEntries()).toBe(0);
    h.element(ev('a', 16, 2), 2); // beyond the lateness: dropped
    h.element(ev('a', 32, 12), 12);
    await h.finish({ maxWatermark: true });

    expect(h.trace().map((x) => (typeof x === 'string' ? x : label(x)))).toEqual([
      'a:3',
      'wm:9',
      'a:7',
      'wm:13',
      'a:15',
      'wm:14',
      'a:32',
      `wm:${MAX_WATERMARK}`,
    ]);
    expect(h.timestamped().map(([, ts]) => ts)).toEqual([9, 9, 9, 19]);
    expect(op.droppedLate).toBe(1);
  });

  it('does not count an element late when a newer sliding window still takes it', async () => {
    const op = windowOperator(SlidingEventTimeWindows.of(10, 5), reduceSpec(sum));
    const h = await harness(op);
    h.element(ev('a', 1, 1), 1);
    h.watermark(10); // [-5, 5) and [0, 10) are gone
    h.element(ev('a', 2, 7), 7); // too late for [0, 10), in time for [5, 15)
    await h.finish({ maxWatermark: true });

    expect(h.timestamped().map(([v, ts]) => [label(v), ts])).toEqual([
      ['a:1', 4],
      ['a:1', 9],
      ['a:2', 14],
    ]);
    expect(op.droppedLate).toBe(0);
  });

  it('aggregate: emits getResult of the accumulator (average)', async () => {
    const average: AggregateFunction<Ev, { sum: number; count: number }, number> = {
      createAccumulator: () => ({ sum: 0, count: 0 }),
      add: (e, acc) => ({ sum: acc.sum + e.value, count: acc.count + 1 }),
      getResult: (acc) => acc.sum / acc.count,
    };
    const op = windowOperator(TumblingEventTimeWindows.of(10), {
      kind: 'aggregate',
      aggregate: average as AggregateFunction<unknown, unknown, unknown>,
    });
    const h = await harness(op);
    for (const [v, ts] of [
      [1, 0],
      [2, 3],
      [3, 5],
      [4, 9],
    ] as const)
      h.element(ev('a', v, ts), ts);
    h.element(ev('b', 10, 4), 4).element(ev('b', 7, 11), 11);
    await h.finish({ maxWatermark: true });
    expect(h.timestamped()).toEqual([
      [2.5, 9],
      [10, 9],
      [7, 19],
    ]);
  });

  it('process: gets the key, the window and all its elements; may emit several records', async () => {
    const process: ProcessWindowFunction<Ev, unknown, string> = {
      process: (key, ctx, elements, out) => {
        out.collect({
          key,
          start: ctx.window.start,
          end: ctx.window.end,
          values: elements.map((e) => e.value),
        });
        out.collect({ key, watermark: ctx.currentWatermark(), now: ctx.currentProcessingTime() });
      },
    };
    const op = windowOperator(TumblingEventTimeWindows.of(10), {
      kind: 'process',
      process: process as ProcessWindowFunction<unknown, unknown, unknown>,
    });
    const h = await harness(op, { startTime: 5000 });
    h.element(ev('a', 1, 2), 2)
      .element(ev('a', 2, 8), 8)
      .element(ev('a', 3, 1), 1)
      .element(ev('a', 4, 10), 10);
    h.watermark(12);
    expect(h.timestamped()).toEqual([
      [{ key: 'a', start: 0, end: 10, values: [1, 2, 3] }, 9],
      [{ key: 'a', watermark: 12, now: 5000 }, 9],
    ]);
  });

  it('reduce-process: the reduced value reaches process as a one-element list', async () => {
    const process: ProcessWindowFunction<Ev, unknown, string> = {
      process: (key, ctx, elements, out) =>
        out.collect(
          `${key} [${ctx.window.start},${ctx.window.end}) ${elements.length}x ${elements[0]!.value}`,
        ),
    };
    const op = windowOperator(TumblingEventTimeWindows.of(10), {
      kind: 'reduce-process',
      reduce: sum as ReduceFunction<unknown>,
      process: process as ProcessWindowFunction<unknown, unknown, unknown>,
    });
    const h = await harness(op);
    h.element(ev('a', 1, 2), 2)
      .element(ev('a', 2, 8), 8)
      .element(ev('b', 5, 13), 13)
      .element(ev('a', 4, 3), 3);
    await h.finish({ maxWatermark: true });
    expect(h.timestamped()).toEqual([
      ['a [0,10) 1x 7', 9],
      ['b [10,20) 1x 5', 19],
    ]);
  });

  it('fires every remaining window at endInput when no MAX watermark came, by window end then key', async () => {
    const op = windowOperator(TumblingEventTimeWindows.of(10), reduceSpec(sum), 100);
    const h = await harness(op);
    h.element(ev('b', 1, 25), 25)
      .element(ev('a', 2, 15), 15)
      .element(ev('c', 3, 5), 5);
    h.element(ev('a', 4, 27), 27).element(ev('b', 8, 12), 12);
    await h.finish();
    expect(h.timestamped().map(([v, ts]) => [label(v), ts])).toEqual([
      ['c:3', 9],
      ['a:2', 19],
      ['b:8', 19],
      ['a:4', 29],
      ['b:1', 29],
    ]);
    expect(h.output.some((e) => e.kind === 'watermark')).toBe(false);
    expect(h.stateEntries()).toBe(0);
  });

  it('refuses a record without a timestamp', async () => {
    const h = await harness(windowOperator(TumblingEventTimeWindows.of(10), reduceSpec(sum)));
    expect(() => h.element(ev('a', 1, 1))).toThrow(
      /event-time windows need timestamps: call assignTimestampsAndWatermarks/,
    );
  });

  it('needs a keyed stream', async () => {
    const h = new OperatorHarness<Ev>(windowOperator(TumblingEventTimeWindows.of(10), reduceSpec(sum)), {
      keySelector: byKey,
      unkeyed: true,
    });
    await expect(h.open()).rejects.toThrow(/keyBy\(\) before window\(\)/);
  });

  it('rejects a negative allowed lateness', () => {
    expect(() => windowOperator(TumblingEventTimeWindows.of(10), reduceSpec(sum), -1)).toThrow(RangeError);
  });
});

describe('WindowOperator: processing time', () => {
  it('fires tumbling windows when the clock passes their end, and drains the rest at endInput', async () => {
    const op = windowOperator(TumblingProcessingTimeWindows.of(100), reduceSpec(sum));
    const h = await harness(op, { startTime: 1000 });
    // Event timestamps are ignored (and may be missing) in processing time.
    h.element(ev('b', 1, 0));
    h.advanceProcessingTime(1010).element(ev('a', 2, 0), 999_999);
    h.advanceProcessingTime(1050).element(ev('a', 3, 0));
    h.advanceProcessingTime(1098);
    expect(h.records()).toEqual([]);
    h.advanceProcessingTime(1099);
    expect(h.timestamped().map(([v, ts]) => [label(v), ts])).toEqual([
      ['b:1', 1099],
      ['a:5', 1099],
    ]);
    h.watermark(500); // forwarded, fires nothing
    h.advanceProcessingTime(1150).element(ev('c', 4, 0));
    h.advanceProcessingTime(1160)
      .element(ev('a', 5, 0))
      .element(ev('a', 6, 0));
    expect(h.time.pending).toBe(2);
    await h.finish();

    expect(h.trace().map((x) => (typeof x === 'string' ? x : label(x)))).toEqual([
      'b:1',
      'a:5',
      'wm:500',
      'a:11', // [1100, 1200), drained at endInput, by key
      'c:4',
    ]);
    expect(h.timestamped().map(([, ts]) => ts)).toEqual([1099, 1099, 1199, 1199]);
    expect(h.time.pending).toBe(0);
    expect(h.stateEntries()).toBe(0);
    expect(h.errors).toEqual([]);
  });

  it('drains sliding windows at endInput by window end, then key, cancelling their timers', async () => {
    const op = windowOperator(SlidingProcessingTimeWindows.of(100, 50), reduceSpec(sum));
    const h = await harness(op, { startTime: 1020 });
    h.element(ev('b', 1, 0));
    h.advanceProcessingTime(1030).element(ev('a', 2, 0));
    expect(h.time.pending).toBe(4);
    await h.finish();
    expect(h.timestamped().map(([v, ts]) => [label(v), ts])).toEqual([
      ['a:2', 1049],
      ['b:1', 1049],
      ['a:2', 1099],
      ['b:1', 1099],
    ]);
    expect(h.time.pending).toBe(0);
  });

  it('never drops elements as late', async () => {
    const op = windowOperator(TumblingProcessingTimeWindows.of(100), reduceSpec(sum));
    const h = await harness(op, { startTime: 0 });
    h.watermark(10_000);
    h.element(ev('a', 1, 5), 5);
    h.advanceProcessingTime(100);
    expect(h.timestamped().map(([v, ts]) => [label(v), ts])).toEqual([['a:1', 99]]);
    expect(op.droppedLate).toBe(0);
  });
});
