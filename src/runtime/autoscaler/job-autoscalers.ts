/**
 * The Dispatcher's autoscalers: one {@link JobAutoscaler} per running job whose effective
 * `job.autoscaler.enabled` is true — the JobManager's settings with the job's own keys over them (a job's
 * `configuration`, `sluice run -D`). Started with its JobMaster and stopped when the job ends (its last state
 * is kept for `status` while the job is in the Dispatcher's archive).
 *
 * Reactive mode and the autoscaler both rescale a job; reactive mode sizes it to every slot it can have and
 * would undo the autoscaler's rescales (as in Flink, whose autoscaler works with the adaptive scheduler,
 * not reactive mode). So on a reactive JobManager ({@link settingsFor} with `reactive`):
 * - a job whose own configuration turns the autoscaler on with scaling enabled is refused at submission
 *   (INVALID_CONFIG, saying what to set instead);
 * - when that comes from the JobManager's settings, the job's autoscaler stands down to advice: it decides,
 *   logs and shows, never rescales, and says why (`adviceOnly` in its status, each decision, a log line).
 * A job recovered by a new leader is never refused (it stands down instead).
 *
 * The Dispatcher calls `settingsFor` before it starts a job, then `start`, `stop` and `status`.
 */
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { AutoscalerConfig } from '../../config/autoscaler-config.js';
import {
  autoscalerSettings,
  type JobAutoscalerSettings,
  type JobConfiguration,
  jobAutoscalerConfig,
} from '../../config/job-configuration.js';
import { type Clock, systemClock, systemWallClock, type WallClock } from '../../ha/clock.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { Rescaler } from '../jobmaster/rescale.js';
import { type AutoscaledJobView, JobAutoscaler } from './job-autoscaler.js';
import type { AutoscalerReply } from './protocol.js';

export interface JobAutoscalersOptions {
  /** The JobManager's `job.autoscaler.*`: every job's defaults. */
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

/** A job's effective settings, and why its decisions are only advice (reactive mode), if they are. */
export interface JobAutoscaling extends JobAutoscalerSettings {
  adviceOnly?: string;
}

const REACTIVE_ADVICE =
  'scheduler-mode is reactive: reactive mode sizes the job to every slot it can have and would undo the autoscaler’s rescales';

/**
 * A job's autoscaler settings on a JobManager with `cluster` settings (see the module comment). Throws
 * INVALID_CONFIG for a bad job configuration, or one asking for autoscaling on a reactive JobManager
 * (unless `recovering`).
 */
export function autoscalingFor(
  cluster: AutoscalerConfig,
  graph: { jobId: string; configuration?: JobConfiguration | undefined },
  options: { reactive: boolean; recovering: boolean },
): JobAutoscaling {
  const settings = jobAutoscalerConfig(cluster, graph.configuration);
  const { config, jobSettings } = settings;
  if (!options.reactive || !config.enabled || !config.scalingEnabled) return settings;
  const fromJob = 'job.autoscaler.enabled' in jobSettings || 'job.autoscaler.scaling.enabled' in jobSettings;
  if (fromJob && !options.recovering) {
    throw new SluiceError(
      ErrorCode.InvalidConfig,
      `job ${graph.jobId}: its configuration turns the autoscaler on (job.autoscaler.enabled=true, job.autoscaler.scaling.enabled=true) but this JobManager runs scheduler-mode: reactive, which sizes every job to all the slots it can have and would undo the autoscaler's rescales. Set job.autoscaler.scaling.enabled=false for advice only, or run the job on a JobManager with scheduler-mode: default`,
    );
  }
  return { ...settings, adviceOnly: REACTIVE_ADVICE };
}

export class JobAutoscalers {
  readonly #o: JobAutoscalersOptions;
  readonly #running = new Map<string, JobAutoscaler>();
  /** Each known job's settings (running or in the archive). */
  readonly #settings = new Map<string, JobAutoscaling>();
  /** Ended jobs' last state (the Dispatcher drops archived jobs; so does `forget`). */
  readonly #ended = new Map<string, AutoscalerReply>();

  constructor(options: JobAutoscalersOptions) {
    this.#o = options;
  }

  /** The JobManager's settings (every job's defaults). */
  get defaults(): AutoscalerConfig {
    return this.#o.config;
  }

  /** Starts the job's autoscaler when its settings enable one; remembers them for `status` either way. */
  start(job: AutoscaledJob, autoscaling: JobAutoscaling): void {
    const jobId = job.graph.jobId;
    if (this.#running.has(jobId)) return;
    this.#settings.set(jobId, autoscaling);
    const { config, adviceOnly } = autoscaling;
    if (!config.enabled) return;
    if (adviceOnly !== undefined) {
      job.log.warn(
        { job: jobId },
        `autoscaler stands down to advice for this job: ${adviceOnly} (set job.autoscaler.scaling.enabled=false, or scheduler-mode: default)`,
      );
    }
    const autoscaler = new JobAutoscaler({
      jobId,
      config,
      adviceOnly,
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
    this.#ended.set(jobId, this.#withSettings(jobId, autoscaler.status()));
  }

  stopAll(): void {
    for (const jobId of [...this.#running.keys()]) this.stop(jobId);
  }

  /** The job left the Dispatcher's archive. */
  forget(jobId: string): void {
    this.#ended.delete(jobId);
    this.#settings.delete(jobId);
  }

  status(jobId: string): AutoscalerReply {
    const running = this.#running.get(jobId);
    if (running) return this.#withSettings(jobId, running.status());
    const ended = this.#ended.get(jobId);
    if (ended) return ended;
    const settings = this.#settings.get(jobId);
    const fromJob = settings !== undefined && 'job.autoscaler.enabled' in settings.jobSettings;
    return this.#withSettings(jobId, {
      jobId,
      enabled: false,
      reason:
        settings === undefined
          ? 'the job ended before its autoscaler started'
          : `job.autoscaler.enabled is false for this job (${fromJob ? "from the job's configuration" : "the JobManager's setting"})`,
      decisions: [],
      counts: {},
      rescales: 0,
      ineffective: {},
    });
  }

  /** Every running job's autoscaler state (Prometheus). */
  all(): AutoscalerReply[] {
    return [...this.#running.entries()].map(([jobId, a]) => this.#withSettings(jobId, a.status()));
  }

  /** The reply with the job's effective settings (option keys) and the keys it set itself. */
  #withSettings(jobId: string, reply: AutoscalerReply): AutoscalerReply {
    const settings = this.#settings.get(jobId);
    const config = settings?.config ?? this.#o.config;
    return {
      ...reply,
      settings: autoscalerSettings(config),
      jobSettings: { ...(settings?.jobSettings ?? {}) },
    };
  }
}
