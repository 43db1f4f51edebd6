/**
 * What a JobManager shows Prometheus: jobs by status, restarts per job, checkpoints per running job
 * (completed, failed, in progress, restored; the last completed one's duration and size), TaskManagers
 * and slots, whether it leads (always 1 without HA) and the epoch of the current leadership (0 without HA
 * or leader).
 */
import { Gauge, type Registry } from 'prom-client';

/** What the metrics read of the Dispatcher (it implements this; metrics never import the actor). */
export interface DispatcherMetricsSource {
  /** Jobs by status. */
  jobCounts(): Promise<Record<string, number>>;
  restartsByJob(): Promise<Record<string, number>>;
  checkpointsByJob(): Promise<Record<string, CheckpointMetrics>>;
}

/** The part of a job's checkpoint statistics the metrics show. */
export interface CheckpointMetrics {
  counts: { completed: number; failed: number; inProgress: number; restored: number };
  /** Newest first. */
  history: ReadonlyArray<{ status: string; durationMs: number; sizeBytes: number }>;
}

/** What the metrics read of the ResourceManager. */
export interface ResourceManagerMetricsSource {
  taskManagers(): Promise<ReadonlyArray<{ slotsTotal: number; slotsFree: number }>>;
}

export function registerJobManagerMetrics(
  registry: Registry,
  dispatcherOf: () => DispatcherMetricsSource,
  rmOf: () => ResourceManagerMetricsSource,
  isLeader: () => boolean = () => true,
  /** The epoch of the current leadership as this JobManager knows it (its own, or the leader record's). */
  leaderEpoch: () => Promise<number | undefined> = async () => undefined,
): void {
  new Gauge({
    name: 'sluice_jobs',
    help: 'Jobs known to this JobManager, by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [status, n] of Object.entries(
        await dispatcherOf()
          .jobCounts()
          .catch(() => ({})),
      ))
        this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'sluice_job_restarts',
    help: 'Restarts of each running job after failures',
    labelNames: ['job'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [job, n] of Object.entries(
        await dispatcherOf()
          .restartsByJob()
          .catch(() => ({})),
      ))
        this.set({ job }, n);
    },
  });
  const checkpoints = () =>
    dispatcherOf()
      .checkpointsByJob()
      .catch(() => ({}));
  new Gauge({
    name: 'sluice_job_checkpoints',
    help: 'Checkpoints and savepoints of each running job, by state (completed, failed, in_progress, restored)',
    labelNames: ['job', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [job, c] of Object.entries(await checkpoints())) {
        this.set({ job, state: 'completed' }, c.counts.completed);
        this.set({ job, state: 'failed' }, c.counts.failed);
        this.set({ job, state: 'in_progress' }, c.counts.inProgress);
        this.set({ job, state: 'restored' }, c.counts.restored);
      }
    },
  });
  new Gauge({
    name: 'sluice_job_last_checkpoint_duration_seconds',
    help: "Duration of each running job's last completed checkpoint (trigger to commit)",
    labelNames: ['job'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [job, c] of Object.entries(await checkpoints())) {
        const last = c.history.find((h) => h.status === 'COMPLETED');
        if (last) this.set({ job }, last.durationMs / 1_000);
      }
    },
  });
  new Gauge({
    name: 'sluice_job_last_checkpoint_size_bytes',
    help: "State stored by each running job's last completed checkpoint",
    labelNames: ['job'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [job, c] of Object.entries(await checkpoints())) {
        const last = c.history.find((h) => h.status === 'COMPLETED');
        if (last) this.set({ job }, last.sizeBytes);
      }
    },
  });
  new Gauge({
    name: 'sluice_taskmanagers',
    help: 'Registered TaskManagers',
    registers: [registry],
    async collect() {
      this.set(
        (
          await rmOf()
            .taskManagers()
            .catch(() => [])
        ).length,
      );
    },
  });
  new Gauge({
    name: 'sluice_slots',
    help: 'Task slots of the cluster, by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const tms = await rmOf()
        .taskManagers()
        .catch(() => []);
      const total = tms.reduce((n, tm) => n + tm.slotsTotal, 0);
      const free = tms.reduce((n, tm) => n + tm.slotsFree, 0);
      this.set({ state: 'free' }, free);
      this.set({ state: 'used' }, total - free);
    },
  });
  new Gauge({
    name: 'sluice_jobmanager_leader',
    help: '1 while this JobManager leads the cluster',
    registers: [registry],
    collect() {
      this.set(isLeader() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sluice_jobmanager_leader_epoch',
    help: "Epoch (fencing token) of the current leadership: this JobManager's own while it leads, the leader record's while it stands by; 0 when no leader is known or without high availability",
    registers: [registry],
    async collect() {
      this.set((await leaderEpoch().catch(() => undefined)) ?? 0);
    },
  });
}
