import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { ClusterClient } from '../../client/cluster-client.js';
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
import { startLocalCluster } from '../../runtime/local-cluster.js';
import { duration, errorText } from '../format.js';
import { clientLogger, configFrom, type GlobalOptions, withGlobalOptions } from '../global-options.js';

interface RunOptions extends GlobalOptions {
  detached?: boolean;
  parallelism?: string;
  local?: boolean;
}

export function runCommand(): Command {
  const builtins = Object.entries(BUILTIN_JOBS)
    .map(([name, job]) => `  ${BUILTIN_PREFIX}${name.padEnd(10)} ${job.description}`)
    .join('\n');
  return withGlobalOptions(new Command('run'))
    .description('submit a job to the cluster and follow it (attached) or return its id (-d)')
    .argument('<job>', 'the job to run')
    .argument('[args...]', 'arguments of the job')
    .option('-d, --detached', 'print the job id and return at once')
    .option('-p, --parallelism <n>', 'parallelism of the job (default: parallelism.default)')
    .option('--local', 'run on a private local cluster in this process (starts its own nats-server)')
    .passThroughOptions()
    .addHelpText('after', `\nBuilt-in jobs:\n${builtins}`)
    .action(async (job: string, args: string[], options: RunOptions) => {
      const config = configFrom(options, { 'parallelism.default': options.parallelism });
      const graph = jobGraphFor(job, args, config);
      if (!options.local) {
        process.exitCode = await submit(config, graph, options.detached === true);
        return;
      }
      const log = clientLogger(config);
      const local = await startLocalCluster(config, log, {
        slots: config.parallelismDefault,
        ...(options.nats === undefined ? {} : { natsUrl: options.nats }),
      });
      const interrupted = () => void local.close().finally(() => process.exit(130));
      process.once('SIGINT', interrupted);
      try {
        process.exitCode = await submit(
          local.config,
          graph,
          false,
          ClusterClient.on(local.jobManager.nc, local.config),
        );
      } finally {
        process.off('SIGINT', interrupted);
        await local.close();
      }
    });
}

function jobGraphFor(job: string, args: string[], config: SluiceConfig): JobGraph {
  if (isBuiltinJobRef(job)) return builtinJobGraph(job, args, config.parallelismDefault, newJobId());
  const what = existsSync(job)
    ? `'${job}' is a file, but job files`
    : `'${job}' is neither a built-in job nor a file; job files`;
  throw new SluiceError(
    ErrorCode.InvalidJob,
    `${what} arrive with the DataStream API; until then run a built-in job: ${Object.keys(BUILTIN_JOBS)
      .map((n) => BUILTIN_PREFIX + n)
      .join(', ')}`,
  );
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
