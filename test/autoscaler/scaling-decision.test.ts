/**
 * The autoscaler's decision logic on synthetic metrics and a test-driven clock (no NATS, no sleeping):
 * the target parallelism formula, propagation through the graph, the utilisation boundary, the bounds
 * (max parallelism, scale factors, slots), stabilisation, the scale-down interval, ineffective scale-ups,
 * and missing metrics.
 */
import { describe, expect, it } from 'vitest';
import { type AutoscalerConfig, DEFAULT_AUTOSCALER } from '../../src/config/autoscaler-config.js';
import type { JobSample, VertexSample } from '../../src/runtime/autoscaler/metrics-window.js';
import { ScalingController } from '../../src/runtime/autoscaler/scaling-controller.js';
import {
  type JobTopology,
  type ScalingDecision,
  ScalingOutcome,
} from '../../src/runtime/autoscaler/scaling-decision.js';

const CONFIG: AutoscalerConfig = {
  ...DEFAULT_AUTOSCALER,
  enabled: true,
  controlLoopIntervalMs: 1_000,
  metricsWindowMs: 10_000,
  stabilizationIntervalMs: 5_000,
  catchUpDurationMs: 60_000,
  scaleDownIntervalMs: 60_000,
};

/** source → map (hash) → sink (forward). */
const TOPOLOGY: JobTopology = {
  vertices: [
    { id: 'src', name: 'Source' },
    { id: 'map', name: 'Map' },
    { id: 'sink', name: 'Sink' },
  ],
  edges: [
    { source: 'src', target: 'map', partitioner: 'hash' },
    { source: 'map', target: 'sink', partitioner: 'forward' },
  ],
};

interface Load {
  p: number;
  /** Records in per second (the whole vertex). */
  in: number;
  /** Records out per second; default = in. */
  out?: number;
  /** Busy share of each subtask. */
  busy: number;
  /** Backlog at t = 0 and its growth per second (sources). */
  backlog?: number;
  backlogGrowth?: number;
}

/** Cumulative counters at time t (ms) for loads that started at `since`. */
function sampleAt(t: number, loads: Record<string, Load>, since = 0, base?: JobSample): JobSample {
  const s = (t - since) / 1_000;
  const vertices: Record<string, VertexSample> = {};
  for (const [id, l] of Object.entries(loads)) {
    const b = base?.vertices[id];
    vertices[id] = {
      parallelism: l.p,
      recordsIn: (b?.recordsIn ?? 0) + l.in * s,
      recordsOut: (b?.recordsOut ?? 0) + (l.out ?? l.in) * s,
      busyMs: (b?.busyMs ?? 0) + l.busy * 1_000 * l.p * s,
      backpressuredMs: 0,
      pendingRecords: l.backlog === undefined ? undefined : l.backlog + (l.backlogGrowth ?? 0) * s,
    };
  }
  return { at: t, vertices };
}

const parallelismOf = (loads: Record<string, Load>) =>
  Object.fromEntries(Object.entries(loads).map(([id, l]) => [id, l.p]));
const MAX = { src: 128, map: 128, sink: 128 };

/** Ticks the controller every second from `from` until it decides (or `until`); returns the decision and when. */
function runUntilDecision(
  controller: ScalingController,
  loads: Record<string, Load>,
  from: number,
  options: { until?: number; slotCapacity?: number; since?: number } = {},
): { decision: ScalingDecision; at: number; waited: string[] } {
  const waited: string[] = [];
  for (let t = from; t <= (options.until ?? from + 60_000); t += 1_000) {
    const decision = controller.evaluate(
      t,
      { sample: sampleAt(t, loads, options.since ?? 0) },
      { current: parallelismOf(loads), maxParallelism: MAX, slotCapacity: options.slotCapacity },
    );
    if (decision.outcome !== ScalingOutcome.Waiting) return { decision, at: t, waited };
    waited.push(decision.reason);
  }
  throw new Error('no decision');
}

const BUSY_SOURCE: Record<string, Load> = {
  // Reads 1000/s at 90% busy while the backlog grows by 3000/s: 4000/s arrive.
  src: { p: 1, in: 1_000, busy: 0.9, backlog: 30_000, backlogGrowth: 3_000 },
  map: { p: 2, in: 1_000, busy: 0.5 },
  sink: { p: 2, in: 1_000, out: 0, busy: 0.5 },
};

describe('the scaling decision', () => {
  it('waits out the stabilisation interval, then a full metrics window, saying so', () => {
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    const { at, waited } = runUntilDecision(controller, BUSY_SOURCE, 0);
    // Stabilising until 5 s, then a 10 s window: the first decision at 15 s.
    expect(at).toBe(15_000);
    expect(waited[0]).toMatch(/^stabilising after the job started or was rescaled: .* 5 s from now/);
    expect(waited.at(-1)).toBe('collecting metrics: 9.0 of 10.0 s (job.autoscaler.metrics.window)');
  });

  it('sizes each vertex for the source rate plus catch-up, at the target utilisation, through the graph', () => {
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    const { decision } = runUntilDecision(controller, BUSY_SOURCE, 0);
    expect(decision.outcome).toBe(ScalingOutcome.Rescale);
    const src = decision.vertices.find((v) => v.id === 'src')!;
    // True rate 1000 / 0.9 = 1111.1 per subtask; backlog at 15 s = 30000 + 45000 = 75000 → 1250/s over 60 s;
    // target = 1000 + 3000 + 1250 = 5250/s → ceil(5250 / (1111.1 × 0.7)) = ceil(6.75) = 7.
    expect(src.trueProcessingRate).toBeCloseTo(1_111.111, 2);
    expect(src.backlog).toBe(75_000);
    expect(src.targetDataRate).toBe(5_250);
    expect(src.utilization).toBeCloseTo(4.725, 3);
    expect(src.targetParallelism).toBe(7);
    // Map: 1000/s at 50% on 2 subtasks = 1000/s per subtask; its target rate is the source's (1 out per in):
    // ceil(5250 / 700) = 8; the sink, joined to it by a forward edge, needs ceil(5250 / 700) = 8 too.
    const map = decision.vertices.find((v) => v.id === 'map')!;
    expect(map.trueProcessingRate).toBe(1_000);
    expect(map.targetDataRate).toBe(5_250);
    expect(map.targetParallelism).toBe(8);
    expect(decision.target).toEqual({ src: 7, map: 8, sink: 8 });
    expect(decision.reason).toContain('Source 1 → 7');
  });

  it('follows the records-out ratio: a filter that keeps a tenth sizes its successor for a tenth', () => {
    const loads: Record<string, Load> = {
      src: { p: 1, in: 1_000, busy: 0.9, backlog: 0, backlogGrowth: 3_000 },
      map: { p: 2, in: 1_000, out: 100, busy: 0.5 },
      sink: { p: 2, in: 100, out: 0, busy: 0.05 },
    };
    const { decision } = runUntilDecision(new ScalingController(CONFIG, TOPOLOGY, 0), loads, 0);
    const sink = decision.vertices.find((v) => v.id === 'sink')!;
    // The source must take 1000 + 3000 + 45000 / 60 = 4750/s; a tenth of it reaches the sink.
    expect(sink.targetDataRate).toBe(475);
    // True rate 100 / 0.05 / 2 = 1000 per subtask: 475 / 700 → 1, but the forward edge ties it to Map's
    // ceil(4750 / 700) = 7.
    expect(decision.target?.map).toBe(7);
    expect(decision.target?.sink).toBe(7);
    expect(sink.note).toContain("as 'Map' (a forward edge joins them)");
  });

  it('changes nothing while every vertex stays within target ± boundary', () => {
    const loads: Record<string, Load> = {
      src: { p: 2, in: 1_000, busy: 0.6, backlog: 100, backlogGrowth: 0 },
      map: { p: 2, in: 1_000, busy: 0.7 },
      sink: { p: 2, in: 1_000, out: 0, busy: 0.45 },
    };
    const { decision } = runUntilDecision(new ScalingController(CONFIG, TOPOLOGY, 0), loads, 0);
    expect(decision.outcome).toBe(ScalingOutcome.NoChange);
    expect(decision.reason).toBe('every vertex is within its utilisation boundary (0.7 ± 0.3)');
    expect(decision.vertices.map((v) => v.targetParallelism)).toEqual([2, 2, 2]);
    expect(decision.vertices.find((v) => v.id === 'map')!.note).toMatch(/within 0\.4\.\.1$/);
  });

  it('scales down an underused job by at most scale-down.max-factor, then waits scale-down.interval', () => {
    const quiet: Record<string, Load> = {
      src: { p: 10, in: 100, busy: 0.01, backlog: 0, backlogGrowth: 0 },
      map: { p: 10, in: 100, busy: 0.01 },
      sink: { p: 10, in: 100, out: 0, busy: 0.01 },
    };
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    const first = runUntilDecision(controller, quiet, 0);
    // Needs 1; 10 × (1 − 0.6) = 4 is as far as one step goes.
    expect(first.decision.target).toEqual({ src: 4, map: 4, sink: 4 });
    expect(first.decision.vertices[0]!.note).toContain('held at 4 by job.autoscaler.scale-down.max-factor');
    controller.rescaled(first.at, parallelismOf(quiet), first.decision.target!, first.decision);
    // Still quiet at 4: the next scale-down waits for the interval (60 s after the first).
    const four = Object.fromEntries(Object.entries(quiet).map(([id, l]) => [id, { ...l, p: 4 }]));
    const second = runUntilDecision(controller, four, first.at + 1_000, { since: first.at });
    expect(second.at).toBe(first.at + 15_000);
    expect(second.decision.outcome).toBe(ScalingOutcome.NoChange);
    expect(second.decision.reason).toMatch(
      /scale-down to 2 waits 45 s more \(job\.autoscaler\.scale-down\.interval\)/,
    );
    // Once the interval is over, it goes on down.
    const third = runUntilDecision(controller, four, first.at + 60_000, { since: first.at });
    expect(third.decision.target).toEqual({ src: 2, map: 2, sink: 2 });
  });

  it("is bounded by the vertex's max parallelism, the configured max, and the slots the cluster can offer", () => {
    const config = { ...CONFIG, vertexMaxParallelism: 6 };
    const { decision } = runUntilDecision(new ScalingController(config, TOPOLOGY, 0), BUSY_SOURCE, 0);
    expect(decision.target).toEqual({ src: 6, map: 6, sink: 6 });
    expect(decision.vertices[1]!.note).toContain('held at 6 by job.autoscaler.vertex.max-parallelism');
    const bySlots = runUntilDecision(new ScalingController(CONFIG, TOPOLOGY, 0), BUSY_SOURCE, 0, {
      slotCapacity: 3,
    });
    expect(bySlots.decision.target).toEqual({ src: 3, map: 3, sink: 3 });
    expect(bySlots.decision.vertices[0]!.note).toContain('held at 3 by the slots the cluster can offer');
    const upFactor = { ...CONFIG, scaleUpMaxFactor: 1 };
    const doubled = runUntilDecision(new ScalingController(upFactor, TOPOLOGY, 0), BUSY_SOURCE, 0);
    expect(doubled.decision.target).toEqual({ src: 2, map: 4, sink: 4 });
  });

  it('detects an ineffective scale-up (the rate did not grow), stops scaling that vertex up, and says so', () => {
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    const before: Record<string, Load> = {
      src: { p: 2, in: 1_000, busy: 1, backlog: 0, backlogGrowth: 1_000 },
      map: { p: 2, in: 1_000, busy: 0.7 },
      sink: { p: 2, in: 1_000, out: 0, busy: 0.7 },
    };
    const first = runUntilDecision(controller, before, 0);
    // Source: 500/s per subtask; 2000/s arrive plus 15000 / 60 to catch up → ceil(2250 / 350) = 7.
    expect(first.decision.target?.src).toBe(7);
    controller.rescaled(first.at, { src: 2, map: 2, sink: 2 }, { src: 7, map: 3, sink: 3 }, first.decision);
    // After the scale-up the source reads no faster (something else limits it): each subtask is busy a third.
    const after: Record<string, Load> = {
      src: { p: 7, in: 1_000, busy: 1, backlog: 0, backlogGrowth: 1_000 },
      map: { p: 3, in: 1_000, busy: 0.35 },
      sink: { p: 3, in: 1_000, out: 0, busy: 0.35 },
    };
    const second = runUntilDecision(controller, after, first.at + 1_000, { since: first.at });
    const src = second.decision.vertices.find((v) => v.id === 'src')!;
    expect(second.decision.ineffective.src).toBe(
      "scaling 'Source' up from 2 to 7 was ineffective: its processing rate went from 1000 to 1000 records/s, 0% of the expected gain (threshold 10%)",
    );
    expect(src.targetParallelism).toBe(7);
    expect(src.note).toContain('not scaled up: scaling');
    expect(controller.ineffective.get('src')).toBe(second.decision.ineffective.src);
    // The others are within their boundary (2250 / (952 × 3) = 0.79): nothing changes.
    expect(second.decision.outcome).toBe(ScalingOutcome.NoChange);
    expect(second.decision.reason).toMatch(
      /^no vertex can change: Source: utilisation 2\.25 outside 0\.4\.\.1: needs 23; not scaled up/,
    );
  });

  it('an effective scale-up is not flagged', () => {
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    const before: Record<string, Load> = {
      src: { p: 2, in: 1_000, busy: 1, backlog: 0, backlogGrowth: 1_000 },
      map: { p: 2, in: 1_000, busy: 0.7 },
      sink: { p: 2, in: 1_000, out: 0, busy: 0.7 },
    };
    const first = runUntilDecision(controller, before, 0);
    controller.rescaled(first.at, { src: 2, map: 2, sink: 2 }, { src: 6, map: 3, sink: 3 }, first.decision);
    const after: Record<string, Load> = {
      src: { p: 6, in: 2_000, busy: 0.67, backlog: 0, backlogGrowth: -100 },
      map: { p: 3, in: 2_000, busy: 0.9 },
      sink: { p: 3, in: 2_000, out: 0, busy: 0.9 },
    };
    const second = runUntilDecision(controller, after, first.at + 1_000, { since: first.at });
    expect(second.decision.ineffective).toEqual({});
    expect(controller.ineffective.size).toBe(0);
  });

  it('does nothing when a metric is missing, and says which', () => {
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    let decision: ScalingDecision | undefined;
    for (let t = 0; t <= 20_000; t += 1_000) {
      const sample = sampleAt(t, BUSY_SOURCE);
      const { busyMs: _, ...noBusy } = sample.vertices.map!;
      decision = controller.evaluate(
        t,
        { sample: { at: t, vertices: { ...sample.vertices, map: noBusy } } },
        { current: parallelismOf(BUSY_SOURCE), maxParallelism: MAX, slotCapacity: undefined },
      );
    }
    expect(decision?.outcome).toBe(ScalingOutcome.MissingMetrics);
    expect(decision?.reason).toBe(
      "vertex 'Map' reports no busy time (a built-in task, or tasks that report no metrics)",
    );
    expect(decision?.target).toBeUndefined();
  });

  it('does nothing for a vertex that should get records but processed none', () => {
    const starved: Record<string, Load> = { ...BUSY_SOURCE, map: { p: 2, in: 0, busy: 0 } };
    const { decision } = runUntilDecision(new ScalingController(CONFIG, TOPOLOGY, 0), starved, 0);
    expect(decision.outcome).toBe(ScalingOutcome.MissingMetrics);
    expect(decision.reason).toMatch(
      /^vertex 'Map' processed no records in the window although 5250 records\/s/,
    );
  });

  it('waits while tasks are not running, and starts over after a rescale it did not make', () => {
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    const context = { current: parallelismOf(BUSY_SOURCE), maxParallelism: MAX, slotCapacity: undefined };
    expect(controller.evaluate(6_000, { notReady: 'job is RESTARTING' }, context)).toMatchObject({
      outcome: ScalingOutcome.Waiting,
      reason: 'job is RESTARTING',
    });
    for (let t = 6_000; t < 12_000; t += 1_000)
      controller.evaluate(t, { sample: sampleAt(t, BUSY_SOURCE) }, context);
    // A user rescaled the map to 4 at 12 s: stabilising again until 17 s, a full window at 27 s.
    const user = { ...BUSY_SOURCE, map: { ...BUSY_SOURCE.map!, p: 4 }, sink: { ...BUSY_SOURCE.sink!, p: 4 } };
    const { at, waited } = runUntilDecision(controller, user, 12_000);
    expect(waited[0]).toMatch(/^stabilising/);
    expect(at).toBe(27_000);
  });

  it('starts the window over when the counters go back (the tasks restarted)', () => {
    const controller = new ScalingController(CONFIG, TOPOLOGY, 0);
    const context = { current: parallelismOf(BUSY_SOURCE), maxParallelism: MAX, slotCapacity: undefined };
    for (let t = 5_000; t <= 12_000; t += 1_000)
      controller.evaluate(t, { sample: sampleAt(t, BUSY_SOURCE) }, context);
    // Restarted at 12.5 s: counters from 0.
    const after = controller.evaluate(13_000, { sample: sampleAt(13_000, BUSY_SOURCE, 12_500) }, context);
    expect(after.reason).toBe('collecting metrics: 0.0 of 10.0 s (job.autoscaler.metrics.window)');
  });
});
