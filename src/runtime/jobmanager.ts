/**
 * A JobManager: the Dispatcher and the ResourceManager (and, through the Dispatcher, one JobMaster per
 * job) on one NATS connection. Used by `sluice jobmanager` and by the local cluster.
 */
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ActorContext } from '../actors/actor.js';
import { Rpc } from '../actors/rpc.js';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import { registerJobManagerMetrics } from '../metrics/jobmanager-metrics.js';
import { startProcessMetrics } from '../metrics/process-metrics.js';
import { connectNats } from '../nats/connection.js';
import { type RestServer, startRestServer } from '../rest/server.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { processId } from './process-id.js';
import { ResourceManager } from './resourcemanager/resource-manager.js';
import { Subjects } from './subjects.js';

export interface JobManager {
  readonly id: string;
  readonly dispatcher: Dispatcher;
  readonly resourceManager: ResourceManager;
  readonly nc: NatsConnection;
  /** `http://host:port` of the REST API, when it is served (`rest.enabled`). */
  readonly restUrl: string | undefined;
  /** Stops the actors (running jobs end SUSPENDED) and drains the connection. Idempotent. */
  stop(): Promise<void>;
}

export interface JobManagerOptions {
  /** Serve the REST API; default `rest.enabled`. */
  rest?: boolean;
}

export async function startJobManager(
  config: SluiceConfig,
  log: Logger,
  options: JobManagerOptions = {},
): Promise<JobManager> {
  const id = config.jobmanager.id ?? processId('jm', hostname());
  const jmLog = log.child({ cluster: config.clusterId, process: 'jobmanager', jobManager: id });
  const nc = await connectNats(config.nats, { name: `sluice-jobmanager-${id}`, log: jmLog });
  const rpc = new Rpc(nc, {
    maxMessageBytes: config.rpc.maxMessageBytes,
    askTimeoutMs: config.rpc.askTimeoutMs,
    askRetries: config.rpc.askRetries,
    from: id,
    log: jmLog,
  });
  const ctx: ActorContext = {
    nc,
    rpc,
    log: jmLog,
    clusterId: config.clusterId,
    maxMessageBytes: config.rpc.maxMessageBytes,
  };
  const subjects = new Subjects(config.clusterId);
  const resourceManager = new ResourceManager(ctx, subjects, {
    id,
    heartbeatIntervalMs: config.heartbeat.intervalMs,
    heartbeatTimeoutMs: config.heartbeat.timeoutMs,
  });
  const dispatcher = new Dispatcher(ctx, subjects, resourceManager, {
    jobManagerId: id,
    slotRequestTimeoutMs: config.slotRequestTimeoutMs,
    cancelTimeoutMs: Math.max(config.heartbeat.timeoutMs, 5_000),
    restartStrategy: config.restartStrategy,
  });
  resourceManager.start();
  dispatcher.start();
  await nc.flush();
  jmLog.info({ nats: config.nats.servers, subjects: subjects.prefix }, 'JobManager started');
  const metrics = await startProcessMetrics(
    config,
    { cluster: config.clusterId, process: 'jobmanager', instance: id },
    nc,
    jmLog,
  );
  registerJobManagerMetrics(metrics.registry, dispatcher, resourceManager);
  // The REST API is a front end: the cluster and the CLI (over NATS) work without it, so a port that
  // cannot be bound is logged, not fatal.
  let rest: RestServer | undefined;
  if (options.rest ?? config.rest.enabled) {
    try {
      rest = await startRestServer({ config, nc, log: jmLog });
      jmLog.info({ url: rest.url }, 'REST API listening');
    } catch (err) {
      jmLog.error({ err: err instanceof Error ? err.message : String(err) }, 'REST API not started');
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    id,
    dispatcher,
    resourceManager,
    nc,
    restUrl: rest?.url,
    stop: () => {
      stopping ??= (async () => {
        jmLog.info('JobManager stopping');
        await rest?.stop();
        await metrics.stop();
        await dispatcher.stop();
        await resourceManager.stop();
        // Drain fails when NATS is gone; close then, or the client keeps reconnecting and the process lives on.
        await nc.drain().catch(() => nc.close());
        jmLog.info('JobManager stopped');
      })();
      return stopping;
    },
  };
}
