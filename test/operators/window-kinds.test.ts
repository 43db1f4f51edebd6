/**
 * Session, count and global windows with triggers, allowed lateness with late firings, late data to a
 * side output, and window state (merged sessions, trigger state) through a snapshot restored at another
 * parallelism: each checked against a plain-JS reference computation, with out-of-order input.
 */
import { describe, expect, it } from 'vitest';
import type { AggregateFunction, ReduceFunction } from '../../src/api/functions.js';
import { OutputTag } from '../../src/api/output-tag.js';
import type { TransformationSpec, WindowFunctionSpec } from '../../src/api/transformation.js';
import { GlobalWindows } from '../../src/api/windowing/global-windows.js';
import {
  EventTimeSessionWindows,
  ProcessingTimeSessionWindows,
} from '../../src/api/windowing/session-windows.js';
import {
  CountTrigger,
  EventTimeTrigger,
  NeverTrigger,
  ProcessingTimeTrigger,
  PurgingTrigger,
} from '../../src/api/windowing/triggers.js';
import {
  type ProcessWindowFunction,
  TumblingEventTimeWindows,
  type WindowAssigner,
} from '../../src/api/windows.js';
import { SluiceError } from '../../src/common/errors.js';
import { stateCodec } from '../../src/runtime/checkpoint/state-store.js';
import {
  encodeSubtaskState,
  type OperatorState,
  ownsKey,
} from '../../src/runtime/checkpoint/subtask-state.js';
import { MAX_WATERMARK } from '../../src/runtime/operators/operator.js';
import { TRIGGER_STATE_NAME, WindowOperator } from '../../src/runtime/operators/window-operator.js';
import { keyGroupRange } from '../../src/runtime/state/key-groups.js';
import { OperatorHarness, prng } from './harness.js';

interface Ev {
  key: string;
  value: number;
  ts: number;
}
const ev = (key: string, value: number, ts: number): Ev => ({ key, value, ts });
const byKey = (e: Ev) => e.key;

/** Per window: key, first and last timestamp, count and sum (commutative, so merge order does not matter). */
interface Agg {
  key: string;
  min: number;
  max: number;
  n: number;
  sum: number;
}
const summary: AggregateFunction<Ev, Agg | undefined, Agg> = {
  createAccumulator: () => undefined,
  add: (e, acc) =>
    acc === undefined
      ? { key: e.key, min: e.ts, max: e.ts, n: 1, sum: e.value }
      : {
          key: acc.key,
          min: Math.min(acc.min, e.ts),
          max: Math.max(acc.max, e.ts),
          n: acc.n + 1,
          sum: acc.sum + e.value,
        },
  getResult: (acc) => acc!,
  merge: (a, b) =>
    a === undefined
      ? b
      : b === undefined
        ? a
        : {
            key: a.key,
            min: Math.min(a.min, b.min),
            max: Math.max(a.max, b.max),
            n: a.n + b.n,
            sum: a.sum + b.sum,
          },
};
const aggregateSpec: WindowFunctionSpec = {
  kind: 'aggregate',
  aggregate: summary as AggregateFunction<unknown, unknown, unknown>,
};
const sumReduce: ReduceFunction<Ev> = (a, b) => ({
  key: a.key,
  value: a.value + b.value,
  ts: Math.max(a.ts, b.ts),
});
const reduceSpec: WindowFunctionSpec = { kind: 'reduce', reduce: sumReduce as ReduceFunction<unknown> };

type WindowSpec = Extract<TransformationSpec, { kind: 'window' }>;
function operator(
  assigner: WindowAssigner,
  fn: WindowFunctionSpec,
  extra: Partial<Omit<WindowSpec, 'kind' | 'assigner' | 'fn'>> = {},
): WindowOperator {
  return new WindowOperator({ kind: 'window', assigner, fn, allowedLatenessMs: 0, ...extra });
}

async function harness(op: WindowOperator, startTime = 0, maxParallelism = 128) {
  return new OperatorHarness<Ev>(op, { keySelector: byKey, startTime, maxParallelism }).open();
}

function randomEvents(seed: number, count: number, keys: number, step: number): Ev[] {
  const rnd = prng(seed);
  const out: Ev[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    // Multiples of 3 with a gap of 10: no two timestamps are exactly a gap apart (a session boundary
    // that only touches would merge or not depending on arrival order, in Flink too).
    t += 3 * Math.floor(rnd() * step);
    out.push(ev(`k${Math.floor(rnd() * keys)}`, 1 + Math.floor(rnd() * 50), t));
  }
  return out;
}

/** Each element arrives up to `bound` ms after its timestamp. */
function shuffle(events: Ev[], bound: number, seed: number): Ev[] {
  const rnd = prng(seed);
  return events
    .map((e, i) => ({ e, i, arrival: e.ts + Math.floor(rnd() * (bound + 1)) }))
    .sort((a, b) => a.arrival - b.arrival || a.i - b.i)
    .map((x) => x.e);
}

function feed(h: OperatorHarness<Ev>, events: Ev[], bound: number): void {
  let maxSeen = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    h.element(e, e.ts);
    maxSeen = Math.max(maxSeen, e.ts);
    h.watermark(maxSeen - bound - 1);
  }
}

/**
 * Sessions from first principles: per key, sorted timestamps split where the next comes more than
 * `closesAt` (default: the gap; windows that touch merge) after the previous one.
 */
function referenceSessions(events: Ev[], gap: number, closesAt = gap): Agg[] {
  const byK = new Map<string, Ev[]>();
  for (const e of events) byK.set(e.key, [...(byK.get(e.key) ?? []), e]);
  const out: Agg[] = [];
  for (const [key, list] of byK) {
    list.sort((a, b) => a.ts - b.ts);
    let cur: Agg | undefined;
    for (const e of list) {
      if (cur && e.ts - cur.max <= closesAt) {
        cur.max = e.ts;
        cur.n++;
        cur.sum += e.value;
      } else {
        if (cur) out.push(cur);
        cur = { key, min: e.ts, max: e.ts, n: 1, sum: e.value };
      }
    }
    if (cur) out.push(cur);
  }
  return out;
}

const bySessionEnd = (gap: number) => (a: Agg, b: Agg) =>
  a.max + gap - (b.max + gap) || (a.key < b.key ? -1 : 1);

describe('session windows', () => {
  it('merges overlapping event-time sessions: in order and shuffled both match the reference', async () => {
    const gap = 10;
    const events = randomEvents(3, 600, 4, 5);
    const expected = referenceSessions(events, gap).sort(bySessionEnd(gap));
    expect(expected.some((s) => s.n > 3)).toBe(true); // sessions really merge
    for (const [input, bound] of [
      [events, 0],
      [shuffle(events, 30, 1), 30],
      [shuffle(events, 30, 2), 30],
    ] as const) {
      const op = operator(EventTimeSessionWindows.withGap(gap), aggregateSpec);
      const h = await harness(op);
      feed(h, input, bound);
      await h.finish({ maxWatermark: true });
      expect(op.droppedLate).toBe(0);
      expect(h.records()).toEqual(expected);
      // Results carry the session's last timestamp: last element + gap - 1.
      expect(h.timestamped().map(([, ts]) => ts)).toEqual(expected.map((s) => s.max + gap - 1));
      expect(h.stateEntries()).toBe(0);
    }
  });

  it('process(): a merged session hands every element of its parts to the function', async () => {
    const op = operator(EventTimeSessionWindows.withGap(10), {
      kind: 'process',
      process: {
        process: (key, ctx, elements, out) =>
          out.collect(
            `${key} [${ctx.window.start},${ctx.window.end}) ${(elements as Ev[]).map((e) => e.ts).sort((a, b) => a - b)}`,
          ),
      } as ProcessWindowFunction<unknown, unknown, unknown>,
    });
    const h = await harness(op);
    // Two sessions [0,15) and [25,35) bridged by 15 ([15,25) touches both) → one session [0, 35).
    h.element(ev('a', 1, 0), 0)
      .element(ev('a', 1, 5), 5)
      .element(ev('a', 1, 25), 25);
    h.watermark(13);
    expect(h.records()).toEqual([]);
    h.element(ev('a', 1, 15), 15);
    await h.finish({ maxWatermark: true });
    expect(h.records()).toEqual(['a [0,35) 0,5,15,25']);
  });

  it('processing-time sessions close when the clock passes gap after the last element', async () => {
    const gap = 100;
    const rnd = prng(11);
    const arrivals: Array<{ at: number; e: Ev }> = [];
    let now = 1_000;
    for (let i = 0; i < 300; i++) {
      now += Math.floor(rnd() * 40);
      arrivals.push({ at: now, e: ev(`k${Math.floor(rnd() * 3)}`, 1 + Math.floor(rnd() * 9), now) });
    }
    const op = operator(ProcessingTimeSessionWindows.withGap(gap), aggregateSpec);
    const h = await harness(op, 1_000);
    for (const { at, e } of arrivals) {
      h.advanceProcessingTime(at);
      h.element(e); // no event timestamp: processing time decides
    }
    await h.finish();
    // In processing time the arrival time is the timestamp. A session fires (and closes) when the clock
    // reaches its last millisecond, last + gap - 1: an element arriving then or later starts a new one.
    const expected = referenceSessions(
      arrivals.map((a) => a.e),
      gap,
      gap - 2,
    ).sort(bySessionEnd(gap));
    expect(expected.length).toBeGreaterThan(10);
    expect(h.records()).toEqual(expected);
    expect(h.time.pending).toBe(0);
  });

  it('with allowed lateness, a late element merges into a fired session and fires it again; later ones go to the side output', async () => {
    const late = new OutputTag<Ev>('late');
    const op = operator(EventTimeSessionWindows.withGap(10), aggregateSpec, {
      allowedLatenessMs: 20,
      lateDataTag: late as OutputTag<unknown>,
    });
    const h = await harness(op);
    h.element(ev('a', 1, 0), 0).element(ev('a', 2, 5), 5);
    h.watermark(20); // fires [0, 15): n=2
    h.element(ev('a', 4, 12), 12); // within lateness: merges to [0, 22), fires at once n=3
    h.element(ev('a', 8, 40), 40);
    h.watermark(60); // fires [40, 50); [0,22) cleaned up at 21+20=41
    h.element(ev('a', 16, 1), 1); // beyond lateness: side output
    await h.finish({ maxWatermark: true });
    const side = sideRecords(h, 'late');
    expect((h.records() as Agg[]).map((s) => `${s.min}-${s.max}:${s.n}/${s.sum}`)).toEqual([
      '0-5:2/3',
      '0-12:3/7',
      '40-40:1/8',
    ]);
    expect(side).toEqual([ev('a', 16, 1)]);
    expect(op.droppedLate).toBe(0);
  });

  it('refuses an invalid gap, a trigger that cannot merge, and aggregate without merge', () => {
    for (const gap of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => EventTimeSessionWindows.withGap(gap)).toThrow(SluiceError);
      expect(() => ProcessingTimeSessionWindows.withGap(gap)).toThrow(
        /session gap must be a finite number of milliseconds > 0/,
      );
    }
    // A trigger that does not support merging (the Trigger default).
    class FiresNever extends NeverTrigger {
      override canMerge(): boolean {
        return false;
      }
    }
    expect(() =>
      operator(EventTimeSessionWindows.withGap(5), reduceSpec, { trigger: new FiresNever() }),
    ).toThrow(/cannot be used with merging windows/);
    const { merge: _m, ...noMerge } = summary;
    expect(() =>
      operator(EventTimeSessionWindows.withGap(5), {
        kind: 'aggregate',
        aggregate: noMerge as AggregateFunction<unknown, unknown, unknown>,
      }),
    ).toThrow(/needs an AggregateFunction with merge/);
  });
});

/** Side-output records the operator emitted to `tag`, recorded by the harness' side-output hook. */
function sideRecords(h: OperatorHarness<Ev>, tag: string): unknown[] {
  return h.side.filter((s) => s.tag === tag).map((s) => s.value);
}

describe('count and global windows', () => {
  const events = randomEvents(5, 500, 3, 3);

  it('countWindow(size): every `size` elements of a key, then empty again; a partial count emits nothing', async () => {
    const op = operator(GlobalWindows.create(), reduceSpec, {
      trigger: PurgingTrigger.of(CountTrigger.of(4)),
    });
    const h = await harness(op);
    for (const e of events) h.element(e, e.ts);
    await h.finish({ maxWatermark: true });
    const expected: Ev[] = [];
    const pending = new Map<string, Ev[]>();
    for (const e of events) {
      const list = [...(pending.get(e.key) ?? []), e];
      if (list.length === 4) {
        expected.push(list.reduce(sumReduce));
        pending.set(e.key, []);
      } else pending.set(e.key, list);
    }
    expect(h.records()).toEqual(expected);
    expect([...pending.values()].some((l) => l.length > 0)).toBe(true);
  });

  it('countWindow(size, slide): every `slide` elements, over the last `size`', async () => {
    const op = operator(GlobalWindows.create(), reduceSpec, { trigger: CountTrigger.of(2), keepLast: 5 });
    const h = await harness(op);
    for (const e of events) h.element(e, e.ts);
    await h.finish({ maxWatermark: true });
    const expected: Ev[] = [];
    const seen = new Map<string, Ev[]>();
    for (const e of events) {
      const list = [...(seen.get(e.key) ?? []), e];
      seen.set(e.key, list);
      if (list.length % 2 === 0) expected.push(list.slice(-5).reduce(sumReduce));
    }
    expect(h.records()).toEqual(expected);
  });

  it('GlobalWindows with a CountTrigger accumulates: each firing covers everything so far', async () => {
    const op = operator(GlobalWindows.create(), reduceSpec, { trigger: CountTrigger.of(3) });
    const h = await harness(op);
    for (const e of events) h.element(e, e.ts);
    const expected: number[] = [];
    const sums = new Map<string, { n: number; sum: number }>();
    for (const e of events) {
      const s = sums.get(e.key) ?? { n: 0, sum: 0 };
      s.n++;
      s.sum += e.value;
      sums.set(e.key, s);
      if (s.n % 3 === 0) expected.push(s.sum);
    }
    expect(h.records().map((r) => (r as Ev).value)).toEqual(expected);
    expect(h.timestamped().every(([, ts]) => ts === MAX_WATERMARK)).toBe(true);
  });

  it('GlobalWindows with an EventTimeTrigger fires once at the end of event time; ProcessingTimeTrigger at end of input', async () => {
    for (const trigger of [EventTimeTrigger.create(), ProcessingTimeTrigger.create()]) {
      const op = operator(GlobalWindows.create(), reduceSpec, { trigger });
      const h = await harness(op);
      for (const e of events) h.element(e, e.ts);
      h.watermark(1_000_000);
      expect(h.records()).toEqual([]);
      await h.finish({ maxWatermark: true });
      const totals = new Map<string, number>();
      for (const e of events) totals.set(e.key, (totals.get(e.key) ?? 0) + e.value);
      expect(h.records().map((r) => `${(r as Ev).key}:${(r as Ev).value}`)).toEqual(
        [...totals].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}:${v}`),
      );
    }
  });

  it('CountTrigger on session windows merges the counts of merged sessions', async () => {
    const op = operator(EventTimeSessionWindows.withGap(10), reduceSpec, { trigger: CountTrigger.of(3) });
    const h = await harness(op);
    h.element(ev('a', 1, 0), 0); // [0,10) count 1
    h.element(ev('a', 2, 18), 18); // [18,28) count 1
    expect(h.records()).toEqual([]);
    h.element(ev('a', 4, 9), 9); // [9,19) bridges both: [0,28) count 1+1+1 = 3 → fires
    expect(h.records()).toEqual([ev('a', 7, 18)]);
    h.backend!.setCurrentKey('a');
    expect(h.backend!.mapState(TRIGGER_STATE_NAME).isEmpty()).toBe(true);
  });

  it('refuses invalid counts', () => {
    for (const n of [0, -1, 1.5, Number.NaN]) expect(() => CountTrigger.of(n)).toThrow(SluiceError);
    expect(() => operator(GlobalWindows.create(), reduceSpec, { keepLast: 0 })).toThrow(/whole size >= 1/);
  });
});

describe('allowed lateness on time windows', () => {
  it('re-fires a tumbling window for each late element within the lateness, with the updated result', async () => {
    const late = new OutputTag<Ev>('late');
    const op = operator(TumblingEventTimeWindows.of(10), reduceSpec, {
      allowedLatenessMs: 15,
      lateDataTag: late as OutputTag<unknown>,
    });
    const h = await harness(op);
    h.element(ev('a', 1, 2), 2).element(ev('a', 2, 8), 8);
    h.watermark(12);
    h.element(ev('a', 4, 5), 5); // late, within lateness: [0,10) fires again with 7
    h.watermark(24); // cleanup of [0,10) at 9+15 = 24
    h.element(ev('a', 8, 9), 9); // beyond: side output
    await h.finish({ maxWatermark: true });
    expect(h.records().map((r) => (r as Ev).value)).toEqual([3, 7]);
    expect(sideRecords(h, 'late')).toEqual([ev('a', 8, 9)]);
    expect(h.stateEntries()).toBe(0);
  });
});

describe('window state through a snapshot, restored at another parallelism', () => {
  /** Restores a snapshot (msgpack round trip, as checkpoints store it) into `parallelism` new subtasks. */
  async function restoreInto(from: OperatorHarness<Ev>, make: () => WindowOperator, parallelism: number) {
    const maxParallelism = 128;
    const bytes = encodeSubtaskState({
      op: { keyed: from.backend!.snapshot(), timers: from.timers.snapshot() },
    });
    const state = (stateCodec.unpack(bytes) as { operators: Record<string, OperatorState> }).operators.op!;
    const subtasks: OperatorHarness<Ev>[] = [];
    for (let s = 0; s < parallelism; s++) {
      const h = await harness(make(), from.time.now(), maxParallelism);
      const range = keyGroupRange(s, maxParallelism, parallelism);
      h.backend!.restore(state.keyed ?? [], range[0], range[1]);
      h.timers.restore(state.timers ?? { event: [], processing: [] }, (k) =>
        ownsKey(k, maxParallelism, range),
      );
      subtasks.push(h);
    }
    return subtasks;
  }

  const cases: Array<{ name: string; make: () => WindowOperator }> = [
    { name: 'event-time sessions', make: () => operator(EventTimeSessionWindows.withGap(10), aggregateSpec) },
    {
      name: 'count windows (trigger state)',
      make: () =>
        operator(GlobalWindows.create(), reduceSpec, { trigger: PurgingTrigger.of(CountTrigger.of(4)) }),
    },
    {
      name: 'sliding count windows (kept elements)',
      make: () => operator(GlobalWindows.create(), reduceSpec, { trigger: CountTrigger.of(2), keepLast: 5 }),
    },
    {
      name: 'tumbling with lateness',
      make: () => operator(TumblingEventTimeWindows.of(30), reduceSpec, { allowedLatenessMs: 20 }),
    },
  ];
  for (const { name, make } of cases) {
    for (const parallelism of [1, 4]) {
      it(`${name}: the same results as without the restore (new parallelism ${parallelism})`, async () => {
        const events = shuffle(randomEvents(9, 800, 8, 4), 25, 3);
        const owner = (subtasks: OperatorHarness<Ev>[], key: string) =>
          subtasks.find((s) => ownsKey(key, 128, keyGroupRange(subtasks.indexOf(s), 128, subtasks.length)))!;
        const sortResults = (rs: unknown[]) => rs.map((r) => JSON.stringify(r)).sort();

        const straight = await harness(make());
        feed(straight, events, 25);
        await straight.finish({ maxWatermark: true });

        const half = 400;
        const first = await harness(make());
        feed(first, events.slice(0, half), 25);
        const before = first.records();
        const subtasks = await restoreInto(first, make, parallelism);
        let maxSeen = Math.max(...events.slice(0, half).map((e) => e.ts));
        for (const s of subtasks) s.watermark(maxSeen - 25 - 1);
        for (const e of events.slice(half)) {
          owner(subtasks, e.key).element(e, e.ts);
          maxSeen = Math.max(maxSeen, e.ts);
          for (const s of subtasks) s.watermark(maxSeen - 25 - 1);
        }
        for (const s of subtasks) await s.finish({ maxWatermark: true });
        const after = subtasks.flatMap((s) => s.records());
        expect(straight.records().length).toBeGreaterThan(0);
        expect(sortResults([...before, ...after])).toEqual(sortResults(straight.records()));
      });
    }
  }
});
