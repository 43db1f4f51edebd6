/**
 * How the Dispatcher recognises an application's jobs across a failover: only the fixed id of an
 * application's execute() call counts; a job ended under a former leader is described by its result. And
 * `run-application --jobmanagers` without HA is refused before anything starts.
 */
import { describe, expect, it } from 'vitest';
import type { JobGraph } from '../../src/jobgraph/job-graph.js';
import { applicationJobId, isJobId } from '../../src/jobgraph/job-id.js';
import {
  detailsFromResult,
  isApplicationJob,
  sameApplicationJob,
} from '../../src/runtime/dispatcher/application-jobs.js';
import { sluice } from '../harness/processes.js';

function graph(jobId: string, applicationId: string | undefined, executionIndex: number): JobGraph {
  return {
    jobId,
    name: `job ${executionIndex}`,
    vertices: [{ id: 'v', name: 'v', parallelism: 2 }],
    edges: [],
    bufferTimeoutMs: 100,
    program: { args: [], parallelism: 2, executionIndex, entry: 'job.ts' },
    ...(applicationId ? { applicationId } : {}),
  } as unknown as JobGraph;
}

describe('application jobs', () => {
  it('fixed ids are job ids, the same for the same call and different for others', () => {
    const a = applicationJobId('app-0011aabb', 0);
    expect(isJobId(a)).toBe(true);
    expect(applicationJobId('app-0011aabb', 0)).toBe(a);
    expect(applicationJobId('app-0011aabb', 1)).not.toBe(a);
    expect(applicationJobId('app-0011aabc', 0)).not.toBe(a);
  });

  it('only a graph with its fixed id is an application job', () => {
    const id = applicationJobId('app-1', 2);
    expect(isApplicationJob(graph(id, 'app-1', 2))).toBe(true);
    // Another execute() index, another application, or no application: not the fixed id.
    expect(isApplicationJob(graph(id, 'app-1', 3))).toBe(false);
    expect(isApplicationJob(graph(id, 'app-2', 2))).toBe(false);
    expect(isApplicationJob(graph(id, undefined, 2))).toBe(false);
    expect(isApplicationJob(graph('0'.repeat(32), 'app-1', 2))).toBe(false);
  });

  it('a re-built graph of the same application job is the same job, whatever its bytes', () => {
    const id = applicationJobId('app-1', 0);
    const known = JSON.stringify({ ...graph(id, 'app-1', 0), name: 'first build' });
    expect(sameApplicationJob(known, graph(id, 'app-1', 0))).toBe(true);
    const other = JSON.stringify(graph(applicationJobId('app-1', 1), 'app-1', 1));
    expect(sameApplicationJob(other, graph(id, 'app-1', 0))).toBe(false);
  });

  it('a job ended under a former leader is described by its stored result', () => {
    const id = applicationJobId('app-1', 0);
    const details = detailsFromResult(graph(id, 'app-1', 0), {
      jobId: id,
      status: 'FAILED',
      endedAt: 1_000,
      failure: 'boom',
      epoch: 3,
      writtenAt: 1_001,
    });
    expect(details).toMatchObject({
      jobId: id,
      status: 'FAILED',
      parallelism: 2,
      applicationId: 'app-1',
      error: { message: 'boom' },
    });
  });

  it('run-application --jobmanagers 3 without high availability is refused', async () => {
    const run = await sluice(['run-application', '--jobmanagers', '3', 'test/fixtures/jobs/simple-job.ts']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('--jobmanagers 3 needs high availability');
  });
});
