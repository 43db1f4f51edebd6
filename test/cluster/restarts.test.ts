/**
 * Restart strategies on a cluster of processes: a failing job restarts as configured and then fails
 * with its cause; a job that fails once finishes after one restart; a job whose TaskManager dies
 * restarts on the survivor.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import {
  createRestartStrategy,
  type RestartStrategyConfig,
} from '../../src/runtime/jobmaster/restart-strategy.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));

const base: RestartStrategyConfig = {
  type: 'none',
  fixedDelay: { attempts: 2, delayMs: 100 },
  exponentialDelay: {
    initialBackoffMs: 100,
    maxBackoffMs: 1_000,
    multiplier: 2,
    resetBackoffThresholdMs: 10_000,
    jitterFactor: 0,
    attemptsBeforeReset: 5,
  },
  failureRate: { maxFailuresPerInterval: 2, intervalMs: 1_000, delayMs: 50 },
};

describe('restart strategies', () => {
  it('none never restarts; fixed-delay restarts N times', () => {
    expect(createRestartStrategy(base).onFailure(0)).toBeUndefined();
    const fixed = createRestartStrategy({ ...base, type: 'fixed-delay' });
    expect([fixed.onFailure(0), fixed.onFailure(1), fixed.onFailure(2)]).toEqual([100, 100, undefined]);
  });

  it('exponential-delay grows to the maximum, resets after a quiet period, and stops after its attempts', () => {
    const exp = createRestartStrategy({ ...base, type: 'exponential-delay' });
    expect([0, 1, 2, 3, 4].map((t) => exp.onFailure(t))).toEqual([100, 200, 400, 800, 1_000]);
    expect(exp.onFailure(5)).toBeUndefined();
    const again = createRestartStrategy({ ...base, type: 'exponential-delay' });
    again.onFailure(0);
    again.onFailure(1);
    expect(again.onFailure(20_000)).toBe(100);
    const jittery = createRestartStrategy(
      {
        ...base,
        type: 'exponential-delay',
        exponentialDelay: { ...base.exponentialDelay, jitterFactor: 0.5 },
      },
      () => 1,
    );
    expect(jittery.onFailure(0)).toBe(150);
  });

  it('failure-rate fails the job when too many failures fall into one interval', () => {
    const rate = createRestartStrategy({ ...base, type: 'failure-rate' });
    expect(rate.onFailure(0)).toBe(50);
    expect(rate.onFailure(500)).toBe(50);
    expect(rate.onFailure(900)).toBeUndefined();
    const slow = createRestartStrategy({ ...base, type: 'failure-rate' });
    expect([0, 1_100, 2_200, 3_300].map((t) => slow.onFailure(t))).toEqual([50, 50, 50, 50]);
  });
});

describe('restarts on a cluster', () => {
  let nats: NatsServerHandle;
  let dir: string;
  let common: string[];
  let jm: SluiceProcess;
  const tms: SluiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-restarts-'));
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'restarts',
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      'heartbeat.timeout=1500 ms',
    ];
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'restart-strategy.type=fixed-delay',
      '-D',
      'restart-strategy.fixed-delay.attempts=2',
      '-D',
      'restart-strategy.fixed-delay.delay=100 ms',
    ]);
    await jm.waitForMessage('JobManager started');
    for (let i = 0; i < 2; i++) tms.push(new SluiceProcess(['taskmanager', ...common, '--slots', '2']));
    await Promise.all(tms.map((tm) => tm.waitForMessage('registered at ResourceManager')));
  });

  afterAll(async () => {
    await Promise.all(tms.map((tm) => tm.stop()));
    await jm?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('restarts a failing job as often as the strategy allows, then fails it with the cause', async () => {
    const run = await sluice(['run', ...common, '-p', '2', 'builtin:fail', '2000']);
    expect(run.code).toBe(1);
    // Both subtasks reach their failing record; whichever fails first is the cause.
    expect(run.stderr).toMatch(/boom: map function failed on record 200[01]/);
    expect(run.stderr).toMatch(/RESTARTING|restarting in 100 ms/);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const details = await jobDetails(jobId);
    expect(details.status).toBe('FAILED');
    expect(details.restarts).toBe(2);
    expect(details.vertices[0]!.subtasks.every((s) => s.attempt === 2)).toBe(true);
  });

  it('finishes a job that failed once, after one restart, with complete output', async () => {
    const output = join(dir, 'once.txt');
    const run = await sluice(['run', ...common, join(JOBS, 'fails-once.ts'), join(dir, 'marker'), output]);
    expect(run.code, run.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const details = await jobDetails(jobId);
    expect(details.restarts).toBe(1);
    const lines = (await readFile(output, 'utf8')).trim().split('\n').map(Number);
    expect(lines).toEqual([...Array(1_000).keys()].map((i) => i * 2));
  });

  /**
   * Waits until the job runs again after exactly one restart with no subtask on `goneId`; cancels the job
   * in any case (a job left running would hold the slots the next test needs). On failure, prints the
   * job's state and the JobManager's log lines about the job and the TaskManagers.
   */
  async function expectFailoverAway(jobId: string, goneId: string): Promise<void> {
    const status = () => jobDetails(jobId);
    try {
      await expect
        .poll(
          async () => {
            const d = await status();
            return (
              d.status === 'RUNNING' &&
              d.restarts === 1 &&
              d.vertices[0]!.subtasks.every((s) => s.taskManagerId !== goneId)
            );
          },
          // Usually 2–5 s. Once (CI, 3d34d53) not within 30 s: the JobMaster's reconciliation and the
          // ResourceManager's heartbeat check both timed out after heartbeat.timeout, the JobMaster first,
          // and the restart got the dead TaskManager's slots back, failed and restarted a second time. The
          // ResourceManager now checks for lost TaskManagers before allocating, and the JobMaster's
          // silence bound is one interval longer (test/resourcemanager/lost-taskmanagers.test.ts).
          { timeout: 30_000, interval: 200 },
        )
        .toBe(true);
    } catch (e) {
      const d = await status();
      const subtasks = d.vertices.map((v) => v.subtasks.map((x) => [x.taskManagerId, x.state, x.attempt]));
      console.log(
        'failover not seen; job now:',
        JSON.stringify({ status: d.status, restarts: d.restarts, subtasks }),
      );
      console.log(
        jm.lines
          .filter((l) => l.job === jobId || l.taskManager !== undefined)
          .map((l) => JSON.stringify(l))
          .join('\n'),
      );
      throw e;
    } finally {
      expect((await sluice(['cancel', ...common, jobId])).code).toBe(0);
      await expect.poll(async () => (await status()).status).toBe('CANCELED');
    }
  }

  it('restarts a job whose TaskManager was killed on the surviving one', async () => {
    const jobId = await runEndless();
    const victim = tms.shift()!;
    const victimId = String((await victim.waitForMessage('registered at ResourceManager')).taskManager);
    victim.kill('SIGKILL');
    await expectFailoverAway(jobId, victimId);
  });

  it('fails over when a TaskManager running a subtask shuts down gracefully', async () => {
    const extra = new SluiceProcess(['taskmanager', ...common, '--slots', '2']);
    const extraId = String((await extra.waitForMessage('registered at ResourceManager')).taskManager);
    const jobId = await runEndless();
    const details = await jobDetails(jobId);
    expect(details.vertices[0]!.subtasks.map((s) => s.taskManagerId)).toContain(extraId);
    expect(await extra.stop()).toBe(0);
    await expectFailoverAway(jobId, extraId);
  });

  /** Submits `builtin:endless` at parallelism 2, detached; resolves with its id once it runs. */
  async function runEndless(): Promise<string> {
    const submitted = await sluice(['run', ...common, '-d', '-p', '2', 'builtin:endless']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    await expect.poll(async () => (await jobDetails(jobId)).status, { timeout: 10_000 }).toBe('RUNNING');
    return jobId;
  }

  async function jobDetails(jobId: string): Promise<JobDetails> {
    return JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
  }
});
