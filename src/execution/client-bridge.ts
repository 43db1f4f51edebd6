/**
 * The execution bridge of a program submitted with `sluice run JOB`: each execute() becomes a job of
 * the cluster, with the uploaded bundle as its code. Attached, execute() waits for the job and the
 * client follows it; detached (-d), execute() returns at once and the job keeps running.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ExecuteRequest, ExecutionBridge } from '../api/execution-bridge.js';
import type { JobClient, JobExecutionResult } from '../api/job-client.js';
import { JobStatus } from '../api/job-status.js';
import type { ClusterClient } from '../client/cluster-client.js';
import { submitJobGraph } from '../client/job-submission.js';
import { toJobGraph } from '../jobgraph/chaining.js';
import type { JobGraph, Program } from '../jobgraph/job-graph.js';
import { applicationJobId, newJobId } from '../jobgraph/job-id.js';
import type { ArtifactRef } from '../runtime/artifacts/artifact-store.js';
import type { JobDetails, JobEvent } from '../runtime/dispatcher/protocol.js';

export interface ClientBridgeOptions {
  client: ClusterClient;
  nc: NatsConnection;
  maxMessageBytes: number;
  artifact: ArtifactRef;
  entry: string;
  args: string[];
  parallelism: number;
  bufferTimeoutMs: number;
  detached: boolean;
  /** `sluice run -s`: the savepoint the job starts from. */
  savepoint?: { path: string; allowNonRestoredState: boolean };
  /** `sluice run -D job.autoscaler.…`: the jobs' own configuration keys. */
  configuration?: Readonly<Record<string, string>> | undefined;
  /** Progress lines for the user (job submitted, status changes). */
  report: (line: string) => void;
  onEvent?: (event: JobEvent) => void;
}

export class ClientBridge implements ExecutionBridge {
  readonly defaultParallelism: number;
  /** Every job submitted so far, with its final details when attached. */
  readonly jobs: Array<{ graph: JobGraph; done: Promise<JobDetails> | undefined }> = [];
  readonly #options: ClientBridgeOptions;

  constructor(options: ClientBridgeOptions) {
    this.#options = options;
    this.defaultParallelism = options.parallelism;
  }

  async submit(request: ExecuteRequest): Promise<JobClient & { collected?: () => Promise<unknown[]> }> {
    const o = this.#options;
    const program: Program = {
      artifact: o.artifact,
      args: o.args,
      executionIndex: request.executionIndex,
      entry: o.entry,
      parallelism: o.parallelism,
    };
    // Set by an application cluster's JobManager for the main it runs: fixed job ids, so that a main run
    // again after a failover finds the jobs it submitted before (the Dispatcher attaches to them).
    const applicationId = process.env.SLUICE_APPLICATION_ID;
    const built = toJobGraph(request.graph, {
      jobId: applicationId ? applicationJobId(applicationId, request.executionIndex) : newJobId(),
      name: request.jobName,
      program,
      defaultBufferTimeoutMs: o.bufferTimeoutMs,
      ...(applicationId ? { applicationId } : {}),
    });
    const graph: JobGraph = {
      ...built,
      ...(o.savepoint ? { savepoint: o.savepoint } : {}),
      ...(o.configuration ? { configuration: { ...o.configuration } } : {}),
    };
    const job = await submitJobGraph(o.client, o.nc, graph, {
      collect: request.collect,
      maxMessageBytes: o.maxMessageBytes,
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    });
    o.report(`Job has been submitted with JobID ${graph.jobId}`);
    if (!o.detached) {
      this.jobs.push({ graph, done: job.done });
      return job;
    }
    this.jobs.push({ graph, done: undefined });
    const detachedResult: JobExecutionResult = {
      jobId: graph.jobId,
      jobName: graph.name,
      status: JobStatus.CREATED,
      netRuntimeMs: 0,
      accumulators: {},
    };
    return { ...job, getJobExecutionResult: async () => detachedResult };
  }
}
