/**
 * The Dispatcher's autoscalers: one {@link JobAutoscaler} per running job when `job.autoscaler.enabled`,
 * started with its JobMaster and stopped when the job ends (its last state is kept for `status` while the
 * job is in the Dispatcher's archive). The Dispatcher only calls `start`, `stop` and `status`.
 */
import type { Logger } from '../../common/log.js';
import type { AutoscalerConfig } from '../../config/autoscaler-config.js';
import { type Clock, systemClock, systemWallClock, type WallClock } from '../../ha/clock.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { Rescaler } from '../jobmaster/rescale.js';
import { type AutoscaledJobView, JobAutoscaler } from './job-autoscaler.js';
import type { AutoscalerReply } from './protocol.js';

export interface JobAutoscalersOptions {
  config: AutoscalerConfig;
  /** Slots the cluster can offer a job holding `held` slots (free ones, its own, and what a pool can add). */
  slotCapacity?: (held: number) => Promise<number | undefined>;
  clock?: Clock;
  wallClock?: WallClock;
}

/** What the Dispatcher hands over per job: its graph, its JobMaster (the Rescaler) and its live view. */
export interface AutoscaledJob {
  graph: JobGraph;
  rescaler: Rescaler;
  view: () => AutoscaledJobView;
  log: Logger;
}

export class JobAutoscalers {
  readonly #o: JobAutoscalersOptions;
  readonly #running = new Map<string, JobAutoscaler>();
  /** Ended jobs' last state (the Dispatcher drops archived jobs; so does `forget`). */
  readonly #ended = new Map<string, AutoscalerReply>();

  constructor(options: JobAutoscalersOptions) {
    this.#o = options;
  }

  get enabled(): boolean {
    return this.#o.config.enabled;
  }

  start(job: AutoscaledJob): void {
    if (!this.#o.config.enabled || this.#running.has(job.graph.jobId)) return;
    const jobId = job.graph.jobId;
    const autoscaler = new JobAutoscaler({
      jobId,
      config: this.#o.config,
      topology: {
        vertices: job.graph.vertices.map((v) => ({ id: v.id, name: v.name })),
        edges: job.graph.edges.map((e) => ({
          source: e.source,
          target: e.target,
          partitioner: e.partitioner,
        })),
      },
      rescaler: job.rescaler,
      view: job.view,
      ...(this.#o.slotCapacity
        ? {
            slotCapacity: () => {
              const held = Math.max(1, ...Object.values(job.rescaler.currentParallelism()));
              return this.#o.slotCapacity!(held);
            },
          }
        : {}),
      log: job.log.child({ actor: 'Autoscaler' }),
      clock: this.#o.clock ?? systemClock,
      wallClock: this.#o.wallClock ?? systemWallClock,
    });
    this.#running.set(jobId, autoscaler);
    autoscaler.start();
  }

  /** The job ended: stop its autoscaler and keep its last state. */
  stop(jobId: string): void {
    const autoscaler = this.#running.get(jobId);
    if (!autoscaler) return;
    autoscaler.stop();
    this.#running.delete(jobId);
    this.#ended.set(jobId, autoscaler.status());
  }

  stopAll(): void {
    for (const jobId of [...this.#running.keys()]) this.stop(jobId);
  }

  /** The job left the Dispatcher's archive. */
  forget(jobId: string): void {
    this.#ended.delete(jobId);
  }

  status(jobId: string): AutoscalerReply {
    const running = this.#running.get(jobId);
    if (running) return running.status();
    const ended = this.#ended.get(jobId);
    if (ended) return ended;
    return {
      jobId,
      enabled: false,
      reason: this.#o.config.enabled
        ? 'the job ended before its autoscaler started'
        : 'job.autoscaler.enabled is false on this JobManager',
      decisions: [],
      counts: {},
      rescales: 0,
      ineffective: {},
    };
  }

  /** Every running job's autoscaler state (Prometheus). */
  all(): AutoscalerReply[] {
    return [...this.#running.values()].map((a) => a.status());
  }
}
