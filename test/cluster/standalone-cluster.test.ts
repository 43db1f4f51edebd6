/**
 * `sluice cluster start / stop`: the standalone provider starts a JobManager and TaskManagers as
 * background processes, refuses to start the same cluster twice, and stops them all cleanly.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { isAlive } from '../../src/providers/standalone.js';
import { sluice } from '../harness/processes.js';

describe('standalone session cluster', () => {
  let nats: NatsServerHandle;
  let runDir: string;
  let common: string[];

  beforeAll(async () => {
    nats = await startNatsServer();
    runDir = await mkdtemp(join(tmpdir(), 'sluice-run-'));
    common = ['--nats', nats.url, '--cluster-id', 'standalone', '-D', `cluster.run-dir=${runDir}`];
  });

  afterAll(async () => {
    await sluice(['cluster', 'stop', ...common]);
    await nats?.stop();
    await rm(runDir, { recursive: true, force: true });
  });

  it('starts, refuses a second start, runs a job and outlives it, and stops cleanly', async () => {
    const start = await sluice(['cluster', 'start', ...common, '--taskmanagers', '2', '--slots', '2']);
    expect(start.code, start.stderr + start.stdout).toBe(0);
    expect(start.stdout).toContain("Cluster 'standalone' is up");
    const state = JSON.parse(await readFile(join(runDir, 'standalone', 'cluster.json'), 'utf8')) as {
      processes: Array<{ role: string; pid: number; log: string }>;
    };
    expect(state.processes.map((p) => p.role).sort()).toEqual(['jobmanager', 'taskmanager', 'taskmanager']);
    expect(state.processes.every((p) => isAlive(p.pid))).toBe(true);

    const again = await sluice(['cluster', 'start', ...common]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("cluster 'standalone' is already running");
    expect(again.stderr.trim().split('\n')).toHaveLength(1);

    // Another host (another run dir) trying the same cluster id is refused via NATS.
    const otherRunDir = await mkdtemp(join(tmpdir(), 'sluice-run-'));
    const elsewhere = await sluice([
      'cluster',
      'start',
      '--nats',
      nats.url,
      '--cluster-id',
      'standalone',
      '-D',
      `cluster.run-dir=${otherRunDir}`,
    ]);
    await rm(otherRunDir, { recursive: true, force: true });
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toMatch(/a JobManager \(jm-[^)]+\) already serves cluster 'standalone'/);

    const run = await sluice(['run', ...common, '-p', '4', 'builtin:count', '10000']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`sum: ${10_000 * 9_999}`);
    // The session cluster outlives its job.
    expect(state.processes.every((p) => isAlive(p.pid))).toBe(true);

    const stop = await sluice(['cluster', 'stop', ...common]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toContain("Stopped cluster 'standalone' (3 processes)");
    expect(state.processes.some((p) => isAlive(p.pid))).toBe(false);
    // Graceful: the JobManager logged its own orderly stop.
    const jmLog = await readFile(state.processes.find((p) => p.role === 'jobmanager')!.log, 'utf8');
    expect(jmLog).toContain('"msg":"JobManager stopped"');

    const stopAgain = await sluice(['cluster', 'stop', ...common]);
    expect(stopAgain.code).toBe(0);
    expect(stopAgain.stdout).toContain("No cluster 'standalone' is running");
  });
});
