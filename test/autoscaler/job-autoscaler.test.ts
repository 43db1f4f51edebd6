/**
 * The autoscaler's control loop on a manual clock, with a testing Rescaler (it records requests and changes
 * the job's view the way a JobMaster would): it rescales through the Rescaler with cause `autoscaler`,
 * keeps and counts its decisions, logs each with its inputs, only advises when scaling is disabled, and
 * backs off after a refused rescale.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { type AutoscalerConfig, DEFAULT_AUTOSCALER } from '../../src/config/autoscaler-config.js';
import { ManualClock } from '../../src/ha/clock.js';
import { type AutoscaledJobView, JobAutoscaler } from '../../src/runtime/autoscaler/job-autoscaler.js';
import type {
  RescaleRequest,
  RescaleResult,
  Rescaler,
  VertexParallelism,
} from '../../src/runtime/jobmaster/rescale.js';

const CONFIG: AutoscalerConfig = {
  ...DEFAULT_AUTOSCALER,
  enabled: true,
  controlLoopIntervalMs: 1_000,
  metricsWindowMs: 4_000,
  stabilizationIntervalMs: 2_000,
  catchUpDurationMs: 10_000,
  scaleDownIntervalMs: 0,
};

/**
 * A one-vertex job (source and sink chained) whose source is offered `arrival` records/s; each subtask
 * handles at most `perSubtask`/s. Counters advance with the clock, as the JobMaster's would.
 */
class TestingJob implements Rescaler {
  readonly requests: RescaleRequest[] = [];
  refuse: SluiceError | undefined;
  parallelism = 1;
  arrival = 400;
  readonly perSubtask = 500;
  #at = 0;
  #recordsIn = 0;
  #busyMs = 0;
  #backlog = 0;

  constructor(readonly clock: ManualClock) {}

  /** Moves the job's counters up to now. */
  #advance(): void {
    const seconds = (this.clock.now() - this.#at) / 1_000;
    this.#at = this.clock.now();
    const capacity = this.parallelism * this.perSubtask;
    const offered = this.arrival * seconds + this.#backlog;
    const read = Math.min(offered, capacity * seconds);
    this.#backlog = offered - read;
    this.#recordsIn += read;
    this.#busyMs += (read / this.perSubtask) * 1_000;
  }

  view = (): AutoscaledJobView => {
    this.#advance();
    return {
      status: 'RUNNING',
      vertices: [
        {
          id: 'v1',
          name: 'Source: numbers -> Sink',
          parallelism: this.parallelism,
          subtasks: Array.from({ length: this.parallelism }, () => ({ state: 'RUNNING' })),
          accumulators: {
            'Source: numbers -> Sink records in': this.#recordsIn,
            'Source: numbers -> Sink records out': this.#recordsIn,
            'Source: numbers -> Sink busy ms': this.#busyMs,
            'Source: numbers -> Sink backpressured ms': 0,
            'Source: numbers -> Sink pending records': this.#backlog,
          },
        },
      ],
    };
  };

  async rescale(request: RescaleRequest): Promise<RescaleResult> {
    this.requests.push(request);
    if (this.refuse) throw this.refuse;
    this.#advance();
    const previous = this.currentParallelism();
    this.parallelism = request.target.v1 ?? this.parallelism;
    // A rescale restarts the tasks: counters from 0.
    this.#recordsIn = 0;
    this.#busyMs = 0;
    return { jobId: 'job', previous, target: this.currentParallelism(), downtimeMs: 300 };
  }

  currentParallelism(): VertexParallelism {
    return { v1: this.parallelism };
  }

  maxParallelism(): VertexParallelism {
    return { v1: 128 };
  }
}

function logSink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: pino({ level: 'debug' }, stream) };
}

function autoscalerFor(job: TestingJob, config: AutoscalerConfig = CONFIG, adviceOnly?: string) {
  const { lines, log } = logSink();
  const autoscaler = new JobAutoscaler({
    jobId: 'job',
    config,
    adviceOnly,
    topology: { vertices: [{ id: 'v1', name: 'Source: numbers -> Sink' }], edges: [] },
    rescaler: job,
    view: job.view,
    log,
    clock: job.clock,
    wallClock: () => 1_700_000_000_000 + job.clock.now(),
  });
  return { autoscaler, lines };
}

describe('the autoscaler control loop', () => {
  it('scales a job up when its input outgrows it, then leaves it alone, each decision logged and kept', async () => {
    const clock = new ManualClock();
    const job = new TestingJob(clock);
    const { autoscaler, lines } = autoscalerFor(job);
    autoscaler.start();
    // 400/s on one subtask of 500/s: utilisation 0.8, within 0.4..1.0.
    await clock.advance(8_000);
    expect(job.requests).toHaveLength(0);
    expect(autoscaler.status().latest?.outcome).toBe('no-change');
    // The input steps up 4×: 1600/s; a backlog builds.
    job.arrival = 1_600;
    await clock.advance(8_000);
    // The first window after the step still holds the slower seconds before it: one or two steps up, to
    // at least 1600 / 500 → 4 subtasks.
    expect(job.requests.length).toBeGreaterThanOrEqual(1);
    expect(job.requests.length).toBeLessThanOrEqual(2);
    expect(job.parallelism).toBeGreaterThanOrEqual(4);
    const request = job.requests[0]!;
    expect(request.cause).toBe('autoscaler');
    expect(request.reason).toMatch(
      /^Source: numbers -> Sink 1 → \d+ \(utilisation [\d.]+ outside 0\.4\.\.1: needs \d+\)$/,
    );
    const status = autoscaler.status();
    expect(status.rescales).toBe(job.requests.length);
    expect(status.decisions.at(-4)?.rescale).toEqual({
      previous: { v1: 1 },
      target: request.target,
      downtimeMs: 300,
    });
    expect(status.counts.rescale).toBe(job.requests.length);
    expect(status.counts['no-change']).toBeGreaterThan(0);
    // Logged with its inputs.
    const logged = lines.find((l) => l.outcome === 'rescale');
    expect(logged?.msg).toBe(`autoscaler: ${request.reason}`);
    // Its inputs: one subtask handles 500/s when busy all the time.
    expect(logged?.vertices).toEqual([
      expect.objectContaining({
        parallelism: 1,
        trueProcessingRate: 500,
        busyTimeMsPerSecond: expect.any(Number),
      }),
    ]);
    expect(lines.some((l) => l.msg === 'autoscaler rescaled the job' && l.downtimeMs === 300)).toBe(true);
    // Caught up and steady: no more rescales.
    const before = job.requests.length;
    await clock.advance(30_000);
    expect(job.requests.length).toBe(before);
    expect(autoscaler.status().latest?.outcome).toBe('no-change');
  });

  it('only advises when job.autoscaler.scaling.enabled is false', async () => {
    const clock = new ManualClock();
    const job = new TestingJob(clock);
    job.arrival = 2_000;
    const { autoscaler } = autoscalerFor(job, { ...CONFIG, scalingEnabled: false });
    autoscaler.start();
    await clock.advance(10_000);
    expect(job.requests).toHaveLength(0);
    const status = autoscaler.status();
    expect(status.latest?.outcome).toBe('advice');
    expect(status.latest?.reason).toMatch(/\(not applied: job\.autoscaler\.scaling\.enabled is false\)$/);
    expect(status.counts.advice).toBeGreaterThan(0);
    autoscaler.stop();
    expect(autoscaler.status().state).toBe('stopped');
  });

  it('stands down to advice when told why (reactive mode), although scaling is enabled', async () => {
    const clock = new ManualClock();
    const job = new TestingJob(clock);
    job.arrival = 2_000;
    const { autoscaler, lines } = autoscalerFor(job, CONFIG, 'scheduler-mode is reactive');
    autoscaler.start();
    await clock.advance(10_000);
    expect(job.requests).toHaveLength(0);
    const status = autoscaler.status();
    expect(status.scalingEnabled).toBe(false);
    expect(status.adviceOnly).toBe('scheduler-mode is reactive');
    expect(status.latest?.outcome).toBe('advice');
    expect(status.latest?.reason).toMatch(/\(not applied: scheduler-mode is reactive\)$/);
    expect(lines.find((l) => l.msg === 'autoscaler started')?.scalingEnabled).toBe(false);
    autoscaler.stop();
  });

  it('logs a refused rescale, counts it, and waits a stabilisation interval before trying again', async () => {
    const clock = new ManualClock();
    const job = new TestingJob(clock);
    job.arrival = 2_000;
    job.refuse = new SluiceError(ErrorCode.NoResourceAvailable, 'could not get 5 slots');
    const { autoscaler, lines } = autoscalerFor(job);
    autoscaler.start();
    await clock.advance(7_000);
    expect(job.requests).toHaveLength(1);
    const status = autoscaler.status();
    expect(status.counts['rescale-failed']).toBe(1);
    expect(status.decisions[0]).toMatchObject({ outcome: 'rescale-failed', error: 'could not get 5 slots' });
    expect(lines.some((l) => l.msg === 'autoscaler: rescale failed' && l.level === 40)).toBe(true);
    // Stabilising (2 s) and a new window (4 s) before the next try, at 12 s.
    await clock.advance(4_000);
    expect(job.requests).toHaveLength(1);
    await clock.advance(1_000);
    expect(job.requests).toHaveLength(2);
    autoscaler.stop();
  });
});
