/**
 * A TaskManager: one TaskExecutor with `taskmanager.numberOfTaskSlots` slots on its own NATS connection.
 * Used by `sluice taskmanager` and by the local cluster. With `taskmanager.slot-isolation: thread` (not in
 * the local environment, whose plans live in this thread) each slot's tasks run in a worker thread of
 * their own; registration, heartbeats and the metrics endpoint stay on this thread.
 */
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import { Rpc } from '../actors/rpc.js';
import { Subjects } from '../actors/subjects.js';
import type { SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { processId } from '../common/process-id.js';
import type { SluiceConfig } from '../config/config.js';
import { DefaultPlanResolver, type InMemoryPlans } from '../execution/plan-resolver.js';
import { startProcessMetrics } from '../metrics/process-metrics.js';
import { TaskMetrics } from '../metrics/task-metrics.js';
import { connectNats } from '../nats/connection.js';
import { lazyArtifactCache } from '../runtime/artifacts/artifact-store.js';
import { LocalStateCache, localRecovery } from '../runtime/checkpoint/local-state.js';
import { StateStore } from '../runtime/checkpoint/state-store.js';
import { SlotWorkerPool } from '../runtime/taskexecutor/slot-workers.js';
import { TaskExecutor } from '../runtime/taskexecutor/task-executor.js';

/** Under tsx (tests, benches run from source) the worker is the .ts file next to this one. */
const SLOT_WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './slot-worker.ts' : './slot-worker.js',
  import.meta.url,
);

export interface TaskManager {
  readonly id: string;
  readonly taskExecutor: TaskExecutor;
  readonly nc: NatsConnection;
  /** Unregisters, cancels running tasks, drains the connection. Idempotent. */
  stop(): Promise<void>;
}

export interface TaskManagerHooks {
  /** Registration gave up (no ResourceManager within the timeout). */
  onFatal?: (err: SluiceError) => void;
  /** Plans of jobs whose program runs in this process (local mode). */
  plans?: InMemoryPlans;
  /** The cluster asked this TaskManager to shut down. */
  onShutdownRequested?: (reason: string) => void;
}

export async function startTaskManager(
  config: SluiceConfig,
  log: Logger,
  hooks: TaskManagerHooks = {},
): Promise<TaskManager> {
  const host = config.taskmanager.host ?? hostname();
  const id = config.taskmanager.id ?? processId('tm', host);
  const tmLog = log.child({ cluster: config.clusterId, process: 'taskmanager', taskManager: id });
  const nc = await connectNats(config.nats, { name: `sluice-taskmanager-${id}`, log: tmLog });
  const rpc = new Rpc(nc, {
    maxMessageBytes: config.rpc.maxMessageBytes,
    askTimeoutMs: Math.min(config.rpc.askTimeoutMs, 2_000),
    askRetries: config.rpc.askRetries,
    from: id,
    log: tmLog,
  });
  const metrics = await startProcessMetrics(
    config,
    { cluster: config.clusterId, process: 'taskmanager', instance: id },
    nc,
    tmLog,
  );
  const taskMetrics: TaskMetrics = new TaskMetrics(metrics.registry, (): { total: number; used: number } =>
    taskExecutor.slotUsage(),
  );
  const artifactCache = lazyArtifactCache(nc, config.clusterId, config.highAvailability.replicas);
  let stateStore: Promise<StateStore> | undefined;
  // Plans held in this process's memory (the local environment) cannot cross to a worker thread.
  const isolation = hooks.plans ? 'none' : config.taskmanager.slotIsolation;
  const slotWorkers =
    isolation === 'thread'
      ? new SlotWorkerPool({
          config,
          taskManagerId: id,
          slots: config.taskmanager.numberOfTaskSlots,
          log: tmLog,
          metrics: taskMetrics,
          cancellationTimeoutMs: config.taskmanager.cancellationTimeoutMs,
          workerUrl: SLOT_WORKER_URL,
        })
      : undefined;
  const taskExecutor: TaskExecutor = new TaskExecutor(
    { nc, rpc, log: tmLog, clusterId: config.clusterId, maxMessageBytes: config.rpc.maxMessageBytes },
    new Subjects(config.clusterId),
    {
      id,
      host,
      slots: config.taskmanager.numberOfTaskSlots,
      heartbeatIntervalMs: config.heartbeat.intervalMs,
      registrationTimeoutMs: config.taskmanager.registrationTimeoutMs,
      ...(hooks.onFatal ? { onFatal: hooks.onFatal } : {}),
      plans: new DefaultPlanResolver(artifactCache, hooks.plans),
      stateStore: () => {
        stateStore ??= StateStore.open(nc, config.clusterId, { replicas: config.highAvailability.replicas });
        stateStore.catch(() => {
          stateStore = undefined;
        });
        return stateStore;
      },
      metrics: taskMetrics,
      ...(slotWorkers ? { slotWorkers } : {}),
      // Slot workers keep their own copies (slot-worker.ts); tasks on this thread, these.
      ...(!slotWorkers && config.taskmanager.localRecovery.enabled
        ? { localRecovery: localRecovery(new LocalStateCache(config.taskmanager.localRecovery.maxBytes)) }
        : {}),
      ...(hooks.onShutdownRequested ? { onShutdownRequested: hooks.onShutdownRequested } : {}),
    },
  );
  taskExecutor.start();
  await nc.flush();
  tmLog.info(
    { slots: config.taskmanager.numberOfTaskSlots, slotIsolation: isolation, nats: config.nats.servers },
    'TaskManager started',
  );

  let stopping: Promise<void> | undefined;
  return {
    id,
    taskExecutor,
    nc,
    stop: () => {
      stopping ??= (async () => {
        tmLog.info('TaskManager stopping');
        await taskExecutor.stop();
        await slotWorkers?.stop();
        await metrics.stop();
        // Drain fails when NATS is gone; close then, or the client keeps reconnecting and the process lives on.
        await nc.drain().catch(() => nc.close());
        tmLog.info('TaskManager stopped');
      })();
      return stopping;
    },
  };
}
