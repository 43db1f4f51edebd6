import { describe, expect, it } from 'vitest';
import {
  type Collector,
  type KeyedProcessFunction,
  ListStateDescriptor,
  MapStateDescriptor,
  type OnTimerContext,
  type RuntimeContext,
  ValueStateDescriptor,
} from '../../src/api/functions.js';
import { KeyedProcessOperator } from '../../src/runtime/operators/keyed-process-operator.js';
import { MAX_WATERMARK } from '../../src/runtime/operators/operator.js';
import type { ListState, MapState, ValueState } from '../../src/runtime/state/keyed-state-backend.js';
import { OperatorHarness } from './harness.js';

interface Ev {
  key: string;
  value: number;
}

const ev = (key: string, value = 0): Ev => ({ key, value });

async function harness(
  fn: KeyedProcessFunction<string, Ev, unknown>,
  startTime = 0,
): Promise<{ h: OperatorHarness<Ev>; op: KeyedProcessOperator }> {
  const op = new KeyedProcessOperator(fn as KeyedProcessFunction<unknown, unknown, unknown>);
  const h = await new OperatorHarness<Ev>(op, { keySelector: (e) => e.key, startTime }).open();
  return { h, op };
}

describe('KeyedProcessOperator', () => {
  it('counts per key in ValueState; output carries the input timestamp', async () => {
    let count!: ValueState<number>;
    const { h } = await harness({
      open: (rc) => {
        count = rc.getState(new ValueStateDescriptor('count', 0));
      },
      processElement: (_e, ctx, out) => {
        count.update(count.value()! + 1);
        out.collect(`${ctx.getCurrentKey()}:${count.value()}@${ctx.timestamp()}`);
      },
    });
    h.element(ev('a'), 10).element(ev('b'), 11).element(ev('a'), 12).element(ev('a')).element(ev('b'), 14);
    expect(h.timestamped()).toEqual([
      ['a:1@10', 10],
      ['b:1@11', 11],
      ['a:2@12', 12],
      ['a:3@undefined', undefined],
      ['b:2@14', 14],
    ]);
  });

  it('fires event-time timers on the watermark, with the right key, before forwarding it', async () => {
    const seen: Array<{ key: string; ts: number; domain: string; ctxTs: number | undefined }> = [];
    const { h } = await harness({
      processElement: (_e, ctx) => ctx.timerService().registerEventTimeTimer(ctx.timestamp()! + 10),
      onTimer: (ts, ctx, out) => {
        seen.push({ key: ctx.getCurrentKey(), ts, domain: ctx.timeDomain(), ctxTs: ctx.timestamp() });
        out.collect(`${ctx.getCurrentKey()}@${ts} wm=${ctx.timerService().currentWatermark()}`);
      },
    });
    h.element(ev('a'), 1).element(ev('b'), 5).element(ev('c'), 30);
    h.watermark(10);
    h.watermark(14);
    h.watermark(15);
    expect(h.trace()).toEqual(['wm:10', 'a@11 wm=14', 'wm:14', 'b@15 wm=15', 'wm:15']);
    expect(h.timestamped().map(([, ts]) => ts)).toEqual([11, 15]);
    expect(seen).toEqual([
      { key: 'a', ts: 11, domain: 'EVENT_TIME', ctxTs: 11 },
      { key: 'b', ts: 15, domain: 'EVENT_TIME', ctxTs: 15 },
    ]);
    // Remaining event-time timers fire when the final watermark arrives, before endInput.
    await h.finish({ maxWatermark: true });
    expect(h.trace().slice(-2)).toEqual([`c@40 wm=${MAX_WATERMARK}`, `wm:${MAX_WATERMARK}`]);
  });

  it('fires processing-time timers from the injected scheduler, for the right key, without a timestamp', async () => {
    const { h } = await harness(
      {
        processElement: (_e, ctx) => {
          const ts = ctx.timerService();
          ts.registerProcessingTimeTimer(ts.currentProcessingTime() + 50);
        },
        onTimer: (ts, ctx, out) => out.collect(`${ctx.getCurrentKey()}@${ts} ${ctx.timeDomain()}`),
      },
      1000,
    );
    h.element(ev('a'), 1);
    h.advanceProcessingTime(1020).element(ev('b'), 2);
    h.advanceProcessingTime(1049);
    expect(h.records()).toEqual([]);
    h.advanceProcessingTime(1050);
    expect(h.timestamped()).toEqual([['a@1050 PROCESSING_TIME', undefined]]);
    h.advanceProcessingTime(2000);
    expect(h.records()).toEqual(['a@1050 PROCESSING_TIME', 'b@1070 PROCESSING_TIME']);
    expect(h.errors).toEqual([]);
  });

  it('uses ListState and MapState per key, and timers to flush them', async () => {
    let buffer!: ListState<number>;
    let counts!: MapState<number, number>;
    const { h } = await harness({
      open: (rc) => {
        buffer = rc.getListState(new ListStateDescriptor<number>('buffer'));
        counts = rc.getMapState(new MapStateDescriptor<number, number>('counts'));
      },
      processElement: (e, ctx) => {
        buffer.add(e.value);
        counts.put(e.value, (counts.get(e.value) ?? 0) + 1);
        ctx.timerService().registerEventTimeTimer(100);
      },
      onTimer: (_ts, ctx, out) => {
        const distinct = counts
          .entries()
          .sort(([x], [y]) => x - y)
          .map(([v, n]) => `${v}x${n}`);
        out.collect({ key: ctx.getCurrentKey(), buffered: buffer.get(), distinct });
        buffer.clear();
        counts.clear();
      },
    });
    h.element(ev('a', 3), 1).element(ev('b', 1), 2).element(ev('a', 1), 3).element(ev('a', 3), 4);
    h.watermark(100);
    expect(h.records()).toEqual([
      { key: 'a', buffered: [3, 1, 3], distinct: ['1x1', '3x2'] },
      { key: 'b', buffered: [1], distinct: ['1x1'] },
    ]);
    expect(h.stateEntries()).toBe(0);
  });

  it('does not fire deleted timers (event time and processing time)', async () => {
    const { h } = await harness({
      processElement: (e, ctx) => {
        const timers = ctx.timerService();
        if (e.value === 0) {
          timers.registerEventTimeTimer(50);
          timers.registerProcessingTimeTimer(500);
        } else {
          timers.deleteEventTimeTimer(50);
          timers.deleteProcessingTimeTimer(500);
        }
      },
      onTimer: (ts, ctx, out) => out.collect(`${ctx.getCurrentKey()}@${ts}`),
    });
    h.element(ev('a', 0), 1).element(ev('b', 0), 1).element(ev('a', 1), 2);
    h.watermark(60);
    h.advanceProcessingTime(1000);
    expect(h.records()).toEqual(['b@50', 'b@500']);
    expect(h.time.pending).toBe(0);
  });

  it('fires a timer registered twice for the same key and time once', async () => {
    const { h } = await harness({
      processElement: (_e, ctx) => {
        ctx.timerService().registerEventTimeTimer(20);
        ctx.timerService().registerProcessingTimeTimer(300);
      },
      onTimer: (ts, ctx, out) => out.collect(`${ctx.getCurrentKey()}@${ts}`),
    });
    h.element(ev('a'), 1).element(ev('a'), 2).element(ev('b'), 3).element(ev('a'), 4);
    h.watermark(25);
    h.advanceProcessingTime(400);
    expect(h.records()).toEqual(['a@20', 'b@20', 'a@300', 'b@300']);
  });

  it('lets onTimer register further timers and emit several records', async () => {
    const { h } = await harness({
      processElement: (_e, ctx) => ctx.timerService().registerEventTimeTimer(10),
      onTimer: (ts: number, ctx: OnTimerContext<string>, out: Collector<unknown>) => {
        out.collect(`${ctx.getCurrentKey()}@${ts}`);
        if (ts < 30) ctx.timerService().registerEventTimeTimer(ts + 10);
      },
    });
    h.element(ev('a'), 1);
    // Each timer is registered beyond the current watermark: TimerService.advanceWatermark collects the
    // due timers once, so a timer registered in a callback at or before the same watermark would only
    // fire on the next advance (Flink fires it in the same one).
    h.watermark(15);
    h.watermark(25);
    h.watermark(100);
    expect(h.trace()).toEqual(['a@10', 'wm:15', 'a@20', 'wm:25', 'a@30', 'wm:100']);
    expect(h.timestamped().map(([, ts]) => ts)).toEqual([10, 20, 30]);
  });

  it('ignores timers when the function has no onTimer; forwards watermarks', async () => {
    const { h } = await harness({
      processElement: (e, ctx, out) => {
        ctx.timerService().registerEventTimeTimer(5);
        out.collect(e.value);
      },
    });
    h.element(ev('a', 7), 1).watermark(10);
    expect(h.trace()).toEqual([7, 'wm:10']);
  });

  it('opens with a RuntimeContext and closes the function and the timers', async () => {
    const calls: string[] = [];
    let context: RuntimeContext | undefined;
    const { h } = await harness({
      open: (rc) => {
        context = rc;
        calls.push('open');
      },
      processElement: (_e, ctx) => ctx.timerService().registerProcessingTimeTimer(1000),
      onTimer: () => calls.push('timer'),
      close: () => calls.push('close'),
    });
    expect(context?.taskName).toBe('test operator');
    expect(context?.maxParallelism).toBe(128);
    h.element(ev('a'), 1);
    expect(h.time.pending).toBe(1);
    await h.finish();
    expect(h.time.pending).toBe(0);
    h.advanceProcessingTime(5000);
    expect(calls).toEqual(['open', 'close']);
  });

  it('needs a keyed stream', async () => {
    const op = new KeyedProcessOperator({ processElement: () => {} });
    const h = new OperatorHarness<Ev>(op, { keySelector: (e) => e.key, unkeyed: true });
    await expect(h.open()).rejects.toThrow(/needs a keyed stream: call keyBy\(\)/);
  });
});
