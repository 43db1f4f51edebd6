/**
 * Planning a job on a TaskExecutor: run the program's main once more, up to the execute() call that
 * created the job, and keep the StreamGraph it builds (with the user's functions). That call never
 * returns, so nothing after it runs; earlier execute() calls return at once as if finished.
 */
import type { ExecuteRequest, ExecutionBridge } from '../api/execution-bridge.js';
import type { JobClient, JobExecutionResult } from '../api/job-client.js';
import { JobStatus } from '../api/job-status.js';

export class PlanningBridge implements ExecutionBridge {
  readonly defaultParallelism: number;
  readonly capturesAllEnvironments = true;
  /** The execute() call of the target job: its StreamGraph and job name. */
  readonly captured: Promise<ExecuteRequest>;
  #capture!: (request: ExecuteRequest) => void;
  readonly #target: number;

  constructor(targetExecutionIndex: number, defaultParallelism: number) {
    this.#target = targetExecutionIndex;
    this.defaultParallelism = defaultParallelism;
    this.captured = new Promise((resolve) => {
      this.#capture = resolve;
    });
  }

  submit(request: ExecuteRequest): Promise<JobClient & { collected?: () => Promise<unknown[]> }> {
    if (request.executionIndex === this.#target) {
      this.#capture(request);
      return new Promise(() => {});
    }
    const result: JobExecutionResult = {
      jobId: `planning-${request.executionIndex}`,
      jobName: request.jobName,
      status: JobStatus.FINISHED,
      netRuntimeMs: 0,
      accumulators: {},
    };
    return Promise.resolve({
      jobId: result.jobId,
      getJobStatus: async () => JobStatus.FINISHED,
      cancel: async () => undefined,
      getJobExecutionResult: async () => result,
      collected: async () => [],
    });
  }
}
