/**
 * The autoscaler of one job (`job.autoscaler.enabled`): every `control-loop.interval` it samples the job's
 * per-vertex counters (as the JobMaster has them from its tasks), lets the {@link ScalingController}
 * decide, and rescales through the JobMaster's {@link Rescaler} (cause `autoscaler`).
 *
 * Promises: every decision is logged with its inputs (info when it rescales, changes outcome or finds a
 * scale-up ineffective; debug while it waits or repeats itself), kept (the last 100) for REST and the
 * dashboard, and counted by outcome for Prometheus; at most one rescale at a time; a refused or failed
 * rescale is logged and retried only after another stabilisation interval. With
 * `job.autoscaler.scaling.enabled: false` decisions are made and shown but never applied.
 * Refuses nothing; stops with the job.
 */
import type { Logger } from '../../common/log.js';
import type { AutoscalerConfig } from '../../config/autoscaler-config.js';
import type { Clock, TimerHandle, WallClock } from '../../ha/clock.js';
import { RescaleCause, type Rescaler, type VertexParallelism } from '../jobmaster/rescale.js';
import {
  BACKPRESSURED_MS,
  BUSY_MS,
  PENDING_RECORDS,
  RECORDS_IN,
  RECORDS_OUT,
} from '../task/vertex-gauges.js';
import type { JobSample, VertexSample } from './metrics-window.js';
import { type Observation, ScalingController } from './scaling-controller.js';
import {
  type JobTopology,
  type ScalingDecision,
  ScalingOutcome,
  type VertexEvaluation,
} from './scaling-decision.js';

/** What the autoscaler reads of a job (the JobMaster's details have this shape). */
export interface AutoscaledJobView {
  status: string;
  vertices: ReadonlyArray<{
    id: string;
    name: string;
    parallelism: number;
    subtasks: ReadonlyArray<{ state: string }>;
    accumulators: Readonly<Record<string, number>>;
  }>;
}

export interface JobAutoscalerOptions {
  jobId: string;
  config: AutoscalerConfig;
  /**
   * Why decisions are only advice although `scalingEnabled` was asked for (reactive mode sizes the job);
   * the autoscaler then applies nothing and says so in each decision and its status.
   */
  adviceOnly?: string | undefined;
  topology: JobTopology;
  rescaler: Rescaler;
  /** The job as it is now. */
  view: () => AutoscaledJobView;
  /** Slots the cluster can offer this job at most (undefined: unknown, no bound). */
  slotCapacity?: () => Promise<number | undefined>;
  log: Logger;
  clock: Clock;
  wallClock: WallClock;
}

/** Outcomes counted: the decision's, plus what became of a rescale. */
export const AutoscalerEvent = {
  ...ScalingOutcome,
  /** A rescale decided but not applied (`job.autoscaler.scaling.enabled: false`). */
  Advice: 'advice',
  /** The rescale was refused or failed. */
  RescaleFailed: 'rescale-failed',
} as const;
export type AutoscalerEvent = (typeof AutoscalerEvent)[keyof typeof AutoscalerEvent];

export interface AutoscalerDecisionRecord {
  /** Wall-clock ms. */
  timestamp: number;
  outcome: AutoscalerEvent;
  reason: string;
  vertices: VertexEvaluation[];
  target?: VertexParallelism;
  /** After a rescale: how it went. */
  rescale?: { previous: VertexParallelism; target: VertexParallelism; downtimeMs?: number } | undefined;
  error?: string;
}

export interface AutoscalerStatus {
  jobId: string;
  enabled: true;
  scalingEnabled: boolean;
  /** Why decisions are not applied although job.autoscaler.scaling.enabled is true (reactive mode). */
  adviceOnly?: string;
  config: AutoscalerConfig;
  /** `rescaling` while a rescale it asked for runs; otherwise the latest evaluation's outcome. */
  state: AutoscalerEvent | 'rescaling' | 'starting' | 'stopped';
  /** The latest evaluation (waiting ones included). */
  latest: AutoscalerDecisionRecord | undefined;
  /** Decisions other than waiting, newest first. */
  decisions: AutoscalerDecisionRecord[];
  counts: Record<string, number>;
  rescales: number;
  /** Vertices not scaled up any more (ineffective scale-up), and why. */
  ineffective: Record<string, string>;
}

const KEPT_DECISIONS = 100;

export class JobAutoscaler {
  readonly #o: JobAutoscalerOptions;
  readonly #controller: ScalingController;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #rescaling = false;
  #latest: AutoscalerDecisionRecord | undefined;
  readonly #decisions: AutoscalerDecisionRecord[] = [];
  readonly #counts: Record<string, number> = {};
  #rescales = 0;
  #lastLogged: string = '';

  constructor(options: JobAutoscalerOptions) {
    this.#o = options;
    this.#controller = new ScalingController(options.config, options.topology, options.clock.now());
  }

  /** Whether decisions are applied. */
  get #scalingEnabled(): boolean {
    return this.#o.config.scalingEnabled && this.#o.adviceOnly === undefined;
  }

  start(): void {
    this.#o.log.info(
      {
        scalingEnabled: this.#scalingEnabled,
        intervalMs: this.#o.config.controlLoopIntervalMs,
        windowMs: this.#o.config.metricsWindowMs,
        stabilizationMs: this.#o.config.stabilizationIntervalMs,
        targetUtilization: this.#o.config.targetUtilization,
      },
      'autoscaler started',
    );
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
  }

  status(): AutoscalerStatus {
    return {
      jobId: this.#o.jobId,
      enabled: true,
      scalingEnabled: this.#scalingEnabled,
      ...(this.#o.adviceOnly === undefined ? {} : { adviceOnly: this.#o.adviceOnly }),
      config: this.#o.config,
      state: this.#stopped
        ? 'stopped'
        : this.#rescaling
          ? 'rescaling'
          : (this.#latest?.outcome ?? 'starting'),
      latest: this.#latest,
      decisions: [...this.#decisions],
      counts: { ...this.#counts },
      rescales: this.#rescales,
      ineffective: Object.fromEntries(this.#controller.ineffective),
    };
  }

  /** One evaluation now (the timer calls it; tests may too). */
  async evaluate(): Promise<AutoscalerDecisionRecord | undefined> {
    if (this.#stopped || this.#rescaling) return undefined;
    const now = this.#o.clock.now();
    const view = this.#o.view();
    const current = this.#o.rescaler.currentParallelism();
    const capacity = await this.#o.slotCapacity?.().catch(() => undefined);
    if (this.#stopped) return undefined;
    const decision = this.#controller.evaluate(now, observe(view, now), {
      current,
      maxParallelism: this.#o.rescaler.maxParallelism(),
      slotCapacity: capacity,
    });
    const record = this.#record(decision);
    if (decision.outcome !== ScalingOutcome.Rescale || !decision.target) return record;
    if (!this.#scalingEnabled) {
      record.outcome = AutoscalerEvent.Advice;
      record.reason = `${decision.reason} (not applied: ${this.#o.adviceOnly ?? 'job.autoscaler.scaling.enabled is false'})`;
      this.#count(record);
      return record;
    }
    this.#count(record);
    this.#rescaling = true;
    try {
      // Beyond the free slots, the rescale waits for a TaskManager pool to grow (the ResourceManager).
      const result = await this.#o.rescaler.rescale({
        target: decision.target,
        cause: RescaleCause.Autoscaler,
        reason: decision.reason,
      });
      this.#rescales++;
      record.rescale = {
        previous: result.previous,
        target: result.target,
        ...(result.downtimeMs === undefined ? {} : { downtimeMs: result.downtimeMs }),
      };
      this.#controller.rescaled(this.#o.clock.now(), result.previous, result.target, decision);
      this.#o.log.info(
        { previous: result.previous, target: result.target, downtimeMs: result.downtimeMs },
        'autoscaler rescaled the job',
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#controller.backOff(this.#o.clock.now());
      const failed: AutoscalerDecisionRecord = {
        timestamp: this.#o.wallClock(),
        outcome: AutoscalerEvent.RescaleFailed,
        reason: `the rescale to ${JSON.stringify(decision.target)} failed; trying again after job.autoscaler.stabilization.interval`,
        vertices: [],
        target: decision.target,
        error: message,
      };
      this.#keep(failed);
      this.#count(failed);
      this.#o.log.warn({ target: decision.target, error: message }, 'autoscaler: rescale failed');
    } finally {
      this.#rescaling = false;
    }
    return record;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.evaluate()
        .catch((err: unknown) => this.#o.log.error({ err }, 'autoscaler evaluation failed'))
        .finally(() => this.#schedule());
    }, this.#o.config.controlLoopIntervalMs);
  }

  /** Keeps, logs and (except rescales, counted once their fate is known) counts a decision. */
  #record(decision: ScalingDecision): AutoscalerDecisionRecord {
    const record: AutoscalerDecisionRecord = {
      timestamp: this.#o.wallClock(),
      outcome: decision.outcome,
      reason: decision.reason,
      vertices: decision.vertices,
      ...(decision.target ? { target: decision.target } : {}),
    };
    this.#latest = record;
    if (decision.outcome !== ScalingOutcome.Waiting) this.#keep(record);
    if (decision.outcome !== ScalingOutcome.Rescale) this.#count(record);
    const ineffective = Object.values(decision.ineffective);
    const notable =
      decision.outcome === ScalingOutcome.Rescale ||
      ineffective.length > 0 ||
      decision.outcome !== this.#lastLogged;
    const level = decision.outcome !== ScalingOutcome.Waiting && notable ? 'info' : 'debug';
    this.#lastLogged = decision.outcome;
    this.#o.log[level](
      {
        outcome: decision.outcome,
        ...(decision.target ? { target: decision.target } : {}),
        ...(ineffective.length > 0 ? { ineffective } : {}),
        vertices: decision.vertices,
      },
      `autoscaler: ${decision.reason}`,
    );
    return record;
  }

  #keep(record: AutoscalerDecisionRecord): void {
    this.#decisions.unshift(record);
    if (this.#decisions.length > KEPT_DECISIONS) this.#decisions.pop();
  }

  #count(record: AutoscalerDecisionRecord): void {
    this.#counts[record.outcome] = (this.#counts[record.outcome] ?? 0) + 1;
  }
}

/** A sample of the job's counters, or why there is none (not every task runs). */
export function observe(view: AutoscaledJobView, now: number): Observation {
  if (view.status !== 'RUNNING') return { notReady: `the job is ${view.status}, not RUNNING` };
  const notRunning = view.vertices.flatMap((v) => v.subtasks.filter((s) => s.state !== 'RUNNING'));
  if (notRunning.length > 0) {
    return { notReady: `${notRunning.length} of the job's tasks are not RUNNING yet` };
  }
  const vertices: Record<string, VertexSample> = {};
  for (const v of view.vertices) {
    const a = v.accumulators;
    const metric = (suffix: string) => a[`${v.name} ${suffix}`];
    vertices[v.id] = {
      parallelism: v.parallelism,
      recordsIn: metric(RECORDS_IN),
      recordsOut: metric(RECORDS_OUT),
      busyMs: metric(BUSY_MS),
      backpressuredMs: metric(BACKPRESSURED_MS),
      pendingRecords: metric(PENDING_RECORDS),
    };
  }
  return { sample: { at: now, vertices } satisfies JobSample };
}
