import { Command } from 'commander';
import { exitCodeFor, isTerminalJobStatus } from '../../api/job-status.js';
import type { SluiceConfig } from '../../config/config.js';
import type { JobManager } from '../../entrypoint/jobmanager.js';
import {
  configFrom,
  type GlobalOptions,
  globalArgs,
  processLogger,
  withGlobalOptions,
} from '../global-options.js';
import { shutdownSignal } from '../signals.js';

/** Resolves once at least one job was submitted and every job has ended; the worst job's exit status. */
async function jobsEnded(jm: JobManager, config: SluiceConfig): Promise<number> {
  const { ClusterClient } = await import('../../client/cluster-client.js');
  const client = ClusterClient.on(jm.nc, config);
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const jobs = await client.list(true).catch(() => undefined);
    if (jobs && jobs.length > 0 && jobs.every((j) => isTerminalJobStatus(j.status))) {
      return Math.max(...jobs.map((j) => exitCodeFor(j.status)));
    }
  }
}

export function jobManagerCommand(): Command {
  return withGlobalOptions(new Command('jobmanager'))
    .description('run a JobManager (Dispatcher, ResourceManager, JobMasters) in the foreground')
    .option(
      '--application-spec <file>',
      "application mode: run this application's main, then shut the cluster down",
    )
    .option('--exit-when-jobs-end', 'per-job mode: shut the cluster down once its jobs have ended')
    .option(
      '--taskmanager-pool <range>',
      'MIN..MAX: keep a pool of TaskManager processes on this host (set by `cluster start --taskmanagers MIN..MAX`)',
    )
    .action(
      async (
        options: GlobalOptions & {
          applicationSpec?: string;
          exitWhenJobsEnd?: boolean;
          taskmanagerPool?: string;
        },
      ) => {
        const config = configFrom(options);
        const log = processLogger(config);
        // Loaded here, not at the top: every sluice command would otherwise load the whole JobManager.
        const { readApplicationSpec, runApplication } = await import('../../entrypoint/application.js');
        const { startJobManager } = await import('../../entrypoint/jobmanager.js');
        const spec = options.applicationSpec ? await readApplicationSpec(options.applicationSpec) : undefined;
        const workerPool = await taskManagerPool(options, config, log);
        const jm = await startJobManager(config, log, { workerPool });
        const closed = jm.nc.closed();
        const application = spec
          ? runApplication(jm, spec, config, log).then(({ result, ranIt }) => ({
              application: { exitCode: result.exitCode, ranIt },
            }))
          : options.exitWhenJobsEnd
            ? jobsEnded(jm, config).then((exitCode) => ({ application: { exitCode, ranIt: true } }))
            : new Promise<never>(() => {});
        const outcome = await Promise.race([
          shutdownSignal(),
          closed.then((err) => ({ closed: err })),
          application,
        ]);
        if (typeof outcome === 'object' && 'closed' in outcome) {
          log.fatal({ err: outcome.closed }, 'NATS connection closed; JobManager exits');
          process.exitCode = 1;
          return;
        }
        if (typeof outcome === 'object' && 'application' in outcome && !outcome.application.ranIt) {
          // HA: another JobManager ran the application to its end and shuts the TaskManagers down.
          log.info({ exitCode: outcome.application.exitCode }, 'application ended; standby JobManager exits');
          process.exitCode = outcome.application.exitCode;
        } else if (typeof outcome === 'object' && 'application' in outcome) {
          // The application is over: its TaskManagers go, then this JobManager.
          const asked = await jm.resourceManager.shutdownTaskManagers(
            spec ? `application ${spec.applicationId} ended` : 'the jobs of this per-job cluster ended',
          );
          const deadline = Date.now() + 10_000;
          while ((await jm.resourceManager.registeredCount()) > 0 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 100));
          }
          log.info(
            { taskManagers: asked, exitCode: outcome.application.exitCode },
            'application cluster shutting down',
          );
          process.exitCode = outcome.application.exitCode;
        } else {
          log.info({ signal: outcome }, 'shutting down');
        }
        await jm.stop();
        log.flush();
      },
    );
}

/** `--taskmanager-pool MIN..MAX`: the pool this JobManager keeps while it leads (standalone provider). */
async function taskManagerPool(
  options: GlobalOptions & { taskmanagerPool?: string },
  config: SluiceConfig,
  log: ReturnType<typeof processLogger>,
) {
  if (options.taskmanagerPool === undefined) return undefined;
  const { parseTaskManagers, TaskManagerPool } = await import('../../providers/taskmanager-pool.js');
  const { clusterDir } = await import('../../providers/standalone.js');
  const range = parseTaskManagers(options.taskmanagerPool);
  if (typeof range === 'number') {
    throw new Error(`--taskmanager-pool must be a range MIN..MAX, got '${options.taskmanagerPool}'`);
  }
  return new TaskManagerPool({
    ...range,
    slotsPerTaskManager: config.taskmanager.numberOfTaskSlots,
    idleTimeoutMs: config.taskManagerIdleTimeoutMs,
    dir: clusterDir(config),
    // The pool's TaskManagers get this JobManager's configuration sources.
    taskManagerArgs: globalArgs(options),
    log: log.child({ cluster: config.clusterId, process: 'jobmanager', actor: 'TaskManagerPool' }),
  });
}
