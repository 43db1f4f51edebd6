/**
 * A whole cluster in this process, for `sluice run --local` (and the local execution environment): a
 * private nats-server child (random port, temp store dir) unless a NATS URL is given, a JobManager and
 * one TaskManager. `close()` leaves no process and no temp dir behind.
 */
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import { type JobManager, startJobManager } from '../entrypoint/jobmanager.js';
import { startTaskManager, type TaskManager } from '../entrypoint/taskmanager.js';
import type { LocalClusterHandle } from '../execution/local-bridge.js';
import type { InMemoryPlans } from '../execution/plan-resolver.js';
import { type NatsServerHandle, startNatsServer } from '../nats/launcher.js';

export interface LocalCluster extends LocalClusterHandle {
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
  const extraTaskManagers: TaskManager[] = [];
  const close = async () => {
    await Promise.all(extraTaskManagers.map((tm) => tm.stop()));
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
    const plans = options.plans ? { plans: options.plans } : {};
    taskManager = await startTaskManager(config, log, plans);
    const addTaskManager = async (slots: number) => {
      const tmConfig = { ...config, taskmanager: { ...config.taskmanager, numberOfTaskSlots: slots } };
      extraTaskManagers.push(await startTaskManager(tmConfig, log, plans));
    };
    return { config, jobManager, taskManager, nc: jobManager.nc, addTaskManager, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
