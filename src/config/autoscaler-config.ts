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

/**
 * Each `job.autoscaler.*` key and the field it sets. These are the keys a job may set for itself (`sluice
 * run -D`, a JobGraph's `configuration`), over the JobManager's values (`job-configuration.ts`).
 */
export const AUTOSCALER_OPTIONS = {
  'job.autoscaler.enabled': 'enabled',
  'job.autoscaler.scaling.enabled': 'scalingEnabled',
  'job.autoscaler.control-loop.interval': 'controlLoopIntervalMs',
  'job.autoscaler.metrics.window': 'metricsWindowMs',
  'job.autoscaler.stabilization.interval': 'stabilizationIntervalMs',
  'job.autoscaler.target.utilization': 'targetUtilization',
  'job.autoscaler.target.utilization.boundary': 'targetUtilizationBoundary',
  'job.autoscaler.catch-up.duration': 'catchUpDurationMs',
  'job.autoscaler.scale-up.max-factor': 'scaleUpMaxFactor',
  'job.autoscaler.scale-down.max-factor': 'scaleDownMaxFactor',
  'job.autoscaler.scale-down.interval': 'scaleDownIntervalMs',
  'job.autoscaler.scaling.effectiveness.detection.enabled': 'effectivenessDetection',
  'job.autoscaler.scaling.effectiveness.threshold': 'effectivenessThreshold',
  'job.autoscaler.vertex.min-parallelism': 'vertexMinParallelism',
  'job.autoscaler.vertex.max-parallelism': 'vertexMaxParallelism',
} as const satisfies Record<`job.autoscaler.${string}`, keyof AutoscalerConfig>;
export type AutoscalerOptionKey = keyof typeof AUTOSCALER_OPTIONS;

export function isAutoscalerOptionKey(key: string): key is AutoscalerOptionKey {
  return Object.hasOwn(AUTOSCALER_OPTIONS, key);
}

/**
 * What the option table's bounds cannot say: a window needs two samples, and the parallelism range must
 * not be empty. `shown(key)` says how a key's value is shown (its raw value and where it came from).
 */
export function autoscalerRangeProblems(
  value: (key: AutoscalerOptionKey) => number | boolean | undefined,
  shown: (key: AutoscalerOptionKey) => string,
): string[] {
  const problems: string[] = [];
  const window = value('job.autoscaler.metrics.window');
  const loop = value('job.autoscaler.control-loop.interval');
  if (typeof window === 'number' && typeof loop === 'number' && window < 2 * loop) {
    problems.push(
      `job.autoscaler.metrics.window: ${shown('job.autoscaler.metrics.window')} must be at least twice job.autoscaler.control-loop.interval ${shown('job.autoscaler.control-loop.interval')} (a window needs two samples)`,
    );
  }
  const min = value('job.autoscaler.vertex.min-parallelism');
  const max = value('job.autoscaler.vertex.max-parallelism');
  if (typeof min === 'number' && typeof max === 'number' && min > max) {
    problems.push(
      `job.autoscaler.vertex.min-parallelism: ${shown('job.autoscaler.vertex.min-parallelism')} is above job.autoscaler.vertex.max-parallelism ${shown('job.autoscaler.vertex.max-parallelism')}`,
    );
  }
  return problems;
}
