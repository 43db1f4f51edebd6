/**
 * A rescale by hand on a cluster whose JobManager keeps a TaskManager pool (`--taskmanager-pool MIN..MAX`,
 * one-slot TaskManagers, real processes): beyond the free slots it waits for the pool to grow instead of
 * being refused.
 *
 * - Pool 1..3: the chaos job (generator → keyBy → keyed count → exactly-once JetStream sink) runs at 1;
 *   `sluice rescale -p 3` makes the pool start two TaskManagers and the job runs at 3 on them; `-p 4` is
 *   refused at once (the pool is at its maximum), the job unchanged; after a cancel every output record is
 *   there exactly once.
 * - Pool 1..2 with `slot.request.timeout=20 ms` (no TaskManager process registers that fast): `-p 2` fails
 *   with NO_RESOURCE_AVAILABLE naming the slot still missing and the timeout, the job keeps running at 1;
 *   once the TaskManager the pool started registers, `-p 2` succeeds.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parallelismOf, startTestCluster, type TestCluster } from '../harness/cluster.js';
import { exactlyOnceProblems } from '../harness/exactly-once.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/chaos-count.ts', import.meta.url));
const KEYS = 6;
const SETTINGS = ['heartbeat.interval=200 ms', 'heartbeat.timeout=2 s', 'metrics.enabled=false'];

async function poolSize(cluster: TestCluster, clusterId: string): Promise<number> {
  const file = join(cluster.dir, clusterId, 'pool.json');
  return (JSON.parse(await readFile(file, 'utf8')) as { processes: unknown[] }).processes.length;
}

async function registeredTaskManagers(cluster: TestCluster): Promise<number> {
  return (await cluster.client.overview()).taskManagers.length;
}

describe('a manual rescale grows a TaskManager pool', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'pool-grow',
      settings: SETTINGS,
      jobManagerSettings: ['rest.enabled=false', 'taskmanager.numberOfTaskSlots=1'],
      jobManagerArgs: ['--taskmanager-pool', '1..3'],
      outputStreams: [{ name: 'POOLGROW', subject: 'pool-grow.out' }],
    });
    await cluster.leader().waitForMessage('TaskManager registered', 30_000);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('waits for the pool to start TaskManagers, refuses beyond its maximum, exactly once', async () => {
    const jm = cluster.leader();
    const jobId = await cluster.submit([JOB, 'pool-grow.out', String(KEYS), '100', '300', '1']);
    await jm.waitForMessage('checkpoint 2 completed', 30_000);
    expect(parallelismOf(await cluster.status(jobId))).toEqual({ v0: 1, v1: 1 });
    expect(await poolSize(cluster, 'pool-grow')).toBe(1);

    const up = await cluster.cli('rescale', [jobId, '-p', '3']);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/rescaled: v0 1 -> 3, v1 1 -> 3/);
    const atThree = await cluster.status(jobId);
    expect(parallelismOf(atThree)).toEqual({ v0: 3, v1: 3 });
    expect(atThree.vertices.flatMap((v) => v.subtasks).every((t) => t.state === 'RUNNING')).toBe(true);
    // On three TaskManagers (one slot each), two of them started by the pool for this rescale.
    expect(new Set(atThree.vertices[0]!.subtasks.map((t) => t.taskManagerId)).size).toBe(3);
    expect(await poolSize(cluster, 'pool-grow')).toBe(3);
    const waited = jm.lines.find(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('rescale waits for the TaskManager pool'),
    );
    expect(waited?.missing).toBe(2);
    expect(jm.lines.some((l) => l.msg === 'TaskManager pool grows')).toBe(true);
    await cluster.nextCheckpoint();

    // Beyond the pool's maximum: refused at once, the job as it was.
    const tooMany = await cluster.cli('rescale', [jobId, '-p', '4']);
    expect(tooMany.code).not.toBe(0);
    expect(tooMany.stderr).toMatch(/needs 4 slots and could have 3 .*the TaskManager pool can add 0 more/);
    expect(parallelismOf(await cluster.status(jobId))).toEqual({ v0: 3, v1: 3 });
    await cluster.nextCheckpoint();
    await cluster.nextCheckpoint();

    expect((await cluster.cli('cancel', [jobId])).code).toBe(0);
    await jm.waitForMessage('job CANCELED', 20_000);
    const { records, problems, perKey } = await exactlyOnceProblems(cluster.nc, 'POOLGROW', KEYS);
    expect(problems).toEqual([]);
    expect(perKey.size).toBe(KEYS);
    expect(records).toBeGreaterThan(50);
  }, 180_000);
});

describe('a manual rescale that the pool cannot serve in time', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'pool-short',
      settings: SETTINGS,
      jobManagerSettings: [
        'rest.enabled=false',
        'taskmanager.numberOfTaskSlots=1',
        'slot.request.timeout=20 ms',
        'resourcemanager.taskmanager-timeout=5 min',
      ],
      jobManagerArgs: ['--taskmanager-pool', '1..2'],
      outputStreams: [{ name: 'POOLSHORT', subject: 'pool-short.out' }],
    });
    await cluster.leader().waitForMessage('TaskManager registered', 30_000);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('fails naming the missing slot and the timeout, the job unchanged; succeeds once the pool grew', async () => {
    const jm = cluster.leader();
    const jobId = await cluster.submit([JOB, 'pool-short.out', String(KEYS), '100', '300', '1']);
    await jm.waitForMessage('checkpoint 2 completed', 30_000);

    const short = await cluster.cli('rescale', [jobId, '-p', '2']);
    expect(short.code).not.toBe(0);
    expect(short.stderr).toMatch(
      /needs 2 slots: 1 still missing after waiting 20 ms \(slot\.request\.timeout\) for the TaskManager pool/,
    );
    const unchanged = await cluster.status(jobId);
    expect(unchanged.status).toBe('RUNNING');
    expect(parallelismOf(unchanged)).toEqual({ v0: 1, v1: 1 });
    await cluster.nextCheckpoint();

    // The pool did start a TaskManager for it; once registered, the same rescale needs no wait.
    await expect.poll(() => registeredTaskManagers(cluster), { timeout: 30_000 }).toBe(2);
    const again = await cluster.cli('rescale', [jobId, '-p', '2']);
    expect(again.code, again.stderr).toBe(0);
    expect(parallelismOf(await cluster.status(jobId))).toEqual({ v0: 2, v1: 2 });
    expect(await poolSize(cluster, 'pool-short')).toBe(2);
    expect((await cluster.cli('cancel', [jobId])).code).toBe(0);
  }, 120_000);
});
