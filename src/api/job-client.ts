/** What `executeAsync()` returns and `execute()` resolves with (Flink's JobClient / JobExecutionResult). */
import type { JobStatus } from './job-status.js';

export interface JobExecutionResult {
  readonly jobId: string;
  readonly jobName: string;
  readonly status: JobStatus;
  readonly netRuntimeMs: number;
  /** Counters summed over subtasks, e.g. records processed. */
  readonly accumulators: Record<string, number>;
}

export interface JobClient {
  readonly jobId: string;
  getJobStatus(): Promise<JobStatus>;
  cancel(): Promise<void>;
  /** Resolves when the job finished; rejects with a JobExecutionError when it failed or was cancelled. */
  getJobExecutionResult(): Promise<JobExecutionResult>;
}

/** The job did not finish: FAILED (with the user's error and where it happened), CANCELED or SUSPENDED. */
export class JobExecutionError extends Error {
  override readonly name = 'JobExecutionError';
  constructor(
    readonly jobId: string,
    readonly status: JobStatus,
    message: string,
    readonly remoteStack?: string,
  ) {
    super(message);
  }
}
