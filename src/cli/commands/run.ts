import { Command } from 'commander';
import { ClusterClient } from '../../client/cluster-client.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import { jobConfigurationFrom } from '../../config/job-configuration.js';
import {
  BUILTIN_JOBS,
  BUILTIN_PREFIX,
  builtinJobGraph,
  isBuiltinJobRef,
} from '../../jobgraph/builtin-jobs.js';
import { newJobId } from '../../jobgraph/job-id.js';
import { exitWithParent } from '../exit-with-parent.js';
import { configFrom, withGlobalOptions } from '../global-options.js';
import { onLocalCluster, type RunOptions, runJobFile, submitBuiltinJob } from '../run-job-file.js';

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
      exitWithParent();
      const target = options.target ?? 'session';
      // A job's job.autoscaler.* go with it to a session cluster, checked there against the JobManager's.
      const config = configFrom(
        options,
        { 'parallelism.default': options.parallelism },
        target === 'session',
      );
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
        const { runApplicationMode } = await import('../application-mode.js');
        const { runPerJob } = await import('../per-job-mode.js');
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
        const configuration = jobConfigurationFrom(options.define ?? []);
        const graph = {
          ...builtinJobGraph(job, args, config.parallelismDefault, newJobId()),
          ...(configuration ? { configuration: { ...configuration } } : {}),
        };
        process.exitCode = options.local
          ? await onLocalCluster(config, options, (local) =>
              submitBuiltinJob(
                local.config,
                graph,
                false,
                ClusterClient.on(local.jobManager.nc, local.config),
              ),
            )
          : await submitBuiltinJob(config, graph, options.detached === true);
        return;
      }
      process.exitCode = await runJobFile(job, args, config, options);
    });
}
