/**
 * What a deployed task is told besides its operator: its channels (the vertex's incoming and outgoing
 * edges with the parallelism on the other side), and the state it restores from — the latest usable
 * checkpoint, else the savepoint the job was started from.
 *
 * Refuses to start a job from a savepoint holding state for operators the job does not have, unless the
 * job allows non-restored state (INVALID_JOB naming the operators). Pure apart from reading the state
 * store through the coordinator.
 */
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { CheckpointCoordinator } from '../checkpoint/checkpoint-coordinator.js';
import type { RestoreSpec } from '../checkpoint/protocol.js';
import type { DeployRequest } from '../taskexecutor/protocol.js';

type StreamDescriptor = NonNullable<DeployRequest['stream']>;

/** A vertex's channels, program, checkpointing mode and restore, for the job's execution `attempt`. */
export function streamDescriptor(
  graph: JobGraph,
  vertexId: string,
  attempt: number,
  checkpointingMode: NonNullable<StreamDescriptor['checkpointing']>['mode'] | undefined,
  restore: RestoreSpec | undefined,
): StreamDescriptor {
  const parallelismOf = (id: string) => graph.vertices.find((v) => v.id === id)!.parallelism;
  return {
    attempt,
    inputs: graph.edges
      .filter((edge) => edge.target === vertexId)
      .map((edge, inputIndex) => ({
        edgeId: edge.id,
        sourceParallelism: parallelismOf(edge.source),
        inputIndex,
      })),
    outputs: graph.edges
      .filter((edge) => edge.source === vertexId)
      .map((edge) => ({ edgeId: edge.id, targetParallelism: parallelismOf(edge.target) })),
    bufferTimeoutMs: graph.bufferTimeoutMs,
    ...(graph.program ? { program: graph.program } : {}),
    ...(checkpointingMode ? { checkpointing: { mode: checkpointingMode } } : {}),
    ...(restore ? { restore: restoreFor(graph, vertexId, restore) } : {}),
  };
}

/** The handles holding state of a vertex's operators. */
function restoreFor(graph: JobGraph, vertexId: string, restore: RestoreSpec): RestoreSpec {
  const vertex = graph.vertices.find((v) => v.id === vertexId)!;
  const uids = new Set(vertex.operator.kind === 'chain' ? vertex.operator.operators.map((o) => o.uid) : []);
  return {
    checkpointId: restore.checkpointId,
    handles: restore.handles.filter((h) => h.object !== null && h.operators.some((o) => uids.has(o.uid))),
  };
}

/** The latest usable checkpoint, else the savepoint the job was started from, else nothing. */
export async function findRestore(
  graph: JobGraph,
  coordinator: CheckpointCoordinator,
  log: Logger,
): Promise<RestoreSpec | undefined> {
  const latest = await coordinator.latestRestore();
  if (latest) {
    log.info({ checkpointId: latest.checkpointId }, `restoring from checkpoint ${latest.checkpointId}`);
    return latest;
  }
  const savepoint = graph.savepoint;
  if (!savepoint) return undefined;
  const { restore } = await coordinator.savepointRestore(savepoint.path);
  const uids = new Set(
    graph.vertices.flatMap((v) =>
      v.operator.kind === 'chain' ? v.operator.operators.map((o) => o.uid) : [],
    ),
  );
  const missing = [
    ...new Set(restore.handles.flatMap((h) => h.operators.map((o) => o.uid)).filter((uid) => !uids.has(uid))),
  ];
  if (missing.length > 0 && !savepoint.allowNonRestoredState) {
    throw new SluiceError(
      ErrorCode.InvalidJob,
      `savepoint '${savepoint.path}' has state for operators this job does not have (${missing.join(', ')}); is it a savepoint of another job? Pass --allow-non-restored-state to skip that state`,
    );
  }
  log.info({ savepoint: savepoint.path, skipped: missing }, `restoring from savepoint ${savepoint.path}`);
  return restore;
}
