/**
 * Reactive mode's decisions on a manual clock, without NATS: a job is sized to its slots (capped by each
 * vertex's max parallelism, forward edges kept equal); a change of slots waits out the stabilization
 * timeout (several TaskManagers arriving together cause one rescale), a rescale is followed by the
 * cooldown, and a job already at its size is left alone.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/ha/clock.js';
import { type JobGraph, validateJobGraph } from '../../src/jobgraph/job-graph.js';
import { ReactiveScalingPolicy, reactiveParallelism } from '../../src/runtime/jobmaster/reactive-mode.js';

const graph: JobGraph = validateJobGraph({
  jobId: '0000000000000000000000000000a0b1',
  name: 'reactive',
  vertices: [
    {
      id: 'src',
      name: 'source',
      parallelism: 1,
      maxParallelism: 128,
      operator: { kind: 'builtin', name: 'x' },
    },
    { id: 'map', name: 'map', parallelism: 1, maxParallelism: 3, operator: { kind: 'builtin', name: 'x' } },
    {
      id: 'sink',
      name: 'sink',
      parallelism: 1,
      maxParallelism: 128,
      operator: { kind: 'builtin', name: 'x' },
    },
  ],
  edges: [
    { id: 'e0', source: 'src', target: 'map', partitioner: 'hash' },
    { id: 'e1', source: 'map', target: 'sink', partitioner: 'forward' },
  ],
});

describe('reactiveParallelism', () => {
  it('gives every vertex the slots, capped by its max parallelism, forward edges equal', () => {
    expect(reactiveParallelism(graph, 2)).toEqual({ src: 2, map: 2, sink: 2 });
    // map's max parallelism 3 caps it, and sink (joined by a forward edge) follows it.
    expect(reactiveParallelism(graph, 8)).toEqual({ src: 8, map: 3, sink: 3 });
    expect(reactiveParallelism(graph, 0)).toEqual({ src: 1, map: 1, sink: 1 });
  });
});

describe('ReactiveScalingPolicy', () => {
  const options = { stabilizationTimeoutMs: 1_000, cooldownAfterRescalingMs: 5_000 };
  const at = (p: number) => ({ src: p, map: Math.min(p, 3), sink: Math.min(p, 3) });

  it('waits for the slots to be stable, then rescales once to all of them', async () => {
    const clock = new ManualClock(0);
    const policy = new ReactiveScalingPolicy(options, clock);
    expect(policy.decide(graph, at(1))).toEqual({ kind: 'keep' }); // nothing observed yet
    policy.observeSlots(1);
    await clock.advance(2_000);
    expect(policy.decide(graph, at(1))).toEqual({ kind: 'keep' });
    // Two TaskManagers arrive 400 ms apart: the stabilization restarts with the second.
    policy.observeSlots(2);
    await clock.advance(400);
    policy.observeSlots(3);
    await clock.advance(600);
    const waiting = policy.decide(graph, at(1));
    expect(waiting).toMatchObject({ kind: 'wait', waitMs: 400 });
    expect((waiting as { why: string }).why).toMatch(/resource-stabilization-timeout/);
    policy.observeSlots(3); // the same count again changes nothing
    await clock.advance(400);
    expect(policy.decide(graph, at(1))).toEqual({ kind: 'rescale', target: at(3) });
  });

  it('keeps the cooldown after a rescale, then follows the slots', async () => {
    const clock = new ManualClock(0);
    const policy = new ReactiveScalingPolicy(options, clock);
    policy.observeSlots(2);
    policy.rescaled();
    await clock.advance(1_000);
    policy.observeSlots(4);
    await clock.advance(1_500);
    const waiting = policy.decide(graph, at(2));
    expect(waiting).toMatchObject({ kind: 'wait', waitMs: 2_500 });
    expect((waiting as { why: string }).why).toMatch(/cooldown-after-rescaling/);
    await clock.advance(2_500);
    expect(policy.decide(graph, at(2))).toEqual({ kind: 'rescale', target: at(4) });
    expect(policy.decide(graph, at(4))).toEqual({ kind: 'keep' });
  });
});
