/**
 * Which parallelism a rescale request resolves to, and the requests refused before anything stops: a
 * parallelism of 0, above the max parallelism, an unknown vertex, a forward edge split in two.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError } from '../../src/common/errors.js';
import { type JobGraph, validateJobGraph } from '../../src/jobgraph/job-graph.js';
import {
  maxParallelismOf,
  parallelismOf,
  resolveRescaleTarget,
} from '../../src/runtime/jobmaster/rescale.js';

const graph: JobGraph = validateJobGraph({
  jobId: '0000000000000000000000000000a0b1',
  name: 'rescale-target',
  vertices: [
    { id: 'v0', name: 'source', parallelism: 2, maxParallelism: 8, operator: { kind: 'builtin', name: 'x' } },
    { id: 'v1', name: 'map', parallelism: 2, maxParallelism: 8, operator: { kind: 'builtin', name: 'x' } },
    { id: 'v2', name: 'sink', parallelism: 2, maxParallelism: 8, operator: { kind: 'builtin', name: 'x' } },
  ],
  edges: [
    { id: 'e0', source: 'v0', target: 'v1', partitioner: 'hash' },
    { id: 'e1', source: 'v1', target: 'v2', partitioner: 'forward' },
  ],
});

function refusal(target: Record<string, number>): string {
  try {
    resolveRescaleTarget(graph, target);
  } catch (err) {
    if (isSluiceError(err, ErrorCode.InvalidRescale)) return err.message;
    throw err;
  }
  throw new Error('not refused');
}

describe('resolveRescaleTarget', () => {
  it('keeps the parallelism of vertices the request does not name', () => {
    expect(resolveRescaleTarget(graph, { v0: 4 })).toEqual({ v0: 4, v1: 2, v2: 2 });
    expect(resolveRescaleTarget(graph, { v1: 3, v2: 3 })).toEqual({ v0: 2, v1: 3, v2: 3 });
    expect(parallelismOf(graph)).toEqual({ v0: 2, v1: 2, v2: 2 });
    expect(maxParallelismOf(graph)).toEqual({ v0: 8, v1: 8, v2: 8 });
  });

  it('refuses 0, above max parallelism, unknown vertices and a split forward edge, naming each', () => {
    expect(refusal({ v0: 0 })).toMatch(/vertex 'v0': parallelism 0 is not a whole number of at least 1/);
    expect(refusal({ v0: 9 })).toMatch(/parallelism 9 is above its max parallelism 8/);
    expect(refusal({ v0: 1.5 })).toMatch(/1\.5 is not a whole number/);
    expect(refusal({ nope: 2 })).toMatch(/has no vertex 'nope'/);
    expect(refusal({ v1: 3 })).toMatch(/'v1' and 'v2' are joined by a forward edge/);
    const both = refusal({ v0: 0, nope: 1 });
    expect(both).toMatch(/v0/);
    expect(both).toMatch(/nope/);
  });
});
