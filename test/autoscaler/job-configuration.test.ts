/**
 * Per-job autoscaler settings (`sluice run -D job.autoscaler.…`, a JobGraph's `configuration`): picked out
 * of the client's `-D`, merged over the JobManager's, checked with the option table and the cross-checks on
 * the merged result; and the guard against the autoscaler and reactive mode rescaling one job.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError } from '../../src/common/errors.js';
import { DEFAULT_AUTOSCALER } from '../../src/config/autoscaler-config.js';
import { loadConfig } from '../../src/config/index.js';
import {
  autoscalerSettings,
  jobAutoscalerConfig,
  jobConfigurationFrom,
} from '../../src/config/job-configuration.js';
import { autoscalingFor } from '../../src/runtime/autoscaler/job-autoscalers.js';

/** The JobManager's settings: test-sized windows, autoscaler off. */
const CLUSTER = loadConfig({
  dynamic: ['job.autoscaler.control-loop.interval=1 s', 'job.autoscaler.metrics.window=5 s'],
}).autoscaler;

function problems(configuration: Record<string, string>): string[] {
  try {
    jobAutoscalerConfig(CLUSTER, configuration);
  } catch (err) {
    if (!isSluiceError(err, ErrorCode.InvalidConfig)) throw err;
    return (err.details as { problems: string[] }).problems;
  }
  return [];
}

describe("a job's own autoscaler settings", () => {
  it('are the job.autoscaler.* keys of sluice run -D, the last of a key winning', () => {
    expect(
      jobConfigurationFrom([
        'job.autoscaler.enabled=true',
        'heartbeat.interval=200 ms',
        'job.autoscaler.target.utilization=0.3',
        'job.autoscaler.target.utilization= 0.5',
        'no-equals-sign',
      ]),
    ).toEqual({ 'job.autoscaler.enabled': 'true', 'job.autoscaler.target.utilization': '0.5' });
    expect(jobConfigurationFrom(['rest.port=0'])).toBeUndefined();
  });

  it("override the JobManager's, which stay the default for the other keys", () => {
    const { config, jobSettings } = jobAutoscalerConfig(CLUSTER, {
      'job.autoscaler.enabled': 'true',
      'job.autoscaler.target.utilization': '0.2',
      'job.autoscaler.stabilization.interval': '2 s',
    });
    expect(config).toEqual({
      ...CLUSTER,
      enabled: true,
      targetUtilization: 0.2,
      stabilizationIntervalMs: 2_000,
    });
    expect(config.metricsWindowMs).toBe(5_000);
    expect(jobSettings).toEqual({
      'job.autoscaler.enabled': 'true',
      'job.autoscaler.target.utilization': '0.2',
      'job.autoscaler.stabilization.interval': '2 s',
    });
    expect(jobAutoscalerConfig(CLUSTER, undefined)).toEqual({ config: CLUSTER, jobSettings: {} });
    const shown = autoscalerSettings(config);
    expect(shown['job.autoscaler.target.utilization']).toBe('0.2');
    expect(shown['job.autoscaler.metrics.window']).toBe('5 s');
    expect(Object.keys(shown)).toHaveLength(15);
  });

  it('refuse unknown keys, JobManager-only keys and bad values, each named, in one error', () => {
    expect(
      problems({
        'job.autoscaler.target.utilisation': '0.5',
        'scheduler-mode': 'reactive',
        'job.autoscaler.target.utilization': '1.5',
        'job.autoscaler.enabled': 'yes',
      }),
    ).toEqual([
      "job.autoscaler.target.utilisation: unknown key (from the job's configuration); did you mean 'job.autoscaler.target.utilization'?",
      "scheduler-mode: cannot be set per job (from the job's configuration); only job.autoscaler.* can — set scheduler-mode on the JobManager",
      "job.autoscaler.target.utilization: '1.5' (from the job's configuration) is out of range (expected between 0.01 and 1)",
      "job.autoscaler.enabled: 'yes' (from the job's configuration) is not a boolean (expected true or false)",
    ]);
  });

  it("check the merged settings: a job's window against the JobManager's loop, min against max", () => {
    expect(
      problems({
        'job.autoscaler.metrics.window': '1500 ms',
        'job.autoscaler.vertex.min-parallelism': '300',
      }),
    ).toEqual([
      "job.autoscaler.metrics.window: '1500 ms' (from the job's configuration) must be at least twice job.autoscaler.control-loop.interval 1 s (the JobManager's) (a window needs two samples)",
      "job.autoscaler.vertex.min-parallelism: '300' (from the job's configuration) is above job.autoscaler.vertex.max-parallelism 200 (the JobManager's)",
    ]);
  });
});

describe('the autoscaler and reactive mode on one job', () => {
  const on = { ...DEFAULT_AUTOSCALER, enabled: true };
  const job = (configuration?: Record<string, string>) => ({
    jobId: 'ab'.repeat(16),
    ...(configuration ? { configuration } : {}),
  });

  it('refuse a job that turns autoscaling on itself on a reactive JobManager, saying what to do', () => {
    try {
      autoscalingFor(DEFAULT_AUTOSCALER, job({ 'job.autoscaler.enabled': 'true' }), {
        reactive: true,
        recovering: false,
      });
      expect.unreachable();
    } catch (err) {
      expect(isSluiceError(err, ErrorCode.InvalidConfig)).toBe(true);
      expect((err as Error).message).toMatch(
        /turns the autoscaler on .* scheduler-mode: reactive, .* Set job\.autoscaler\.scaling\.enabled=false for advice only, or run the job on a JobManager with scheduler-mode: default/,
      );
    }
  });

  it("stand the autoscaler down to advice when the JobManager's settings turn it on, or on recovery", () => {
    const inherited = autoscalingFor(on, job(), { reactive: true, recovering: false });
    expect(inherited.adviceOnly).toMatch(/^scheduler-mode is reactive/);
    const recovered = autoscalingFor(DEFAULT_AUTOSCALER, job({ 'job.autoscaler.enabled': 'true' }), {
      reactive: true,
      recovering: true,
    });
    expect(recovered.adviceOnly).toMatch(/^scheduler-mode is reactive/);
  });

  it('leave advice mode, a disabled autoscaler and the default scheduler alone', () => {
    const advice = autoscalingFor(
      DEFAULT_AUTOSCALER,
      job({ 'job.autoscaler.enabled': 'true', 'job.autoscaler.scaling.enabled': 'false' }),
      { reactive: true, recovering: false },
    );
    expect(advice.adviceOnly).toBeUndefined();
    expect(advice.config.scalingEnabled).toBe(false);
    expect(
      autoscalingFor(DEFAULT_AUTOSCALER, job(), { reactive: true, recovering: false }).adviceOnly,
    ).toBeUndefined();
    const defaultMode = autoscalingFor(on, job({ 'job.autoscaler.enabled': 'true' }), {
      reactive: false,
      recovering: false,
    });
    expect(defaultMode.adviceOnly).toBeUndefined();
    expect(defaultMode.config.enabled).toBe(true);
  });
});
