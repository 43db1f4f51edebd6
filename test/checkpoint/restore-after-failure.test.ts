/**
 * Checkpoints on a cluster of processes: a keyed count checkpoints every 200 ms; a TaskManager is killed
 * (SIGKILL) after checkpoints completed and a replacement started; the job restarts from the latest
 * checkpoint and ends with every key's count exact (sources resumed at their positions, keyed state
 * restored), and `sluice checkpoints` lists the completed checkpoints.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));

/** The largest count written per key, over every part file of the sink. */
async function maxCounts(dir: string): Promise<Map<number, number>> {
  const max = new Map<number, number>();
  for (const file of await readdir(dir)) {
    if (file.startsWith('.')) continue;
    for (const line of (await readFile(join(dir, file), 'utf8')).split('\n')) {
      if (!line) continue;
      const [k, n] = line.split(' ').map(Number) as [number, number];
      max.set(k, Math.max(max.get(k) ?? 0, n));
    }
  }
  return max;
}

describe('restore from the latest checkpoint', () => {
  let nats: NatsServerHandle;
  let dir: string;
  let common: string[];
  let jm: SluiceProcess;
  const tms: SluiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-checkpoints-'));
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'cp',
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      'heartbeat.timeout=1500 ms',
    ];
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'restart-strategy.exponential-delay.initial-backoff=100 ms',
    ]);
    await jm.waitForMessage('JobManager started');
    for (let i = 0; i < 2; i++) tms.push(new SluiceProcess(['taskmanager', ...common, '--slots', '1']));
    await Promise.all(tms.map((tm) => tm.waitForMessage('registered at ResourceManager')));
  });

  afterAll(async () => {
    await Promise.all(tms.map((tm) => tm.stop()));
    await jm?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a killed TaskManager: the job restarts from its latest checkpoint with exact keyed state', async () => {
    const output = join(dir, 'out');
    const submitted = await sluice([
      'run',
      ...common,
      '-d',
      join(JOBS, 'keyed-count.ts'),
      output,
      '12000',
      '1500',
      '200',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    // Two checkpoints complete, then a TaskManager dies mid-job.
    await jm.waitForMessage('checkpoint 2 completed', 20_000);
    tms[0]!.child.kill('SIGKILL');
    tms.push(new SluiceProcess(['taskmanager', ...common, '--slots', '1']));
    await jm.waitForLog(
      (l) => typeof l.msg === 'string' && /^restoring from checkpoint \d+$/.test(l.msg),
      20_000,
    );
    await jm.waitForLog((l) => l.msg === 'job FINISHED' || l.msg === 'job FAILED', 40_000);
    const details = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    expect(details.status).toBe('FINISHED');
    expect(details.restarts).toBeGreaterThanOrEqual(1);
    const counts = await maxCounts(output);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const [key, n] of counts) expect(n, `count of key ${key}`).toBe(1_200);

    const listed = await sluice(['checkpoints', ...common, jobId]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/COMPLETED/);
    expect(listed.stdout).toMatch(/restored from checkpoint \d+/);
  }, 90_000);
});
