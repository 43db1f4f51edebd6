/**
 * Where a rescale puts its new subtasks for local recovery (src/runtime/jobmaster/local-placement.ts):
 * at 2 → 4 each new subtask goes to the TaskManager whose old subtask stored its key groups, whatever
 * order the ResourceManager gave the slots in; at 4 → 2 every slot is used once; subtasks without keyed
 * state to restore take the slots left over, in order.
 */
import { describe, expect, it } from 'vitest';
import { type JobGraph, validateJobGraph } from '../../src/jobgraph/job-graph.js';
import type { RestoreSpec, SubtaskStateHandle } from '../../src/runtime/checkpoint/state-handles.js';
import { placeForLocalRecovery } from '../../src/runtime/jobmaster/local-placement.js';

const MAX_P = 128;

function graph(parallelism: number): JobGraph {
  return validateJobGraph({
    jobId: '0000000000000000000000000000c0d1',
    name: 'local-placement',
    vertices: [
      {
        id: 'v0',
        name: 'source',
        parallelism,
        maxParallelism: MAX_P,
        operator: { kind: 'builtin', name: 'x' },
      },
      {
        id: 'v1',
        name: 'count',
        parallelism,
        maxParallelism: MAX_P,
        operator: { kind: 'builtin', name: 'x' },
      },
    ],
    edges: [{ id: 'e0', source: 'v0', target: 'v1', partitioner: 'hash' }],
  });
}

/** Old subtasks of `parallelism`: the source with connector state only, the count with keyed state. */
function restore(parallelism: number, keyedBytes = 1_000): RestoreSpec {
  const handles: SubtaskStateHandle[] = [];
  for (let i = 0; i < parallelism; i++) {
    const object = (name: string, sizeBytes: number) => ({ name, sizeBytes, sha256: 'a'.repeat(64) });
    handles.push({
      vertexId: 'v0',
      subtaskIndex: i,
      parallelism,
      object: object(`v0/${i}`, 10_000),
      operators: [{ uid: 'src', maxParallelism: MAX_P, keyed: false, connector: true }],
    });
    handles.push({
      vertexId: 'v1',
      subtaskIndex: i,
      parallelism,
      object: object(`v1/${i}`, keyedBytes),
      operators: [{ uid: 'count', maxParallelism: MAX_P, keyed: true, connector: false }],
    });
  }
  return { checkpointId: 7, handles };
}

const slot = (taskManagerId: string, slotIndex: number) => ({ taskManagerId, slotIndex });

describe('placeForLocalRecovery', () => {
  it('2 → 4: subtasks 0 and 1 where old subtask 0 ran, 2 and 3 where old subtask 1 ran', () => {
    // The ResourceManager spreads: tm-a, tm-b, tm-a, tm-b; the old subtasks ran on tm-b (0) and tm-a (1).
    const given = [slot('tm-a', 0), slot('tm-b', 0), slot('tm-a', 1), slot('tm-b', 1)];
    const old = ['tm-b', 'tm-a'];
    const placed = placeForLocalRecovery(given, graph(4), restore(2), (_, i) => old[i]);
    expect(placed.map((s) => s.taskManagerId)).toEqual(['tm-b', 'tm-b', 'tm-a', 'tm-a']);
    expect(new Set(placed)).toEqual(new Set(given));
  });

  it('4 → 2: each slot once, and each new subtask on a TaskManager it restores from', () => {
    const given = [slot('tm-a', 0), slot('tm-b', 0)];
    const old = ['tm-a', 'tm-b', 'tm-a', 'tm-b'];
    const placed = placeForLocalRecovery(given, graph(2), restore(4), (_, i) => old[i]);
    expect(new Set(placed)).toEqual(new Set(given));
    expect(placed).toHaveLength(2);
  });

  it('keeps the given order where there is no keyed state or no known location', () => {
    const given = [slot('tm-a', 0), slot('tm-b', 0), slot('tm-a', 1), slot('tm-b', 1)];
    expect(placeForLocalRecovery(given, graph(4), restore(2), () => undefined)).toEqual(given);
    const noKeyed: RestoreSpec = {
      checkpointId: 7,
      handles: restore(2).handles.filter((h) => h.vertexId === 'v0'),
    };
    expect(placeForLocalRecovery(given, graph(4), noKeyed, () => 'tm-b')).toEqual(given);
  });

  it('more subtasks wanting a TaskManager than it has slots: the rest take the slots left', () => {
    // Both old subtasks ran on tm-a, which has 2 of the 4 new slots.
    const given = [slot('tm-a', 0), slot('tm-b', 0), slot('tm-a', 1), slot('tm-b', 1)];
    const placed = placeForLocalRecovery(given, graph(4), restore(2), () => 'tm-a');
    expect(placed.filter((s) => s.taskManagerId === 'tm-a')).toHaveLength(2);
    expect(new Set(placed)).toEqual(new Set(given));
  });
});
