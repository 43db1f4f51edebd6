/**
 * A JobManager: the Dispatcher and the ResourceManager (and, through the Dispatcher, one JobMaster per
 * job) on one NATS connection. Used by `sluice jobmanager` and by the local cluster.
 */
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ActorContext } from '../actors/actor.js';
import { Rpc } from '../actors/rpc.js';
import { Subjects } from '../actors/subjects.js';
import { SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { processId } from '../common/process-id.js';
import type { SluiceConfig } from '../config/config.js';
import { JobGraphStore, JobResultStore } from '../ha/job-stores.js';
import { LeaderElectionService } from '../ha/leader-election.js';
import { createLeadership } from '../ha/leadership.js';
import { registerAutoscalerMetrics } from '../metrics/autoscaler-metrics.js';
import { registerJobManagerMetrics } from '../metrics/jobmanager-metrics.js';
import { startProcessMetrics } from '../metrics/process-metrics.js';
import { connectNats } from '../nats/connection.js';
import { type RestServer, startRestServer } from '../rest/server.js';
import { ArtifactStore } from '../runtime/artifacts/artifact-store.js';
import { JobAutoscalers } from '../runtime/autoscaler/job-autoscalers.js';
import { StateStore } from '../runtime/checkpoint/state-store.js';
import { Dispatcher } from '../runtime/dispatcher/dispatcher.js';
import { ResourceManager } from '../runtime/resourcemanager/resource-manager.js';
import type { WorkerPool } from '../runtime/resourcemanager/worker-pool.js';

export interface JobManager {
  readonly id: string;
  /** The current Dispatcher (with HA: a new one per leadership; not started while standing by). */
  readonly dispatcher: Dispatcher;
  readonly resourceManager: ResourceManager;
  /** Whether this JobManager serves the cluster now (always true without HA). */
  readonly isLeader: boolean;
  /** HA: the epoch of the current leadership (undefined while standing by, and without HA). */
  readonly leaderEpoch: number | undefined;
  readonly nc: NatsConnection;
  /** `http://host:port` of the REST API, when it is served (`rest.enabled`). */
  readonly restUrl: string | undefined;
  /** Stops the actors (running jobs end SUSPENDED) and drains the connection. Idempotent. */
  stop(): Promise<void>;
}

export interface JobManagerOptions {
  /** Serve the REST API; default `rest.enabled`. */
  rest?: boolean;
  /** A pool of TaskManagers to grow when slots are short and shrink when idle (standalone provider). */
  workerPool?: WorkerPool | undefined;
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
  // Checkpoints and savepoints (the `state` object store, the `checkpoints` KV pointers).
  const stateStore = await StateStore.open(nc, config.clusterId, {
    replicas: config.highAvailability.replicas,
  });
  const makeActors = (epoch?: number, stores?: { jobs: JobGraphStore; results: JobResultStore }) => {
    // HA: whether this process still leads under `epoch` (its lease deadline on the monotonic clock).
    const stillLeading = epoch === undefined ? undefined : () => election?.isLeader(epoch) === true;
    const rm = new ResourceManager(ctx, subjects, {
      id,
      heartbeatIntervalMs: config.heartbeat.intervalMs,
      heartbeatTimeoutMs: config.heartbeat.timeoutMs,
      epoch,
      ...(stillLeading === undefined ? {} : { stillLeading }),
      onSlotShortage: (missing) => options.workerPool?.requestSlots(missing),
      // A rescale (by hand, or by the autoscaler) beyond the free slots waits for the pool to grow.
      growableSlots: options.workerPool ? () => options.workerPool?.headroomSlots() ?? 0 : undefined,
      slotRequestTimeoutMs: config.slotRequestTimeoutMs,
    });
    const d = new Dispatcher(ctx, subjects, rm, {
      jobManagerId: id,
      slotRequestTimeoutMs: config.slotRequestTimeoutMs,
      cancelTimeoutMs: Math.max(config.heartbeat.timeoutMs, 5_000),
      heartbeatIntervalMs: config.heartbeat.intervalMs,
      heartbeatTimeoutMs: config.heartbeat.timeoutMs,
      restartStrategy: config.restartStrategy,
      checkpointing: config.checkpointing,
      stateStore,
      reactive:
        config.scheduler.mode === 'reactive'
          ? {
              stabilizationTimeoutMs: config.scheduler.stabilizationTimeoutMs,
              cooldownAfterRescalingMs: config.scheduler.cooldownAfterRescalingMs,
            }
          : undefined,
      // Every JobManager has them: a job may turn its autoscaler on with its own configuration.
      autoscalers: new JobAutoscalers({
        config: config.autoscaler,
        // The job's own slots, the free ones, and what a TaskManager pool can still add.
        slotCapacity: async (held) => {
          const tms = await rm.taskManagers();
          const free = tms.reduce((n, tm) => n + tm.slotsFree, 0);
          const headroom = options.workerPool?.headroomSlots() ?? 0;
          return held + free + headroom;
        },
      }),
      ha:
        epoch !== undefined && stores
          ? { epoch, ...stores, ...(stillLeading === undefined ? {} : { stillLeading }) }
          : undefined,
    });
    return { rm, d };
  };
  let { rm: resourceManager, d: dispatcher } = makeActors();
  let leader = false;
  let leaderEpoch: number | undefined;
  let election: LeaderElectionService | undefined;
  const ha = config.highAvailability;
  const leadership = createLeadership({
    jobManagerId: id,
    highAvailability: ha.type !== 'none',
    isLeader: () => leader,
    election: () => election,
  });
  // The REST API is a front end: the cluster and the CLI (over NATS) work without it, so a port that
  // cannot be bound is logged, not fatal. Started before the election, whose leader record carries its URL;
  // a standby redirects REST requests to the leader's.
  let rest: RestServer | undefined;
  if (options.rest ?? config.rest.enabled) {
    try {
      rest = await startRestServer({ config, nc, log: jmLog, leadership });
      jmLog.info({ url: rest.url }, 'REST API listening');
    } catch (err) {
      jmLog.error({ err: err instanceof Error ? err.message : String(err) }, 'REST API not started');
    }
  }
  // The TaskManager pool (standalone provider) acts for the leader only; it reads the current ResourceManager.
  const poolCluster = {
    taskManagers: () => resourceManager.taskManagers(),
    pendingSlots: () => resourceManager.pendingSlots(),
  };
  if (ha.type === 'none') {
    resourceManager.start();
    dispatcher.start();
    leader = true;
    options.workerPool?.activate(poolCluster);
    await nc.flush();
    jmLog.info({ nats: config.nats.servers, subjects: subjects.prefix }, 'JobManager started');
  } else {
    // High availability: nothing subscribes dispatcher.* / rm.* until this process is granted leadership.
    const storeOptions = { replicas: ha.replicas };
    const stores = {
      jobs: await JobGraphStore.open(nc, config.clusterId, storeOptions),
      results: await JobResultStore.open(nc, config.clusterId, storeOptions),
    };
    // The bucket of job bundles is created here, replicated like the HA stores, before any client or
    // TaskManager would create it with what it was configured with (one replica unless told): a bundle on
    // one NATS node only could not be read by a TaskManager while that node is down.
    await ArtifactStore.open(nc, config.clusterId, storeOptions);
    election = await LeaderElectionService.createOnNats(nc, {
      clusterId: config.clusterId,
      rpcAddress: subjects.prefix,
      leaderId: id,
      ...(rest !== undefined ? { restUrl: rest.url } : {}),
      replicas: ha.replicas,
      leaseMs: ha.leaseMs,
      ...(ha.renewIntervalMs !== undefined ? { renewIntervalMs: ha.renewIntervalMs } : {}),
      ...(ha.pollIntervalMs !== undefined ? { pollIntervalMs: ha.pollIntervalMs } : {}),
      log: jmLog,
    });
    let previous: Promise<void> = Promise.resolve();
    election.start({
      onGrantLeadership(epoch) {
        const grantedAt = Date.now();
        jmLog.info({ epoch }, 'granted leadership');
        const old = { rm: resourceManager, d: dispatcher };
        ({ rm: resourceManager, d: dispatcher } = makeActors(epoch, stores));
        const { rm, d } = { rm: resourceManager, d: dispatcher };
        leader = true;
        leaderEpoch = epoch;
        const stopped = previous;
        previous = (async () => {
          // The actors of a former leadership are stopped (revoke did it); wait for it to finish.
          await stopped;
          await Promise.allSettled([old.d.stop(), old.rm.stop()]);
          if (!election?.isLeader(epoch)) return;
          rm.start();
          // The former leader's jobs first, then clients: until the Dispatcher subscribes they get "no
          // responders" and retry, instead of "unknown job" for a job that is being recovered.
          // A bucket's stream still electing its leader (a NATS node lost or cut off) fails the recovery
          // for seconds: try again while this leadership lasts, else its jobs stay down under a live leader.
          let recovered: string[] | undefined;
          for (let attempt = 1; recovered === undefined; attempt++) {
            try {
              recovered = await d.recoverJobs();
            } catch (err) {
              if (!(err instanceof SluiceError && err.retryable) || !election?.isLeader(epoch)) throw err;
              if (attempt === 1) jmLog.warn({ epoch, err: err.message }, 'recovering jobs failed; retrying');
              await new Promise((r) => setTimeout(r, 500));
              if (!election?.isLeader(epoch)) return;
            }
          }
          if (!election?.isLeader(epoch)) return;
          d.start();
          options.workerPool?.activate(poolCluster);
          await nc.flush();
          jmLog.info(
            { epoch, nats: config.nats.servers, subjects: subjects.prefix },
            'JobManager started as leader',
          );
          jmLog.info(
            { epoch, jobs: recovered, recovered: recovered.length, afterMs: Date.now() - grantedAt },
            'leadership active',
          );
        })().catch((err: unknown) =>
          jmLog.error(
            { epoch, err: err instanceof Error ? err.message : String(err) },
            'leadership start failed',
          ),
        );
      },
      onRevokeLeadership({ epoch, reason }) {
        leader = false;
        leaderEpoch = undefined;
        options.workerPool?.deactivate();
        jmLog.warn({ epoch, reason }, 'leadership revoked: stopping Dispatcher and ResourceManager');
        // At once: unsubscribe (Actor.stop unsubscribes synchronously), JobMasters end SUSPENDED without a
        // result, so the next leader recovers them.
        const { rm, d } = { rm: resourceManager, d: dispatcher };
        const stopping = Promise.allSettled([d.stop(), rm.stop()]).then(() => undefined);
        previous = previous.then(() => stopping);
        jmLog.info('waiting for leadership');
      },
      onError(err) {
        jmLog.fatal({ err: err.message }, 'leader election failed; JobManager exits');
        void nc.close();
      },
    });
    jmLog.info(
      { nats: config.nats.servers, subjects: subjects.prefix, leaseMs: election.timings.leaseMs },
      'JobManager started',
    );
    jmLog.info('waiting for leadership');
  }
  const metrics = await startProcessMetrics(
    config,
    { cluster: config.clusterId, process: 'jobmanager', instance: id },
    nc,
    jmLog,
  );
  registerJobManagerMetrics(
    metrics.registry,
    () => dispatcher,
    () => resourceManager,
    () => leader,
    () => leadership.knownEpoch(),
  );
  registerAutoscalerMetrics(metrics.registry, () => dispatcher);

  let stopping: Promise<void> | undefined;
  return {
    id,
    get dispatcher() {
      return dispatcher;
    },
    get resourceManager() {
      return resourceManager;
    },
    get isLeader() {
      return leader;
    },
    get leaderEpoch() {
      return leaderEpoch;
    },
    nc,
    restUrl: rest?.url,
    stop: () => {
      stopping ??= (async () => {
        jmLog.info('JobManager stopping');
        options.workerPool?.deactivate();
        await rest?.stop();
        await metrics.stop();
        await dispatcher.stop();
        await resourceManager.stop();
        // Graceful step-down: the key is deleted, a standby takes over within a poll interval. The
        // Dispatcher stopped first, so its jobs ended SUSPENDED without a result: the next leader recovers them.
        await election?.stop().catch(() => undefined);
        // Drain fails when NATS is gone; close then, or the client keeps reconnecting and the process lives on.
        await nc.drain().catch(() => nc.close());
        jmLog.info('JobManager stopped');
      })();
      return stopping;
    },
  };
}
