/**
 * Reconciliation of a JobMaster's executions with its TaskExecutors' heartbeat reports, without NATS, on a
 * manual clock: a missed FAILED is applied, an execution the JobMaster does not know is cancelled, a
 * deployed execution that vanished is failed over after the grace (not before), a TaskExecutor that stops
 * reporting the job is noticed, and bad reports are counted drops that change nothing.
 */

import { describe, expect, it } from 'vitest';
import type { JobId } from '../../src/common/ids.js';
import { ManualClock } from '../../src/ha/clock.js';
import {
  ExecutionReconciler,
  type ExecutionReport,
  type ExpectedExecution,
  MAX_REPORTED_EXECUTIONS,
} from '../../src/runtime/jobmaster/execution-reconciler.js';

const JOB = '0000000000000000000000000000a0b1' as JobId;
const OTHER = '0000000000000000000000000000ffff' as JobId;
const HEARTBEAT = 1_000;

function setup() {
  const clock = new ManualClock(0);
  const reconciler = new ExecutionReconciler({
    jobId: JOB,
    clock,
    graceMs: HEARTBEAT,
    silenceMs: 3 * HEARTBEAT,
  });
  return { clock, reconciler };
}

const running = (vertexId: string, subtaskIndex: number, tm = 'tm-1', attempt = 0): ExpectedExecution => ({
  vertexId,
  subtaskIndex,
  attempt,
  taskManagerId: tm,
  state: 'RUNNING',
});

function report(executions: ExecutionReport['executions'], tm = 'tm-1', jobId = JOB): ExecutionReport {
  return { taskManagerId: tm, jobId, executions };
}

const task = (vertexId: string, subtaskIndex: number, attempt = 0, jobId = JOB) => ({
  jobId,
  vertexId,
  subtaskIndex,
  attempt,
});

describe('execution reconciliation', () => {
  it('applies a terminal state whose tell was lost (a missed FAILED)', () => {
    const { reconciler } = setup();
    const expected = [running('src', 0), running('map', 0)];
    const result = reconciler.onReport(
      report([
        { task: task('src', 0), state: 'RUNNING' },
        {
          task: task('map', 0),
          state: 'FAILED',
          error: { message: 'Error: boom', location: 'map (1/1)#0 on tm-1' },
        },
      ]),
      expected,
    );
    expect(result).toEqual({
      accepted: true,
      actions: [
        {
          kind: 'apply',
          task: task('map', 0),
          state: 'FAILED',
          error: { message: 'Error: boom', location: 'map (1/1)#0 on tm-1' },
        },
      ],
    });
    // A RUNNING the JobMaster missed (it still thinks DEPLOYING) is applied too.
    const deploying = [{ ...running('src', 0), state: 'DEPLOYING' as const }];
    const again = reconciler.onReport(report([{ task: task('src', 0), state: 'RUNNING' }]), deploying);
    expect(again).toEqual({
      accepted: true,
      actions: [{ kind: 'apply', task: task('src', 0), state: 'RUNNING' }],
    });
  });

  it('tells the TaskExecutor to cancel an execution the JobMaster does not know', () => {
    const { reconciler } = setup();
    const expected = [running('src', 0, 'tm-1', 1)];
    const result = reconciler.onReport(
      report([
        { task: task('src', 0, 1), state: 'RUNNING' },
        { task: task('src', 0, 0), state: 'RUNNING' }, // the previous attempt, never cancelled
        { task: task('sink', 3, 1), state: 'RUNNING' }, // no such execution
        { task: task('map', 0, 0), state: 'CANCELED' }, // ended: nothing to do
      ]),
      expected,
    );
    expect(result).toEqual({
      accepted: true,
      actions: [
        { kind: 'cancel', task: task('src', 0, 0), taskManagerId: 'tm-1' },
        { kind: 'cancel', task: task('sink', 3, 1), taskManagerId: 'tm-1' },
      ],
    });
    // The JobMaster placed this execution on tm-2: tm-1 running it is unknown there.
    const elsewhere = reconciler.onReport(report([{ task: task('src', 0, 1), state: 'RUNNING' }]), [
      running('src', 0, 'tm-2', 1),
    ]);
    expect(elsewhere).toEqual({
      accepted: true,
      actions: [{ kind: 'cancel', task: task('src', 0, 1), taskManagerId: 'tm-1' }],
    });
  });

  it('fails over a deployed execution that vanished, after about one heartbeat of grace', async () => {
    const { clock, reconciler } = setup();
    const expected = [running('src', 0), running('map', 0)];
    const without = report([{ task: task('src', 0), state: 'RUNNING' }]);
    // First report without it: a deploy may still be on its way.
    expect(reconciler.onReport(without, expected)).toEqual({ accepted: true, actions: [] });
    // A second report soon after (a heartbeat asked for by a new ResourceManager): still within the grace.
    await clock.advance(100);
    expect(reconciler.onReport(without, expected)).toEqual({ accepted: true, actions: [] });
    await clock.advance(HEARTBEAT - 100);
    expect(reconciler.onReport(without, expected)).toEqual({
      accepted: true,
      actions: [{ kind: 'missing', task: task('map', 0), taskManagerId: 'tm-1', missingMs: HEARTBEAT }],
    });
  });

  it('an execution that reappears within the grace is not failed over', async () => {
    const { clock, reconciler } = setup();
    const expected = [running('map', 0)];
    expect(reconciler.onReport(report([]), expected)).toEqual({ accepted: true, actions: [] });
    await clock.advance(HEARTBEAT / 2);
    reconciler.onReport(report([{ task: task('map', 0), state: 'RUNNING' }]), expected);
    await clock.advance(HEARTBEAT);
    // Absent again: the grace starts over.
    expect(reconciler.onReport(report([]), expected)).toEqual({ accepted: true, actions: [] });
  });

  it('notices a TaskExecutor that sends no report for the job any more', async () => {
    const { clock, reconciler } = setup();
    const expected = [running('src', 0, 'tm-1'), running('map', 0, 'tm-2')];
    reconciler.onReport(report([{ task: task('src', 0), state: 'RUNNING' }], 'tm-1'), expected);
    expect(reconciler.checkSilence(expected)).toEqual([]); // tm-2: silent from now on
    for (let t = 0; t < 3; t++) {
      await clock.advance(HEARTBEAT);
      reconciler.onReport(report([{ task: task('src', 0), state: 'RUNNING' }], 'tm-1'), expected);
      if (t < 2) expect(reconciler.checkSilence(expected)).toEqual([]);
    }
    expect(reconciler.checkSilence(expected)).toEqual([
      { kind: 'missing', task: task('map', 0), taskManagerId: 'tm-2', missingMs: 3 * HEARTBEAT },
    ]);
  });

  it('drops garbage, oversized reports and reports naming another job, counted, changing nothing', async () => {
    const { clock, reconciler } = setup();
    const expected = [running('map', 0)];
    const bad: unknown[] = [
      null,
      'executions',
      { taskManagerId: 'tm-1', jobId: JOB, executions: 'all of them' },
      { taskManagerId: 'tm-1', jobId: JOB, executions: [{ task: task('map', 0), state: 'EXPLODED' }] },
      {
        taskManagerId: 'tm-1',
        jobId: JOB,
        executions: Array.from({ length: MAX_REPORTED_EXECUTIONS + 1 }, (_, i) => ({
          task: task('map', i),
          state: 'RUNNING',
        })),
      },
      report([{ task: task('map', 0), state: 'FAILED' }], 'tm-1', OTHER),
      report([
        { task: task('map', 0), state: 'RUNNING' },
        { task: task('map', 0, 0, OTHER), state: 'FAILED' },
      ]),
    ];
    for (const body of bad) {
      const result = reconciler.onReport(body, expected);
      expect(result.accepted).toBe(false);
      await clock.advance(HEARTBEAT);
    }
    expect(reconciler.dropped).toBe(bad.length);
    // None of them counted as a report: `map` was never seen absent, so a valid report starts the grace.
    expect(reconciler.onReport(report([]), expected)).toEqual({ accepted: true, actions: [] });
    const oversized = reconciler.onReport(bad[4], expected);
    expect(oversized).toMatchObject({ accepted: false, reason: expect.stringMatching(/at most 4096/) });
    const foreign = reconciler.onReport(bad[6], expected);
    expect(foreign).toMatchObject({ accepted: false, reason: expect.stringMatching(/of job 0+ffff/) });
  });
});

describe('execution reconciliation of deploys', () => {
  it('does not fail over a DEPLOYING execution absent from the reports (its deploy ask answers for it)', async () => {
    const clock = new ManualClock(0);
    const reconciler = new ExecutionReconciler({
      jobId: JOB,
      clock,
      graceMs: HEARTBEAT,
      silenceMs: 3 * HEARTBEAT,
    });
    const expected = [{ ...running('map', 0), state: 'DEPLOYING' as const }];
    for (let i = 0; i < 5; i++) {
      expect(reconciler.onReport(report([]), expected)).toEqual({ accepted: true, actions: [] });
      expect(reconciler.checkSilence(expected)).toEqual([]);
      await clock.advance(HEARTBEAT);
    }
  });
});
