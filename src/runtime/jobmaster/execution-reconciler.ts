/**
 * Reconciliation instead of trust (Flink: `ExecutionDeploymentReconciler` and the TaskExecutor's heartbeat
 * payload). Task state changes travel as core-NATS tells and can be lost; every TaskExecutor heartbeat
 * therefore carries, per job, the executions it holds (attempt id and state, the recently ended ones with
 * their terminal state), and this module compares that report with what the JobMaster believes.
 *
 * Promises, per valid report of a TaskExecutor:
 * - `apply`: an execution the JobMaster has on that TaskExecutor, of the same attempt, reported in a state
 *   it missed (a terminal one, or RUNNING while it still thinks DEPLOYING) — apply it as if the tell came;
 * - `missing`: an execution the JobMaster believes running there (the TaskExecutor said RUNNING: a
 *   DEPLOYING one is covered by its deploy ask, which fails on its own timeout) that the reports
 *   have not named for at least the grace (about one heartbeat) and in at least two reports — its final
 *   state is lost: fail it over. A TaskExecutor that sends no report at all for the job for `silenceMs`
 *   while the JobMaster has executions on it (it restarted under the same id and forgot them) counts
 *   the same way, found by {@link ExecutionReconciler.checkSilence};
 * - `cancel`: an execution the TaskExecutor runs that the JobMaster does not know (another attempt, a
 *   deploy it gave up on) — tell the TaskExecutor to cancel it.
 *
 * Refuses (a counted drop that changes nothing: {@link ExecutionReconciler.dropped}): a report that is not
 * one (garbage), that lists more than {@link MAX_REPORTED_EXECUTIONS} executions, or that names an
 * execution of another job. Pure: no NATS, time from the injected {@link Clock}.
 */
import { z } from 'zod';
import { isTerminalTaskState, TaskState } from '../../api/job-status.js';
import type { JobId } from '../../common/ids.js';
import {
  ErrorInfoSchema,
  type ExecutionAttemptId as TaskId,
  ExecutionAttemptIdSchema as TaskIdSchema,
} from '../../common/ids.js';
import type { Clock } from '../../ha/clock.js';

/** At most this many executions in one report (a TaskManager's slots × chained vertices, with room). */
export const MAX_REPORTED_EXECUTIONS = 4_096;

export const ReportedExecutionSchema = z.object({
  task: TaskIdSchema,
  state: z.enum(TaskState),
  error: ErrorInfoSchema.optional(),
  /** The leader epoch it was deployed under (HA). */
  epoch: z.number().int().positive().optional(),
});
export type ReportedExecution = z.infer<typeof ReportedExecutionSchema>;

/** TaskExecutor → JobMaster with every heartbeat (`jm.<jobId>.executions`, tell). */
export const ExecutionReportSchema = z.object({
  taskManagerId: z.string().min(1).max(256),
  jobId: z.string().min(1).max(64),
  executions: z.array(ReportedExecutionSchema),
});
export type ExecutionReport = z.infer<typeof ExecutionReportSchema>;

/** What the JobMaster believes about one of its executions. */
export interface ExpectedExecution {
  vertexId: string;
  subtaskIndex: number;
  attempt: number;
  taskManagerId: string | null;
  state: TaskState;
}

export type ReconcileAction =
  | { kind: 'apply'; task: TaskId; state: TaskState; error?: ReportedExecution['error'] }
  | { kind: 'missing'; task: TaskId; taskManagerId: string; missingMs: number }
  | { kind: 'cancel'; task: TaskId; taskManagerId: string };

export type ReconcileResult =
  | { accepted: true; actions: ReconcileAction[] }
  | { accepted: false; reason: string };

export interface ExecutionReconcilerOptions {
  jobId: JobId;
  clock: Clock;
  /** How long a deployed execution may be absent from the reports before it is failed over. */
  graceMs: number;
  /** How long a TaskExecutor holding executions of the job may send no report at all. */
  silenceMs: number;
  /** The leader epoch of this JobMaster (HA): executions of other epochs are not its own. */
  epoch?: number | undefined;
}

const key = (vertexId: string, subtaskIndex: number, attempt: number) =>
  `${vertexId}/${subtaskIndex}/${attempt}`;

const deployed = (state: TaskState) => state === TaskState.DEPLOYING || state === TaskState.RUNNING;

export class ExecutionReconciler {
  readonly #options: ExecutionReconcilerOptions;
  /** Execution key → since when (clock) and in how many reports in a row it was absent. */
  readonly #absent = new Map<string, { since: number; reports: number }>();
  /** TaskExecutor → when its last valid report came (or when it was first expected to report). */
  readonly #lastReport = new Map<string, number>();
  #dropped = 0;

  constructor(options: ExecutionReconcilerOptions) {
    this.#options = options;
  }

  /** Reports refused: garbage, oversized, or naming another job's executions. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Compares one report (`body`, as received: not trusted) with what the JobMaster expects; `expected` is
   * every execution of the job's current attempt. Returns the actions, or why the report was dropped.
   */
  onReport(body: unknown, expected: readonly ExpectedExecution[]): ReconcileResult {
    const refused = this.#validate(body);
    if (typeof refused === 'string') {
      this.#dropped++;
      return { accepted: false, reason: refused };
    }
    const report = refused;
    const tm = report.taskManagerId;
    const now = this.#options.clock.now();
    this.#lastReport.set(tm, now);
    const mine = report.executions.filter((x) => x.epoch === this.#options.epoch);
    const reported = new Map(mine.map((x) => [key(x.task.vertexId, x.task.subtaskIndex, x.task.attempt), x]));
    const actions: ReconcileAction[] = [];
    for (const e of expected) {
      const k = key(e.vertexId, e.subtaskIndex, e.attempt);
      if (e.taskManagerId !== tm || !deployed(e.state)) continue;
      const task = {
        jobId: this.#options.jobId,
        vertexId: e.vertexId,
        subtaskIndex: e.subtaskIndex,
        attempt: e.attempt,
      };
      const r = reported.get(k);
      if (r !== undefined) {
        this.#absent.delete(k);
        const missed =
          isTerminalTaskState(r.state) || (r.state === TaskState.RUNNING && e.state === TaskState.DEPLOYING);
        if (missed && r.state !== e.state) {
          actions.push({ kind: 'apply', task, state: r.state, ...(r.error ? { error: r.error } : {}) });
        }
        continue;
      }
      // A deploy may still be on its way (the TaskExecutor's mailbox is busy): its ask answers for it.
      if (e.state !== TaskState.RUNNING) continue;
      const absent = this.#absent.get(k);
      if (absent === undefined) {
        this.#absent.set(k, { since: now, reports: 1 });
        continue;
      }
      absent.reports++;
      if (absent.reports >= 2 && now - absent.since >= this.#options.graceMs) {
        this.#absent.delete(k);
        actions.push({ kind: 'missing', task, taskManagerId: tm, missingMs: Math.round(now - absent.since) });
      }
    }
    // Executions the TaskExecutor runs that are not this attempt's, or that the JobMaster placed
    // elsewhere: stop them there.
    for (const r of mine) {
      if (isTerminalTaskState(r.state)) continue;
      const e = expected.find(
        (x) =>
          x.vertexId === r.task.vertexId &&
          x.subtaskIndex === r.task.subtaskIndex &&
          x.attempt === r.task.attempt,
      );
      if (e === undefined || e.taskManagerId !== tm) {
        actions.push({ kind: 'cancel', task: r.task, taskManagerId: tm });
      }
    }
    return { accepted: true, actions };
  }

  /**
   * Executions on TaskExecutors that have sent no report for `silenceMs` (counted from their last report,
   * or from the first check that found executions there): `missing`. Call it about once a heartbeat.
   */
  checkSilence(expected: readonly ExpectedExecution[]): ReconcileAction[] {
    const now = this.#options.clock.now();
    const actions: ReconcileAction[] = [];
    const hosting = new Set<string>();
    for (const e of expected) {
      if (e.taskManagerId !== null && e.state === TaskState.RUNNING) hosting.add(e.taskManagerId);
    }
    for (const tm of [...this.#lastReport.keys()]) if (!hosting.has(tm)) this.#lastReport.delete(tm);
    for (const tm of hosting) {
      const last = this.#lastReport.get(tm);
      if (last === undefined) {
        this.#lastReport.set(tm, now);
        continue;
      }
      if (now - last < this.#options.silenceMs) continue;
      this.#lastReport.delete(tm);
      for (const e of expected) {
        if (e.taskManagerId !== tm || e.state !== TaskState.RUNNING) continue;
        this.#absent.delete(key(e.vertexId, e.subtaskIndex, e.attempt));
        actions.push({
          kind: 'missing',
          task: {
            jobId: this.#options.jobId,
            vertexId: e.vertexId,
            subtaskIndex: e.subtaskIndex,
            attempt: e.attempt,
          },
          taskManagerId: tm,
          missingMs: Math.round(now - last),
        });
      }
    }
    return actions;
  }

  /** Forgets what it tracked (a restart deploys a new attempt; its executions start fresh). */
  reset(): void {
    this.#absent.clear();
    this.#lastReport.clear();
  }

  /** The report, or why it is refused. */
  #validate(body: unknown): ExecutionReport | string {
    // Count first: an oversized list is refused without parsing every entry of it.
    const list = (body as { executions?: unknown } | null)?.executions;
    if (Array.isArray(list) && list.length > MAX_REPORTED_EXECUTIONS) {
      return `${list.length} executions in one report (at most ${MAX_REPORTED_EXECUTIONS})`;
    }
    const parsed = ExecutionReportSchema.safeParse(body);
    if (!parsed.success) return `not an execution report: ${z.prettifyError(parsed.error).slice(0, 300)}`;
    const report = parsed.data;
    if (report.jobId !== this.#options.jobId) return `a report for job ${report.jobId}`;
    const foreign = report.executions.find((x) => x.task.jobId !== this.#options.jobId);
    if (foreign !== undefined) return `names an execution of job ${foreign.task.jobId}`;
    return report;
  }
}
