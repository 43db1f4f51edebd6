/**
 * Rescaling a running job (Flink: FLIP-291's resource requirements, the adaptive scheduler's rescale).
 * The JobMaster implements {@link Rescaler}; `sluice rescale`, REST `PUT /jobs/:jobid/resource-requirements`,
 * reactive mode and the autoscaler all call it, in process, through the same entry point.
 *
 * Promises of `rescale(request)`:
 * - the job's vertices end at `request.target` (vertices not named keep their parallelism), restored from
 *   a checkpoint taken for the purpose (or the latest one when checkpointing is off for the job's sources),
 *   key groups redistributed, exactly-once kept: nothing after that checkpoint is committed by the old
 *   tasks, the new tasks replay from it;
 * - resolves once every new task runs, with the parallelism before and after and the downtime (from the
 *   moment the old tasks were told to stop until every new task ran);
 * - a request that changes nothing resolves at once with `previous` equal to `target`.
 *
 * Refuses (a SluiceError; nothing changes):
 * - `InvalidRescale`: a parallelism below 1 or above the vertex's max parallelism, an unknown vertex id, a
 *   per-vertex change that would give the two ends of a forward edge different parallelisms;
 * - `IllegalState`: a job that is not RUNNING (finished, failing, restarting, still being scheduled) or has
 *   no state store (checkpointing cannot be used to move its state);
 * - `RescaleInProgress`: another rescale of the job has not finished (it is not queued: ask again);
 * - `NoResourceAvailable`: more slots than the cluster can give within `slot.request.timeout` (the job keeps
 *   running at its old parallelism when the new slots were asked for before anything stopped).
 * `UnknownJob` comes from the Dispatcher, which routes the request by job id.
 */
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';

/** Vertex id → parallelism. */
export type VertexParallelism = Readonly<Record<string, number>>;

/** Who asked for a rescale (logged with it, shown in REST and the dashboard). */
export const RescaleCause = { User: 'user', Reactive: 'reactive', Autoscaler: 'autoscaler' } as const;
export type RescaleCause = (typeof RescaleCause)[keyof typeof RescaleCause];

export interface RescaleRequest {
  /** The parallelism each named vertex should have; unnamed vertices keep theirs. */
  target: VertexParallelism;
  cause: RescaleCause;
  /** Why, in words (`sluice rescale -p 4`, `TaskManager tm-2 joined`, the autoscaler's decision). */
  reason: string;
}

export interface RescaleResult {
  jobId: string;
  /** Every vertex's parallelism before. */
  previous: VertexParallelism;
  /** Every vertex's parallelism after. */
  target: VertexParallelism;
  /** From stopping the old tasks until every new task ran; absent when nothing changed. */
  downtimeMs?: number;
}

/** Implemented by the JobMaster; the autoscaler and reactive mode call it in-process. */
export interface Rescaler {
  rescale(request: RescaleRequest): Promise<RescaleResult>;
  /** Every vertex's current parallelism. */
  currentParallelism(): VertexParallelism;
  /** Every vertex's max parallelism (its number of key groups: the upper bound of a rescale). */
  maxParallelism(): VertexParallelism;
}

/** Every vertex's parallelism in a job graph. */
export function parallelismOf(graph: JobGraph): VertexParallelism {
  return Object.fromEntries(graph.vertices.map((v) => [v.id, v.parallelism]));
}

/** Every vertex's max parallelism in a job graph. */
export function maxParallelismOf(graph: JobGraph): VertexParallelism {
  return Object.fromEntries(graph.vertices.map((v) => [v.id, v.maxParallelism]));
}

/**
 * The full parallelism a request asks for (unnamed vertices keep theirs), or an `InvalidRescale` error
 * naming every problem: unknown vertices, parallelisms outside 1..max, forward edges whose ends differ.
 */
export function resolveRescaleTarget(graph: JobGraph, target: VertexParallelism): VertexParallelism {
  const problems: string[] = [];
  const byId = new Map(graph.vertices.map((v) => [v.id, v]));
  for (const [id, p] of Object.entries(target)) {
    const vertex = byId.get(id);
    if (!vertex) {
      problems.push(`job ${graph.jobId} has no vertex '${id}' (it has ${[...byId.keys()].join(', ')})`);
    } else if (!Number.isInteger(p) || p < 1) {
      problems.push(`vertex '${id}': parallelism ${p} is not a whole number of at least 1`);
    } else if (p > vertex.maxParallelism) {
      problems.push(
        `vertex '${id}': parallelism ${p} is above its max parallelism ${vertex.maxParallelism} (its number of key groups)`,
      );
    }
  }
  const full = { ...parallelismOf(graph), ...target };
  for (const edge of graph.edges) {
    if (edge.partitioner !== 'forward') continue;
    if (full[edge.source] !== full[edge.target]) {
      problems.push(
        `vertices '${edge.source}' and '${edge.target}' are joined by a forward edge and must keep the same parallelism (${full[edge.source]} vs ${full[edge.target]})`,
      );
    }
  }
  if (problems.length > 0) {
    throw new SluiceError(ErrorCode.InvalidRescale, `cannot rescale: ${problems.join('; ')}`);
  }
  return full;
}

/** One rescale of a job, as REST and the dashboard show it (the last few are kept). */
export interface RescaleRecord {
  cause: RescaleCause;
  reason: string;
  previous: VertexParallelism;
  target: VertexParallelism;
  status: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';
  /** Epoch ms. */
  startTime: number;
  endTime: number | null;
  /** The checkpoint the new tasks restored from. */
  checkpointId: number | null;
  /** From stopping the old tasks until every new task ran. */
  downtimeMs: number | null;
  failure?: string;
}

/** `v0: 2 → 4, v1: 2 → 4` (only the vertices that change). */
export function describeRescale(previous: VertexParallelism, target: VertexParallelism): string {
  const changes = Object.keys(target)
    .filter((id) => previous[id] !== target[id])
    .map((id) => `${id}: ${previous[id]} → ${target[id]}`);
  return changes.length > 0 ? changes.join(', ') : 'no change';
}
