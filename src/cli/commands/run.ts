import { Command } from 'commander';
import { ClientBridge } from '../../client/client-bridge.js';
import { ClusterClient } from '../../client/cluster-client.js';
import { bundleJobFile, localBundleFile, uploadBundle } from '../../client/job-program.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { SluiceConfig } from '../../config/config.js';
import {
  BUILTIN_JOBS,
  BUILTIN_PREFIX,
  builtinJobGraph,
  isBuiltinJobRef,
} from '../../jobgraph/builtin-jobs.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import { newJobId } from '../../jobgraph/job-id.js';
import { exitCodeFor, JobStatus } from '../../runtime/job-status.js';
import { type LocalCluster, startLocalCluster } from '../../runtime/local-cluster.js';
import { closeLocalCluster, runLocally } from '../../runtime/local-runner.js';
import { runApplicationMode } from '../application-mode.js';
import { duration, errorText } from '../format.js';
import { clientLogger, configFrom, type GlobalOptions, withGlobalOptions } from '../global-options.js';
import { runPerJob } from '../per-job-mode.js';
import { runProgram } from '../run-program.js';

export interface RunOptions extends GlobalOptions {
  detached?: boolean;
  parallelism?: string;
  local?: boolean;
  target?: string;
  shutdownOnAttachedExit?: boolean;
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
}

const TARGETS = ['session', 'application', 'per-job'] as const;

export function runCommand(): Command {
  const builtins = Object.entries(BUILTIN_JOBS)
    .map(([name, job]) => `  ${BUILTIN_PREFIX}${name.padEnd(10)} ${job.description}`)
    .join('\n');
  return withGlobalOptions(new Command('run'))
    .description('submit a job to the cluster and follow it (attached) or return its id (-d)')
    .argument('<job>', 'a job file (.ts/.js, bundled with its imports) or a built-in job (builtin:<name>)')
    .argument('[args...]', 'arguments of the job')
    .option('-d, --detached', 'print the job id and return at once')
    .option('-p, --parallelism <n>', 'parallelism of the job (default: parallelism.default)')
    .option('--local', 'run on a private local cluster in this process (starts its own nats-server)')
    .option(
      '-s, --fromSavepoint <path>',
      'start from this savepoint (a path printed by sluice savepoint / stop)',
    )
    .option(
      '-n, --allow-non-restored-state',
      'skip savepoint state of operators the job no longer has (else that is an error)',
    )
    .option('-t, --target <target>', `where the job runs: ${TARGETS.join(', ')}`, 'session')
    .option(
      '--sae, --shutdown-on-attached-exit',
      'application/per-job: shut the cluster down when this client is interrupted',
    )
    .passThroughOptions()
    .addHelpText('after', `\nBuilt-in jobs:\n${builtins}`)
    .action(async (job: string, args: string[], options: RunOptions) => {
      const config = configFrom(options, { 'parallelism.default': options.parallelism });
      const target = options.target ?? 'session';
      if (!(TARGETS as readonly string[]).includes(target)) {
        throw new SluiceError(
          ErrorCode.InvalidConfig,
          `unknown target '${target}' (-t): use ${TARGETS.join(', ')}`,
        );
      }
      if (target !== 'session') {
        if (target === 'per-job') {
          process.stderr.write(
            'Per-job mode is deprecated (as in Flink since 1.15): use application mode, sluice run-application.\n',
          );
        }
        process.exitCode =
          target === 'application'
            ? await runApplicationMode(job, args, config, options, {
                detached: options.detached === true,
                parallelism: config.parallelismDefault,
                shutdownOnAttachedExit: options.shutdownOnAttachedExit === true,
              })
            : await runPerJob(job, args, config, options);
        return;
      }
      if (isBuiltinJobRef(job)) {
        const graph = builtinJobGraph(job, args, config.parallelismDefault, newJobId());
        process.exitCode = options.local
          ? await onLocalCluster(config, options, (local) =>
              submit(local.config, graph, false, ClusterClient.on(local.jobManager.nc, local.config)),
            )
          : await submit(config, graph, options.detached === true);
        return;
      }
      process.exitCode = await runJobFile(job, args, config, options);
    });
}

async function onLocalCluster(
  config: SluiceConfig,
  options: RunOptions,
  fn: (local: LocalCluster) => Promise<number>,
): Promise<number> {
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
    const bridge = runLocally({ config, ...(options.nats === undefined ? {} : { natsUrl: options.nats }) });
    try {
      return await runProgram({ file, displayName: job, args, bridge, attached: true, out, err });
    } finally {
      await closeLocalCluster();
    }
  }
  const client = await ClusterClient.connect(config, clientLogger(config));
  try {
    const { ref, uploaded } = await uploadBundle(client.nc, config.clusterId, bundle);
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
async function submit(
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
