import { Command } from 'commander';
import { configFrom, type GlobalOptions, withGlobalOptions } from '../global-options.js';

export function runApplicationCommand(): Command {
  return withGlobalOptions(new Command('run-application'))
    .description("application mode: start a dedicated cluster whose JobManager runs the job file's main")
    .argument('<job>', 'the job file')
    .argument('[args...]', 'arguments of the program')
    .option('-d, --detached', 'print the application id and return at once')
    .option('-p, --parallelism <n>', 'default parallelism of the program (parallelism.default)')
    .option('--taskmanagers <n>', 'TaskManagers to start (default: enough slots for the parallelism)')
    .option(
      '--jobmanagers <n>',
      'JobManagers to start (default 1); more are standbys and need -D high-availability.type=nats',
    )
    .option('--sae, --shutdown-on-attached-exit', 'shut the cluster down when this client is interrupted')
    .passThroughOptions()
    .action(
      async (
        job: string,
        args: string[],
        options: GlobalOptions & {
          detached?: boolean;
          parallelism?: string;
          taskmanagers?: string;
          jobmanagers?: string;
          shutdownOnAttachedExit?: boolean;
        },
      ) => {
        const config = configFrom(options, { 'parallelism.default': options.parallelism });
        const taskManagers = options.taskmanagers === undefined ? undefined : Number(options.taskmanagers);
        if (
          taskManagers !== undefined &&
          (!Number.isInteger(taskManagers) || taskManagers < 1 || taskManagers > 64)
        ) {
          throw new Error(`--taskmanagers must be an integer from 1 to 64, got '${options.taskmanagers}'`);
        }
        const jobManagers = options.jobmanagers === undefined ? undefined : Number(options.jobmanagers);
        if (
          jobManagers !== undefined &&
          (!Number.isInteger(jobManagers) || jobManagers < 1 || jobManagers > 9)
        ) {
          throw new Error(`--jobmanagers must be an integer from 1 to 9, got '${options.jobmanagers}'`);
        }
        const { runApplicationMode } = await import('../application-mode.js');
        process.exitCode = await runApplicationMode(job, args, config, options, {
          detached: options.detached === true,
          parallelism: config.parallelismDefault,
          shutdownOnAttachedExit: options.shutdownOnAttachedExit === true,
          ...(taskManagers === undefined ? {} : { taskManagers }),
          ...(jobManagers === undefined ? {} : { jobManagers }),
        });
      },
    );
}
