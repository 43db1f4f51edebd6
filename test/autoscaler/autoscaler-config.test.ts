/** `job.autoscaler.*`: test-sized values are accepted; bad values get one clear error listing each problem. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError } from '../../src/common/errors.js';
import { loadConfig } from '../../src/config/index.js';

function problems(dynamic: string[]): string[] {
  try {
    loadConfig({ dynamic });
  } catch (err) {
    if (!isSluiceError(err, ErrorCode.InvalidConfig)) throw err;
    return (err.details as { problems: string[] }).problems;
  }
  return [];
}

describe('job.autoscaler.* configuration', () => {
  it('compiles test-sized values (durations in ms)', () => {
    const config = loadConfig({
      dynamic: [
        'job.autoscaler.enabled=true',
        'job.autoscaler.control-loop.interval=500 ms',
        'job.autoscaler.metrics.window=4 s',
        'job.autoscaler.stabilization.interval=2 s',
        'job.autoscaler.scale-down.interval=0 s',
        'job.autoscaler.catch-up.duration=10 s',
        'job.autoscaler.target.utilization=0.5',
        'job.autoscaler.vertex.max-parallelism=4',
      ],
    });
    expect(config.autoscaler).toMatchObject({
      enabled: true,
      controlLoopIntervalMs: 500,
      metricsWindowMs: 4_000,
      stabilizationIntervalMs: 2_000,
      scaleDownIntervalMs: 0,
      catchUpDurationMs: 10_000,
      targetUtilization: 0.5,
      targetUtilizationBoundary: 0.3,
      vertexMaxParallelism: 4,
    });
  });

  it('refuses out-of-range values, naming each key and what it expects', () => {
    const found = problems([
      'job.autoscaler.target.utilization=0',
      'job.autoscaler.target.utilization.boundary=1.5',
      'job.autoscaler.scale-down.max-factor=-0.1',
      'job.autoscaler.metrics.window=soon',
      'job.autoscaler.enabled=yes',
    ]);
    expect(found).toHaveLength(5);
    expect(found[0]).toMatch(/^job\.autoscaler\.enabled: 'yes' .* is not a boolean/);
    expect(found.join('\n')).toMatch(/job\.autoscaler\.metrics\.window: 'soon' .* is not a duration/);
    expect(found.join('\n')).toMatch(/job\.autoscaler\.target\.utilization: '0' .* between 0\.01 and 1/);
    expect(found.join('\n')).toMatch(/target\.utilization\.boundary: '1\.5' .* between 0 and 1/);
    expect(found.join('\n')).toMatch(/scale-down\.max-factor: '-0\.1' .* between 0 and 1/);
  });

  it('refuses a window shorter than two control-loop intervals, and min above max parallelism', () => {
    const found = problems([
      'job.autoscaler.control-loop.interval=10 s',
      'job.autoscaler.metrics.window=15 s',
      'job.autoscaler.vertex.min-parallelism=8',
      'job.autoscaler.vertex.max-parallelism=4',
    ]);
    expect(found).toEqual([
      "job.autoscaler.metrics.window: '15 s' (from -D) must be at least twice job.autoscaler.control-loop.interval '10 s' (from -D) (a window needs two samples)",
      "job.autoscaler.vertex.min-parallelism: '8' (from -D) is above job.autoscaler.vertex.max-parallelism '4' (from -D)",
    ]);
  });

  it('checks a submitting client’s job.autoscaler.* key by key only (the Dispatcher checks them merged)', () => {
    const dynamic = ['job.autoscaler.metrics.window=4 s', 'job.autoscaler.target.utilization=0.5'];
    expect(() => loadConfig({ dynamic })).toThrow(/must be at least twice job\.autoscaler\.control-loop/);
    expect(loadConfig({ dynamic, jobSubmission: true }).autoscaler.metricsWindowMs).toBe(4_000);
    expect(() =>
      loadConfig({ dynamic: ['job.autoscaler.target.utilization=2'], jobSubmission: true }),
    ).toThrow(/job\.autoscaler\.target\.utilization: '2' \(from -D\) is out of range/);
  });
});
