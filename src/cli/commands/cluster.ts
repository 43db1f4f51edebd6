import { Command } from 'commander';
import { isAlive, listClusters, startCluster, stopCluster } from '../../providers/standalone.js';
import { parseTaskManagers } from '../../providers/taskmanager-pool.js';
import { table } from '../format.js';
import { configFrom, type GlobalOptions, globalArgs, withGlobalOptions } from '../global-options.js';

export function clusterCommand(): Command {
  const cluster = new Command('cluster').description(
    'start or stop a standalone session cluster on this host',
  );
  cluster.addCommand(
    withGlobalOptions(new Command('start'))
      .description('start a JobManager and TaskManagers as background processes')
      .option(
        '--taskmanagers <n>',
        'number of TaskManagers, or MIN..MAX: a pool the JobManager grows when slots are short (a job or a rescale needs more) and shrinks when TaskManagers idle (resourcemanager.taskmanager-timeout)',
        '1',
      )
      .option(
        '--jobmanagers <n>',
        'number of JobManagers; more than 1 runs standbys (sets high-availability.type=nats, needs JetStream)',
        '1',
      )
      .option('--slots <n>', 'slots per TaskManager (taskmanager.numberOfTaskSlots)')
      .action(
        async (options: GlobalOptions & { taskmanagers: string; jobmanagers: string; slots?: string }) => {
          const taskManagers = parseTaskManagers(options.taskmanagers);
          const jobManagers = Number(options.jobmanagers);
          if (!Number.isInteger(jobManagers) || jobManagers < 1 || jobManagers > 9) {
            throw new Error(`--jobmanagers must be an integer from 1 to 9, got '${options.jobmanagers}'`);
          }
          const explicitNone =
            (options.define ?? []).some((d) => /^\s*high-availability\.type\s*=\s*none\s*$/i.test(d)) ||
            /^none$/i.test(process.env.SLUICE_HIGH_AVAILABILITY_TYPE ?? '');
          if (jobManagers > 1 && explicitNone) {
            throw new Error(
              `--jobmanagers ${jobManagers} needs high availability, but high-availability.type is set to 'none': ` +
                `several JobManagers without leader election would all serve the cluster at once. Drop the setting ` +
                `(cluster start then uses high-availability.type=nats) or start 1 JobManager`,
            );
          }
          const haArgs = jobManagers > 1 ? ['-D', 'high-availability.type=nats'] : [];
          const withHa: GlobalOptions = {
            ...options,
            define: [...(options.define ?? []), ...haArgs.slice(1)],
          };
          const config = configFrom(withHa, { 'taskmanager.numberOfTaskSlots': options.slots });
          const state = await startCluster(config, {
            jobManagers,
            taskManagers,
            slots: config.taskmanager.numberOfTaskSlots,
            childArgs: globalArgs(withHa),
            onProgress: (line) => process.stdout.write(`${line}\n`),
          });
          process.stdout.write(
            `Cluster '${state.clusterId}' is up on ${state.nats.join(', ')}: ${jobManagers === 1 ? '1 JobManager' : `${jobManagers} JobManagers (1 leader, ${jobManagers - 1} standby)`}, ${typeof taskManagers === 'number' ? `${taskManagers} TaskManagers` : `a pool of ${taskManagers.min} to ${taskManagers.max} TaskManagers`} × ${config.taskmanager.numberOfTaskSlots} slots\n`,
          );
        },
      ),
  );
  cluster.addCommand(
    withGlobalOptions(new Command('stop'))
      .description('stop the processes started by `cluster start` (SIGTERM, then wait)')
      .action(async (options: GlobalOptions) => {
        const config = configFrom(options);
        const state = await stopCluster(config);
        if (!state) {
          process.stdout.write(`No cluster '${config.clusterId}' is running from this host.\n`);
          return;
        }
        const left = state.processes.filter((p) => isAlive(p.pid));
        process.stdout.write(`Stopped cluster '${state.clusterId}' (${state.processes.length} processes).\n`);
        if (left.length > 0) process.exitCode = 1;
      }),
  );
  cluster.addCommand(
    withGlobalOptions(new Command('list'))
      .description('clusters started from this host: session, application and per-job, and whether they run')
      .action((options: GlobalOptions) => {
        const clusters = listClusters(configFrom(options));
        if (clusters.length === 0) {
          process.stdout.write('No clusters were started from this host.\n');
          return;
        }
        process.stdout.write(
          `${table(
            ['CLUSTER ID', 'KIND', 'STATE', 'PROCESSES', 'STARTED'],
            clusters.map((c) => [
              c.clusterId,
              c.kind,
              c.running ? 'running' : 'ended',
              String(c.processes),
              c.startedAt,
            ]),
          )}\n`,
        );
      }),
  );
  return cluster;
}
