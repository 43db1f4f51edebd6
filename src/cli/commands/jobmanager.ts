import { Command } from 'commander';
import { startJobManager } from '../../runtime/jobmanager.js';
import { configFrom, type GlobalOptions, processLogger, withGlobalOptions } from '../global-options.js';
import { shutdownSignal } from '../signals.js';

export function jobManagerCommand(): Command {
  return withGlobalOptions(new Command('jobmanager'))
    .description('run a JobManager (Dispatcher, ResourceManager, JobMasters) in the foreground')
    .action(async (options: GlobalOptions) => {
      const config = configFrom(options);
      const log = processLogger(config);
      const jm = await startJobManager(config, log);
      const closed = jm.nc.closed();
      const outcome = await Promise.race([shutdownSignal(), closed.then((err) => ({ closed: err }))]);
      if (typeof outcome === 'object') {
        log.fatal({ err: outcome.closed }, 'NATS connection closed; JobManager exits');
        process.exitCode = 1;
        return;
      }
      log.info({ signal: outcome }, 'shutting down');
      await jm.stop();
      log.flush();
    });
}
