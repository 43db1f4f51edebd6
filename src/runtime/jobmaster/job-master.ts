/**
 * The JobMaster actor: one per job, on `jm.<jobId>`. A thin shell around the job's {@link ExecutionGraph}
 * (states and legal transitions as data, execution-graph.ts) and its {@link Scheduler} (failover and
 * restart decisions, scheduler.ts): it receives the TaskExecutors' reports and hands them on, gets slots
 * from the ResourceManager and deploys each subtask to the TaskExecutor owning its slot, runs the job's
 * checkpoint coordinator, and publishes every job status change on `events.job.<jobId>`.
 *
 * Refuses (drops) reports of another leader epoch and, while this JobManager no longer leads, anything
 * that would fail, restart or checkpoint the job.
 *
 * Rescales go through its {@link RescaleCoordinator} (rescale-coordinator.ts), which this actor hosts; in
 * reactive mode a {@link ReactiveScaler} (reactive-mode.ts) sizes the job to its slots.
 *
 * Size (~590 lines): the actor's wiring of five collaborators (execution graph, scheduler, reconciler,
 * checkpoint coordinator, rescales) plus deployment and the read-only views (summary, details, rescale
 * history). The next split would move deployment (#schedule / #deployAll) next to task-deployment.ts.
 */

import { randomBytes } from 'node:crypto';
import { Actor, type ActorContext } from '../../actors/actor.js';
import { fencedGateway } from '../../actors/protocol.js';
import type { Subjects } from '../../actors/subjects.js';
import { JobStatus, TaskState } from '../../api/job-status.js';
import { ErrorCode, isSluiceError, SluiceError } from '../../common/errors.js';
import type { JobId } from '../../common/ids.js';
import type { CheckpointingConfig } from '../../config/checkpointing-config.js';
import { type Clock, systemClock } from '../../ha/clock.js';
import { type JobGraph, requiredSlots } from '../../jobgraph/job-graph.js';
import {
  CheckpointCoordinator,
  type CheckpointStats,
  type TaskExecutorCheckpointMessage,
} from '../checkpoint/checkpoint-coordinator.js';
import type { CheckpointMetadata, RestoreSpec } from '../checkpoint/protocol.js';
import type { StateStore } from '../checkpoint/state-store.js';
import type { JobDetails, JobEvent, JobSummary } from '../dispatcher/protocol.js';
import type { ResourceManager, SlotAssignment } from '../resourcemanager/resource-manager.js';
import { type DeployRequest, TaskExecutorProtocol, type TaskId } from '../taskexecutor/protocol.js';
import { ExecutionGraph } from './execution-graph.js';
import { ExecutionReconciler } from './execution-reconciler.js';
import { placeForLocalRecovery } from './local-placement.js';
import { JobMasterProtocol } from './protocol.js';
import { type ReactiveModeOptions, ReactiveScaler, sameParallelism } from './reactive-mode.js';
import {
  describeRescale,
  type RescaleRecord,
  type RescaleRequest,
  type RescaleResult,
  type Rescaler,
  type VertexParallelism,
} from './rescale.js';
import { RescaleCoordinator } from './rescale-coordinator.js';
import type { RestartStrategy } from './restart-strategy.js';
import { ALL_TASKS_RUNNING, Scheduler } from './scheduler.js';
import { findRestore, streamDescriptor } from './task-deployment.js';

export { ALL_TASKS_RUNNING };

export interface JobMasterOptions {
  slotRequestTimeoutMs: number;
  /** How long cancelling tasks may take before they are given up on. */
  cancelTimeoutMs: number;
  /** Called once, after the job reached a terminal status and the JobMaster stopped. */
  onTerminated: (jobMaster: JobMaster) => void;
  /**
   * A rescale ended and left the job at this graph (the new parallelism, or the old one when it failed):
   * HA stores it, so that a new leader recovers the job at the parallelism it last ran with.
   */
  onRescaled?: ((graph: JobGraph) => void) | undefined;
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
   * `heartbeat.timeout`: a TaskExecutor holding executions of the job that sends no report for it for
   * this long plus one interval (at least 3 intervals) has lost them (it restarted under the same id).
   * The extra interval leaves a TaskManager that went silent altogether to the ResourceManager's check
   * (`heartbeat.timeout`), which also takes its slots out of the table. Default 5000.
   */
  heartbeatTimeoutMs?: number | undefined;
  /** Time for failover decisions (restart delays, cancel timeouts, reconciliation). Default: the system's. */
  clock?: Clock | undefined;
  /** `scheduler-mode: reactive`: the job uses every slot it can have and follows TaskManagers. */
  reactive?: ReactiveModeOptions | undefined;
}

export class JobMaster extends Actor implements Rescaler {
  readonly #subjects: Subjects;
  readonly #rm: ResourceManager;
  readonly #options: JobMasterOptions;
  readonly #executionGraph: ExecutionGraph;
  readonly #scheduler: Scheduler;
  readonly #coordinator: CheckpointCoordinator | undefined;
  /** What the current attempt's tasks restore from. */
  #restore: RestoreSpec | undefined;
  readonly #silenceTimer: NodeJS.Timeout;
  readonly #reconciler: ExecutionReconciler;
  readonly #rescales: RescaleCoordinator;
  readonly #reactive: ReactiveScaler | undefined;
  /** The slots the current attempt was deployed to. */
  #slots: SlotAssignment[] = [];
  /** A rescale's new subtasks go where their state was stored (local-placement.ts). */
  #rescalePlacement: ((slots: SlotAssignment[]) => SlotAssignment[]) | undefined;

  constructor(
    ctx: ActorContext,
    subjects: Subjects,
    rm: ResourceManager,
    graph: JobGraph,
    options: JobMasterOptions,
  ) {
    super(ctx, 'JobMaster', subjects.jobMaster(graph.jobId), { job: graph.jobId });
    this.#subjects = subjects;
    this.#rm = rm;
    this.#options = options;
    const clock = options.clock ?? systemClock;
    const heartbeatMs = options.heartbeatIntervalMs ?? 1_000;
    this.#executionGraph = new ExecutionGraph(graph, { log: this.log });
    this.#reconciler = new ExecutionReconciler({
      jobId: graph.jobId,
      clock,
      graceMs: heartbeatMs,
      silenceMs: Math.max(3 * heartbeatMs, (options.heartbeatTimeoutMs ?? 5_000) + heartbeatMs),
      epoch: options.epoch,
    });
    this.#scheduler = new Scheduler({
      graph: this.#executionGraph,
      reconciler: this.#reconciler,
      restartStrategy: options.restartStrategy,
      clock,
      log: this.log,
      cancelTimeoutMs: options.cancelTimeoutMs,
      epoch: options.epoch,
      actions: {
        cancelTasksOn: (tm) => this.#tellCancel(tm),
        cancelExecutions: (tm, tasks) => this.#tellCancelExecutions(tm, tasks),
        publish: (message) => this.#publish(message),
        allRunning: () => {
          this.#coordinator?.startPeriodic();
          this.#rescales.onAllRunning();
          this.#reactive?.check();
        },
        stopping: (status) => {
          this.#coordinator?.pause(`job ${status}`);
          this.#rescales.onJobStopping(status, this.#scheduler.error?.message);
        },
        releaseSlots: () => void this.#rm.releaseSlots(this.jobId).catch(() => undefined),
        scheduleAttempt: () => void this.#schedule(),
        terminated: (status) => {
          this.#rescales.onJobStopping(status, this.#scheduler.error?.message);
          this.#reactive?.close();
          this.#terminated(status);
        },
        inMailbox: (fn) => void this.runInMailbox(fn).catch(() => undefined),
        leading: () => this.#leading(),
      },
    });
    this.#silenceTimer = setInterval(() => {
      void this.runInMailbox(() => this.#scheduler.checkSilence()).catch(() => undefined);
    }, heartbeatMs);
    this.#silenceTimer.unref?.();
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
          tellTaskExecutor: (tm, ...message) => this.#tellTaskExecutor(tm, ...message),
          runInMailbox: (fn) => this.runInMailbox(fn),
        })
      : undefined;
    // Reports of tasks a former leader deployed (another epoch) are dropped by the fence, before these.
    this.serve(
      JobMasterProtocol,
      {
        'task-state': (update) => {
          if (this.#leading()) this.#scheduler.onTaskState(update);
        },
        'task-progress': (p) => this.#scheduler.onTaskProgress(p.task, p.taskManagerId, p.accumulators),
        ack: (ack) => {
          if (this.#leading()) this.#coordinator?.onAck(ack);
        },
        decline: (decline) => {
          if (!this.#leading()) return;
          this.#coordinator?.onDecline(decline);
          if (decline.taskGone) this.#scheduler.onTaskGone(decline.task, decline.taskManagerId);
        },
        // Validated by the reconciler: a bad one changes nothing and counts in stats.dropped.
        executions: (body) => {
          if (!this.#scheduler.onExecutionReport(body)) this.countDropped(ErrorCode.InvalidMessage);
        },
      },
      { own: options.epoch },
    );
    this.#rescales = new RescaleCoordinator({
      jobId: graph.jobId,
      log: this.log,
      rm,
      coordinator: this.#coordinator,
      slotRequestTimeoutMs: options.slotRequestTimeoutMs,
      jobGraph: () => this.graph,
      status: () => this.status,
      allRunning: () => this.#executionGraph.allInState(TaskState.RUNNING),
      slots: () => this.#slots,
      startNewAttempt: (target, restore, message) => {
        // Where the old subtasks ran (subtask i of every vertex in slot i): they stored the state the new
        // ones restore, and their TaskManagers keep a copy of it (local recovery).
        const oldSlots = [...this.#slots];
        this.#rescalePlacement = (slots) =>
          placeForLocalRecovery(
            slots,
            this.graph,
            restore,
            (_, subtaskIndex) => oldSlots[subtaskIndex]?.taskManagerId,
          );
        if (!this.#scheduler.rescaling(message)) return false;
        this.#executionGraph.rescale(withParallelism(this.graph, target), true);
        this.#reconciler.reset();
        this.#restore = restore;
        return true;
      },
      deploy: (slots) => this.#deployAll(this.#rescalePlacement?.(slots) ?? slots),
      newAttemptFailed: (message, fallback) => {
        if (!this.#reactive) this.#executionGraph.rescale(withParallelism(this.graph, fallback), false);
        this.#scheduler.rescaleFailed(message);
      },
      publish: (message) => this.#publish(message),
      runInMailbox: (fn) => this.runInMailbox(fn),
      onRescaleEnded: () => {
        options.onRescaled?.(this.graph);
        this.#reactive?.policy.rescaled();
        this.#reactive?.check();
      },
    });
    this.#reactive = options.reactive
      ? new ReactiveScaler(
          {
            jobId: graph.jobId,
            log: this.log,
            rm,
            rescaler: this,
            jobGraph: () => this.graph,
            status: () => this.status,
            steady: () => this.#executionGraph.allInState(TaskState.RUNNING) && !this.#rescales.inProgress,
            leading: () => this.#leading(),
            runInMailbox: (fn) => this.runInMailbox(fn),
          },
          options.reactive,
          clock,
        )
      : undefined;
  }

  get jobId(): JobId {
    return this.#executionGraph.jobId;
  }

  /** The job graph of the current attempt (a rescale replaces it). */
  get graph(): JobGraph {
    return this.#executionGraph.jobGraph;
  }

  /** Rescales the running job (contract in rescale.ts); resolves once every new task runs. */
  rescale(request: RescaleRequest): Promise<RescaleResult> {
    return this.runInMailbox(() => ({ done: this.#rescales.rescale(request) })).then(({ done }) => done);
  }

  currentParallelism(): VertexParallelism {
    return this.#rescales.currentParallelism();
  }

  maxParallelism(): VertexParallelism {
    return this.#rescales.maxParallelism();
  }

  /** The rescale under way (if any) and the last ones, oldest first. */
  rescaleHistory(): RescaleRecord[] {
    return this.#rescales.history();
  }

  get status(): JobStatus {
    return this.#executionGraph.status;
  }

  override start(): void {
    super.start();
    this.#publish();
    void this.#schedule();
  }

  /** Cancels the job; resolves with the status it is in afterwards (CANCELLING or terminal). */
  cancel(): Promise<JobStatus> {
    return this.runInMailbox(() => this.#scheduler.cancel());
  }

  /** The JobManager is going away: stop the tasks and end the job SUSPENDED. */
  suspend(reason: string): Promise<void> {
    return this.runInMailbox(() => this.#scheduler.suspend(reason)).catch(() => undefined);
  }

  /** The ResourceManager lost a TaskManager that held slots of this job. */
  taskManagerLost(taskManagerId: string, reason: string): void {
    void this.runInMailbox(() => this.#scheduler.onTaskManagerLost(taskManagerId, reason)).catch(
      () => undefined,
    );
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
      if (this.status !== JobStatus.RUNNING) {
        throw new SluiceError(ErrorCode.IllegalState, `job ${this.jobId} is ${this.status}, not RUNNING`);
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

  summary(): JobSummary {
    const g = this.#executionGraph;
    const end = g.endTime ?? Date.now();
    return {
      jobId: this.jobId,
      name: this.graph.name,
      status: g.status,
      parallelism: requiredSlots(this.graph),
      startTime: g.startTime,
      endTime: g.endTime,
      durationMs: end - g.startTime,
      applicationId: this.graph.applicationId ?? null,
    };
  }

  details(): JobDetails {
    const g = this.#executionGraph;
    return {
      ...this.summary(),
      vertices: this.graph.vertices.map((v) => ({
        id: v.id,
        name: v.name,
        parallelism: v.parallelism,
        subtasks: g.executions
          .filter((e) => e.vertexId === v.id)
          .map((e) => ({
            index: e.index,
            state: e.state,
            attempt: e.attempt,
            taskManagerId: e.taskManagerId,
          })),
        accumulators: g.accumulators(v.id),
      })),
      edges: this.graph.edges.map((e) => ({
        source: e.source,
        target: e.target,
        partitioner: e.partitioner,
      })),
      error: this.#scheduler.error,
      accumulators: g.accumulators(),
      restarts: g.restarts,
    };
  }

  /**
   * Resolves once the job reached a terminal status and its JobMaster finished cleaning up (slots released,
   * a finished job's checkpoints deleted) and stopped. The JobManager waits for it before closing its
   * connection, so that cleanup never runs on a draining connection.
   */
  get terminated(): Promise<void> {
    return this.#terminatedPromise;
  }

  #markTerminated: () => void = () => undefined;
  readonly #terminatedPromise = new Promise<void>((resolve) => {
    this.#markTerminated = resolve;
  });

  #leading(): boolean {
    return this.#options.stillLeading?.() ?? true;
  }

  /** Restores state (if the job checkpoints), gets slots and deploys the current attempt. */
  async #schedule(): Promise<void> {
    const scheduler = this.#scheduler;
    if (this.#coordinator) {
      try {
        const restore = await findRestore(this.graph, this.#coordinator, this.log);
        // Suspended or cancelled meanwhile (e.g. leadership lost during the read): nothing to start.
        if (!scheduler.awaitingDeployment) return;
        this.#restore = restore;
      } catch (err) {
        await this.runInMailbox(() => {
          if (!scheduler.awaitingDeployment) return;
          this.log.error({ err }, "cannot restore the job's state");
          scheduler.schedulingFailed(err instanceof Error ? err.message : String(err));
        }).catch(() => undefined);
        return;
      }
    }
    if (this.#reactive) {
      // Reactive mode: the job starts (or restarts) at the parallelism the slots it can have allow.
      const { available, target } = await this.#reactive.sizeForDeployment();
      await this.runInMailbox(() => {
        const current = this.#rescales.currentParallelism();
        if (!scheduler.awaitingDeployment || sameParallelism(target, current)) return;
        this.log.info(
          { available, target },
          `reactive mode: ${describeRescale(current, target)} (${available} slots available)`,
        );
        this.#executionGraph.rescale(withParallelism(this.graph, target), false);
      });
    }
    let slots: SlotAssignment[];
    try {
      slots = await this.#rm.requestSlots(
        this.jobId,
        requiredSlots(this.graph),
        this.#options.slotRequestTimeoutMs,
        (_, message) => this.#publish(message),
      );
    } catch (err) {
      await this.runInMailbox(() =>
        scheduler.schedulingFailed(err instanceof Error ? err.message : String(err)),
      ).catch(() => undefined);
      return;
    }
    await this.runInMailbox(() => this.#deployAll(slots)).catch(() => this.#rm.releaseSlots(this.jobId));
  }

  #deployAll(slots: SlotAssignment[]): void {
    const executions = this.#scheduler.deploy(slots);
    if (!executions) {
      void this.#rm.releaseSlots(this.jobId);
      return;
    }
    this.#slots = slots;
    const g = this.#executionGraph;
    const checkpointing =
      this.#coordinator && this.#coordinator.config.intervalMs > 0
        ? this.#coordinator.config.mode
        : undefined;
    for (const e of executions) {
      const vertex = this.graph.vertices.find((v) => v.id === e.vertexId)!;
      const request: DeployRequest = {
        task: g.taskId(e),
        vertexName: vertex.name,
        parallelism: vertex.parallelism,
        slotIndex: e.slotIndex,
        operator: vertex.operator,
        ...(vertex.operator.kind === 'chain'
          ? { stream: streamDescriptor(this.graph, vertex.id, g.attempt, checkpointing, this.#restore) }
          : {}),
      };
      const taskManagerId = e.taskManagerId!;
      this.#taskExecutor(taskManagerId)
        .ask('deploy', request)
        .catch((err: unknown) =>
          this.runInMailbox(() =>
            this.#scheduler.deployFailed(
              e,
              `deployment to TaskManager ${taskManagerId} failed: ${isSluiceError(err) ? err.message : String(err)}`,
            ),
          ),
        )
        .catch(() => undefined);
    }
  }

  /** The current attempt's subtasks when every one of them runs (the coordinator triggers only then). */
  #runningTasks() {
    const g = this.#executionGraph;
    if (g.status !== JobStatus.RUNNING) return undefined;
    if (!g.executions.every((e) => e.state === 'RUNNING' && e.taskManagerId !== null)) return undefined;
    const sources = new Set(
      this.graph.vertices.filter((v) => !this.graph.edges.some((e) => e.target === v.id)).map((v) => v.id),
    );
    return {
      attempt: g.attempt,
      all: g.executions.map((e) => ({
        task: g.taskId(e),
        taskManagerId: e.taskManagerId!,
        source: sources.has(e.vertexId),
      })),
    };
  }

  /** The job reached a terminal status: release its slots, settle its checkpoints, stop. */
  #terminated(status: JobStatus): void {
    clearInterval(this.#silenceTimer);
    this.#coordinator?.shutdown(`job ${status}`);
    const g = this.#executionGraph;
    // A finished or cancelled job's checkpoints are deleted (a failed or suspended job's are kept).
    const discard = (): Promise<void> | undefined =>
      status === JobStatus.FINISHED || status === JobStatus.CANCELED
        ? this.#coordinator?.discardAll()
        : undefined;
    this.log.info(
      { status, durationMs: (g.endTime ?? Date.now()) - g.startTime, accumulators: g.accumulators() },
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

  #publish(message?: string): void {
    const g = this.#executionGraph;
    const event: JobEvent = {
      jobId: this.jobId,
      name: this.graph.name,
      status: g.status,
      timestamp: Date.now(),
      error: this.#scheduler?.error ?? null,
      accumulators: g.accumulators(),
      ...(message === undefined ? {} : { message }),
    };
    try {
      this.ctx.rpc.tell(this.#subjects.jobEvents(this.jobId), 'job-status', event);
    } catch (err) {
      this.log.error({ err }, 'could not publish job event');
    }
  }

  /** The gateway to a TaskExecutor: every command carries this JobManager's leader epoch (HA). */
  #taskExecutor(taskManagerId: string) {
    return fencedGateway(
      this.ctx.rpc,
      this.#subjects,
      this.#options.epoch,
      TaskExecutorProtocol,
      taskManagerId,
    );
  }

  #tellTaskExecutor(taskManagerId: string, ...message: TaskExecutorCheckpointMessage): void {
    try {
      if (message[0] === 'trigger') this.#taskExecutor(taskManagerId).tell('trigger', message[1]);
      else this.#taskExecutor(taskManagerId).tell('complete', message[1]);
    } catch (err) {
      this.log.warn({ err, taskManagerId, type: message[0] }, 'could not reach a TaskExecutor');
    }
  }

  #tellCancel(taskManagerId: string): void {
    this.#taskExecutor(taskManagerId).tell('cancel', { jobId: this.jobId });
  }

  #tellCancelExecutions(taskManagerId: string, tasks: TaskId[]): void {
    try {
      this.#taskExecutor(taskManagerId).tell('cancel-executions', { tasks });
    } catch (err) {
      this.log.debug({ err }, 'cancel-executions not sent');
    }
  }
}

/** The job graph with each vertex at `target`'s parallelism (vertices not named keep theirs). */
function withParallelism(graph: JobGraph, target: VertexParallelism): JobGraph {
  return {
    ...graph,
    vertices: graph.vertices.map((v) => ({ ...v, parallelism: target[v.id] ?? v.parallelism })),
  };
}
