/**
 * A job's own configuration: the keys a job may set for itself over its JobManager's values, as the Flink
 * Kubernetes operator sets `job.autoscaler.*` per FlinkDeployment / FlinkSessionJob. They travel in the
 * JobGraph (`configuration`, raw strings as the user wrote them); `sluice run -D key=value` puts them there.
 *
 * Promises: {@link jobConfigurationFrom} picks the per-job keys out of `-D` definitions (other keys stay the
 * client's own, as before); {@link jobAutoscalerConfig} merges a job's keys over the JobManager's compiled
 * `job.autoscaler.*`, checked with the same option table (types, bounds) and the same cross-checks on the
 * merged result. Refuses, with one INVALID_CONFIG error listing every problem: an unknown key (with a
 * suggestion), a key that only a JobManager can have (`scheduler-mode`, `heartbeat.*`, …), a bad value, a
 * merged configuration whose window is shorter than two control-loop intervals or whose min parallelism is
 * above its max.
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
import {
  AUTOSCALER_OPTIONS,
  type AutoscalerConfig,
  type AutoscalerOptionKey,
  autoscalerRangeProblems,
  isAutoscalerOptionKey,
} from './autoscaler-config.js';
import { isOptionKey, OPTIONS } from './options.js';
import { suggestKey } from './suggest.js';
import { formatDuration } from './units.js';
import { compileValue, showRaw } from './values.js';

/** A job's own keys, as given (`key` → raw value). */
export type JobConfiguration = Readonly<Record<string, string>>;

/** The keys a job may set: `job.autoscaler.*`. */
export const PER_JOB_KEYS: readonly AutoscalerOptionKey[] = Object.keys(
  AUTOSCALER_OPTIONS,
) as AutoscalerOptionKey[];

/** The per-job keys among `-D key=value` definitions (the last one of a key wins); undefined for none. */
export function jobConfigurationFrom(definitions: readonly string[]): JobConfiguration | undefined {
  const picked: Record<string, string> = {};
  for (const definition of definitions) {
    const eq = definition.indexOf('=');
    if (eq < 0) continue;
    const key = definition.slice(0, eq).trim();
    if (isAutoscalerOptionKey(key)) picked[key] = definition.slice(eq + 1).trim();
  }
  return Object.keys(picked).length > 0 ? picked : undefined;
}

/** A job's effective autoscaler settings: the JobManager's, with the job's own keys over them. */
export interface JobAutoscalerSettings {
  config: AutoscalerConfig;
  /** The keys the job set itself, as given. */
  jobSettings: Record<string, string>;
}

export function jobAutoscalerConfig(
  cluster: AutoscalerConfig,
  configuration: JobConfiguration | undefined,
): JobAutoscalerSettings {
  const problems: string[] = [];
  const config: Record<string, number | boolean> = { ...cluster };
  const jobSettings: Record<string, string> = {};
  for (const [key, raw] of Object.entries(configuration ?? {})) {
    if (!isOptionKey(key)) {
      const suggestion = suggestKey(key);
      problems.push(
        `${key}: unknown key (from the job's configuration); ${suggestion === undefined ? 'see docs/configuration.md for the keys' : `did you mean '${suggestion}'?`}`,
      );
      continue;
    }
    if (!isAutoscalerOptionKey(key)) {
      problems.push(
        `${key}: cannot be set per job (from the job's configuration); only job.autoscaler.* can — set ${key} on the JobManager`,
      );
      continue;
    }
    const compiled = compileValue(OPTIONS[key], raw);
    if (!compiled.ok) {
      problems.push(`${key}: ${showRaw(raw)} (from the job's configuration) ${compiled.problem}`);
      continue;
    }
    if (typeof compiled.value === 'number' || typeof compiled.value === 'boolean') {
      config[AUTOSCALER_OPTIONS[key]] = compiled.value;
      jobSettings[key] = raw;
    }
  }
  const value = (key: AutoscalerOptionKey) => config[AUTOSCALER_OPTIONS[key]];
  const shown = (key: AutoscalerOptionKey) =>
    key in jobSettings
      ? `${showRaw(jobSettings[key])} (from the job's configuration)`
      : `${showSetting(key, value(key))} (the JobManager's)`;
  problems.push(...autoscalerRangeProblems(value, shown));
  if (problems.length > 0) {
    throw new SluiceError(
      ErrorCode.InvalidConfig,
      problems.length === 1
        ? `invalid job configuration: ${problems[0]}`
        : `invalid job configuration (${problems.length} problems):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { details: { problems } },
    );
  }
  return { config: config as AutoscalerConfig, jobSettings };
}

/** Every `job.autoscaler.*` key with its value, as a user would write it (durations as `10 s`). */
export function autoscalerSettings(config: AutoscalerConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of PER_JOB_KEYS) out[key] = showSetting(key, config[AUTOSCALER_OPTIONS[key]]);
  return out;
}

function showSetting(key: AutoscalerOptionKey, value: number | boolean | undefined): string {
  if (OPTIONS[key].type === 'duration' && typeof value === 'number') return formatDuration(value);
  return String(value);
}
