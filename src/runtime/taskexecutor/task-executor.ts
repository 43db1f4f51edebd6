/**
 * The TaskExecutor: offers a TaskManager's slots to the ResourceManager, runs the subtasks JobMasters
 * deploy into them, and reports every task state change to the task's JobMaster.
 *
 * It registers with the ResourceManager (retrying through "no responders" while no JobManager is up,
 * bounded by `registrationTimeoutMs`), then heartbeats with its slot report. Tasks run off the mailbox;
 * their state changes come back through it. Every heartbeat also tells each job's JobMaster which of its
 * executions this TaskExecutor holds and in which state — the ended ones with their terminal state for
 * {@link REPORTS_AFTER_END} heartbeats — so that a lost task-state tell is reconciled
 * (`jobmaster/execution-reconciler.ts`); the JobMaster answers an execution it does not know with
 * `cancel-executions`.
 *
 * Size: one concept, the TaskExecutor actor (slots, deploy and cancel, state reports, heartbeats with
 * execution reports); running tasks lives in task-runner.ts and slot-workers.ts.
 */
import type { Subscription } from '@nats-io/transport-node';
import { Actor, type ActorContext } from '../../actors/actor.js';
import { type Gateway, gateway } from '../../actors/protocol.js';
import type { Subjects } from '../../actors/subjects.js';
import { TaskState } from '../../api/job-status.js';
import { ErrorCode, isSluiceError, SluiceError } from '../../common/errors.js';
import { EpochFence } from '../../ha/fencing.js';
import type { TaskMetrics } from '../../metrics/task-metrics.js';
import type { LocalRecovery } from '../checkpoint/local-state.js';
import type { CheckpointAck, CheckpointDecline } from '../checkpoint/protocol.js';
import type { StateStore } from '../checkpoint/state-store.js';
import type { ErrorInfo } from '../dispatcher/protocol.js';
import type { ExecutionReport, ReportedExecution } from '../jobmaster/execution-reconciler.js';
import { JobMasterProtocol } from '../jobmaster/protocol.js';
import { ResourceManagerProtocol, type TaskManagerReport } from '../resourcemanager/protocol.js';
import type { TaskControls } from '../task/stream-task.js';
import type { TaskContext } from './builtin-tasks.js';
import type { PlanResolver } from './plan-resolver.js';
import {
  type DeployRequest,
  TaskExecutorProtocol,
  type TaskId,
  type TaskProgress,
  type TaskStateUpdate,
  taskName,
} from './protocol.js';
import type { SlotWorkerPool } from './slot-workers.js';
import { checkTaskRequest, runTask, type TaskLaunch } from './task-runner.js';

export interface TaskExecutorOptions {
  id: string;
  host: string;
  slots: number;
  heartbeatIntervalMs: number;
  /** Give up (and report it) when no ResourceManager answers for this long. */
  registrationTimeoutMs: number;
  /** Called when registration gives up; the process decides what to do (exit). */
  onFatal?: (err: SluiceError) => void;
  /** Finds the plan (user functions) of a program's job. */
  plans: PlanResolver;
  /** The cluster asked this TaskManager to shut down (application and per-job clusters end so). */
  onShutdownRequested?: (reason: string) => void;
  /** Live per-operator counters of the running tasks. */
  metrics?: TaskMetrics;
  /** Where checkpoint state goes (opened on first use). */
  stateStore?: () => Promise<StateStore>;
  /** Local recovery for tasks run on this thread (`taskmanager.slot-isolation: none`); absent when off. */
  localRecovery?: LocalRecovery;
  /**
   * `taskmanager.slot-isolation: thread`: tasks run in their slot's worker thread (which has its own
   * plans, state store and NATS connection); `plans`, `stateStore` and `metrics` then serve nothing here.
   */
  slotWorkers?: SlotWorkerPool;
}

/** An ended execution is reported with its terminal state this many heartbeats after it ended. */
export const REPORTS_AFTER_END = 3;

interface RunningTask {
  id: TaskId;
  /** DEPLOYING until the task runs, then RUNNING (what the heartbeat reports). */
  state: TaskState;
  /** The leader epoch it was deployed under; undefined without HA. */
  epoch: number | undefined;
  name: string;
  /** The task's live counters. */
  accumulators: Record<string, number>;
  slotIndex: number;
  controller: AbortController;
  /** Checkpoint controls of a stream task of a checkpointing job. */
  controls: TaskControls;
  done: Promise<void>;
}

export class TaskExecutor extends Actor {
  readonly #options: TaskExecutorOptions;
  readonly #subjects: Subjects;
  /** slots[i] = job holding slot i, or null. */
  readonly #slots: Array<string | null>;
  readonly #tasks = new Map<string, RunningTask>();
  /** Ended executions still reported (with their terminal state), by task key, with reports left. */
  readonly #ended = new Map<string, { report: ReportedExecution; reportsLeft: number }>();
  #heartbeat: NodeJS.Timeout | undefined;
  #registered = false;
  #heartbeatRequests: Subscription | undefined;
  #stopping = false;
  /**
   * HA fencing: commands carrying an epoch older than the newest seen are refused (LEADERSHIP_LOST); when a
   * newer epoch shows up, the tasks deployed under older ones are cancelled (the new leader redeploys).
   * Commands without an epoch (no HA) are not fenced.
   */
  readonly #resourceManager: Gateway<(typeof ResourceManagerProtocol)['messages']>;
  readonly #fence = new EpochFence({
    onAdvance: (epoch, previous) => {
      const stale = [...this.#tasks.values()].filter((t) => t.epoch !== undefined && t.epoch < epoch);
      this.log.warn(
        { epoch, previous, cancelled: stale.length },
        'a newer JobManager leader took over; cancelling the tasks of older epochs',
      );
      for (const t of stale) t.controller.abort(new Error(`superseded by leader epoch ${epoch}`));
    },
  });

  constructor(ctx: ActorContext, subjects: Subjects, options: TaskExecutorOptions) {
    super(ctx, 'TaskExecutor', subjects.taskExecutor(options.id), { taskManager: options.id });
    this.#options = options;
    this.#subjects = subjects;
    this.#slots = Array.from({ length: options.slots }, () => null);
    this.#resourceManager = gateway(ctx.rpc, subjects, ResourceManagerProtocol);
    // Every command of a JobMaster or ResourceManager is fenced by its leader epoch (declared in the
    // protocol; checked by the actor base with this TaskExecutor's EpochFence before a handler runs).
    this.serve(
      TaskExecutorProtocol,
      {
        deploy: (request, { epoch }) => this.#deploy(request, epoch),
        cancel: ({ jobId }) => this.#cancelJob(jobId, 'cancelled by JobMaster'),
        // Reconciliation: executions this TaskExecutor reported that their JobMaster does not know.
        'cancel-executions': ({ tasks }, { epoch }) => {
          for (const id of tasks) {
            const running = this.#tasks.get(epoch === undefined ? taskKey(id) : `${taskKey(id)}@${epoch}`);
            if (running === undefined) continue;
            this.log.warn({ task: running.name }, 'cancelling a task its JobMaster does not know');
            running.controller.abort(new Error('unknown to its JobMaster'));
          }
        },
        // A new leader's ResourceManager announces its epoch when this TaskManager (re-)registers: the fence
        // advances (cancelling tasks of older epochs); nothing else to do.
        epoch: () => undefined,
        trigger: (trigger, { epoch }) => {
          const key = epoch === undefined ? taskKey(trigger.task) : `${taskKey(trigger.task)}@${epoch}`;
          const running = this.#tasks.get(key);
          const trigger_ = running?.controls.trigger;
          if (trigger_ === undefined) {
            this.#sendDecline({
              task: trigger.task,
              taskManagerId: this.id,
              checkpointId: trigger.checkpointId,
              reason: running ? 'the task is not a running source' : `the task is not running on ${this.id}`,
              ...(running ? {} : { taskGone: true }),
              ...(epoch !== undefined ? { epoch } : {}),
            });
            return;
          }
          trigger_(trigger.checkpointId, trigger.target, trigger.stop);
        },
        complete: ({ jobId, checkpointId }, { epoch }) => {
          for (const task of this.#tasks.values()) {
            if (task.id.jobId === jobId && (epoch === undefined || task.epoch === epoch)) {
              task.controls.complete?.(checkpointId);
            }
          }
        },
        shutdown: ({ reason }) => {
          this.log.info({ reason }, 'shutdown requested by the ResourceManager');
          this.#options.onShutdownRequested?.(reason);
        },
      },
      { require: (epoch) => this.#fence.require(epoch) },
    );
  }

  get id(): string {
    return this.#options.id;
  }

  /** Slots of this TaskManager and how many hold a job. */
  slotUsage(): { total: number; used: number } {
    return { total: this.#slots.length, used: this.#slots.filter((s) => s !== null).length };
  }

  get registered(): boolean {
    return this.#registered;
  }

  override start(): void {
    super.start();
    // A new leader's ResourceManager asks for a heartbeat (at most one every 100 ms is sent for it).
    let last = 0;
    this.#heartbeatRequests = this.ctx.nc.subscribe(this.#subjects.heartbeatRequest, {
      callback: () => {
        const now = Date.now();
        if (!this.#registered || this.#stopping || now - last < 100) return;
        last = now;
        this.#sendHeartbeat();
      },
    });
    void this.#register();
  }

  /**
   * Tells the ResourceManager it is leaving, then cancels running tasks and stops. Unregistering first
   * takes its slots out of the table before its tasks end: a job that fails over because of them cannot
   * be given a slot here again (its deploy would fail and cost a second restart).
   */
  protected override async onStop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#heartbeat);
    this.#heartbeatRequests?.unsubscribe();
    if (this.#registered) {
      this.#resourceManager.tell('unregister', {
        taskManagerId: this.#options.id,
        reason: 'TaskManager shut down',
      });
    }
    const running = [...this.#tasks.values()];
    for (const task of running) task.controller.abort(new Error('TaskManager shutting down'));
    await Promise.allSettled(running.map((t) => t.done));
  }

  #report(): TaskManagerReport {
    return {
      taskManagerId: this.#options.id,
      host: this.#options.host,
      pid: process.pid,
      slots: this.#slots.length,
      slotReport: this.#slots.map((jobId, index) => ({ index, jobId })),
    };
  }

  async #register(): Promise<void> {
    const started = Date.now();
    let delay = 100;
    let lastLog = 0;
    while (!this.#stopping) {
      try {
        await this.#resourceManager.ask('register', this.#report());
        this.#registered = true;
        this.log.info({ slots: this.#slots.length }, 'registered at ResourceManager');
        this.#heartbeat = setInterval(() => this.#sendHeartbeat(), this.#options.heartbeatIntervalMs);
        return;
      } catch (err) {
        if (!isSluiceError(err) || !err.retryable) {
          this.log.error({ err }, 'registration refused');
          this.#options.onFatal?.(
            err instanceof SluiceError ? err : new SluiceError(ErrorCode.Internal, String(err)),
          );
          return;
        }
        const waited = Date.now() - started;
        if (waited > this.#options.registrationTimeoutMs) {
          const error = new SluiceError(
            ErrorCode.Timeout,
            `no ResourceManager answered on ${this.#subjects.resourceManager}.register within ${this.#options.registrationTimeoutMs} ms: is a JobManager running for cluster '${this.ctx.clusterId}'?`,
          );
          this.log.error(error.message);
          this.#options.onFatal?.(error);
          return;
        }
        if (Date.now() - lastLog > 5_000) {
          lastLog = Date.now();
          this.log.info(
            { waitedMs: waited, reason: err.code },
            'waiting for a ResourceManager to register with',
          );
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  #sendHeartbeat(): void {
    this.#sendExecutionReports();
    for (const task of this.#tasks.values()) {
      const progress: TaskProgress = {
        task: task.id,
        taskManagerId: this.id,
        accumulators: { ...task.accumulators },
        ...(task.epoch !== undefined ? { epoch: task.epoch } : {}),
      };
      try {
        this.#jobMaster(task.id.jobId).tell('task-progress', progress, { epoch: task.epoch });
      } catch (err) {
        this.log.debug({ err }, 'progress not sent');
      }
    }
    try {
      this.#resourceManager.tell('heartbeat', this.#report());
    } catch (err) {
      this.log.warn({ err }, 'heartbeat not sent');
    }
  }

  /** One report per job: its executions here (running, and ended ones a few heartbeats more). */
  #sendExecutionReports(): void {
    const byJob = new Map<string, ReportedExecution[]>();
    const add = (jobId: string, execution: ReportedExecution) => {
      const list = byJob.get(jobId) ?? [];
      list.push(execution);
      byJob.set(jobId, list);
    };
    for (const t of this.#tasks.values()) {
      add(t.id.jobId, { task: t.id, state: t.state, ...(t.epoch !== undefined ? { epoch: t.epoch } : {}) });
    }
    for (const [key, ended] of this.#ended) {
      // Not while the task is still in the table (it ended, its slot is being freed).
      if (this.#tasks.has(key)) continue;
      add(ended.report.task.jobId, ended.report);
      if (--ended.reportsLeft <= 0) this.#ended.delete(key);
    }
    for (const [jobId, executions] of byJob) {
      const report: ExecutionReport = { taskManagerId: this.id, jobId, executions };
      try {
        this.#jobMaster(jobId).tell('executions', report);
      } catch (err) {
        this.log.debug({ err, job: jobId }, 'execution report not sent');
      }
    }
  }

  #deploy(request: DeployRequest, epoch: number | undefined): { accepted: true } {
    const { task, slotIndex } = request;
    if (this.#stopping)
      throw new SluiceError(ErrorCode.IllegalState, `TaskManager ${this.id} is shutting down`);
    if (slotIndex >= this.#slots.length) {
      throw new SluiceError(ErrorCode.IllegalState, `TaskManager ${this.id} has no slot ${slotIndex}`);
    }
    const holder = this.#slots[slotIndex];
    if (holder !== null && holder !== task.jobId) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `slot ${slotIndex} of ${this.id} is held by job ${holder}`,
      );
    }
    const controls: TaskControls = {};
    const invoke = this.#invokable(request, epoch, controls);
    // Under HA the same task (job, vertex, subtask, attempt) comes again from a new leader while the old
    // one is still being cancelled: the epoch is part of the key.
    const key = epoch === undefined ? taskKey(task) : `${taskKey(task)}@${epoch}`;
    if (this.#tasks.has(key))
      throw new SluiceError(ErrorCode.IllegalState, `task ${key} is already deployed`);
    this.#slots[slotIndex] = task.jobId;

    const name = taskName(task, request.vertexName, request.parallelism);
    const controller = new AbortController();
    let runningSent = false;
    const ctx: TaskContext = {
      subtaskIndex: task.subtaskIndex,
      parallelism: request.parallelism,
      signal: controller.signal,
      accumulators: {},
      running: () => {
        if (runningSent) return;
        runningSent = true;
        const entry = this.#tasks.get(key);
        if (entry !== undefined) entry.state = TaskState.RUNNING;
        this.#sendState(task, TaskState.RUNNING, epoch !== undefined ? { epoch } : {});
        this.log.child({ job: task.jobId, task: name }).info('task running');
      },
    };
    const log = this.log.child({ job: task.jobId, task: name });
    const done = (async () => {
      const send = (state: TaskState, extra: Pick<TaskStateUpdate, 'error' | 'accumulators'> = {}) => {
        // Reported with the next heartbeats too: the tell below may be lost.
        this.#ended.set(key, {
          report: {
            task,
            state,
            ...(extra.error ? { error: extra.error } : {}),
            ...(epoch !== undefined ? { epoch } : {}),
          },
          reportsLeft: REPORTS_AFTER_END,
        });
        this.#sendState(task, state, { ...extra, ...(epoch !== undefined ? { epoch } : {}) });
      };
      try {
        await invoke(ctx);
        ctx.running();
        controller.signal.throwIfAborted();
        log.info({ accumulators: ctx.accumulators }, 'task finished');
        send(TaskState.FINISHED, { accumulators: ctx.accumulators });
      } catch (err) {
        if (controller.signal.aborted && this.#stopping) {
          // Not the JobMaster's decision: the job has lost this subtask and must fail over.
          log.warn('task stopped: the TaskManager shuts down');
          send(TaskState.FAILED, {
            error: { message: `TaskManager ${this.id} shut down`, location: `${name} on ${this.id}` },
          });
        } else if (controller.signal.aborted) {
          log.info('task cancelled');
          send(TaskState.CANCELED, { accumulators: ctx.accumulators });
        } else {
          log.warn({ err }, 'task failed');
          send(TaskState.FAILED, { error: errorInfo(err, `${name} on ${this.id}`) });
        }
      }
    })().finally(() => this.runInMailbox(() => this.#taskEnded(key)).catch(() => this.#taskEnded(key)));
    this.#tasks.set(key, {
      id: task,
      state: TaskState.DEPLOYING,
      epoch,
      name,
      slotIndex,
      controller,
      done,
      controls,
      accumulators: ctx.accumulators,
    });
    return { accepted: true };
  }

  /**
   * What a deployed task runs: a built-in operator, or a chain of the user's program — in its slot's
   * worker thread when the TaskManager has them, else on this event loop.
   */
  #invokable(
    request: DeployRequest,
    epoch: number | undefined,
    controls: TaskControls,
  ): (ctx: TaskContext) => Promise<void> {
    checkTaskRequest(request);
    const { task } = request;
    const withEpoch = epoch !== undefined ? { epoch } : {};
    return (ctx) => {
      const launch: TaskLaunch = {
        request,
        epoch,
        ctx,
        controls,
        ack: (checkpointId, handle, syncMs) =>
          this.#sendAck({ task, taskManagerId: this.id, checkpointId, handle, syncMs, ...withEpoch }),
        decline: (checkpointId, reason) =>
          this.#sendDecline({ task, taskManagerId: this.id, checkpointId, reason, ...withEpoch }),
      };
      const workers = this.#options.slotWorkers;
      if (workers) return workers.run(request.slotIndex, launch);
      return runTask(
        {
          nc: this.ctx.nc,
          subjects: this.#subjects,
          clusterId: this.ctx.clusterId,
          log: this.log,
          plans: this.#options.plans,
          ...(this.#options.stateStore ? { stateStore: this.#options.stateStore } : {}),
          ...(this.#options.metrics ? { metrics: this.#options.metrics } : {}),
          ...(this.#options.localRecovery ? { localRecovery: this.#options.localRecovery } : {}),
        },
        launch,
      );
    };
  }

  #taskEnded(key: string): void {
    const task = this.#tasks.get(key);
    if (!task) return;
    this.#tasks.delete(key);
    const stillUsed = [...this.#tasks.values()].some((t) => t.slotIndex === task.slotIndex);
    if (!stillUsed) this.#slots[task.slotIndex] = null;
    const jobId = task.id.jobId;
    if (![...this.#tasks.values()].some((t) => t.id.jobId === jobId)) this.#options.plans.release(jobId);
  }

  /**
   * The gateway to a job's JobMaster. Task reports carry the epoch the task was deployed under in the
   * envelope (the JobMaster's `own-epoch` fence) and, for senders of earlier builds, in the body.
   */
  #jobMaster(jobId: string) {
    return gateway(this.ctx.rpc, this.#subjects, JobMasterProtocol, jobId);
  }

  #cancelJob(jobId: string, reason: string): void {
    for (const task of this.#tasks.values()) {
      if (task.id.jobId === jobId) task.controller.abort(new Error(reason));
    }
  }

  #sendAck(ack: CheckpointAck): void {
    try {
      this.#jobMaster(ack.task.jobId).tell('ack', ack, { epoch: ack.epoch });
    } catch (err) {
      this.log.error({ err, job: ack.task.jobId }, 'could not acknowledge a checkpoint');
    }
  }

  #sendDecline(decline: CheckpointDecline): void {
    try {
      this.#jobMaster(decline.task.jobId).tell('decline', decline, { epoch: decline.epoch });
    } catch (err) {
      this.log.error({ err, job: decline.task.jobId }, 'could not decline a checkpoint');
    }
  }

  #sendState(
    task: TaskId,
    state: TaskState,
    extra: Pick<TaskStateUpdate, 'error' | 'accumulators' | 'epoch'> = {},
  ): void {
    const update: TaskStateUpdate = { task, taskManagerId: this.id, state, ...extra };
    try {
      this.#jobMaster(task.jobId).tell('task-state', update, { epoch: update.epoch });
    } catch (err) {
      this.log.error({ err, job: task.jobId }, 'could not report task state');
    }
  }
}

function taskKey(task: TaskId): string {
  return `${task.jobId}/${task.vertexId}/${task.subtaskIndex}/${task.attempt}`;
}

/** The user's error as it travels to the JobMaster and the client: message, stack, where. */
export function errorInfo(err: unknown, location: string): ErrorInfo {
  if (err instanceof Error) {
    return { message: `${err.name}: ${err.message}`, stack: err.stack?.slice(0, 16_384), location };
  }
  return { message: String(err).slice(0, 4_096), location };
}
