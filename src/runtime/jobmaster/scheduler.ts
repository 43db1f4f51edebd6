/**
 * The scheduler of one job (Flink's `DefaultScheduler`, minus slot allocation): decides what every task
 * state change, lost TaskManager, reconciliation finding, cancel and suspend means for the job — fail the
 * job over (cancel the rest, then restart per the {@link RestartStrategy} or end FAILED), finish, cancel —
 * and changes the {@link ExecutionGraph} accordingly.
 *
 * Promises:
 * - a task that fails while the job runs moves the job to FAILING, every other task is cancelled, and once
 *   all are down the restart strategy decides: RESTARTING then a new attempt after its delay, or FAILED;
 * - a task that ends CANCELED without the scheduler having asked counts as FAILED (its job lost it);
 * - tasks that do not stop within `cancelTimeoutMs` of a cancel are given up on (CANCELED);
 * - a message about another attempt, another TaskManager or an execution it does not know changes
 *   nothing (logged at debug);
 * - a heartbeat's execution report is reconciled ({@link ExecutionReconciler}): a missed terminal state is
 *   applied, a vanished execution failed over, an unknown one cancelled on its TaskExecutor; a bad report is
 *   a counted drop that changes nothing;
 * - while {@link SchedulerActions.leading} says this JobManager no longer leads, reports and losses change
 *   nothing;
 * - a rescale ({@link Scheduler.rescaling}) moves a RUNNING job to RESTARTING and tells its tasks to stop;
 *   the new attempt is deployed like a restart's; if it cannot be ({@link Scheduler.rescaleFailed}) the
 *   restart strategy decides as after a failure.
 *
 * Does no I/O itself: what goes out (cancels, events, slot release, deployment) goes through
 * {@link SchedulerActions}; time and timers come from the injected {@link Clock}, and timer work runs
 * through `actions.inMailbox` so it is serialised with the actor's messages. Unit-testable without NATS.
 */
import { isTerminalJobStatus, isTerminalTaskState, JobStatus, TaskState } from '../../api/job-status.js';
import type { Logger } from '../../common/log.js';
import type { Clock, TimerHandle } from '../../ha/clock.js';
import type { ErrorInfo } from '../dispatcher/protocol.js';
import type { TaskId, TaskStateUpdate } from '../taskexecutor/protocol.js';
import type { Execution, ExecutionGraph } from './execution-graph.js';
import type { ExecutionReconciler, ReconcileAction } from './execution-reconciler.js';
import type { RestartStrategy } from './restart-strategy.js';

/** Event message once every task of the job's current attempt runs. */
export const ALL_TASKS_RUNNING = 'all tasks running';

/** What the scheduler does to the outside world (the JobMaster actor implements it over NATS). */
export interface SchedulerActions {
  /** Tells a TaskExecutor to cancel every task of this job it runs. */
  cancelTasksOn(taskManagerId: string): void;
  /** Tells a TaskExecutor to cancel these executions (ones the JobMaster does not know). */
  cancelExecutions(taskManagerId: string, tasks: TaskId[]): void;
  /** Publishes the job's status event, with an optional message. */
  publish(message?: string): void;
  /** Every task of the current attempt runs (checkpoints may start). */
  allRunning(): void;
  /** The job stops its tasks (FAILING, CANCELLING): checkpoints pause. */
  stopping(status: JobStatus): void;
  releaseSlots(): void;
  /** Gets slots for the current attempt and deploys it (calls back {@link Scheduler.deploy}). */
  scheduleAttempt(): void;
  /** The job reached a terminal status: clean up and stop. */
  terminated(status: JobStatus): void;
  /** Runs a timer's work serialised with the actor's messages. */
  inMailbox(fn: () => void): void;
  /** HA: whether this JobManager still leads. */
  leading(): boolean;
}

export interface SchedulerOptions {
  graph: ExecutionGraph;
  reconciler: ExecutionReconciler;
  restartStrategy: RestartStrategy;
  clock: Clock;
  log: Logger;
  /** How long cancelling tasks may take before they are given up on. */
  cancelTimeoutMs: number;
  /** The leader epoch (HA): carried into applied reconciliation states. */
  epoch?: number | undefined;
  actions: SchedulerActions;
}

export class Scheduler {
  readonly graph: ExecutionGraph;
  readonly #options: SchedulerOptions;
  readonly #actions: SchedulerActions;
  readonly #log: Logger;
  /** Where a FAILING / CANCELLING job ends once its tasks are down. */
  #target: JobStatus | undefined;
  #error: ErrorInfo | null = null;
  #cancelTimer: TimerHandle | undefined;
  #restartTimer: TimerHandle | undefined;

  constructor(options: SchedulerOptions) {
    this.graph = options.graph;
    this.#options = options;
    this.#actions = options.actions;
    this.#log = options.log;
  }

  get status(): JobStatus {
    return this.graph.status;
  }

  /** Why the job failed, was suspended or last restarted; null while nothing went wrong. */
  get error(): ErrorInfo | null {
    return this.#error;
  }

  /** Whether slots may be requested / tasks deployed now (nothing is deployed yet). */
  get awaitingDeployment(): boolean {
    return this.status === JobStatus.CREATED || this.status === JobStatus.RESTARTING;
  }

  /**
   * Slots arrived for the current attempt: the job RUNNING, each execution DEPLOYING to its slot. Returns
   * the executions to deploy, or undefined when the job no longer waits for them (release the slots).
   */
  deploy(slots: readonly { taskManagerId: string; slotIndex: number }[]): readonly Execution[] | undefined {
    if (!this.awaitingDeployment) return undefined;
    this.#setStatus(JobStatus.RUNNING);
    for (const e of this.graph.executions) {
      const slot = slots[e.index]!;
      this.graph.assignSlot(e, slot.taskManagerId, slot.slotIndex);
    }
    return this.graph.executions;
  }

  /** The deploy ask of `e` failed: the task failed (unless something else decided about it meanwhile). */
  deployFailed(e: Execution, message: string): void {
    if (!this.graph.isCurrent(e) || e.state !== TaskState.DEPLOYING) return;
    this.#onExecutionEnded(e, TaskState.FAILED, { message, location: this.graph.taskLocation(e) });
  }

  /** Restoring state or getting slots failed before anything was deployed: the job fails. */
  schedulingFailed(message: string): void {
    if (!this.awaitingDeployment) return;
    this.#error = { message };
    this.#terminate(JobStatus.FAILED);
  }

  /** A TaskExecutor reported a task's state (its epoch already checked). */
  onTaskState(update: TaskStateUpdate): void {
    const { task } = update;
    const e = this.graph.currentExecution(task, update.taskManagerId);
    if (!e) {
      this.#log.debug({ task, from: update.taskManagerId }, 'state update for an unknown or old attempt');
      return;
    }
    if (isTerminalTaskState(e.state)) return;
    if (update.accumulators) this.graph.setAccumulators(e, update.accumulators);
    if (isTerminalTaskState(update.state)) {
      this.#onExecutionEnded(e, update.state, update.error);
      return;
    }
    if (!this.graph.transitionTask(e, update.state)) return;
    if (
      update.state === TaskState.RUNNING &&
      this.status === JobStatus.RUNNING &&
      this.graph.allInState(TaskState.RUNNING)
    ) {
      this.#actions.publish(ALL_TASKS_RUNNING);
      this.#actions.allRunning();
    }
  }

  /** A TaskExecutor's progress report: the task's accumulators so far. */
  onTaskProgress(task: TaskId, taskManagerId: string, accumulators: Record<string, number>): void {
    const e = this.graph.currentExecution(task, taskManagerId);
    if (e) this.graph.setAccumulators(e, accumulators);
  }

  /**
   * A TaskExecutor heartbeat's execution report (not trusted: validated by the reconciler). Returns false
   * when the report was dropped (garbage, oversized, another job's executions): nothing changed.
   */
  onExecutionReport(body: unknown): boolean {
    if (!this.#actions.leading() || isTerminalJobStatus(this.status)) return true;
    const reconciler = this.#options.reconciler;
    const result = reconciler.onReport(body, this.graph.expectedExecutions());
    if (!result.accepted) {
      const dropped = reconciler.dropped;
      const level = dropped === 1 || dropped % 100 === 0 ? 'warn' : 'debug';
      this.#log[level]({ reason: result.reason, dropped }, 'execution report dropped');
      return false;
    }
    this.#reconcile(result.actions);
    return true;
  }

  /** About once a heartbeat: TaskExecutors that stopped reporting lost their executions. */
  checkSilence(): void {
    if (!this.#actions.leading() || isTerminalJobStatus(this.status)) return;
    this.#reconcile(this.#options.reconciler.checkSilence(this.graph.expectedExecutions()));
  }

  /** A TaskExecutor no longer has a task this JobMaster counts as running: its final state was lost. */
  onTaskGone(task: TaskId, taskManagerId: string, why = 'is no longer running there'): void {
    const e = this.graph.currentExecution(task, taskManagerId);
    if (!e || isTerminalTaskState(e.state)) return;
    this.#onExecutionEnded(e, TaskState.FAILED, {
      message: `task ${this.graph.taskLocation(e)} ${why} (its final state never arrived)`,
      location: this.graph.taskLocation(e),
    });
  }

  /** The ResourceManager lost a TaskManager that held slots of this job. */
  onTaskManagerLost(taskManagerId: string, reason: string): void {
    if (!this.#actions.leading()) return;
    for (const e of [...this.graph.executions]) {
      if (e.taskManagerId !== taskManagerId || isTerminalTaskState(e.state)) continue;
      const error = {
        message: `TaskManager ${taskManagerId} lost: ${reason}`,
        location: this.graph.taskLocation(e),
      };
      this.#onExecutionEnded(e, TaskState.FAILED, error);
    }
  }

  /**
   * A rescale: the running job's tasks are told to stop and the job waits (RESTARTING) for the slots of the
   * new attempt, which the caller builds in the graph. False (nothing done) unless the job was RUNNING.
   */
  rescaling(message: string): boolean {
    if (this.status !== JobStatus.RUNNING) return false;
    const taskManagers = this.graph.taskManagersInUse();
    if (!this.#setStatus(JobStatus.RESTARTING)) return false;
    for (const tm of taskManagers) this.#actions.cancelTasksOn(tm);
    this.#actions.publish(message);
    return true;
  }

  /** The new attempt of a rescale cannot be deployed: a restart per the restart strategy, or FAILED. */
  rescaleFailed(message: string): void {
    if (this.status !== JobStatus.RESTARTING) return;
    this.#error = { message };
    for (const e of [...this.graph.executions]) {
      if (!isTerminalTaskState(e.state)) this.graph.transitionTask(e, TaskState.CANCELED);
    }
    this.#failOrRestart();
  }

  /** Cancels the job; returns the status it is in afterwards (CANCELLING or terminal). */
  cancel(): JobStatus {
    if (isTerminalJobStatus(this.status) || this.status === JobStatus.CANCELLING) return this.status;
    this.#log.info('cancelling job');
    this.#stopTasks(JobStatus.CANCELLING, JobStatus.CANCELED);
    return this.status;
  }

  /** The JobManager is going away: stop the tasks and end the job SUSPENDED. */
  suspend(reason: string): void {
    if (isTerminalJobStatus(this.status)) return;
    this.#error = { message: reason };
    for (const tm of this.graph.taskManagersInUse()) this.#actions.cancelTasksOn(tm);
    this.#terminate(JobStatus.SUSPENDED);
  }

  /** Applies what reconciliation found: missed states, vanished executions, executions to cancel. */
  #reconcile(actions: ReconcileAction[]): void {
    const cancels = new Map<string, TaskId[]>();
    for (const action of actions) {
      if (action.kind === 'apply') {
        const e = this.graph.execution(action.task);
        this.#log.warn(
          { task: e ? this.graph.taskLocation(e) : action.task, state: action.state },
          'applying a task state whose report was lost (reconciled from a heartbeat)',
        );
        const epoch = this.#options.epoch;
        this.onTaskState({
          task: action.task,
          taskManagerId: e?.taskManagerId ?? '',
          state: action.state,
          ...(action.error ? { error: action.error } : {}),
          ...(epoch !== undefined ? { epoch } : {}),
        });
      } else if (action.kind === 'missing') {
        this.onTaskGone(
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
    for (const [tm, tasks] of cancels) {
      this.#log.warn(
        { taskManager: tm, tasks: tasks.length },
        'a TaskExecutor runs executions this JobMaster does not know: cancelling them',
      );
      this.#actions.cancelExecutions(tm, tasks);
    }
  }

  #onExecutionEnded(e: Execution, reported: TaskState, reportedError?: ErrorInfo): void {
    const running = this.status === JobStatus.RUNNING || this.status === JobStatus.CREATED;
    // A task may only end CANCELED when this JobMaster cancelled it; otherwise its job lost it.
    const unexpected = reported === TaskState.CANCELED && running;
    const state = unexpected ? TaskState.FAILED : reported;
    const error = unexpected
      ? { message: `task ${this.graph.taskLocation(e)} was cancelled without the JobMaster asking` }
      : reportedError;
    this.graph.transitionTask(e, state);
    if (state === TaskState.FAILED && running) {
      this.#error = error ?? { message: `task ${this.graph.taskLocation(e)} failed` };
      this.#log.warn(
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
    if (this.awaitingDeployment) {
      // Waiting for slots or for a restart: nothing is deployed.
      this.#terminate(target);
      return;
    }
    this.#setStatus(transitional);
    this.#actions.stopping(transitional);
    for (const tm of this.graph.taskManagersInUse()) this.#actions.cancelTasksOn(tm);
    const { clock, cancelTimeoutMs } = this.#options;
    if (this.#cancelTimer) clock.clearTimeout(this.#cancelTimer);
    this.#cancelTimer = clock.setTimeout(() => {
      this.#actions.inMailbox(() => {
        if (isTerminalJobStatus(this.status)) return;
        const stuck = this.graph.executions.filter((x) => !isTerminalTaskState(x.state));
        if (stuck.length === 0) return;
        this.#log.warn(
          { tasks: stuck.map((x) => this.graph.taskLocation(x)) },
          `tasks did not stop within ${cancelTimeoutMs} ms; giving up on them`,
        );
        for (const x of stuck) this.graph.transitionTask(x, TaskState.CANCELED);
        this.#maybeTerminate();
      });
    }, cancelTimeoutMs);
    this.#maybeTerminate();
  }

  #maybeTerminate(): void {
    if (isTerminalJobStatus(this.status) || this.status === JobStatus.RESTARTING) return;
    if (!this.graph.allTerminal()) return;
    if (this.#target === JobStatus.FAILED) {
      this.#failOrRestart();
    } else if (this.#target) {
      this.#terminate(this.#target);
    } else if (this.graph.allInState(TaskState.FINISHED)) {
      this.#terminate(JobStatus.FINISHED);
    } else {
      this.#terminate(JobStatus.CANCELED);
    }
  }

  /** Every task is down after a failure: the restart strategy decides between a restart and FAILED. */
  #failOrRestart(): void {
    const { clock, restartStrategy } = this.#options;
    this.#clearTimers();
    const delay = restartStrategy.onFailure(clock.now());
    if (delay === undefined) {
      if (this.graph.restarts > 0) {
        this.#log.warn({ strategy: restartStrategy.describe() }, 'restart strategy gave up');
      }
      this.#terminate(JobStatus.FAILED);
      return;
    }
    // Already RESTARTING when a rescale's new attempt could not be deployed.
    if (this.status !== JobStatus.RESTARTING && !this.graph.transitionJob(JobStatus.RESTARTING)) return;
    this.#target = undefined;
    const message = `restarting in ${delay} ms after: ${this.#error?.message ?? 'a failure'} (${restartStrategy.describe()})`;
    this.#log.info({ delayMs: delay, attempt: this.graph.attempt + 1 }, message);
    this.#actions.publish(message);
    this.#actions.releaseSlots();
    this.#restartTimer = clock.setTimeout(() => {
      this.#actions.inMailbox(() => this.#restart());
    }, delay);
  }

  #restart(): void {
    if (this.status !== JobStatus.RESTARTING) return;
    if (!this.graph.newAttempt()) return;
    this.#options.reconciler.reset();
    this.#actions.scheduleAttempt();
  }

  #terminate(status: JobStatus): void {
    this.#clearTimers();
    if (!this.#setStatus(status)) return;
    this.#actions.terminated(status);
  }

  #clearTimers(): void {
    const { clock } = this.#options;
    if (this.#cancelTimer) clock.clearTimeout(this.#cancelTimer);
    if (this.#restartTimer) clock.clearTimeout(this.#restartTimer);
    this.#cancelTimer = undefined;
    this.#restartTimer = undefined;
  }

  /** Moves the job (if the transition table allows it), logs and publishes the change. */
  #setStatus(status: JobStatus): boolean {
    const from = this.status;
    if (!this.graph.transitionJob(status)) return false;
    this.#log.info({ from, to: status }, `job ${status}`);
    this.#actions.publish();
    return true;
  }
}
