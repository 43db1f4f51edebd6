/**
 * Failover decisions of the JobMaster's scheduler, in-process on a manual clock (no NATS, no sleeps): a
 * missed FAILED (its tell lost, reconciled from a heartbeat) fails the job over and restarts it after the
 * restart delay; an unknown execution is cancelled on its TaskExecutor and changes nothing else; a lost
 * deploy ack (RUNNING never arrived) is applied from a heartbeat; a lost cancel ack is given up on after the
 * cancel timeout; an illegal transition is refused; bad reports are counted drops that change nothing.
 */
import { describe, expect, it } from 'vitest';
import { MAX_REPORTED_EXECUTIONS } from '../../src/runtime/jobmaster/execution-reconciler.js';
import { ALL_TASKS_RUNNING } from '../../src/runtime/jobmaster/scheduler.js';
import {
  CANCEL_TIMEOUT_MS,
  HEARTBEAT_MS,
  JOB,
  OTHER_JOB,
  RESTART_DELAY_MS,
  SLOTS,
  setup,
  task,
} from './fixtures.js';

type Fixture = ReturnType<typeof setup>;

/** Deploys the job and has every task report RUNNING. */
function running(f: Fixture) {
  const deployed = f.scheduler.deploy(SLOTS);
  expect(deployed?.map((e) => `${e.vertexId}/${e.index}@${e.taskManagerId}`)).toEqual([
    'src/0@tm-1',
    'src/1@tm-2',
    'sink/0@tm-1',
  ]);
  for (const e of f.graph.executions) {
    f.scheduler.onTaskState({ task: f.graph.taskId(e), taskManagerId: e.taskManagerId!, state: 'RUNNING' });
  }
  expect(f.scheduler.status).toBe('RUNNING');
  expect(f.kinds()).toContain('allRunning');
  f.recorded.length = 0;
}

const states = (f: Fixture) =>
  f.graph.executions.map((e) => `${e.vertexId}/${e.index}#${e.attempt}:${e.state}`);

describe('scheduler failover decisions', () => {
  it('a missed FAILED: applied from the heartbeat, the job fails over and restarts after the delay', async () => {
    const f = setup();
    running(f);
    // The FAILED tell of src/1 was lost; tm-2's heartbeat names it.
    f.scheduler.onExecutionReport({
      taskManagerId: 'tm-2',
      jobId: JOB,
      executions: [{ task: task('src', 1), state: 'FAILED', error: { message: 'Error: boom' } }],
    });
    expect(f.scheduler.status).toBe('FAILING');
    expect(f.scheduler.error).toEqual({ message: 'Error: boom' });
    expect(f.recorded).toEqual(
      expect.arrayContaining([
        { kind: 'stopping', status: 'FAILING' },
        { kind: 'cancelTasksOn', taskManagerId: 'tm-1' },
      ]),
    );
    // tm-2 holds nothing else that runs: it is not asked to cancel.
    expect(f.recorded).not.toContainEqual({ kind: 'cancelTasksOn', taskManagerId: 'tm-2' });
    for (const t of [task('src', 0), task('sink', 0)]) {
      f.scheduler.onTaskState({ task: t, taskManagerId: 'tm-1', state: 'CANCELED' });
    }
    expect(f.scheduler.status).toBe('RESTARTING');
    expect(f.kinds()).toContain('releaseSlots');
    await f.clock.advance(RESTART_DELAY_MS - 1);
    expect(f.kinds()).not.toContain('scheduleAttempt');
    await f.clock.advance(1);
    expect(f.kinds()).toContain('scheduleAttempt');
    expect(f.graph.attempt).toBe(1);
    expect(states(f)).toEqual(['src/0#1:SCHEDULED', 'src/1#1:SCHEDULED', 'sink/0#1:SCHEDULED']);
    // A late report of the old attempt changes nothing.
    f.scheduler.onTaskState({ task: task('src', 0), taskManagerId: 'tm-1', state: 'FAILED' });
    expect(f.scheduler.status).toBe('RESTARTING');
  });

  it('a missed FAILED with the restart strategy used up: the job ends FAILED', () => {
    const f = setup({ restartAttempts: 0 });
    running(f);
    f.scheduler.onExecutionReport({
      taskManagerId: 'tm-1',
      jobId: JOB,
      executions: [
        { task: task('src', 0), state: 'FAILED', error: { message: 'Error: boom' } },
        { task: task('sink', 0), state: 'RUNNING' },
      ],
    });
    f.scheduler.onTaskState({ task: task('src', 1), taskManagerId: 'tm-2', state: 'CANCELED' });
    f.scheduler.onTaskState({ task: task('sink', 0), taskManagerId: 'tm-1', state: 'CANCELED' });
    expect(f.scheduler.status).toBe('FAILED');
    expect(f.recorded).toContainEqual({ kind: 'terminated', status: 'FAILED' });
    expect(f.graph.endTime).not.toBeNull();
  });

  it('an unknown execution: cancelled on its TaskExecutor, nothing else changes', () => {
    const f = setup();
    running(f);
    const before = states(f);
    f.scheduler.onExecutionReport({
      taskManagerId: 'tm-2',
      jobId: JOB,
      executions: [
        { task: task('src', 1), state: 'RUNNING' },
        // An attempt this JobMaster never deployed (e.g. a deploy it gave up on).
        { task: task('src', 0, 7), state: 'RUNNING' },
      ],
    });
    expect(f.recorded).toEqual([
      { kind: 'cancelExecutions', taskManagerId: 'tm-2', tasks: [task('src', 0, 7)] },
    ]);
    expect(states(f)).toEqual(before);
    expect(f.scheduler.status).toBe('RUNNING');
  });

  it('a lost deploy ack: the RUNNING the JobMaster missed is applied from the heartbeat', () => {
    const f = setup();
    f.scheduler.deploy(SLOTS);
    f.scheduler.onTaskState({ task: task('src', 1), taskManagerId: 'tm-2', state: 'RUNNING' });
    expect(f.kinds()).not.toContain('allRunning');
    // tm-1's RUNNING tells were lost; its heartbeat has them.
    f.scheduler.onExecutionReport({
      taskManagerId: 'tm-1',
      jobId: JOB,
      executions: [
        { task: task('src', 0), state: 'RUNNING' },
        { task: task('sink', 0), state: 'RUNNING' },
      ],
    });
    expect(states(f)).toEqual(['src/0#0:RUNNING', 'src/1#0:RUNNING', 'sink/0#0:RUNNING']);
    expect(f.recorded).toContainEqual({ kind: 'publish', message: ALL_TASKS_RUNNING });
    expect(f.kinds()).toContain('allRunning');
  });

  it('a vanished execution: failed over after the grace and two reports, not before', async () => {
    const f = setup();
    running(f);
    const report = () =>
      f.scheduler.onExecutionReport({
        taskManagerId: 'tm-1',
        jobId: JOB,
        executions: [{ task: task('src', 0), state: 'RUNNING' }],
      });
    report();
    await f.clock.advance(HEARTBEAT_MS - 1);
    report();
    expect(f.scheduler.status).toBe('RUNNING');
    await f.clock.advance(1);
    report();
    expect(f.scheduler.status).toBe('FAILING');
    expect(f.scheduler.error?.message).toMatch(
      /Sink \(1\/1\)#0 on tm-1 not reported by its TaskExecutor for 1000 ms/,
    );
  });

  it('a lost cancel ack: tasks that never confirm are given up on after the cancel timeout', async () => {
    const f = setup();
    running(f);
    expect(f.scheduler.cancel()).toBe('CANCELLING');
    expect(f.recorded).toEqual(
      expect.arrayContaining([
        { kind: 'cancelTasksOn', taskManagerId: 'tm-1' },
        { kind: 'cancelTasksOn', taskManagerId: 'tm-2' },
      ]),
    );
    // Only one confirmation arrives.
    f.scheduler.onTaskState({ task: task('src', 1), taskManagerId: 'tm-2', state: 'CANCELED' });
    await f.clock.advance(CANCEL_TIMEOUT_MS - 1);
    expect(f.scheduler.status).toBe('CANCELLING');
    await f.clock.advance(1);
    expect(f.scheduler.status).toBe('CANCELED');
    expect(f.recorded).toContainEqual({ kind: 'terminated', status: 'CANCELED' });
    expect(f.lines.some((l) => /tasks did not stop within 3000 ms/.test(l.msg))).toBe(true);
    // A second cancel of an ended job changes nothing.
    expect(f.scheduler.cancel()).toBe('CANCELED');
  });

  it('a task cancelled without the JobMaster asking counts as a failure', () => {
    const f = setup();
    running(f);
    f.scheduler.onTaskState({ task: task('sink', 0), taskManagerId: 'tm-1', state: 'CANCELED' });
    expect(f.scheduler.status).toBe('FAILING');
    expect(f.scheduler.error?.message).toMatch(/was cancelled without the JobMaster asking/);
  });

  it('an illegal transition is refused: a RUNNING task reported DEPLOYING stays RUNNING', () => {
    const f = setup();
    running(f);
    f.scheduler.onTaskState({ task: task('src', 0), taskManagerId: 'tm-1', state: 'DEPLOYING' });
    expect(states(f)[0]).toBe('src/0#0:RUNNING');
    expect(f.graph.refusedTransitions).toBe(1);
    expect(f.lines.some((l) => l.msg === 'illegal task transition RUNNING → DEPLOYING refused')).toBe(true);
    expect(f.recorded).toEqual([]);
  });

  it('a report from the wrong TaskManager or attempt changes nothing', () => {
    const f = setup();
    running(f);
    f.scheduler.onTaskState({ task: task('src', 0), taskManagerId: 'tm-2', state: 'FAILED' });
    f.scheduler.onTaskState({ task: task('src', 0, 3), taskManagerId: 'tm-1', state: 'FAILED' });
    f.scheduler.onTaskGone(task('src', 0), 'tm-9');
    expect(f.scheduler.status).toBe('RUNNING');
    expect(f.recorded).toEqual([]);
  });

  it('bad heartbeats (garbage, oversized, another job) are counted drops that change nothing', () => {
    const f = setup();
    running(f);
    const before = states(f);
    f.scheduler.onExecutionReport('garbage');
    f.scheduler.onExecutionReport({ taskManagerId: 'tm-1', jobId: JOB, executions: [{ task: 5 }] });
    f.scheduler.onExecutionReport({
      taskManagerId: 'tm-1',
      jobId: JOB,
      executions: Array.from({ length: MAX_REPORTED_EXECUTIONS + 1 }, () => ({
        task: task('src', 0),
        state: 'FAILED',
      })),
    });
    // Names another job's attempt (as if it failed): must not fail this job's src/0.
    f.scheduler.onExecutionReport({
      taskManagerId: 'tm-1',
      jobId: JOB,
      executions: [{ task: task('src', 0, 0, OTHER_JOB), state: 'FAILED' }],
    });
    expect(states(f)).toEqual(before);
    expect(f.scheduler.status).toBe('RUNNING');
    expect(f.recorded).toEqual([]);
    const dropped = f.lines.filter((l) => l.msg === 'execution report dropped');
    expect(dropped.map((l) => l.dropped)).toEqual([1, 2, 3, 4]);
    expect(String(dropped[2]!.reason)).toMatch(/4097 executions in one report/);
    expect(String(dropped[3]!.reason)).toMatch(/names an execution of job 0+ffff/);
  });

  it('a JobManager that no longer leads ignores reports and lost TaskManagers', () => {
    const f = setup();
    running(f);
    f.setLeading(false);
    f.scheduler.onExecutionReport({
      taskManagerId: 'tm-1',
      jobId: JOB,
      executions: [{ task: task('src', 0), state: 'FAILED' }],
    });
    f.scheduler.onTaskManagerLost('tm-2', 'heartbeat timeout');
    expect(f.scheduler.status).toBe('RUNNING');
    f.setLeading(true);
    f.scheduler.onTaskManagerLost('tm-2', 'heartbeat timeout');
    expect(f.scheduler.status).toBe('FAILING');
    expect(f.scheduler.error?.message).toBe('TaskManager tm-2 lost: heartbeat timeout');
  });

  it('suspend cancels the tasks and ends SUSPENDED; a deploy failure after that changes nothing', () => {
    const f = setup();
    f.scheduler.deploy(SLOTS);
    const [src0] = f.graph.executions;
    f.scheduler.suspend('JobManager shut down');
    expect(f.scheduler.status).toBe('SUSPENDED');
    expect(f.recorded).toContainEqual({ kind: 'terminated', status: 'SUSPENDED' });
    f.scheduler.deployFailed(src0!, 'deployment to TaskManager tm-1 failed: timeout');
    expect(f.scheduler.status).toBe('SUSPENDED');
    expect(f.scheduler.error).toEqual({ message: 'JobManager shut down' });
  });

  it('a job whose slots never came fails before anything is deployed', () => {
    const f = setup();
    f.scheduler.schedulingFailed('no slots within 1000 ms');
    expect(f.scheduler.status).toBe('FAILED');
    expect(f.scheduler.deploy(SLOTS)).toBeUndefined();
  });
});
