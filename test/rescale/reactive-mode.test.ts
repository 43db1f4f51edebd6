/**
 * Reactive mode on a cluster of processes (`scheduler-mode: reactive`, stabilization 500 ms, cooldown 1 s):
 * a JobManager and one TaskManager with one slot run the HA chaos test's exactly-once job (generator →
 * keyBy → keyed running count → exactly-once JetStream sink) at parallelism 1 whatever it was submitted
 * with; a second and a third TaskManager join and the job follows (2, then 3), each within a few seconds
 * (at most 10 s, measured from the JobManager's log) of the TaskManager registering; one TaskManager is stopped (SIGTERM) and the job shrinks to 2 instead of
 * failing. Then it is cancelled and its output must hold every record exactly once (per key the counts
 * 1..n each once, each counting another event of that key). The times from a TaskManager's registration to
 * the job running at the new parallelism are printed.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { exactlyOnceProblems } from '../harness/exactly-once.js';
import { type SluiceProcess, sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/chaos-count.ts', import.meta.url));
const KEYS = 6;

describe('reactive mode', () => {
  let cluster: TestCluster;
  let common: string[];
  let jm: SluiceProcess;
  let tms: SluiceProcess[];

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'reactive',
      settings: ['heartbeat.interval=200 ms', 'heartbeat.timeout=2 s'],
      jobManagerSettings: [
        'scheduler-mode=reactive',
        'jobmanager.adaptive-scheduler.resource-stabilization-timeout=500 ms',
        'jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling=1 s',
        'restart-strategy.exponential-delay.initial-backoff=200 ms',
      ],
      outputStreams: [{ name: 'REACTIVE', subject: 'reactive.out' }],
    });
    common = cluster.common;
    jm = cluster.leader();
    tms = cluster.tms;
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  const status = (jobId: string) => cluster.status(jobId);
  /** Starts a TaskManager; resolves with its id once it registered. */
  const startTaskManager = async (): Promise<string> => {
    const id = `tm-${tms.length + 1}`;
    await cluster.startTaskManager(1, [`taskmanager.id=${id}`]);
    return id;
  };
  /**
   * From the JobManager's log (its own clock): the TaskManager `id` registering → the job rescaled by
   * reactive mode after it (every new task running).
   */
  const usedAfter = async (id: string): Promise<number> => {
    const registered = await jm.waitForLog((l) => l.msg === 'TaskManager registered' && l.taskManager === id);
    const rescaled = await jm.waitForLog(
      (l) =>
        typeof l.msg === 'string' &&
        l.msg.startsWith('rescaled: ') &&
        l.cause === 'reactive' &&
        Date.parse(String(l.time)) > Date.parse(String(registered.time)),
    );
    return Date.parse(String(rescaled.time)) - Date.parse(String(registered.time));
  };
  /** Waits until every vertex runs at `p` with every subtask RUNNING; returns when (performance.now). */
  const runningAt = async (jobId: string, p: number, timeoutMs = 30_000): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    let last: JobDetails | undefined;
    for (;;) {
      last = await status(jobId);
      const subtasks = last.vertices.flatMap((v) => v.subtasks);
      if (
        last.status === 'RUNNING' &&
        last.vertices.every((v) => v.parallelism === p) &&
        subtasks.every((t) => t.state === 'RUNNING')
      ) {
        return performance.now();
      }
      expect(last.status, `job ${last.status}: ${last.error?.message}`).not.toMatch(
        /FAILED|CANCELED|FINISHED/,
      );
      if (Date.now() > deadline) {
        throw new Error(
          `job not RUNNING at parallelism ${p} within ${timeoutMs} ms: ${JSON.stringify(last)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const nextCheckpoint = () => cluster.nextCheckpoint();

  it('follows TaskManagers 1 → 2 → 3 → 2 with exactly-once output', async () => {
    await startTaskManager();
    // Submitted at parallelism 4: reactive mode runs it at what its slots allow.
    const submitted = await sluice([
      'run',
      ...common,
      '-d',
      JOB,
      'reactive.out',
      String(KEYS),
      '100',
      '300',
      '4',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    await runningAt(jobId, 1);
    await nextCheckpoint();

    const took2 = await usedAfter(await startTaskManager());
    await runningAt(jobId, 2);
    await nextCheckpoint();
    const took3 = await usedAfter(await startTaskManager());
    await runningAt(jobId, 3);
    await nextCheckpoint();
    // Stabilization 500 ms (+ the 1 s cooldown after the previous rescale) + checkpoint + switch: ~1-3 s.
    expect(took2).toBeLessThan(10_000);
    expect(took3).toBeLessThan(10_000);
    process.stdout.write(
      `reactive mode: a joining TaskManager ran tasks of the job ${took2} ms and ${took3} ms after it registered (stabilization 500 ms, heartbeat 200 ms)\n`,
    );

    // One leaves (SIGTERM): the job shrinks to the slots left instead of failing.
    const left = performance.now();
    await tms[1]!.stop();
    const shrank = (await runningAt(jobId, 2)) - left;
    process.stdout.write(`reactive mode: shrank to 2 after ${Math.round(shrank)} ms\n`);
    await nextCheckpoint();
    await nextCheckpoint();

    const rescales = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    expect(rescales.status).toBe('RUNNING');
    expect((await sluice(['cancel', ...common, jobId])).code).toBe(0);
    await jm.waitForMessage('job CANCELED', 20_000);
    const reactiveRescales = jm.lines.filter(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('rescaled: ') && l.cause === 'reactive',
    );
    expect(reactiveRescales.length).toBe(2);
    const { records, problems, perKey } = await exactlyOnceProblems(cluster.nc, 'REACTIVE', KEYS);
    expect(problems).toEqual([]);
    expect(perKey.size).toBe(KEYS);
    expect(records).toBeGreaterThan(100);
  }, 180_000);
});
