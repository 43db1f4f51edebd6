/**
 * Two-input operators driven as a task drives them (real keyed state backend and timer service): the
 * interval join's pairs, timestamps, late-element drop and state cleanup as the watermark passes; the
 * keyed co-process's shared state and timers; broadcast state's read-only side, snapshot and restore at
 * another parallelism, and applyToKeyedState.
 */
import { describe, expect, it } from 'vitest';
import type {
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
  ProcessJoinFunction,
} from '../../src/api/co-functions.js';
import { MapStateDescriptor, type RuntimeContext, ValueStateDescriptor } from '../../src/api/functions.js';
import { CoBroadcastWithKeyedOperator } from '../../src/runtime/operators/broadcast-process-operators.js';
import { BroadcastStates } from '../../src/runtime/operators/broadcast-state.js';
import { KeyedCoProcessOperator } from '../../src/runtime/operators/co-process-operators.js';
import {
  IntervalJoinOperator,
  LEFT_BUFFER,
  RIGHT_BUFFER,
} from '../../src/runtime/operators/interval-join-operator.js';
import { MAX_WATERMARK } from '../../src/runtime/operators/operator.js';
import type { ValueState } from '../../src/runtime/state/keyed-state-backend.js';
import { OperatorHarness } from './harness.js';

interface Ev {
  k: string;
  id: string;
}

function intervalJoin(lowerMs: number, upperMs: number, lowerExclusive = false, upperExclusive = false) {
  const fn: ProcessJoinFunction<Ev, Ev, string> = {
    processElement: (l, r, ctx, out) =>
      out.collect(`${l.id}+${r.id}@${ctx.getLeftTimestamp()}/${ctx.getRightTimestamp()}`),
  };
  return new IntervalJoinOperator({
    kind: 'intervalJoin',
    lowerMs,
    upperMs,
    lowerExclusive,
    upperExclusive,
    fn: fn as ProcessJoinFunction<unknown, unknown, unknown>,
  });
}

describe('IntervalJoinOperator', () => {
  it('joins within [l + lower, l + upper], stamps max(l, r), drops late data and cleans state up', async () => {
    const op = intervalJoin(-5, 10);
    const h = await new OperatorHarness<Ev>(op, { keySelector: (e) => e.k }).open();
    h.element({ k: 'a', id: 'L1' }, 100)
      .element2({ k: 'a', id: 'R1' }, 95) // 100 - 5: in
      .element2({ k: 'a', id: 'R2' }, 110) // 100 + 10: in
      .element2({ k: 'a', id: 'R3' }, 111) // out
      .element2({ k: 'b', id: 'R4' }, 100) // other key
      .element({ k: 'a', id: 'L2' }, 106); // joins R2 (110 in [101, 116]) and R3 (111)
    expect(h.timestamped().sort()).toEqual(
      [
        ['L1+R1@100/95', 100],
        ['L1+R2@100/110', 110],
        ['L2+R2@106/110', 110],
        ['L2+R3@106/111', 111],
      ].sort(),
    );
    expect(h.stateEntries(LEFT_BUFFER)).toBe(1);
    expect(h.stateEntries(RIGHT_BUFFER)).toBe(2);
    // L1 is needed until 110, L2 until 116; R1 until 100, R2 until 115, R3 until 116, R4 until 105.
    h.watermark(110);
    expect(h.stateEntries()).toBe(2);
    h.watermark(116);
    expect(h.stateEntries()).toBe(2);
    h.watermark(117);
    expect(h.stateEntries()).toBe(0);
    // Late: below the watermark, dropped without a pair.
    const before = h.records().length;
    h.element({ k: 'a', id: 'late' }, 116);
    expect(h.records()).toHaveLength(before);
    expect(op.droppedLate).toBe(1);
    expect(h.stateEntries()).toBe(0);
    await h.finish({ maxWatermark: true });
  });

  it('exclusive bounds move each bound in by 1 ms', async () => {
    const h = await new OperatorHarness<Ev>(intervalJoin(-5, 10, true, true), {
      keySelector: (e) => e.k,
    }).open();
    h.element({ k: 'a', id: 'L' }, 100)
      .element2({ k: 'a', id: 'lower' }, 95)
      .element2({ k: 'a', id: 'in-low' }, 96)
      .element2({ k: 'a', id: 'in-high' }, 109)
      .element2({ k: 'a', id: 'upper' }, 110);
    expect(h.records().sort()).toEqual(['L+in-high@100/109', 'L+in-low@100/96']);
  });

  it('refuses elements without a timestamp and a non-keyed input', async () => {
    const h = await new OperatorHarness<Ev>(intervalJoin(0, 1), { keySelector: (e) => e.k }).open();
    expect(() => h.element({ k: 'a', id: 'x' })).toThrow(/interval join needs event time/);
    await expect(
      new OperatorHarness<Ev>(intervalJoin(0, 1), { keySelector: (e) => e.k, unkeyed: true }).open(),
    ).rejects.toThrow(/intervalJoin needs two keyed streams/);
  });
});

describe('KeyedCoProcessOperator', () => {
  it('shares keyed state and timers between both inputs', async () => {
    let total!: ValueState<number>;
    const fn: KeyedCoProcessFunction<string, Ev, number, string> = {
      open: (rc: RuntimeContext) => {
        total = rc.getState(new ValueStateDescriptor('total', 0));
      },
      processElement1: (_e, ctx) => {
        total.update(total.value()! + 1);
        ctx.timerService().registerEventTimeTimer(50);
      },
      processElement2: (n) => total.update(total.value()! + n),
      onTimer: (ts, ctx, out) => out.collect(`${ctx.getCurrentKey()}=${total.value()}@${ts}`),
    };
    const op = new KeyedCoProcessOperator(fn as KeyedCoProcessFunction<unknown, unknown, unknown, unknown>);
    const h = await new OperatorHarness<Ev>(op, {
      keySelector: (e) => e.k,
      secondKeySelector: (n: number) => (n > 100 ? 'b' : 'a'),
    }).open();
    h.element({ k: 'a', id: '1' }, 10).element2(5, 11).element2(200, 12).element({ k: 'b', id: '2' }, 13);
    expect(h.records()).toEqual([]);
    h.watermark(49);
    expect(h.records()).toEqual([]);
    h.watermark(50);
    expect(h.timestamped().sort()).toEqual([
      ['a=6@50', 50],
      ['b=201@50', 50],
    ]);
    expect(h.trace().at(-1)).toBe('wm:50');
    await h.finish({ maxWatermark: true });
  });

  it('refuses streams that are not keyed', async () => {
    const op = new KeyedCoProcessOperator({ processElement1: () => {}, processElement2: () => {} });
    await expect(new OperatorHarness(op, { keySelector: () => 1, unkeyed: true }).open()).rejects.toThrow(
      /needs two keyed streams/,
    );
  });
});

describe('broadcast state', () => {
  const rules = new MapStateDescriptor<string, number>('rules');

  it('is read-only on the non-broadcast side; undeclared states are refused', () => {
    const states = new BroadcastStates([rules as MapStateDescriptor<unknown, unknown>], 'op');
    states.get(rules, true).put('x', 1);
    const ro = states.get(rules, false);
    expect(ro.get('x')).toBe(1);
    expect(() => ro.put('y', 2)).toThrow(/read-only in processElement/);
    expect(() => states.get(new MapStateDescriptor('other'), true)).toThrow(
      /broadcast state 'other' was not declared/,
    );
  });

  it('restores one old copy into each new subtask, at any parallelism', () => {
    const old = [0, 1].map((i) => {
      const s = new BroadcastStates([rules as MapStateDescriptor<unknown, unknown>], 'op');
      s.get(rules, true).put('x', 7);
      s.get(rules, true).put(`only-${i}`, i);
      return s.snapshot();
    });
    for (const subtask of [0, 1, 2]) {
      const s = new BroadcastStates([rules as MapStateDescriptor<unknown, unknown>], 'op');
      s.restore(old, subtask);
      const entries = s.get(rules, false).entries().sort();
      // Exactly one old copy (not a merge of both).
      expect(entries).toEqual(
        [
          [`only-${subtask % 2}`, subtask % 2],
          ['x', 7],
        ].sort(),
      );
    }
    // A missing copy (that old subtask had none): the first present one.
    const s = new BroadcastStates([rules as MapStateDescriptor<unknown, unknown>], 'op');
    s.restore([undefined, old[1]], 0);
    expect(s.get(rules, false).get('only-1')).toBe(1);
  });

  it('applyToKeyedState visits each key holding the state; the snapshot carries the broadcast state', async () => {
    let seen!: ValueState<number>;
    const fn: KeyedBroadcastProcessFunction<string, Ev, [string, number], string> = {
      open: (rc) => {
        seen = rc.getState(new ValueStateDescriptor('seen', 0));
      },
      processElement: (e, ctx, out) => {
        seen.update(seen.value()! + 1);
        out.collect(`${e.id}:${ctx.getBroadcastState(rules).get(e.k) ?? 'none'}`);
      },
      processBroadcastElement: ([k, v], ctx, out) => {
        ctx.getBroadcastState(rules).put(k, v);
        ctx.applyToKeyedState(new ValueStateDescriptor<number>('seen', 0), (key, state) => {
          out.collect(`${String(key)} saw ${state.value()}`);
          state.update(0);
        });
      },
    };
    const op = new CoBroadcastWithKeyedOperator(
      {
        kind: 'keyedBroadcastProcess',
        fn: fn as KeyedBroadcastProcessFunction<unknown, unknown, unknown, unknown>,
        descriptors: [rules as MapStateDescriptor<unknown, unknown>],
      },
      undefined,
    );
    const h = await new OperatorHarness<Ev>(op, { keySelector: (e) => e.k, secondKeySelector: null }).open();
    h.element({ k: 'a', id: '1' }).element({ k: 'a', id: '2' }).element({ k: 'b', id: '3' });
    h.element2(['a', 10]);
    h.element({ k: 'a', id: '4' });
    expect(h.records()).toEqual(['1:none', '2:none', '3:none', 'a saw 2', 'b saw 1', '4:10']);
    expect(op.snapshotState()).toEqual({ broadcast: { rules: [['a', 10]] } });
    const restored = new CoBroadcastWithKeyedOperator(op.spec as never, [op.snapshotState()]);
    const h2 = await new OperatorHarness<Ev>(restored, { keySelector: (e) => e.k }).open();
    h2.element({ k: 'a', id: '5' });
    expect(h2.records()).toEqual(['5:10']);
    h2.watermark(MAX_WATERMARK);
    // Keyed state outside applyToKeyedState on the broadcast side: refused, not the last record's key.
    const misuse = new CoBroadcastWithKeyedOperator(
      {
        ...(op.spec as never as object),
        fn: { processElement: () => {}, processBroadcastElement: () => seen.value() },
      } as never,
      undefined,
    );
    const h3 = await new OperatorHarness<Ev>(misuse, {
      keySelector: (e) => e.k,
      secondKeySelector: null,
    }).open();
    h3.element({ k: 'a', id: '6' });
    expect(() => h3.element2(['a', 1])).toThrow(/keyed state accessed outside of a keyed context/);
  });
});
