import { Command } from 'commander';
import { configFrom, type GlobalOptions, processLogger, withGlobalOptions } from '../global-options.js';
import { shutdownSignal } from '../signals.js';

export function taskManagerCommand(): Command {
  return withGlobalOptions(new Command('taskmanager'))
    .description('run a TaskManager (a TaskExecutor offering slots) in the foreground')
    .option('--slots <n>', 'number of task slots (taskmanager.numberOfTaskSlots)')
    .action(async (options: GlobalOptions & { slots?: string }) => {
      const config = configFrom(options, { 'taskmanager.numberOfTaskSlots': options.slots });
      const log = processLogger(config);
      let fatal: (err: Error) => void = () => undefined;
      const fatalError = new Promise<Error>((resolve) => {
        fatal = resolve;
      });
      let requested: (reason: string) => void = () => undefined;
      const shutdownRequested = new Promise<NodeJS.Signals>((resolve) => {
        requested = (reason) => {
          log.info({ reason }, 'the cluster asked this TaskManager to shut down');
          resolve('SIGTERM');
        };
      });
      const { startTaskManager } = await import('../../entrypoint/taskmanager.js');
      const tm = await startTaskManager(config, log, {
        onFatal: (err) => fatal(err),
        onShutdownRequested: (reason) => requested(reason),
      });
      const outcome = await Promise.race([
        shutdownSignal(),
        shutdownRequested,
        fatalError,
        tm.nc.closed().then((err) => err ?? new Error('NATS connection closed')),
      ]);
      if (outcome instanceof Error) {
        log.fatal({ err: outcome.message }, 'TaskManager exits');
        await tm.stop();
        log.flush();
        process.exitCode = 1;
        return;
      }
      log.info({ signal: outcome }, 'shutting down');
      await tm.stop();
      log.flush();
    });
}
