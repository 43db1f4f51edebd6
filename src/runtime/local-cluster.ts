/**
 * A whole cluster in this process, for `sluice run --local` (and the local execution environment): a
 * private nats-server child (random port, temp store dir) unless a NATS URL is given, a JobManager and
 * one TaskManager. `close()` leaves no process and no temp dir behind.
 */
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import { type NatsServerHandle, startNatsServer } from '../nats/launcher.js';
import { type JobManager, startJobManager } from './jobmanager.js';
import type { InMemoryPlans } from './taskexecutor/plan-resolver.js';
import { startTaskManager, type TaskManager } from './taskmanager.js';

export interface LocalCluster {
  readonly config: SluiceConfig;
  readonly jobManager: JobManager;
  readonly taskManager: TaskManager;
  close(): Promise<void>;
}

export interface LocalClusterOptions {
  /** Use this NATS instead of starting a private server. */
  natsUrl?: string;
  slots: number;
  /** Plans of jobs whose program runs in this process. */
  plans?: InMemoryPlans;
}

export async function startLocalCluster(
  base: SluiceConfig,
  log: Logger,
  options: LocalClusterOptions,
): Promise<LocalCluster> {
  let server: NatsServerHandle | undefined;
  let jobManager: JobManager | undefined;
  let taskManager: TaskManager | undefined;
  const close = async () => {
    await taskManager?.stop();
    await jobManager?.stop();
    await server?.stop();
  };
  try {
    let servers = base.nats.servers;
    if (options.natsUrl === undefined) {
      server = await startNatsServer();
      servers = [server.url];
    }
    const config: SluiceConfig = {
      ...base,
      nats: { ...base.nats, servers: options.natsUrl === undefined ? servers : [options.natsUrl] },
      // Tasks run on this process's event loop (slot worker threads are for TaskManager processes).
      taskmanager: {
        ...base.taskmanager,
        numberOfTaskSlots: Math.max(options.slots, 1),
        slotIsolation: 'none',
      },
      // A program's private cluster serves no metrics endpoint (nor a REST API, below).
      metrics: { ...base.metrics, enabled: false },
    };
    // No REST API: a program's private cluster must not take rest.port (8081) from a session cluster.
    jobManager = await startJobManager(config, log, { rest: false });
    taskManager = await startTaskManager(config, log, options.plans ? { plans: options.plans } : {});
    return { config, jobManager, taskManager, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
