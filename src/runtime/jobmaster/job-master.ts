/**
 * The JobMaster: one per job. Gets slots from the ResourceManager, deploys each subtask (the
 * ExecutionGraph: vertices × subtasks × attempts) to the TaskExecutor owning its slot, follows the
 * task states they report, and ends the job FINISHED, FAILED or CANCELED. Every job status change is
 * published on `events.job.<jobId>`.
 *
 * Size: still holds the ExecutionGraph bookkeeping, failover/restart and the actor in one file. Splitting
 * them (an execution graph with its transitions as data, unit-tested on a clock) is issue 12 item 5, not
 * done yet; reconciliation already lives in execution-reconciler.ts.
 */

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Actor, type ActorContext } from '../../actors/actor.js';
import type { Subjects } from '../../actors/subjects.js';
import { isTerminalJobStatus, isTerminalTaskState, JobStatus, TaskState } from '../../api/job-status.js';
import { ErrorCode, isSluiceError, SluiceError } from '../../common/errors.js';
import type { CheckpointingConfig } from '../../config/checkpointing-config.js';
import { systemClock } from '../../ha/clock.js';
import { type JobGraph, requiredSlots } from '../../jobgraph/job-graph.js';
import { CheckpointCoordinator, type CheckpointStats } from '../checkpoint/checkpoint-coordinator.js';
import {
  CheckpointAckSchema,
  type CheckpointDecline,
  CheckpointDeclineSchema,
  type CheckpointMetadata,
  type RestoreSpec,
} from '../checkpoint/protocol.js';
import type { StateStore } from '../checkpoint/state-store.js';
import type { ErrorInfo, JobDetails, JobEvent, JobSummary } from '../dispatcher/protocol.js';
import type { ResourceManager, SlotAssignment } from '../resourcemanager/resource-manager.js';
import { WATERMARK } from '../task/vertex-gauges.js';
import {
  type DeployRequest,
  TaskProgress as TaskProgressSchema,
  TaskStateUpdate,
  taskName,
} from '../taskexecutor/protocol.js';
import { ExecutionReconciler, type ExpectedExecution, type ReconcileAction } from './execution-reconciler.js';
import {
  type ReactiveModeOptions,
  ReactiveScalingPolicy,
  reactiveParallelism,
  sameParallelism,
} from './reactive-mode.js';
import {
  describeRescale,
  maxParallelismOf,
  parallelismOf,
  RescaleCause,
  type RescaleRecord,
  type RescaleRequest,
  type RescaleResult,
  type Rescaler,
  resolveRescaleTarget,
  type VertexParallelism,
} from './rescale.js';
import type { RestartStrategy } from './restart-strategy.js';

/** Event message once every task of the job's current attempt runs. */
export const ALL_TASKS_RUNNING = 'all tasks running';

export interface JobMasterOptions {
  slotRequestTimeoutMs: number;
  /** How long cancelling tasks may take before they are given up on. */
  cancelTimeoutMs: number;
  /** Called once, after the job reached a terminal status and the JobMaster stopped. */
  onTerminated: (jobMaster: JobMaster) => void;
  /** Whether (and when) a failed job restarts. */
  restartStrategy: RestartStrategy;
  /** The leader epoch of the JobManager (HA): carried by every deploy and cancel. Undefined without HA. */
  epoch?: number | undefined;
  /** Checkpoints and savepoints: the job's effective settings and where state goes. */
  checkpointing?: { config: CheckpointingConfig; store: StateStore } | undefined;
  /**
   * HA: whether this JobManager still leads (lease deadline on the monotonic clock). A leader resumed after
   * a pause handles the messages queued meanwhile before its election notices the missed deadline: it
   * must not fail, restart or checkpoint the job on their account.
   */
  stillLeading?: (() => boolean) | undefined;
  /**
   * `heartbeat.interval`: TaskExecutors report their executions this often; an execution absent from
   * their reports for about one interval is failed over. Default 1000.
   */
  heartbeatIntervalMs?: number | undefined;
  /**
   * `heartbeat.timeout`: a TaskExecutor holding executions of the job that sends no report for it this
   * long (at least 3 intervals) has lost them (it restarted under the same id). Default 5000.
   */
  heartbeatTimeoutMs?: number | undefined;
  /** `scheduler-mode: reactive`: the job uses every slot it can have and follows TaskManagers. */
  reactive?: ReactiveModeOptions | undefined;
}

/** Rescales kept for REST and the dashboard. */
const RESCALE_HISTORY = 10;

/** The rescale under way (one at a time). */
interface RescaleInFlight {
  request: RescaleRequest;
  previous: VertexParallelism;
  target: VertexParallelism;
  record: RescaleRecord;
  /** checkpointing: the old tasks run; deploying: they were told to stop and the new ones deployed. */
  phase: 'checkpointing' | 'deploying';
  /** When the old tasks were told to stop (performance.now). */
  stoppedAt: number;
  resolve: (result: RescaleResult) => void;
  reject: (err: Error) => void;
}

interface Execution {
  vertexId: string;
  index: number;
  attempt: number;
  state: TaskState;
  taskManagerId: string | null;
  slotIndex: number;
  accumulators: Record<string, number>;
}

export class JobMaster extends Actor implements Rescaler {
  /** The job's graph; a rescale replaces it with one at the new parallelism. */
  #graph: JobGraph;
  readonly #subjects: Subjects;
  readonly #rm: ResourceManager;
  readonly #options: JobMasterOptions;
  readonly #executions: Execution[] = [];
  #status: JobStatus = JobStatus.CREATED;
  /** Where a FAILING / CANCELLING job ends once its tasks are down. */
  #target: JobStatus | undefined;
  #error: ErrorInfo | null = null;
  readonly #startTime = Date.now();
  #endTime: number | null = null;
  #cancelTimer: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  /** The job's execution attempt: every task of a restart runs with the next one. */
  #attempt = 0;
  #restarts = 0;
  readonly #coordinator: CheckpointCoordinator | undefined;
  /** What the current attempt's tasks restore from. */
  #restore: RestoreSpec | undefined;
  readonly #reconciler: ExecutionReconciler;
  #silenceTimer: NodeJS.Timeout | undefined;
  /** The slots the current attempt's tasks were deployed to. */
  #slots: SlotAssignment[] = [];
  #rescale: RescaleInFlight | undefined;
  readonly #rescales: RescaleRecord[] = [];
  readonly #reactive: ReactiveScalingPolicy | undefined;
  #reactiveTimer: NodeJS.Timeout | undefined;
  #unsubscribeSlots: (() => void) | undefined;

  constructor(
    ctx: ActorContext,
    subjects: Subjects,
    rm: ResourceManager,
    graph: JobGraph,
    options: JobMasterOptions,
  ) {
    super(ctx, 'JobMaster', subjects.jobMaster(graph.jobId), { job: graph.jobId });
    this.#graph = graph;
    this.#subjects = subjects;
    this.#rm = rm;
    this.#options = options;
    this.#buildExecutions();
    if (options.reactive) {
      this.#reactive = new ReactiveScalingPolicy(options.reactive, systemClock);
      this.#unsubscribeSlots = rm.onSlotsChanged(() => this.#reactiveCheck());
    }
    const heartbeatMs = options.heartbeatIntervalMs ?? 1_000;
    this.#reconciler = new ExecutionReconciler({
      jobId: graph.jobId,
      clock: systemClock,
      graceMs: heartbeatMs,
      silenceMs: Math.max(3 * heartbeatMs, options.heartbeatTimeoutMs ?? 5_000),
      epoch: options.epoch,
    });
    // Every TaskExecutor heartbeat: the executions it holds. Validated by the reconciler (bad ones are
    // counted drops), so the schema here takes anything.
    this.onTell('executions', z.unknown(), (body) => {
      if (!this.#leading() || isTerminalJobStatus(this.#status)) return;
      const result = this.#reconciler.onReport(body, this.#expectedExecutions());
      if (!result.accepted) {
        const dropped = this.#reconciler.dropped;
        const level = dropped === 1 || dropped % 100 === 0 ? 'warn' : 'debug';
        this.log[level]({ reason: result.reason, dropped }, 'execution report dropped');
        return;
      }
      this.#reconcile(result.actions);
    });
    this.#silenceTimer = setInterval(() => {
      void this.runInMailbox(() => {
        if (!this.#leading() || isTerminalJobStatus(this.#status)) return;
        this.#reconcile(this.#reconciler.checkSilence(this.#expectedExecutions()));
      }).catch(() => undefined);
    }, heartbeatMs);
    this.#silenceTimer.unref?.();
    this.onTell('task-state', TaskStateUpdate, (update) => {
      // Under HA, a task of the same job deployed by a former leader reports here too: not ours.
      if (update.epoch !== this.#options.epoch || !this.#leading()) return;
      this.#onTaskState(update);
    });
    const cp = options.checkpointing;
    this.#coordinator = cp
      ? new CheckpointCoordinator({
          jobId: graph.jobId,
          jobName: graph.name,
          epoch: options.epoch ?? 1,
          log: this.log,
          store: cp.store,
          config: cp.config,
          runningTasks: () => (this.#leading() ? this.#runningTasks() : undefined),
          tellTaskExecutor: (tm, type, body) => this.#tellTaskExecutor(tm, type, body),
          runInMailbox: (fn) => this.runInMailbox(fn),
        })
      : undefined;
    this.onTell('ack', CheckpointAckSchema, (ack) => {
      if (ack.epoch !== this.#options.epoch || !this.#leading()) return;
      this.#coordinator?.onAck(ack);
    });
    this.onTell('decline', CheckpointDeclineSchema, (decline) => {
      if (decline.epoch !== this.#options.epoch || !this.#leading()) return;
      this.#coordinator?.onDecline(decline);
      if (decline.taskGone) this.#taskGone(decline.task, decline.taskManagerId);
    });
    this.onTell('task-progress', TaskProgressSchema, (progress) => {
      if (progress.epoch !== this.#options.epoch) return;
      const { task } = progress;
      const e = this.#execution(task);
      if (!e || e.attempt !== task.attempt || e.taskManagerId !== progress.taskManagerId) return;
      if (!isTerminalTaskState(e.state)) e.accumulators = progress.accumulators;
    });
  }

  get jobId(): string {
    return this.#graph.jobId;
  }

  get graph(): JobGraph {
    return this.#graph;
  }

  get status(): JobStatus {
    return this.#status;
  }

  override start(): void {
    super.start();
    this.#publish();
    void this.#schedule();
  }

  /** Cancels the job; resolves with the status it is in afterwards (CANCELLING or terminal). */
  cancel(): Promise<JobStatus> {
    return this.runInMailbox(() => {
      if (isTerminalJobStatus(this.#status) || this.#status === JobStatus.CANCELLING) return this.#status;
      this.log.info('cancelling job');
      this.#stopTasks(JobStatus.CANCELLING, JobStatus.CANCELED);
      return this.#status;
    });
  }

  /** The JobManager is going away: stop the tasks and end the job SUSPENDED. */
  suspend(reason: string): Promise<void> {
    return this.runInMailbox(() => {
      if (isTerminalJobStatus(this.#status)) return;
      this.#error = { message: reason };
      for (const tm of this.#taskManagersInUse()) {
        this.#tellCancel(tm);
      }
      this.#terminate(JobStatus.SUSPENDED);
    }).catch(() => undefined);
  }

  /** The ResourceManager lost a TaskManager that held slots of this job. */
  taskManagerLost(taskManagerId: string, reason: string): void {
    void this.runInMailbox(() => {
      if (!this.#leading()) return;
      for (const e of this.#executions) {
        if (e.taskManagerId !== taskManagerId || isTerminalTaskState(e.state)) continue;
        const error = {
          message: `TaskManager ${taskManagerId} lost: ${reason}`,
          location: this.#taskLocation(e),
        };
        this.#onExecutionEnded(e, TaskState.FAILED, error);
      }
    }).catch(() => undefined);
  }

  /**
   * Takes a savepoint under `dir` (`state.savepoints.dir` when undefined); with `stop`, the sources end
   * right after it and the job finishes. Resolves with the savepoint's path once it is complete.
   */
  triggerSavepoint(dir: string | undefined, stop: boolean): Promise<CheckpointMetadata> {
    return this.runInMailbox(() => {
      const coordinator = this.#coordinator;
      if (!coordinator) {
        throw new SluiceError(
          ErrorCode.IllegalState,
          'this JobManager has no state store: savepoints are off',
        );
      }
      if (this.#status !== JobStatus.RUNNING) {
        throw new SluiceError(ErrorCode.IllegalState, `job ${this.jobId} is ${this.#status}, not RUNNING`);
      }
      const base = (dir ?? coordinator.config.savepointsDir).replace(/\/+$/, '');
      const path = `${base}/savepoint-${this.jobId.slice(0, 6)}-${randomBytes(6).toString('hex')}`;
      // Wrapped: the mailbox must not wait for the savepoint (its acks come through the mailbox).
      return { done: coordinator.triggerSavepoint(path, stop) };
    }).then(({ done }) => done);
  }

  /** Checkpoint counts and history (empty when the job does not checkpoint). */
  checkpointStats(): ReturnType<CheckpointCoordinator['stats']> & { intervalMs: number } {
    const stats = this.#coordinator?.stats() ?? {
      counts: { completed: 0, failed: 0, inProgress: 0, restored: 0 },
      history: [] as CheckpointStats[],
      restored: undefined,
      retained: [],
    };
    return { ...stats, intervalMs: this.#coordinator?.config.intervalMs ?? 0 };
  }

  currentParallelism(): VertexParallelism {
    return parallelismOf(this.#graph);
  }

  maxParallelism(): VertexParallelism {
    return maxParallelismOf(this.#graph);
  }

  /** The rescale under way (if any) and the last ones, newest last. */
  rescaleHistory(): RescaleRecord[] {
    return this.#rescales.map((r) => ({ ...r }));
  }

  /**
   * Rescales the running job (the contract is in rescale.ts): reserves the slots, takes a checkpoint, stops
   * the old tasks and deploys the new ones at once (another attempt: their channels are their own), which
   * restore from the latest committed checkpoint. Resolves once every new task runs.
   */
  rescale(request: RescaleRequest): Promise<RescaleResult> {
    return this.runInMailbox(() => {
      const previous = this.currentParallelism();
      const running = this.#rescale;
      if (running) {
        throw new SluiceError(
          ErrorCode.RescaleInProgress,
          `job ${this.jobId} is already being rescaled (${running.request.cause}: ${describeRescale(running.previous, running.target)}); ask again once it is done`,
        );
      }
      if (this.#status !== JobStatus.RUNNING) {
        throw new SluiceError(
          ErrorCode.IllegalState,
          `job ${this.jobId} is ${this.#status}: only a RUNNING job can be rescaled`,
        );
      }
      const target = resolveRescaleTarget(this.#graph, request.target);
      if (sameParallelism(target, previous)) {
        return { done: Promise.resolve<RescaleResult>({ jobId: this.jobId, previous, target }) };
      }
      if (!this.#coordinator) {
        throw new SluiceError(
          ErrorCode.IllegalState,
          `job ${this.jobId} cannot be rescaled: this JobManager has no state store, and a rescale moves the job's state through a checkpoint (set state.checkpoints.dir)`,
        );
      }
      if (!this.#executions.every((e) => e.state === TaskState.RUNNING)) {
        throw new SluiceError(
          ErrorCode.IllegalState,
          `job ${this.jobId} cannot be rescaled yet: not every task runs (a rescale starts from a checkpoint)`,
        );
      }
      let resolve: (r: RescaleResult) => void = () => undefined;
      let reject: (e: Error) => void = () => undefined;
      const done = new Promise<RescaleResult>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const record: RescaleRecord = {
        cause: request.cause,
        reason: request.reason,
        previous,
        target,
        status: 'IN_PROGRESS',
        startTime: Date.now(),
        endTime: null,
        checkpointId: null,
        downtimeMs: null,
      };
      this.#rescales.push(record);
      if (this.#rescales.length > RESCALE_HISTORY) this.#rescales.shift();
      const inflight: RescaleInFlight = {
        request,
        previous,
        target,
        record,
        phase: 'checkpointing',
        stoppedAt: 0,
        resolve,
        reject,
      };
      this.#rescale = inflight;
      this.log.info(
        { cause: request.cause, reason: request.reason, previous, target },
        `rescaling: ${describeRescale(previous, target)}`,
      );
      void this.#runRescale(inflight);
      return { done };
    }).then(({ done }) => done);
  }

  async #runRescale(inflight: RescaleInFlight): Promise<void> {
    const coordinator = this.#coordinator!;
    const needed = Math.max(...Object.values(inflight.target));
    try {
      // Before anything stops: a rescale the cluster cannot give slots for leaves the job as it was.
      await this.#rm.reserveSlots(this.jobId, needed);
      try {
        await coordinator.triggerCheckpoint();
      } catch (err) {
        await this.runInMailbox(() => {
          if (this.#status === JobStatus.RUNNING) void this.#rm.releaseSlotsExcept(this.jobId, this.#slots);
        });
        throw err;
      }
      // No checkpoint may commit after the one restored from (its sinks would publish what the new tasks
      // replay): stop triggering, wait for commits under way, then restore from the latest one.
      await this.runInMailbox(() => {
        if (this.#rescale === inflight && this.#status === JobStatus.RUNNING) coordinator.pause('rescaling');
      });
      await coordinator.settle();
      const deploy = await this.runInMailbox(() => this.#stopForRescale(inflight));
      if (!deploy) return;
      const slots = await this.#rm
        .reassignSlots(this.jobId, needed, this.#options.slotRequestTimeoutMs, (_, message) =>
          this.#publish(message),
        )
        .catch(async (err: unknown) => {
          await this.runInMailbox(() => this.#rescaleDeployFailed(inflight, err));
          return undefined;
        });
      if (!slots) return;
      await this.runInMailbox(() => {
        if (this.#rescale !== inflight || this.#status !== JobStatus.RESTARTING) {
          return;
        }
        this.#deployAll(slots);
      });
    } catch (err) {
      await this.runInMailbox(() => this.#failRescale(inflight, err)).catch(() => undefined);
    }
  }

  /** The rescale's checkpoint is committed: old tasks stop, the new attempt is built. False: not going on. */
  #stopForRescale(inflight: RescaleInFlight): boolean {
    if (this.#rescale !== inflight) return false;
    if (this.#status !== JobStatus.RUNNING) {
      this.#failRescale(inflight, new SluiceError(ErrorCode.IllegalState, `job became ${this.#status}`));
      return false;
    }
    const restore = this.#coordinator!.latestCompleted()!;
    inflight.phase = 'deploying';
    inflight.stoppedAt = performance.now();
    inflight.record.checkpointId = restore.checkpointId;
    for (const tm of this.#taskManagersInUse()) this.#tellCancel(tm);
    this.#status = JobStatus.RESTARTING;
    this.#publish(
      `rescaling (${inflight.request.cause}: ${inflight.request.reason}): ${describeRescale(inflight.previous, inflight.target)}, from checkpoint ${restore.checkpointId}`,
    );
    this.#attempt++;
    this.#applyParallelism(inflight.target);
    this.#restore = restore;
    this.#reconciler.reset();
    return true;
  }

  /** The new tasks could not get their slots: the job restarts (at its old parallelism unless reactive). */
  #rescaleDeployFailed(inflight: RescaleInFlight, err: unknown): void {
    if (this.#rescale !== inflight || this.#status !== JobStatus.RESTARTING) return;
    this.#failRescale(inflight, err);
    if (!this.#reactive) this.#applyParallelism(inflight.previous);
    this.#error = { message: `rescale failed: ${err instanceof Error ? err.message : String(err)}` };
    this.#target = JobStatus.FAILED;
    this.#failOrRestart();
  }

  #completeRescale(inflight: RescaleInFlight): void {
    this.#rescale = undefined;
    const downtimeMs = Math.round(performance.now() - inflight.stoppedAt);
    inflight.record.status = 'COMPLETED';
    inflight.record.endTime = Date.now();
    inflight.record.downtimeMs = downtimeMs;
    this.#reactive?.rescaled();
    this.log.info(
      { cause: inflight.request.cause, downtimeMs, checkpointId: inflight.record.checkpointId },
      `rescaled: ${describeRescale(inflight.previous, inflight.target)} (${downtimeMs} ms from stopping the old tasks until every new one ran)`,
    );
    inflight.resolve({ jobId: this.jobId, previous: inflight.previous, target: inflight.target, downtimeMs });
  }

  #failRescale(inflight: RescaleInFlight, err: unknown): void {
    if (this.#rescale !== inflight) return;
    this.#rescale = undefined;
    const message = err instanceof Error ? err.message : String(err);
    inflight.record.status = 'FAILED';
    inflight.record.endTime = Date.now();
    inflight.record.failure = message;
    this.log.warn({ cause: inflight.request.cause, err: message }, 'rescale failed');
    inflight.reject(
      isSluiceError(err)
        ? err
        : new SluiceError(ErrorCode.IllegalState, `rescale of job ${this.jobId} failed: ${message}`),
    );
  }

  /** Replaces the graph's parallelism and builds the executions of the current attempt for it. */
  #applyParallelism(target: VertexParallelism): void {
    this.#graph = {
      ...this.#graph,
      vertices: this.#graph.vertices.map((v) => ({ ...v, parallelism: target[v.id] ?? v.parallelism })),
    };
    this.#buildExecutions();
  }

  #buildExecutions(): void {
    this.#executions.length = 0;
    for (const vertex of this.#graph.vertices) {
      for (let index = 0; index < vertex.parallelism; index++) {
        this.#executions.push({
          vertexId: vertex.id,
          index,
          attempt: this.#attempt,
          state: TaskState.SCHEDULED,
          taskManagerId: null,
          slotIndex: -1,
          accumulators: {},
        });
      }
    }
  }

  /** Reactive mode: the cluster's slots changed (or a wait ended): rescale the job to them when due. */
  #reactiveCheck(): void {
    const policy = this.#reactive;
    if (!policy || isTerminalJobStatus(this.#status)) return;
    void this.#rm
      .availableSlotsFor(this.jobId)
      .then((available) =>
        this.runInMailbox(() => {
          policy.observeSlots(available);
          clearTimeout(this.#reactiveTimer);
          if (!this.#leading() || this.#status !== JobStatus.RUNNING || this.#rescale) return;
          if (!this.#executions.every((e) => e.state === TaskState.RUNNING)) return;
          const decision = policy.decide(this.#graph, this.currentParallelism());
          if (decision.kind === 'wait') {
            this.log.debug({ waitMs: decision.waitMs, why: decision.why }, 'reactive mode: waiting');
            this.#reactiveTimer = setTimeout(() => this.#reactiveCheck(), decision.waitMs + 5);
            this.#reactiveTimer.unref?.();
          } else if (decision.kind === 'rescale') {
            this.rescale({
              target: decision.target,
              cause: RescaleCause.Reactive,
              reason: `${available} slots available`,
            })
              .then(() => this.#reactiveCheck())
              .catch((err: unknown) =>
                this.log.warn({ err: (err as Error).message }, 'reactive mode: rescale did not happen'),
              );
          }
        }),
      )
      .catch(() => undefined);
  }

  /** What this JobMaster believes about each execution of the current attempt (for reconciliation). */
  #expectedExecutions(): ExpectedExecution[] {
    return this.#executions.map((e) => ({
      vertexId: e.vertexId,
      subtaskIndex: e.index,
      attempt: e.attempt,
      taskManagerId: e.taskManagerId,
      state: e.state,
    }));
  }

  /** Applies what reconciliation found: missed states, vanished executions, executions to cancel. */
  #reconcile(actions: ReconcileAction[]): void {
    const cancels = new Map<string, ReconcileAction['task'][]>();
    for (const action of actions) {
      if (action.kind === 'apply') {
        const e = this.#execution(action.task);
        this.log.warn(
          { task: e ? this.#taskLocation(e) : action.task, state: action.state },
          'applying a task state whose report was lost (reconciled from a heartbeat)',
        );
        this.#onTaskState({
          task: action.task,
          taskManagerId: e?.taskManagerId ?? '',
          state: action.state,
          ...(action.error ? { error: action.error } : {}),
          ...(this.#options.epoch !== undefined ? { epoch: this.#options.epoch } : {}),
        });
      } else if (action.kind === 'missing') {
        this.#taskGone(
          action.task,
          action.taskManagerId,
          `not reported by its TaskExecutor for ${action.missingMs} ms`,
        );
      } else {
        const list = cancels.get(action.taskManagerId) ?? [];
        list.push(action.task);
        cancels.set(action.taskManagerId, list);
      }
    }
    const epoch = this.#options.epoch;
    for (const [tm, tasks] of cancels) {
      this.log.warn(
        { taskManager: tm, tasks: tasks.length },
        'a TaskExecutor runs executions this JobMaster does not know: cancelling them',
      );
      try {
        this.ctx.rpc.tell(
          `${this.#subjects.taskExecutor(tm)}.cancel-executions`,
          'cancel-executions',
          { tasks },
          epoch === undefined ? {} : { epoch },
        );
      } catch (err) {
        this.log.debug({ err }, 'cancel-executions not sent');
      }
    }
  }

  /** A TaskExecutor no longer has a task this JobMaster counts as running: its final state was lost. */
  #taskGone(
    task: CheckpointDecline['task'],
    taskManagerId: string,
    why = 'is no longer running there',
  ): void {
    const e = this.#execution(task);
    if (
      !e ||
      e.attempt !== task.attempt ||
      e.taskManagerId !== taskManagerId ||
      isTerminalTaskState(e.state)
    ) {
      return;
    }
    this.#onExecutionEnded(e, TaskState.FAILED, {
      message: `task ${this.#taskLocation(e)} ${why} (its final state never arrived)`,
      location: this.#taskLocation(e),
    });
  }

  /** The execution of a task id's vertex and subtask (any attempt: callers compare it). */
  #execution(task: { vertexId: string; subtaskIndex: number }): Execution | undefined {
    return this.#executions.find((x) => x.vertexId === task.vertexId && x.index === task.subtaskIndex);
  }

  #leading(): boolean {
    return this.#options.stillLeading?.() ?? true;
  }

  summary(): JobSummary {
    const end = this.#endTime ?? Date.now();
    return {
      jobId: this.jobId,
      name: this.#graph.name,
      status: this.#status,
      parallelism: requiredSlots(this.#graph),
      startTime: this.#startTime,
      endTime: this.#endTime,
      durationMs: end - this.#startTime,
      applicationId: this.#graph.applicationId ?? null,
    };
  }

  details(): JobDetails {
    return {
      ...this.summary(),
      vertices: this.#graph.vertices.map((v) => ({
        id: v.id,
        name: v.name,
        parallelism: v.parallelism,
        subtasks: this.#executions
          .filter((e) => e.vertexId === v.id)
          .map((e) => ({
            index: e.index,
            state: e.state,
            attempt: e.attempt,
            taskManagerId: e.taskManagerId,
          })),
        accumulators: this.#accumulators(v.id),
      })),
      edges: this.#graph.edges.map((e) => ({
        source: e.source,
        target: e.target,
        partitioner: e.partitioner,
      })),
      error: this.#error,
      accumulators: this.#accumulators(),
      restarts: this.#restarts,
    };
  }

  async #schedule(): Promise<void> {
    if (this.#coordinator) {
      try {
        const restore = await this.#findRestore(this.#coordinator);
        // Suspended or cancelled meanwhile (e.g. leadership lost during the read): nothing to start.
        if (this.#status !== JobStatus.CREATED && this.#status !== JobStatus.RESTARTING) return;
        this.#restore = restore;
      } catch (err) {
        await this.runInMailbox(() => {
          if (this.#status !== JobStatus.CREATED && this.#status !== JobStatus.RESTARTING) return;
          this.#error = { message: err instanceof Error ? err.message : String(err) };
          this.log.error({ err }, "cannot restore the job's state");
          this.#terminate(JobStatus.FAILED);
        }).catch(() => undefined);
        return;
      }
    }
    if (this.#reactive) {
      // Reactive mode: the job starts (or restarts) at the parallelism the slots it can have allow.
      const available = await this.#rm.availableSlotsFor(this.jobId).catch(() => 0);
      await this.runInMailbox(() => {
        if (this.#status !== JobStatus.CREATED && this.#status !== JobStatus.RESTARTING) return;
        const target = reactiveParallelism(this.#graph, Math.max(1, available));
        this.#reactive?.observeSlots(available);
        this.#reactive?.rescaled();
        if (sameParallelism(target, this.currentParallelism())) return;
        this.log.info(
          { available, target },
          `reactive mode: ${describeRescale(this.currentParallelism(), target)} (${available} slots available)`,
        );
        this.#applyParallelism(target);
      });
    }
    const needed = requiredSlots(this.#graph);
    let slots: SlotAssignment[];
    try {
      slots = await this.#rm.requestSlots(
        this.jobId,
        needed,
        this.#options.slotRequestTimeoutMs,
        (_, message) => this.#publish(message),
      );
    } catch (err) {
      await this.runInMailbox(() => {
        if (this.#status !== JobStatus.CREATED && this.#status !== JobStatus.RESTARTING) return;
        this.#error = { message: err instanceof Error ? err.message : String(err) };
        this.#terminate(JobStatus.FAILED);
      }).catch(() => undefined);
      return;
    }
    await this.runInMailbox(() => this.#deployAll(slots)).catch(() => this.#rm.releaseSlots(this.jobId));
  }

  #deployAll(slots: SlotAssignment[]): void {
    if (this.#status !== JobStatus.CREATED && this.#status !== JobStatus.RESTARTING) {
      void this.#rm.releaseSlots(this.jobId);
      return;
    }
    this.#setStatus(JobStatus.RUNNING);
    this.#slots = slots;
    for (const e of this.#executions) {
      const slot = slots[e.index]!;
      e.taskManagerId = slot.taskManagerId;
      e.slotIndex = slot.slotIndex;
      e.state = TaskState.DEPLOYING;
      const vertex = this.#graph.vertices.find((v) => v.id === e.vertexId)!;
      const request: DeployRequest = {
        task: { jobId: this.jobId, vertexId: e.vertexId, subtaskIndex: e.index, attempt: e.attempt },
        vertexName: vertex.name,
        parallelism: vertex.parallelism,
        slotIndex: slot.slotIndex,
        operator: vertex.operator,
        ...(vertex.operator.kind === 'chain' ? { stream: this.#streamDescriptor(vertex.id) } : {}),
      };
      this.ctx.rpc
        .ask(
          `${this.#subjects.taskExecutor(slot.taskManagerId)}.deploy`,
          'deploy',
          request,
          this.#options.epoch === undefined ? {} : { epoch: this.#options.epoch },
        )
        .catch((err: unknown) =>
          this.runInMailbox(() => {
            if (e.state !== TaskState.DEPLOYING) return;
            const message = `deployment to TaskManager ${slot.taskManagerId} failed: ${isSluiceError(err) ? err.message : String(err)}`;
            this.#onExecutionEnded(e, TaskState.FAILED, { message, location: this.#taskLocation(e) });
          }),
        )
        .catch(() => undefined);
    }
  }

  /** The latest usable checkpoint, else the savepoint the job was started from, else nothing. */
  async #findRestore(coordinator: CheckpointCoordinator): Promise<RestoreSpec | undefined> {
    const latest = await coordinator.latestRestore();
    if (latest) {
      this.log.info(
        { checkpointId: latest.checkpointId },
        `restoring from checkpoint ${latest.checkpointId}`,
      );
      return latest;
    }
    const savepoint = this.#graph.savepoint;
    if (!savepoint) return undefined;
    const { restore } = await coordinator.savepointRestore(savepoint.path);
    const uids = new Set(
      this.#graph.vertices.flatMap((v) =>
        v.operator.kind === 'chain' ? v.operator.operators.map((o) => o.uid) : [],
      ),
    );
    const missing = [
      ...new Set(
        restore.handles.flatMap((h) => h.operators.map((o) => o.uid)).filter((uid) => !uids.has(uid)),
      ),
    ];
    if (missing.length > 0 && !savepoint.allowNonRestoredState) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `savepoint '${savepoint.path}' has state for operators this job does not have (${missing.join(', ')}); is it a savepoint of another job? Pass --allow-non-restored-state to skip that state`,
      );
    }
    this.log.info(
      { savepoint: savepoint.path, skipped: missing },
      `restoring from savepoint ${savepoint.path}`,
    );
    return restore;
  }

  /** The current attempt's subtasks when every one of them runs (the coordinator triggers only then). */
  #runningTasks() {
    if (this.#status !== JobStatus.RUNNING) return undefined;
    if (!this.#executions.every((e) => e.state === TaskState.RUNNING && e.taskManagerId !== null))
      return undefined;
    const sources = new Set(
      this.#graph.vertices.filter((v) => !this.#graph.edges.some((e) => e.target === v.id)).map((v) => v.id),
    );
    return {
      attempt: this.#attempt,
      all: this.#executions.map((e) => ({
        task: { jobId: this.jobId, vertexId: e.vertexId, subtaskIndex: e.index, attempt: e.attempt },
        taskManagerId: e.taskManagerId!,
        source: sources.has(e.vertexId),
      })),
    };
  }

  #tellTaskExecutor(taskManagerId: string, type: 'trigger' | 'complete', body: unknown): void {
    const epoch = this.#options.epoch;
    try {
      this.ctx.rpc.tell(
        `${this.#subjects.taskExecutor(taskManagerId)}.${type}`,
        type,
        body,
        epoch === undefined ? {} : { epoch },
      );
    } catch (err) {
      this.log.warn({ err, taskManagerId, type }, 'could not reach a TaskExecutor');
    }
  }

  /** A vertex's channels: its incoming and outgoing edges with the parallelism on the other side. */
  #streamDescriptor(vertexId: string): NonNullable<DeployRequest['stream']> {
    const parallelismOf = (id: string) => this.#graph.vertices.find((v) => v.id === id)!.parallelism;
    return {
      attempt: this.#attempt,
      inputs: this.#graph.edges
        .filter((edge) => edge.target === vertexId)
        .map((edge, inputIndex) => ({
          edgeId: edge.id,
          sourceParallelism: parallelismOf(edge.source),
          inputIndex,
        })),
      outputs: this.#graph.edges
        .filter((edge) => edge.source === vertexId)
        .map((edge) => ({ edgeId: edge.id, targetParallelism: parallelismOf(edge.target) })),
      bufferTimeoutMs: this.#graph.bufferTimeoutMs,
      ...(this.#graph.program ? { program: this.#graph.program } : {}),
      ...(this.#coordinator && this.#coordinator.config.intervalMs > 0
        ? { checkpointing: { mode: this.#coordinator.config.mode } }
        : {}),
      ...(this.#restore ? { restore: this.#restoreFor(vertexId) } : {}),
    };
  }

  /** The handles holding state of a vertex's operators. */
  #restoreFor(vertexId: string): RestoreSpec {
    const restore = this.#restore!;
    const vertex = this.#graph.vertices.find((v) => v.id === vertexId)!;
    const uids = new Set(vertex.operator.kind === 'chain' ? vertex.operator.operators.map((o) => o.uid) : []);
    return {
      checkpointId: restore.checkpointId,
      handles: restore.handles.filter((h) => h.object !== null && h.operators.some((o) => uids.has(o.uid))),
    };
  }

  #onTaskState(update: TaskStateUpdate): void {
    const { task } = update;
    const e = this.#execution(task);
    if (!e || e.attempt !== task.attempt || e.taskManagerId !== update.taskManagerId) {
      this.log.debug({ task, from: update.taskManagerId }, 'state update for an unknown or old attempt');
      return;
    }
    if (isTerminalTaskState(e.state)) return;
    if (update.accumulators) e.accumulators = update.accumulators;
    if (isTerminalTaskState(update.state)) {
      this.#onExecutionEnded(e, update.state, update.error);
    } else {
      e.state = update.state;
      if (
        update.state === TaskState.RUNNING &&
        this.#status === JobStatus.RUNNING &&
        this.#executions.every((x) => x.state === TaskState.RUNNING)
      ) {
        this.#publish(ALL_TASKS_RUNNING);
        this.#coordinator?.startPeriodic();
        const rescale = this.#rescale;
        if (rescale?.phase === 'deploying') this.#completeRescale(rescale);
        this.#reactiveCheck();
      }
    }
  }

  #onExecutionEnded(e: Execution, reported: TaskState, reportedError?: ErrorInfo): void {
    // A task may only end CANCELED when this JobMaster cancelled it; otherwise its job lost it.
    const unexpected =
      reported === TaskState.CANCELED &&
      (this.#status === JobStatus.RUNNING || this.#status === JobStatus.CREATED);
    const state = unexpected ? TaskState.FAILED : reported;
    const error = unexpected
      ? { message: `task ${this.#taskLocation(e)} was cancelled without the JobMaster asking` }
      : reportedError;
    e.state = state;
    if (
      state === TaskState.FAILED &&
      (this.#status === JobStatus.RUNNING || this.#status === JobStatus.CREATED)
    ) {
      this.#error = error ?? { message: `task ${this.#taskLocation(e)} failed` };
      this.log.warn(
        { error: this.#error.message, location: this.#error.location },
        'task failed; failing the job',
      );
      this.#stopTasks(JobStatus.FAILING, JobStatus.FAILED);
    }
    this.#maybeTerminate();
  }

  /** Moves to FAILING/CANCELLING and cancels every task that still runs; ends at `target`. */
  #stopTasks(transitional: JobStatus, target: JobStatus): void {
    this.#target = target;
    if (this.#rescale) {
      this.#failRescale(
        this.#rescale,
        new SluiceError(
          ErrorCode.IllegalState,
          `job ${this.jobId} is ${transitional} (${this.#error?.message ?? 'cancelled'})`,
        ),
      );
    }
    if (this.#status === JobStatus.CREATED || this.#status === JobStatus.RESTARTING) {
      // Waiting for slots or for a restart: nothing is deployed.
      this.#terminate(target);
      return;
    }
    this.#setStatus(transitional);
    this.#coordinator?.pause(`job ${transitional}`);
    for (const tm of this.#taskManagersInUse()) this.#tellCancel(tm);
    this.#cancelTimer = setTimeout(() => {
      void this.runInMailbox(() => {
        if (isTerminalJobStatus(this.#status)) return;
        const stuck = this.#executions.filter((x) => !isTerminalTaskState(x.state));
        this.log.warn(
          { tasks: stuck.map((x) => this.#taskLocation(x)) },
          `tasks did not stop within ${this.#options.cancelTimeoutMs} ms; giving up on them`,
        );
        for (const x of stuck) x.state = TaskState.CANCELED;
        this.#maybeTerminate();
      }).catch(() => undefined);
    }, this.#options.cancelTimeoutMs);
    this.#maybeTerminate();
  }

  #maybeTerminate(): void {
    if (isTerminalJobStatus(this.#status) || this.#status === JobStatus.RESTARTING) return;
    if (!this.#executions.every((e) => isTerminalTaskState(e.state))) return;
    if (this.#target === JobStatus.FAILED) {
      this.#failOrRestart();
    } else if (this.#target) {
      this.#terminate(this.#target);
    } else if (this.#executions.every((e) => e.state === TaskState.FINISHED)) {
      this.#terminate(JobStatus.FINISHED);
    } else {
      this.#terminate(JobStatus.CANCELED);
    }
  }

  /** Every task is down after a failure: the restart strategy decides between a restart and FAILED. */
  #failOrRestart(): void {
    clearTimeout(this.#cancelTimer);
    const delay = this.#options.restartStrategy.onFailure(Date.now());
    if (delay === undefined) {
      if (this.#restarts > 0) {
        this.log.warn({ strategy: this.#options.restartStrategy.describe() }, 'restart strategy gave up');
      }
      this.#terminate(JobStatus.FAILED);
      return;
    }
    this.#target = undefined;
    const message = `restarting in ${delay} ms after: ${this.#error?.message ?? 'a failure'} (${this.#options.restartStrategy.describe()})`;
    this.log.info({ delayMs: delay, attempt: this.#attempt + 1 }, message);
    this.#status = JobStatus.RESTARTING;
    this.#publish(message);
    void this.#rm.releaseSlots(this.jobId).catch(() => undefined);
    this.#restartTimer = setTimeout(() => {
      void this.runInMailbox(() => this.#restart()).catch(() => undefined);
    }, delay);
  }

  #restart(): void {
    if (this.#status !== JobStatus.RESTARTING) return;
    this.#attempt++;
    this.#restarts++;
    this.#reconciler.reset();
    for (const e of this.#executions) {
      e.attempt = this.#attempt;
      e.state = TaskState.SCHEDULED;
      e.taskManagerId = null;
      e.slotIndex = -1;
      e.accumulators = {};
    }
    void this.#schedule();
  }

  /**
   * Resolves once the job reached a terminal status and its JobMaster finished cleaning up (slots released,
   * a finished job's checkpoints deleted) and stopped. The JobManager waits for it before closing its
   * connection, so that cleanup never runs on a draining connection.
   */
  get terminated(): Promise<void> {
    return this.#terminated;
  }

  #markTerminated: () => void = () => undefined;
  readonly #terminated = new Promise<void>((resolve) => {
    this.#markTerminated = resolve;
  });

  #terminate(status: JobStatus): void {
    if (this.#rescale) {
      this.#failRescale(
        this.#rescale,
        new SluiceError(ErrorCode.IllegalState, `job ${this.jobId} ended ${status}`),
      );
    }
    clearTimeout(this.#reactiveTimer);
    this.#unsubscribeSlots?.();
    clearTimeout(this.#cancelTimer);
    clearInterval(this.#silenceTimer);
    clearTimeout(this.#restartTimer);
    this.#coordinator?.shutdown(`job ${status}`);
    // A finished or cancelled job's checkpoints are deleted (a failed or suspended job's are kept).
    const discard = (): Promise<void> | undefined =>
      status === JobStatus.FINISHED || status === JobStatus.CANCELED
        ? this.#coordinator?.discardAll()
        : undefined;
    this.#endTime = Date.now();
    this.#setStatus(status);
    this.log.info(
      { status, durationMs: this.#endTime - this.#startTime, accumulators: this.#accumulators() },
      'job ended',
    );
    void this.#rm
      .releaseSlots(this.jobId)
      .catch(() => undefined)
      // A stop-with-savepoint's commit may still be under way when the last task finished.
      .then(() => this.#coordinator?.settle())
      .then(discard)
      .then(() => this.stop())
      .catch((err: unknown) => this.log.error({ err }, 'JobMaster did not stop cleanly'))
      .finally(() => {
        this.#markTerminated();
        this.#options.onTerminated(this);
      });
  }

  #setStatus(status: JobStatus): void {
    if (this.#status === status) return;
    this.log.info({ from: this.#status, to: status }, `job ${status}`);
    this.#status = status;
    this.#publish();
  }

  #publish(message?: string): void {
    const event: JobEvent = {
      jobId: this.jobId,
      name: this.#graph.name,
      status: this.#status,
      timestamp: Date.now(),
      error: this.#error,
      accumulators: this.#accumulators(),
      ...(message === undefined ? {} : { message }),
    };
    try {
      this.ctx.rpc.tell(this.#subjects.jobEvents(this.jobId), 'job-status', event);
    } catch (err) {
      this.log.error({ err }, 'could not publish job event');
    }
  }

  /**
   * Accumulators summed over subtasks (of one vertex, or of the whole job); a vertex's `… watermark` is the
   * minimum instead (the event time every subtask has reached).
   */
  #accumulators(vertexId?: string): Record<string, number> {
    const total: Record<string, number> = {};
    for (const e of this.#executions) {
      if (vertexId !== undefined && e.vertexId !== vertexId) continue;
      for (const [k, v] of Object.entries(e.accumulators)) {
        if (k.endsWith(` ${WATERMARK}`)) total[k] = Math.min(total[k] ?? Number.POSITIVE_INFINITY, v);
        else total[k] = (total[k] ?? 0) + v;
      }
    }
    return total;
  }

  #tellCancel(taskManagerId: string): void {
    const epoch = this.#options.epoch;
    this.ctx.rpc.tell(
      `${this.#subjects.taskExecutor(taskManagerId)}.cancel`,
      'cancel',
      { jobId: this.jobId },
      epoch === undefined ? {} : { epoch },
    );
  }

  #taskManagersInUse(): Set<string> {
    const tms = new Set<string>();
    for (const e of this.#executions) {
      if (e.taskManagerId && !isTerminalTaskState(e.state)) tms.add(e.taskManagerId);
    }
    return tms;
  }

  #taskLocation(e: Execution): string {
    const vertex = this.#graph.vertices.find((v) => v.id === e.vertexId)!;
    const name = taskName(
      { jobId: this.jobId, vertexId: e.vertexId, subtaskIndex: e.index, attempt: e.attempt },
      vertex.name,
      vertex.parallelism,
    );
    return e.taskManagerId ? `${name} on ${e.taskManagerId}` : name;
  }
}
