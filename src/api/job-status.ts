/** Lifecycle of a job (as Flink's JobStatus) and of one subtask attempt (Flink's ExecutionState). */
export const JobStatus = {
  CREATED: 'CREATED',
  RUNNING: 'RUNNING',
  /** A task failed; the others are being cancelled before the job is FAILED (or restarts). */
  FAILING: 'FAILING',
  /** Waiting out the restart strategy's delay before all tasks are deployed again. */
  RESTARTING: 'RESTARTING',
  CANCELLING: 'CANCELLING',
  FINISHED: 'FINISHED',
  FAILED: 'FAILED',
  CANCELED: 'CANCELED',
  /** The JobManager stopped while the job ran; nothing was decided about the job itself. */
  SUSPENDED: 'SUSPENDED',
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];

export const TERMINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set([
  JobStatus.FINISHED,
  JobStatus.FAILED,
  JobStatus.CANCELED,
  JobStatus.SUSPENDED,
]);

export function isTerminalJobStatus(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.has(status);
}

export const TaskState = {
  SCHEDULED: 'SCHEDULED',
  DEPLOYING: 'DEPLOYING',
  RUNNING: 'RUNNING',
  FINISHED: 'FINISHED',
  FAILED: 'FAILED',
  CANCELED: 'CANCELED',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

export function isTerminalTaskState(state: TaskState): boolean {
  return state === TaskState.FINISHED || state === TaskState.FAILED || state === TaskState.CANCELED;
}

/** Exit status of an attached client for a job's final status. */
export function exitCodeFor(status: JobStatus): number {
  switch (status) {
    case JobStatus.FINISHED:
      return 0;
    case JobStatus.CANCELED:
      return 2;
    case JobStatus.SUSPENDED:
      return 3;
    default:
      return 1;
  }
}
