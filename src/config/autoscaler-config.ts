/**
 * `job.autoscaler.*` compiled (see docs/configuration.md; the keys are the Flink Kubernetes operator's where
 * they fit). Durations in ms. The decision logic that uses it is `src/runtime/autoscaler/`.
 */
export type AutoscalerConfig = {
  enabled: boolean;
  /** false: decisions are computed, logged and shown, but not applied. */
  scalingEnabled: boolean;
  controlLoopIntervalMs: number;
  metricsWindowMs: number;
  stabilizationIntervalMs: number;
  targetUtilization: number;
  targetUtilizationBoundary: number;
  catchUpDurationMs: number;
  scaleUpMaxFactor: number;
  scaleDownMaxFactor: number;
  scaleDownIntervalMs: number;
  effectivenessDetection: boolean;
  effectivenessThreshold: number;
  vertexMinParallelism: number;
  vertexMaxParallelism: number;
};

/** Flink's defaults (the operator's), except effectiveness detection, which is on. */
export const DEFAULT_AUTOSCALER: Readonly<AutoscalerConfig> = Object.freeze({
  enabled: false,
  scalingEnabled: true,
  controlLoopIntervalMs: 10_000,
  metricsWindowMs: 15 * 60_000,
  stabilizationIntervalMs: 5 * 60_000,
  targetUtilization: 0.7,
  targetUtilizationBoundary: 0.3,
  catchUpDurationMs: 30 * 60_000,
  scaleUpMaxFactor: 100_000,
  scaleDownMaxFactor: 0.6,
  scaleDownIntervalMs: 60 * 60_000,
  effectivenessDetection: true,
  effectivenessThreshold: 0.1,
  vertexMinParallelism: 1,
  vertexMaxParallelism: 200,
});
