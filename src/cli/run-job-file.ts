import { exitCodeFor, JobStatus } from '../api/job-status.js';
import { ClusterClient } from '../client/cluster-client.js';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { SluiceConfig } from '../config/config.js';
import { jobConfigurationFrom } from '../config/job-configuration.js';
import { ClientBridge } from '../execution/client-bridge.js';
import { bundleJobFile, localBundleFile, uploadBundle } from '../execution/job-program.js';
import { closeLocalCluster, runLocally } from '../execution/local-bridge.js';
import { runProgram } from '../execution/run-program.js';
import type { JobGraph } from '../jobgraph/job-graph.js';
import type { LocalCluster } from '../minicluster/local-cluster.js';
import { duration, errorText } from './format.js';
import { clientLogger, type GlobalOptions } from './global-options.js';

export interface RunOptions extends GlobalOptions {
  detached?: boolean;
  parallelism?: string;
  local?: boolean;
  target?: string;
  shutdownOnAttachedExit?: boolean;
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
}

export async function onLocalCluster(
  config: SluiceConfig,
  options: RunOptions,
  fn: (local: LocalCluster) => Promise<number>,
): Promise<number> {
  const { startLocalCluster } = await import('../minicluster/local-cluster.js');
  const local = await startLocalCluster(config, clientLogger(config), {
    slots: config.parallelismDefault,
    ...(options.nats === undefined ? {} : { natsUrl: options.nats }),
  });
  const interrupted = () => void local.close().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  try {
    return await fn(local);
  } finally {
    process.off('SIGINT', interrupted);
    await local.close();
  }
}

/** A job file: bundled, then its main runs here, submitting each execute() to the cluster. */
export async function runJobFile(
  job: string,
  args: string[],
  config: SluiceConfig,
  options: RunOptions,
): Promise<number> {
  const bundle = await bundleJobFile(job);
  const file = await localBundleFile(bundle);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  if (options.local) {
    // The embedded cluster (a whole JobManager and TaskManager) is loaded only for a local run.
    const { startLocalCluster } = await import('../minicluster/local-cluster.js');
    const bridge = runLocally({
      config,
      startCluster: startLocalCluster,
      ...(options.nats === undefined ? {} : { natsUrl: options.nats }),
    });
    try {
      return await runProgram({ file, displayName: job, args, bridge, attached: true, out, err });
    } finally {
      await closeLocalCluster();
    }
  }
  const client = await ClusterClient.connect(config, clientLogger(config));
  try {
    const { ref, uploaded } = await uploadBundle(
      client.nc,
      config.clusterId,
      bundle,
      config.highAvailability.replicas,
    );
    err(
      uploaded
        ? `Uploaded job bundle ${ref.sha256.slice(0, 12)} (${Math.ceil(ref.sizeBytes / 1024)} KiB)`
        : `Job bundle ${ref.sha256.slice(0, 12)} is already in the cluster`,
    );
    let last: string | undefined;
    const bridge = new ClientBridge({
      client,
      nc: client.nc,
      maxMessageBytes: config.rpc.maxMessageBytes,
      artifact: ref,
      entry: job,
      args,
      parallelism: config.parallelismDefault,
      bufferTimeoutMs: config.bufferTimeoutMs,
      detached: options.detached === true,
      configuration: jobConfigurationFrom(options.define ?? []),
      ...(options.fromSavepoint
        ? {
            savepoint: {
              path: checkSavepointPath(options.fromSavepoint),
              allowNonRestoredState: options.allowNonRestoredState === true,
            },
          }
        : {}),
      report: out,
      onEvent: (event) => {
        const line = `${event.jobId.slice(0, 8)} ${event.message ?? event.status}`;
        if (line !== last) err(`${new Date(event.timestamp).toISOString()}  ${line}`);
        last = line;
      },
    });
    // On a terminal, an attached client shows live progress of its running jobs every 2 s.
    const attached = options.detached !== true;
    const progress =
      attached && process.stderr.isTTY
        ? setInterval(() => void showProgress(client, bridge, err), 2_000)
        : undefined;
    try {
      return await runProgram({ file, displayName: job, args, bridge, attached, out, err });
    } finally {
      clearInterval(progress);
    }
  } finally {
    await client.close();
  }
}

async function showProgress(
  client: ClusterClient,
  bridge: ClientBridge,
  err: (line: string) => void,
): Promise<void> {
  for (const { graph } of bridge.jobs) {
    const details = await client.status(graph.jobId).catch(() => undefined);
    if (!details || details.status !== JobStatus.RUNNING) continue;
    const first = details.vertices[0];
    const last = details.vertices[details.vertices.length - 1];
    const sum = (acc: Record<string, number> | undefined, suffix: string) =>
      Object.entries(acc ?? {}).reduce((n, [k, v]) => (k.endsWith(suffix) ? n + v : n), 0);
    err(
      `${graph.jobId.slice(0, 8)} RUNNING  records in ${sum(first?.accumulators, ' records in')}, into the last vertex ${sum(last?.accumulators, ' records in')}, restarts ${details.restarts}`,
    );
  }
}

/** Submits and, when attached, follows the job to its end; returns the exit status. */
export async function submitBuiltinJob(
  config: SluiceConfig,
  graph: JobGraph,
  detached: boolean,
  given?: ClusterClient,
): Promise<number> {
  const client = given ?? (await ClusterClient.connect(config, clientLogger(config)));
  try {
    if (detached) {
      await client.submit(graph);
      process.stdout.write(`Job has been submitted with JobID ${graph.jobId}\n`);
      return 0;
    }
    const interrupt = new AbortController();
    const onSigint = () => interrupt.abort();
    process.once('SIGINT', onSigint);
    let last: string | undefined;
    const follower = client.follow(graph.jobId, {
      signal: interrupt.signal,
      onEvent: (event) => {
        const line = event.message ?? event.status;
        if (line !== last) process.stderr.write(`${new Date(event.timestamp).toISOString()}  ${line}\n`);
        last = line;
      },
    });
    try {
      await client.submit(graph);
    } catch (err) {
      follower.stop();
      process.off('SIGINT', onSigint);
      throw err;
    }
    process.stdout.write(`Job has been submitted with JobID ${graph.jobId}\n`);
    let details: Awaited<typeof follower.done>;
    try {
      details = await follower.done;
    } catch (err) {
      if (interrupt.signal.aborted) {
        process.stderr.write(
          `Client interrupted; job ${graph.jobId} keeps running. Cancel it with: sluice cancel ${graph.jobId}\n`,
        );
        return 130;
      }
      throw err;
    } finally {
      process.off('SIGINT', onSigint);
    }
    process.stdout.write(`Job ${graph.jobId} ${details.status} after ${duration(details.durationMs)}\n`);
    for (const [name, value] of Object.entries(details.accumulators))
      process.stdout.write(`  ${name}: ${value}\n`);
    if (details.status !== JobStatus.FINISHED && details.error) {
      process.stderr.write(`Job ${details.status}: ${errorText(details.error)}\n`);
    }
    return exitCodeFor(details.status);
  } finally {
    if (!given) await client.close();
  }
}

function checkSavepointPath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  if (!/^[A-Za-z0-9_.\-/]{1,512}$/.test(trimmed)) {
    throw new SluiceError(
      ErrorCode.InvalidConfig,
      `'${path}' is not a savepoint path (letters, digits, _ . - and / as printed by 'sluice savepoint')`,
    );
  }
  return trimmed;
}
