/**
 * `sluice cluster start --taskmanagers MIN..MAX`: the JobManager keeps a pool of real TaskManager processes.
 * It starts MIN; a job that needs more slots than exist makes it start more (up to MAX) and runs; once the
 * job is gone, idle TaskManagers are stopped after `resourcemanager.taskmanager-timeout` down to MIN; one
 * that dies is replaced; `cluster stop` stops them all. Bad ranges are refused with a clear message.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterClient } from '../../src/client/cluster-client.js';
import { loadConfig } from '../../src/config/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { isAlive } from '../../src/providers/standalone.js';
import { sluice } from '../harness/processes.js';

const ENDLESS = fileURLToPath(new URL('../fixtures/jobs/local-endless.ts', import.meta.url));

interface Recorded {
  processes: Array<{ role: string; pid: number; log: string }>;
}

describe('a TaskManager pool on the standalone provider', () => {
  let nats: NatsServerHandle;
  let runDir: string;
  let common: string[];
  let client: ClusterClient;

  beforeAll(async () => {
    nats = await startNatsServer();
    runDir = await mkdtemp(join(tmpdir(), 'sluice-pool-'));
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'pool',
      '-D',
      `cluster.run-dir=${runDir}`,
      '-D',
      'rest.enabled=false',
      '-D',
      'metrics.enabled=false',
    ];
    client = await ClusterClient.connect(
      loadConfig({ overrides: { 'nats.servers': nats.url, 'cluster.id': 'pool' } }),
    );
  });

  afterAll(async () => {
    await sluice(['cluster', 'stop', ...common]);
    await client?.close();
    await nats?.stop();
    await rm(runDir, { recursive: true, force: true });
  });

  const pool = async (): Promise<Recorded> =>
    JSON.parse(await readFile(join(runDir, 'pool', 'pool.json'), 'utf8')) as Recorded;
  const registered = async () => (await client.overview()).taskManagers.length;

  it('refuses ranges that are not MIN..MAX with 0 ≤ MIN ≤ MAX ≤ 64', async () => {
    for (const bad of ['3..1', '0..0', '1..65', 'two', '1..']) {
      const r = await sluice(['cluster', 'start', ...common, '--taskmanagers', bad]);
      expect(r.code, bad).toBe(1);
      expect(r.stderr).toContain(`--taskmanagers must be a number from 0 to 64, or a range MIN..MAX`);
      expect(r.stderr).toContain(`got '${bad}'`);
    }
  });

  it('starts MIN, grows for a job that needs more slots, shrinks when idle, replaces a dead one, stops all', async () => {
    const start = await sluice([
      'cluster',
      'start',
      ...common,
      '--taskmanagers',
      '1..3',
      '--slots',
      '1',
      '-D',
      'resourcemanager.taskmanager-timeout=2 s',
    ]);
    expect(start.code, start.stderr + start.stdout).toBe(0);
    expect(start.stdout).toContain('a pool of 1 to 3 TaskManagers × 1 slots');
    expect(await registered()).toBe(1);
    const first = await pool();
    expect(first.processes).toHaveLength(1);

    // Three slots wanted, one exists: the pool starts two more TaskManagers and the job runs on them.
    const run = await sluice(['run', ...common, '-d', '-p', '3', ENDLESS]);
    expect(run.code, run.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    await expect
      .poll(
        async () =>
          (await client.status(jobId)).vertices.every((v) => v.subtasks.every((s) => s.state === 'RUNNING')),
        {
          timeout: 30_000,
        },
      )
      .toBe(true);
    expect(await registered()).toBe(3);
    const grown = await pool();
    expect(grown.processes).toHaveLength(3);
    expect(grown.processes.every((p) => isAlive(p.pid))).toBe(true);

    // Busy TaskManagers are not stopped, however long they run.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await registered()).toBe(3);

    // The job goes: after the idle timeout the pool is back at its minimum; the stopped ones exited.
    await client.cancel(jobId);
    await expect.poll(registered, { timeout: 30_000, interval: 250 }).toBe(1);
    await expect.poll(async () => (await pool()).processes.length, { timeout: 10_000 }).toBe(1);
    const kept = (await pool()).processes.map((p) => p.pid);
    const gone = grown.processes.filter((p) => !kept.includes(p.pid));
    expect(gone).toHaveLength(2);
    await expect.poll(() => gone.filter((p) => isAlive(p.pid)).length, { timeout: 15_000 }).toBe(0);

    // A pool TaskManager that dies is replaced (MIN is kept).
    const [survivor] = (await pool()).processes;
    process.kill(survivor!.pid, 'SIGKILL');
    await expect
      .poll(
        async () => (await pool()).processes.filter((p) => p.pid !== survivor!.pid && isAlive(p.pid)).length,
        {
          timeout: 15_000,
        },
      )
      .toBe(1);

    const state = JSON.parse(await readFile(join(runDir, 'pool', 'cluster.json'), 'utf8')) as Recorded;
    const last = await pool();
    const stop = await sluice(['cluster', 'stop', ...common]);
    expect(stop.code, stop.stderr).toBe(0);
    expect([...state.processes, ...last.processes].filter((p) => isAlive(p.pid))).toEqual([]);
    const poolLog = await readFile(state.processes.find((p) => p.role === 'jobmanager')!.log, 'utf8');
    expect(poolLog).toContain('"msg":"TaskManager pool grows"');
    expect(poolLog).toContain('"msg":"TaskManager pool shrinks: stopping an idle TaskManager"');
  });
});
