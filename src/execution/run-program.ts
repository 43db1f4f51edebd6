/**
 * Runs a job program's main in the client (or on the local cluster) under a bridge, waits for it and its
 * attached jobs, and reports each job's end. Returns the exit status.
 */
import type { ExecuteRequest, ExecutionBridge } from '../api/execution-bridge.js';
import { JobExecutionError, type JobExecutionResult } from '../api/job-client.js';
import { exitCodeFor } from '../api/job-status.js';
import { duration } from '../common/duration.js';
import { describeMainError } from '../common/main-errors.js';
import { exclusively, startProgram } from './program-runner.js';

interface Tracked {
  jobId: string;
  result: Promise<JobExecutionResult> | undefined;
}

/** Wraps a bridge to remember the jobs it submitted. */
class TrackingBridge implements ExecutionBridge {
  readonly jobs: Tracked[] = [];
  readonly defaultParallelism: number | undefined;
  constructor(
    readonly inner: ExecutionBridge,
    readonly attached: boolean,
  ) {
    this.defaultParallelism = inner.defaultParallelism;
  }

  async submit(request: ExecuteRequest) {
    const job = await this.inner.submit(request);
    const result = this.attached ? job.getJobExecutionResult() : undefined;
    result?.catch(() => undefined);
    this.jobs.push({ jobId: job.jobId, result });
    return job;
  }
}

export interface RunProgramOptions {
  file: string;
  /** Shown in messages instead of the bundle's path. */
  displayName: string;
  args: string[];
  bridge: ExecutionBridge;
  attached: boolean;
  out: (line: string) => void;
  err: (line: string) => void;
}

export async function runProgram(options: RunProgramOptions): Promise<number> {
  return exclusively(async () => {
    const bridge = new TrackingBridge(options.bridge, options.attached);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const handle = startProgram(options.file, options.args, bridge, `client-${Date.now()}`);
    let mainError: unknown;
    try {
      try {
        await handle.evaluated;
      } catch (err) {
        mainError = err;
      }
      // A main that does not await its jobs keeps submitting after its module finished: wait until
      // every known job ended and no new one came for a moment.
      for (let seen = -1; seen !== bridge.jobs.length; ) {
        seen = bridge.jobs.length;
        await Promise.allSettled(bridge.jobs.map((j) => j.result));
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      handle.restore();
      process.off('unhandledRejection', onUnhandled);
    }

    let exit = 0;
    const reported = new Set<string>();
    for (const job of bridge.jobs) {
      if (!job.result) continue;
      try {
        const r = await job.result;
        options.out(`Job ${job.jobId} ${r.status} after ${duration(r.netRuntimeMs)}`);
      } catch (err) {
        reported.add(job.jobId);
        if (err instanceof JobExecutionError) {
          options.err(
            err.message + (err.remoteStack ? `\n${err.remoteStack.split('\n').slice(1).join('\n')}` : ''),
          );
          exit = Math.max(exit, exitCodeFor(err.status));
        } else {
          options.err(`Job ${job.jobId}: ${err instanceof Error ? err.message : String(err)}`);
          exit = Math.max(exit, 1);
        }
      }
    }
    const programErrors = [mainError, ...unhandled].filter(
      (e) => e !== undefined && !(e instanceof JobExecutionError && reported.has(e.jobId)),
    );
    for (const e of programErrors) {
      options.err(`The job's main failed: ${describeMainError(e)}`);
      exit = Math.max(exit, 1);
    }
    if (bridge.jobs.length === 0 && programErrors.length === 0) {
      options.err(`${options.displayName} ended without calling execute(): no job was submitted`);
      exit = 1;
    }
    return exit;
  });
}
