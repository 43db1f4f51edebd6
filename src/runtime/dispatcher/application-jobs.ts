/**
 * Jobs of an application (application mode) as the Dispatcher recognises them across a failover.
 *
 * Promises: a job graph counts as an application's job only when its id is the fixed one derived from its
 * application id and execute() index ({@link applicationJobId}); two submissions of such a job are the same
 * job even when their graphs differ in bytes (a main run again builds it again). A job that ended under a
 * former leader is described from its stored result, so a client attaching to it gets its final status.
 * Refuses: nothing — a graph that is not an application's job is simply not one.
 */

import type { JobId } from '../../common/ids.js';
import type { StoredJobResult } from '../../ha/job-stores.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import { applicationJobId } from '../../jobgraph/job-id.js';
import type { CheckpointsReply, JobDetails } from './protocol.js';

/** Whether the graph is the fixed-id job of an application's execute() call. */
export function isApplicationJob(graph: JobGraph): boolean {
  return (
    graph.applicationId !== undefined &&
    graph.program !== undefined &&
    graph.jobId === applicationJobId(graph.applicationId, graph.program.executionIndex)
  );
}

/** Whether a submitted graph is the same application job as a known one (given as its JSON). */
export function sameApplicationJob(knownGraphJson: string, graph: JobGraph): boolean {
  if (!isApplicationJob(graph)) return false;
  const known = JSON.parse(knownGraphJson) as JobGraph;
  return known.jobId === graph.jobId && known.applicationId === graph.applicationId;
}

/** The final details of a job that ended under a former leader, from its stored result. */
export function detailsFromResult(graph: JobGraph, result: StoredJobResult): JobDetails {
  return {
    jobId: graph.jobId,
    name: graph.name,
    status: result.status,
    parallelism: Math.max(1, ...graph.vertices.map((v) => v.parallelism)),
    startTime: result.endedAt,
    endTime: result.endedAt,
    durationMs: 0,
    applicationId: graph.applicationId ?? null,
    vertices: [],
    edges: [],
    error: result.failure === undefined ? null : { message: result.failure },
    accumulators: {},
    restarts: 0,
  };
}

export function noCheckpoints(jobId: JobId): CheckpointsReply {
  return {
    jobId,
    intervalMs: 0,
    counts: { completed: 0, failed: 0, inProgress: 0, restored: 0 },
    history: [],
    restored: null,
  };
}
