/**
 * Application and per-job mode on real processes: a dedicated cluster per program, gone (no process
 * left) when its jobs end; attached exit status follows the jobs; bad submissions leave nothing behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { isAlive } from '../../src/providers/standalone.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));

/** Pids of sluice processes started for clusters under `runDir`. */
function clusterPids(runDir: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `cluster.run-dir=${runDir}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return [];
  }
}

describe('application and per-job mode', () => {
  let nats: NatsServerHandle;
  let runDir: string;
  let dir: string;
  let common: string[];

  beforeAll(async () => {
    nats = await startNatsServer();
    runDir = await mkdtemp(join(tmpdir(), 'sluice-modes-run-'));
    dir = await mkdtemp(join(tmpdir(), 'sluice-modes-'));
    common = ['--nats', nats.url, '-D', `cluster.run-dir=${runDir}`];
  });

  afterAll(async () => {
    for (const pid of clusterPids(runDir)) process.kill(pid, 'SIGKILL');
    await nats?.stop();
    await rm(runDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  });

  it('application mode runs two sequential and two async jobs, then the cluster is gone', async () => {
    const out = join(dir, 'four');
    const run = await sluice(['run-application', ...common, '-p', '2', join(JOBS, 'four-jobs.ts'), out]);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const appId = /Application (app-[0-9a-f]{8}) started/.exec(run.stdout)![1]!;
    expect(run.stdout).toContain(`Application ${appId} ended: 4 job(s), exit status 0`);
    expect((await readdir(out)).sort()).toEqual(['job-0', 'job-1', 'job-2', 'job-3']);
    for (let k = 0; k < 4; k++) {
      // Two source subtasks feed one sink: every value once, in no particular order.
      const values = (await readFile(join(out, `job-${k}`), 'utf8')).trim().split('\n').map(Number);
      expect(values.sort((a, b) => a - b)).toEqual([...Array(100).keys()].map((i) => i * i + k));
    }
    const result = JSON.parse(await readFile(join(runDir, appId, 'result.json'), 'utf8')) as {
      jobs: Array<{ status: string }>;
    };
    expect(result.jobs.map((j) => j.status)).toEqual(['FINISHED', 'FINISHED', 'FINISHED', 'FINISHED']);
    expect(clusterPids(runDir)).toEqual([]);
  });

  it('application mode: a failing job gives a non-zero exit, detached returns at once, and both clean up', async () => {
    const failed = await sluice(['run-application', ...common, join(JOBS, 'fails-at-runtime.ts')]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('RangeError: record 4242 is out of range');
    expect(clusterPids(runDir)).toEqual([]);

    const detached = await sluice([
      'run-application',
      ...common,
      '-d',
      join(JOBS, 'four-jobs.ts'),
      join(dir, 'det'),
    ]);
    expect(detached.code, detached.stderr).toBe(0);
    const appId = /Application (app-[0-9a-f]{8}) started/.exec(detached.stdout)![1]!;
    const state = JSON.parse(await readFile(join(runDir, appId, 'cluster.json'), 'utf8')) as {
      processes: Array<{ pid: number }>;
    };
    await expect
      .poll(() => state.processes.filter((p) => isAlive(p.pid)).length, { timeout: 30_000, interval: 200 })
      .toBe(0);
    expect((await readdir(join(dir, 'det'))).sort()).toEqual(['job-0', 'job-1', 'job-2', 'job-3']);
    const listed = await sluice(['cluster', 'list', ...common]);
    expect(listed.stdout).toMatch(new RegExp(`${appId}\\s+application\\s+ended`));
  });

  it('per-job mode warns that it is deprecated, runs the job and tears its cluster down', async () => {
    const out = join(dir, 'perjob.txt');
    await writeFile(join(dir, 'input.txt'), 'a b a\nc a\n');
    const run = await sluice([
      'run',
      ...common,
      '-t',
      'per-job',
      join(JOBS, 'wordcount-to-file.ts'),
      join(dir, 'input.txt'),
      out,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('Per-job mode is deprecated');
    expect((await readFile(out, 'utf8')).trim().split('\n')).toContain('a 3');
    expect(clusterPids(runDir)).toEqual([]);
  });

  it('per-job detached returns at once, and its cluster stops by itself when the job ends', async () => {
    const out = join(dir, 'perjob-detached.txt');
    await writeFile(join(dir, 'input2.txt'), 'x y x\n');
    const run = await sluice([
      'run',
      ...common,
      '-t',
      'per-job',
      '-d',
      join(JOBS, 'wordcount-to-file.ts'),
      join(dir, 'input2.txt'),
      out,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const clusterId = /Per-job cluster (job-[0-9a-f]{8}) stops by itself/.exec(run.stdout)![1]!;
    const state = JSON.parse(await readFile(join(runDir, clusterId, 'cluster.json'), 'utf8')) as {
      processes: Array<{ pid: number }>;
    };
    await expect
      .poll(() => state.processes.filter((p) => isAlive(p.pid)).length, { timeout: 30_000, interval: 200 })
      .toBe(0);
    expect((await readFile(out, 'utf8')).trim().split('\n')).toContain('x 2');
  });

  it('shows the application id of its jobs in sluice list', async () => {
    const app = await sluice(['run-application', ...common, '-d', join(JOBS, 'local-endless.ts')]);
    expect(app.code, app.stderr).toBe(0);
    const appId = /Application (app-[0-9a-f]{8}) started/.exec(app.stdout)![1]!;
    await expect
      .poll(async () => (await sluice(['list', ...common, '--cluster-id', appId])).stdout, {
        timeout: 20_000,
      })
      .toMatch(new RegExp(`RUNNING .* ${appId} `));
    const stop = await sluice(['cluster', 'stop', ...common, '--cluster-id', appId]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(clusterPids(runDir)).toEqual([]);
  });

  it('with --shutdown-on-attached-exit, interrupting the attached client shuts the application cluster down', async () => {
    const client = new SluiceProcess(
      ['run-application', ...common, '--shutdown-on-attached-exit', join(JOBS, 'local-endless.ts')],
      {},
    );
    await client.waitForLog((l) => /^Application app-[0-9a-f]{8} started/.test(String(l.msg)), 30_000);
    // The program's client output reaches the attached client: the job runs.
    await client.waitForLog((l) => String(l.msg).endsWith('all tasks running'), 30_000);
    client.kill('SIGINT');
    expect(await client.exited).toBe(130);
    expect(client.output).toContain('were shut down');
    expect(clusterPids(runDir)).toEqual([]);
  });

  it('refuses bad submissions with one clear message and no stray processes', async () => {
    const cases: Array<{ args: string[]; message: RegExp }> = [
      { args: ['run-application', join(dir, 'missing.ts')], message: /job file not found/ },
      { args: ['run', '-t', 'nowhere', join(JOBS, 'four-jobs.ts')], message: /unknown target 'nowhere'/ },
      {
        args: ['run-application', '-D', 'taskmanager.memory.process.size=lots', join(JOBS, 'four-jobs.ts')],
        message: /taskmanager\.memory\.process\.size/,
      },
    ];
    await writeFile(join(dir, 'broken.ts'), 'const x = ;\n');
    cases.push({ args: ['run-application', join(dir, 'broken.ts')], message: /broken\.ts:1:\d+/ });
    for (const c of cases) {
      const [command, ...rest] = c.args;
      const r = await sluice([command!, ...common, ...rest]);
      expect(r.code, c.args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(c.message);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
    const throws = await sluice(['run-application', ...common, join(JOBS, 'fails-while-building.ts')]);
    expect(throws.code).toBe(1);
    expect(throws.stdout, throws.stderr).toContain(
      "The job's main failed: Error: cannot read the job configuration",
    );
    const never = await sluice(['run-application', ...common, join(JOBS, 'never-executes.ts')]);
    expect(never.code).toBe(1);
    expect(never.stdout, never.stderr).toContain('ended without calling execute()');
    expect(clusterPids(runDir)).toEqual([]);
  });
});
