/**
 * Runs one deployed task in the current thread: a built-in operator, or a chain of the user's program
 * (its plan resolved once per job by the PlanResolver). The same code runs on the TaskExecutor's event loop
 * (`taskmanager.slot-isolation: none`) and inside a slot's worker thread (`thread`).
 *
 * It promises: the task's state changes and checkpoint acks go through the callbacks of `TaskLaunch`
 * only; it refuses (INVALID_JOB, synchronously from `checkTaskRequest`) a request it cannot run, so a
 * TaskExecutor can refuse the deployment before any thread is involved.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Subjects } from '../../actors/subjects.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { TaskCountersSink } from '../../metrics/task-metrics.js';
import type { LocalRecovery } from '../checkpoint/local-state.js';
import type { SubtaskStateHandle } from '../checkpoint/protocol.js';
import type { StateStore } from '../checkpoint/state-store.js';
import { runStreamTask, type TaskControls } from '../task/stream-task.js';
import { BUILTIN_INVOKABLES, type TaskContext } from './builtin-tasks.js';
import type { PlanResolver } from './plan-resolver.js';
import type { DeployRequest } from './protocol.js';

/** What the thread that runs tasks has: its NATS connection, plans, state store, metrics. */
export interface TaskRunEnvironment {
  nc: NatsConnection;
  subjects: Subjects;
  clusterId: string;
  log: Logger;
  plans: PlanResolver;
  /** Where checkpoint state goes (opened on first use). */
  stateStore?: () => Promise<StateStore>;
  /** Live per-operator counters. */
  metrics?: TaskCountersSink;
  /** Local recovery (`state.backend.local-recovery`); absent when off. */
  localRecovery?: LocalRecovery;
}

/** One task to run, with the callbacks it reports through. */
export interface TaskLaunch {
  request: DeployRequest;
  /** The leader epoch it was deployed under (HA); undefined without HA. */
  epoch: number | undefined;
  ctx: TaskContext;
  /** Filled by a running stream task of a checkpointing job; called by the TaskExecutor. */
  controls: TaskControls;
  ack(checkpointId: number, handle: SubtaskStateHandle, syncMs: number): void;
  decline(checkpointId: number, reason: string): void;
}

/** @throws SluiceError INVALID_JOB for an unknown built-in operator or a chain without its description */
export function checkTaskRequest(request: DeployRequest): void {
  const { operator, task } = request;
  if (operator.kind === 'builtin') {
    if (!BUILTIN_INVOKABLES[operator.name])
      throw new SluiceError(ErrorCode.InvalidJob, `unknown built-in operator '${operator.name}'`);
    return;
  }
  if (!request.stream) {
    throw new SluiceError(
      ErrorCode.InvalidJob,
      `task ${task.jobId}/${task.vertexId}/${task.subtaskIndex}/${task.attempt} has no stream description`,
    );
  }
}

/** Runs the task to its end; rejects with the task's failure (or the abort reason once cancelled). */
export async function runTask(env: TaskRunEnvironment, launch: TaskLaunch): Promise<void> {
  const { request, ctx, controls } = launch;
  checkTaskRequest(request);
  const { operator, task } = request;
  if (operator.kind === 'builtin') {
    ctx.running();
    return BUILTIN_INVOKABLES[operator.name]!(ctx, operator.args);
  }
  const stream = request.stream!;
  const plan = await env.plans.resolve(task.jobId, stream.program);
  const checkpointing = stream.checkpointing;
  let store: StateStore | undefined;
  // Every stream task can take part in savepoints; periodic checkpoints only when the job has them.
  if (env.stateStore) store = await env.stateStore();
  else if (checkpointing !== undefined || stream.restore !== undefined) {
    throw new SluiceError(ErrorCode.IllegalState, 'this TaskManager has no state store');
  }
  await runStreamTask(
    {
      jobId: task.jobId,
      clusterId: env.clusterId,
      attempt: stream.attempt,
      epoch: launch.epoch,
      vertexId: task.vertexId,
      vertexName: request.vertexName,
      subtaskIndex: task.subtaskIndex,
      parallelism: request.parallelism,
      chain: operator.operators.map((o) => o.uid),
      inputs: stream.inputs,
      outputs: stream.outputs,
      bufferTimeoutMs: stream.bufferTimeoutMs,
    },
    plan,
    {
      nc: env.nc,
      subjects: env.subjects,
      log: env.log.child({ job: task.jobId, subtask: task.subtaskIndex }),
      signal: ctx.signal,
      accumulators: ctx.accumulators,
      onRunning: ctx.running,
      ...(env.metrics ? { metrics: env.metrics } : {}),
      ...(store !== undefined
        ? {
            checkpoints: {
              store,
              periodic: checkpointing !== undefined,
              mode: checkpointing?.mode ?? 'EXACTLY_ONCE',
              restore: stream.restore,
              local: env.localRecovery,
              controls,
              ack: launch.ack,
              decline: launch.decline,
            },
          }
        : {}),
    },
  );
}
