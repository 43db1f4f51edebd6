/**
 * Running a program directly (`node job.js`, `tsx job.ts`, or createLocalEnvironment): its jobs run on a
 * private cluster in this process — a nats-server child on a random port with a temp store dir, a
 * JobManager and TaskManagers — started on the first execute() and closed when no job runs any more, on
 * Ctrl-C, and on exit. TaskExecutors take the plans (the user's functions) straight from memory.
 *
 * The cluster itself is assembled by `src/minicluster/` (a higher layer): it passes `startCluster`
 * in, so this module knows only the small `LocalClusterHandle` contract below.
 */

import type { NatsConnection } from '@nats-io/transport-node';
import type { ExecuteRequest, ExecutionBridge } from '../api/execution-bridge.js';
import { ClusterClient } from '../client/cluster-client.js';
import { type SubmittedJob, submitJobGraph } from '../client/job-submission.js';
import { createLogger, type Logger } from '../common/log.js';
import { loadConfig, type SluiceConfig } from '../config/config.js';
import { toJobGraph } from '../jobgraph/chaining.js';
import { requiredSlots } from '../jobgraph/job-graph.js';
import { newJobId } from '../jobgraph/job-id.js';
import { InMemoryPlans } from './plan-resolver.js';

/** A running cluster in this process, as this bridge uses it. */
export interface LocalClusterHandle {
  /** The configuration the cluster runs with (its NATS URL, slots per TaskManager, …). */
  readonly config: SluiceConfig;
  /** The JobManager's connection: the bridge submits through it. */
  readonly nc: NatsConnection;
  /** Starts one more TaskManager with `slots` slots that takes plans from the same memory. */
  addTaskManager(slots: number): Promise<void>;
  /** Stops every process of the cluster; jobs still running end SUSPENDED. */
  close(): Promise<void>;
}

/** Starts a local cluster (`src/minicluster/local-cluster.ts` provides it). */
export type StartLocalCluster = (
  config: SluiceConfig,
  log: Logger,
  options: { slots: number; plans: InMemoryPlans; natsUrl?: string },
) => Promise<LocalClusterHandle>;

export interface LocalRunOptions {
  natsUrl?: string;
  /** Configuration of the local cluster; default: from the environment (SLUICE_*). */
  config?: SluiceConfig;
  startCluster: StartLocalCluster;
}

interface Running {
  cluster: LocalClusterHandle;
  client: ClusterClient;
  plans: InMemoryPlans;
  slots: number;
  log: Logger;
}

let running: Promise<Running> | undefined;
let activeJobs = 0;

/** Set on Ctrl-C: the program's pending execute() calls then never settle while the cluster closes. */
let interrupted = false;

function onSigint(): void {
  interrupted = true;
  void closeLocalCluster().finally(() => process.exit(130));
}

/** Waits for the job's end (and the cluster's close, if it was the last job); hangs once interrupted. */
async function settled(ended: Promise<void>): Promise<void> {
  await ended;
  if (interrupted) await new Promise(() => {});
}

async function start(options: LocalRunOptions): Promise<Running> {
  const config = options.config ?? loadConfig({ env: process.env });
  const log = createLogger({
    level: config.log.level === 'info' ? 'warn' : config.log.level,
    format: config.log.format === 'pretty' ? 'pretty' : 'json',
    destination: 2,
  });
  const plans = new InMemoryPlans();
  const cluster = await options.startCluster(config, log, {
    slots: config.taskmanager.numberOfTaskSlots,
    plans,
    ...(options.natsUrl === undefined ? {} : { natsUrl: options.natsUrl }),
  });
  process.once('SIGINT', onSigint);
  const client = ClusterClient.on(cluster.nc, cluster.config);
  return {
    cluster,
    client,
    plans,
    slots: cluster.config.taskmanager.numberOfTaskSlots,
    log,
  };
}

/** Stops the local cluster (if one runs). Jobs still running end SUSPENDED. */
export async function closeLocalCluster(): Promise<void> {
  const current = running;
  running = undefined;
  if (!current) return;
  process.off('SIGINT', onSigint);
  const r = await current.catch(() => undefined);
  if (!r) return;
  await r.cluster.close();
}

/** The execution bridge of a program that runs on the local cluster. */
export function runLocally(options: LocalRunOptions): ExecutionBridge {
  return {
    submit: async (request: ExecuteRequest) => {
      running ??= start(options);
      let r: Running;
      try {
        r = await running;
      } catch (err) {
        running = undefined;
        throw err;
      }
      const jobId = newJobId();
      const graph = toJobGraph(request.graph, {
        jobId,
        name: request.jobName,
        defaultBufferTimeoutMs: r.cluster.config.bufferTimeoutMs,
      });
      const needed = requiredSlots(graph);
      if (needed > r.slots) {
        await r.cluster.addTaskManager(needed - r.slots);
        r.slots = needed;
      }
      r.plans.register(jobId, request.graph);
      activeJobs++;
      let job: SubmittedJob;
      try {
        job = await submitJobGraph(r.client, r.cluster.nc, graph, {
          collect: request.collect,
          maxMessageBytes: r.cluster.config.rpc.maxMessageBytes,
        });
      } catch (err) {
        await jobEnded(r, jobId);
        throw err;
      }
      // The cluster closes when its last job ends, before the program hears the result: a program
      // that then fails (an uncaught JobExecutionError) exits with nothing left behind.
      const ended = job.done.catch(() => undefined).then(() => jobEnded(r, jobId));
      return {
        ...job,
        getJobExecutionResult: async () => {
          await settled(ended);
          return job.getJobExecutionResult();
        },
        collected: async () => {
          await settled(ended);
          return job.collected();
        },
      };
    },
  };
}

async function jobEnded(r: Running, jobId: string): Promise<void> {
  r.plans.delete(jobId);
  activeJobs--;
  if (activeJobs === 0) await closeLocalCluster();
}
