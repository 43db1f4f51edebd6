/**
 * The autoscaler's state for one job between evaluations: stabilisation after a start or rescale, the
 * metrics window, and what past rescales teach (when the job last scaled down, scale-ups still to be judged,
 * vertices whose scale-up was ineffective). Time comes in as an argument (an injected clock's `now()`), so
 * every rule is testable without waiting.
 *
 * Promises: no decision while the job is not running all its tasks, during `stabilization.interval` after
 * it started or was rescaled (by anyone: a parallelism it did not set resets it too), or before the samples
 * since then span `metrics.window`; a rescale the caller reports restarts all of that. Refuses nothing.
 */
import type { AutoscalerConfig } from '../../config/autoscaler-config.js';
import type { VertexParallelism } from '../jobmaster/rescale.js';
import { type JobSample, MetricsWindow, type VertexWindow } from './metrics-window.js';
import {
  decide,
  type JobTopology,
  type ScaleUpRecord,
  type ScalingDecision,
  ScalingOutcome,
} from './scaling-decision.js';

/** What the job looks like now: a sample of its counters, or why there is none. */
export type Observation = { sample: JobSample } | { notReady: string };

export interface ScalingContext {
  current: VertexParallelism;
  maxParallelism: VertexParallelism;
  slotCapacity: number | undefined;
}

export class ScalingController {
  readonly #config: AutoscalerConfig;
  readonly #topology: JobTopology;
  readonly #window: MetricsWindow;
  #stableFrom: number;
  #lastSeen: VertexParallelism | undefined;
  #lastScaleDownAt: number | undefined;
  readonly #pendingScaleUps = new Map<string, ScaleUpRecord>();
  readonly #ineffective = new Map<string, string>();

  constructor(config: AutoscalerConfig, topology: JobTopology, startedAt: number) {
    this.#config = config;
    this.#topology = topology;
    this.#window = new MetricsWindow(config.metricsWindowMs);
    this.#stableFrom = startedAt + config.stabilizationIntervalMs;
  }

  /** Vertices not scaled up again, and why. */
  get ineffective(): ReadonlyMap<string, string> {
    return this.#ineffective;
  }

  /** Takes the observation and decides, or says what it waits for. */
  evaluate(now: number, observation: Observation, context: ScalingContext): ScalingDecision {
    if ('notReady' in observation) {
      this.#window.clear();
      return waiting(observation.notReady);
    }
    if (this.#lastSeen !== undefined && !same(this.#lastSeen, context.current)) {
      // Rescaled by someone else (a user, reactive mode) or restarted at another parallelism.
      this.#restartAfterRescale(now, context.current);
    }
    this.#lastSeen = context.current;
    if (now < this.#stableFrom) {
      this.#window.clear();
      return waiting(
        `stabilising after the job started or was rescaled: metrics are collected from ${Math.ceil((this.#stableFrom - now) / 1_000)} s from now (job.autoscaler.stabilization.interval)`,
      );
    }
    const latest = this.#window.latest();
    if (latest && wentBack(latest, observation.sample)) this.#window.clear();
    this.#window.add(observation.sample);
    const slack = this.#config.controlLoopIntervalMs / 2;
    if (!this.#window.isFull(slack)) {
      return waiting(
        `collecting metrics: ${(this.#window.spanMs / 1_000).toFixed(1)} of ${(this.#config.metricsWindowMs / 1_000).toFixed(1)} s (job.autoscaler.metrics.window)`,
      );
    }
    const windows = new Map<string, VertexWindow>(
      this.#topology.vertices.map((v) => [v.id, this.#window.rates(v.id, v.name)]),
    );
    const decision = decide({
      now,
      config: this.#config,
      topology: this.#topology,
      windows,
      current: context.current,
      maxParallelism: context.maxParallelism,
      slotCapacity: context.slotCapacity,
      history: {
        lastScaleDownAt: this.#lastScaleDownAt,
        pendingScaleUps: this.#pendingScaleUps,
        ineffective: this.#ineffective,
      },
    });
    if (decision.outcome !== ScalingOutcome.MissingMetrics) {
      // Every pending scale-up has had its full window: judged now, or needed no more capacity.
      this.#pendingScaleUps.clear();
      for (const [id, why] of Object.entries(decision.ineffective)) this.#ineffective.set(id, why);
    }
    return decision;
  }

  /** The job was rescaled as `decision` asked (`previous` → `target`) and runs again at `now`. */
  rescaled(
    now: number,
    previous: VertexParallelism,
    target: VertexParallelism,
    decision: ScalingDecision,
  ): void {
    let down = false;
    for (const [id, to] of Object.entries(target)) {
      const from = previous[id];
      if (from === undefined || from === to) continue;
      if (to < from) {
        down = true;
        this.#ineffective.delete(id);
        continue;
      }
      const evaluation = decision.vertices.find((e) => e.id === id);
      if (evaluation?.trueProcessingRate != null) {
        this.#pendingScaleUps.set(id, { from, to, rateBefore: evaluation.trueProcessingRate * from });
      }
    }
    if (down) this.#lastScaleDownAt = now;
    this.#restartAfterRescale(now, target);
  }

  /** A rescale failed or was refused: wait a stabilisation interval before trying again. */
  backOff(now: number): void {
    this.#stableFrom = now + this.#config.stabilizationIntervalMs;
    this.#window.clear();
  }

  #restartAfterRescale(now: number, parallelism: VertexParallelism): void {
    this.#lastSeen = parallelism;
    this.#stableFrom = now + this.#config.stabilizationIntervalMs;
    this.#window.clear();
    for (const [id, record] of this.#pendingScaleUps) {
      if (parallelism[id] !== record.to) this.#pendingScaleUps.delete(id);
    }
  }
}

function waiting(reason: string): ScalingDecision {
  return { outcome: ScalingOutcome.Waiting, reason, vertices: [], ineffective: {} };
}

function same(a: VertexParallelism, b: VertexParallelism): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** A counter lower than before: the vertex's tasks restarted (a failover): the window starts over. */
function wentBack(before: JobSample, now: JobSample): boolean {
  for (const [id, v] of Object.entries(now.vertices)) {
    const b = before.vertices[id];
    if (!b) continue;
    if ((v.recordsIn ?? 0) < (b.recordsIn ?? 0) || (v.busyMs ?? 0) < (b.busyMs ?? 0)) return true;
  }
  return false;
}
