import { Command } from 'commander';
import { readApplicationSpec, runApplication } from '../../runtime/application/application.js';
import { startJobManager } from '../../runtime/jobmanager.js';
import { configFrom, type GlobalOptions, processLogger, withGlobalOptions } from '../global-options.js';
import { shutdownSignal } from '../signals.js';

export function jobManagerCommand(): Command {
  return withGlobalOptions(new Command('jobmanager'))
    .description('run a JobManager (Dispatcher, ResourceManager, JobMasters) in the foreground')
    .option(
      '--application-spec <file>',
      "application mode: run this application's main, then shut the cluster down",
    )
    .action(async (options: GlobalOptions & { applicationSpec?: string }) => {
      const config = configFrom(options);
      const log = processLogger(config);
      const spec = options.applicationSpec ? await readApplicationSpec(options.applicationSpec) : undefined;
      const jm = await startJobManager(config, log);
      const closed = jm.nc.closed();
      const application = spec
        ? runApplication(jm, spec, config, log).then((result) => ({ application: result }))
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
      if (typeof outcome === 'object' && 'application' in outcome) {
        // The application is over: its TaskManagers go, then this JobManager.
        const asked = await jm.resourceManager.shutdownTaskManagers(
          `application ${spec?.applicationId} ended`,
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
    });
}
