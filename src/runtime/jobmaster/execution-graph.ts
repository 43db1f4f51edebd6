/**
 * The ExecutionGraph (Flink's name): a job's vertices × subtasks, each with its current execution attempt,
 * and the job's status. States and their legal transitions are DATA ({@link JOB_TRANSITIONS},
 * {@link TASK_TRANSITIONS}); every change goes through {@link ExecutionGraph.transitionJob} or
 * {@link ExecutionGraph.transitionTask}.
 *
 * Promises: a transition the table does not allow is refused — logged at warn with from/to, counted in
 * {@link ExecutionGraph.refusedTransitions}, and not applied (the caller gets `false`); a transition to the
 * state it is already in is a no-op (`false`, not logged). A new attempt ({@link ExecutionGraph.newAttempt})
 * is the only way back from a terminal task state: it replaces every execution with a SCHEDULED one of the
 * next attempt, and only when every execution of the current attempt is terminal. A rescale
 * ({@link ExecutionGraph.rescale}) is the other: a new job graph at another parallelism and SCHEDULED
 * executions for it, of the next attempt when the old one was deployed (its tasks are being stopped and
 * no longer count: their channels and reports are of the old attempt).
 *
 * Refuses nothing else and does no I/O: no NATS, no timers. Wall-clock times (start, end) come from the
 * injected {@link WallClock}; what to do about a change (restart, cancel, publish) is decided by the
 * scheduler (scheduler.ts), not here.
 */
import { isTerminalJobStatus, isTerminalTaskState, JobStatus, TaskState } from '../../api/job-status.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { JobId } from '../../common/ids.js';
import type { Logger } from '../../common/log.js';
import { systemWallClock, type WallClock } from '../../ha/clock.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import { WATERMARK } from '../task/vertex-gauges.js';
import { type TaskId, taskName } from '../taskexecutor/protocol.js';
import type { ExpectedExecution } from './execution-reconciler.js';

/** From each job status, the statuses it may move to. Terminal statuses move nowhere. */
export const JOB_TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  // Waiting for slots / the restore: deployed, or it ends before anything runs.
  CREATED: ['RUNNING', 'FAILED', 'CANCELED', 'SUSPENDED'],
  // RESTARTING: a rescale (the old tasks are told to stop, the new attempt waits for its slots).
  RUNNING: ['FAILING', 'CANCELLING', 'FINISHED', 'CANCELED', 'SUSPENDED', 'RESTARTING'],
  // A task failed; the rest are being cancelled. Then: a restart, FAILED, or a user's cancel takes over.
  FAILING: ['RESTARTING', 'FAILED', 'CANCELLING', 'SUSPENDED'],
  // Waiting out the restart delay (nothing deployed): deployed again, or it ends.
  RESTARTING: ['RUNNING', 'FAILED', 'CANCELED', 'SUSPENDED'],
  CANCELLING: ['CANCELED', 'SUSPENDED'],
  FINISHED: [],
  FAILED: [],
  CANCELED: [],
  SUSPENDED: [],
};

/** From each task state, the states an execution attempt may move to. Terminal states move nowhere. */
export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  // Not yet deployed: a cancel that gives up on it ends it CANCELED.
  SCHEDULED: ['DEPLOYING', 'FAILED', 'CANCELED'],
  DEPLOYING: ['RUNNING', 'FINISHED', 'FAILED', 'CANCELED'],
  RUNNING: ['FINISHED', 'FAILED', 'CANCELED'],
  FINISHED: [],
  FAILED: [],
  CANCELED: [],
};

/** One subtask's current execution attempt, as the JobMaster sees it. */
export interface Execution {
  readonly vertexId: string;
  /** The subtask index. */
  readonly index: number;
  readonly attempt: number;
  readonly state: TaskState;
  /** Where it is deployed; null until it is. */
  readonly taskManagerId: string | null;
  readonly slotIndex: number;
  readonly accumulators: Readonly<Record<string, number>>;
}

type MutableExecution = { -readonly [K in keyof Execution]: Execution[K] };

export interface ExecutionGraphOptions {
  log: Logger;
  wallClock?: WallClock | undefined;
}

export class ExecutionGraph {
  #jobGraph: JobGraph;
  readonly #log: Logger;
  readonly #wallClock: WallClock;
  readonly #executions: MutableExecution[] = [];
  #status: JobStatus = JobStatus.CREATED;
  #attempt = 0;
  #restarts = 0;
  #refused = 0;
  readonly startTime: number;
  #endTime: number | null = null;

  constructor(jobGraph: JobGraph, options: ExecutionGraphOptions) {
    this.#jobGraph = jobGraph;
    this.#log = options.log;
    this.#wallClock = options.wallClock ?? systemWallClock;
    this.startTime = this.#wallClock();
    for (const vertex of jobGraph.vertices) {
      for (let index = 0; index < vertex.parallelism; index++) {
        this.#executions.push(this.#fresh(vertex.id, index));
      }
    }
  }

  get jobId(): JobId {
    return this.#jobGraph.jobId;
  }

  /** The job graph the current attempt runs (a rescale replaces it). */
  get jobGraph(): JobGraph {
    return this.#jobGraph;
  }

  /**
   * A rescale: `jobGraph` (the same job at another parallelism) replaces the graph, and every execution is
   * replaced by a SCHEDULED one for it — of the next attempt when `nextAttempt` (the old attempt was
   * deployed), else of the current one (nothing was deployed yet: reactive mode sizing a job before it
   * starts or restarts). Not counted as a restart.
   */
  rescale(jobGraph: JobGraph, nextAttempt: boolean): void {
    if (jobGraph.jobId !== this.#jobGraph.jobId) {
      throw new SluiceError(ErrorCode.IllegalState, `a rescale cannot change the job (${jobGraph.jobId})`);
    }
    this.#jobGraph = jobGraph;
    if (nextAttempt) this.#attempt++;
    this.#executions.length = 0;
    for (const vertex of jobGraph.vertices) {
      for (let index = 0; index < vertex.parallelism; index++) {
        this.#executions.push(this.#fresh(vertex.id, index));
      }
    }
  }

  get status(): JobStatus {
    return this.#status;
  }

  /** The job's execution attempt: every task of a restart runs with the next one. */
  get attempt(): number {
    return this.#attempt;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get endTime(): number | null {
    return this.#endTime;
  }

  /** Transitions refused because the table does not allow them. */
  get refusedTransitions(): number {
    return this.#refused;
  }

  get executions(): readonly Execution[] {
    return this.#executions;
  }

  /** Moves the job to `to` if {@link JOB_TRANSITIONS} allows it; a terminal status stamps the end time. */
  transitionJob(to: JobStatus): boolean {
    const from = this.#status;
    if (from === to) return false;
    if (!JOB_TRANSITIONS[from].includes(to)) {
      this.#refuse({ from, to }, `illegal job transition ${from} → ${to} refused`);
      return false;
    }
    this.#status = to;
    if (isTerminalJobStatus(to)) this.#endTime = this.#wallClock();
    return true;
  }

  /** Moves one execution to `to` if {@link TASK_TRANSITIONS} allows it. */
  transitionTask(execution: Execution, to: TaskState): boolean {
    const e = this.#own(execution);
    const from = e.state;
    if (from === to) return false;
    if (!TASK_TRANSITIONS[from].includes(to)) {
      this.#refuse(
        { task: this.taskLocation(e), from, to },
        `illegal task transition ${from} → ${to} refused`,
      );
      return false;
    }
    e.state = to;
    return true;
  }

  /** Deploys an execution to a slot: SCHEDULED → DEPLOYING there. */
  assignSlot(execution: Execution, taskManagerId: string, slotIndex: number): boolean {
    const e = this.#own(execution);
    if (!this.transitionTask(e, TaskState.DEPLOYING)) return false;
    e.taskManagerId = taskManagerId;
    e.slotIndex = slotIndex;
    return true;
  }

  setAccumulators(execution: Execution, accumulators: Record<string, number>): void {
    const e = this.#own(execution);
    if (!isTerminalTaskState(e.state)) e.accumulators = accumulators;
  }

  /**
   * The next attempt: every execution back to SCHEDULED, undeployed, accumulators cleared. Refused (false,
   * logged) while an execution of the current attempt is not terminal.
   */
  newAttempt(): boolean {
    if (!this.allTerminal()) {
      this.#refuse({ attempt: this.#attempt }, 'new attempt refused: executions still run');
      return false;
    }
    this.#attempt++;
    this.#restarts++;
    for (let i = 0; i < this.#executions.length; i++) {
      const e = this.#executions[i]!;
      this.#executions[i] = this.#fresh(e.vertexId, e.index);
    }
    return true;
  }

  /** Whether `execution` is one of the current attempt (a restart replaces them all). */
  isCurrent(execution: Execution): boolean {
    return this.#executions.includes(execution as MutableExecution);
  }

  /** The execution of a task id's vertex and subtask (any attempt: callers compare it). */
  execution(task: { vertexId: string; subtaskIndex: number }): Execution | undefined {
    return this.#executions.find((x) => x.vertexId === task.vertexId && x.index === task.subtaskIndex);
  }

  /** The execution a message from `taskManagerId` about `task` is about, if it is the current attempt there. */
  currentExecution(task: TaskId, taskManagerId: string): Execution | undefined {
    const e = this.execution(task);
    if (!e || e.attempt !== task.attempt || e.taskManagerId !== taskManagerId) return undefined;
    return e;
  }

  allTerminal(): boolean {
    return this.#executions.every((e) => isTerminalTaskState(e.state));
  }

  allInState(state: TaskState): boolean {
    return this.#executions.every((e) => e.state === state);
  }

  /** TaskManagers holding an execution that has not ended. */
  taskManagersInUse(): Set<string> {
    const tms = new Set<string>();
    for (const e of this.#executions) {
      if (e.taskManagerId && !isTerminalTaskState(e.state)) tms.add(e.taskManagerId);
    }
    return tms;
  }

  /** What the JobMaster believes about each execution of the current attempt (for reconciliation). */
  expectedExecutions(): ExpectedExecution[] {
    return this.#executions.map((e) => ({
      vertexId: e.vertexId,
      subtaskIndex: e.index,
      attempt: e.attempt,
      taskManagerId: e.taskManagerId,
      state: e.state,
    }));
  }

  taskId(e: Execution): TaskId {
    return { jobId: this.jobId, vertexId: e.vertexId, subtaskIndex: e.index, attempt: e.attempt };
  }

  /** `name (i/n)#attempt on tm` for messages. */
  taskLocation(e: Execution): string {
    const vertex = this.#jobGraph.vertices.find((v) => v.id === e.vertexId)!;
    const name = taskName(this.taskId(e), vertex.name, vertex.parallelism);
    return e.taskManagerId ? `${name} on ${e.taskManagerId}` : name;
  }

  /**
   * Accumulators summed over subtasks (of one vertex, or of the whole job); a vertex's `… watermark` is the
   * minimum instead (the event time every subtask has reached).
   */
  accumulators(vertexId?: string): Record<string, number> {
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

  #fresh(vertexId: string, index: number): MutableExecution {
    return {
      vertexId,
      index,
      attempt: this.#attempt,
      state: TaskState.SCHEDULED,
      taskManagerId: null,
      slotIndex: -1,
      accumulators: {},
    };
  }

  /** The graph's own record of an execution (callers hold the read-only view of the same object). */
  #own(execution: Execution): MutableExecution {
    if (!this.#executions.includes(execution as MutableExecution)) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `execution ${execution.vertexId}/${execution.index}#${execution.attempt} is not of the current attempt`,
      );
    }
    return execution as MutableExecution;
  }

  #refuse(fields: Record<string, unknown>, message: string): void {
    this.#refused++;
    this.#log.warn({ job: this.jobId, ...fields }, message);
  }
}
