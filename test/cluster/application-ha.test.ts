/**
 * Application mode with high availability on real processes: 3 JobManagers (a leader and two standbys)
 * and 2 TaskManagers run an application of two sequential execute() and two executeAsync() jobs with
 * checkpointing and exactly-once file sinks. The leader is SIGKILLed while a sequential job runs and again
 * while the two async jobs run. The new leader runs main again; the jobs keep their fixed ids, are
 * recovered from their checkpoints or recognised as ended, never submitted twice; every record is written
 * exactly once, and the attached client exits 0 with the application.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applicationJobId } from '../../src/jobgraph/job-id.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { isAlive } from '../../src/providers/standalone.js';
import { SLUICE_BIN } from '../harness/processes.js';

const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));
const RECORDS = 250;
const RATE = 50;

interface ClusterFile {
  processes: Array<{ role: string; pid: number; log: string }>;
}

function logLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/** Committed (not in-progress) part files of job k, and whether its final part is there. */
async function parts(out: string, k: number): Promise<{ committed: number; final: boolean }> {
  const files = await readdir(join(out, `job-${k}`)).catch(() => [] as string[]);
  const visible = files.filter((f) => !f.startsWith('.'));
  return { committed: visible.length, final: visible.some((f) => f.endsWith('-final')) };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('application mode with high availability', () => {
  let nats: NatsServerHandle;
  let runDir: string;
  let out: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    runDir = await mkdtemp(join(tmpdir(), 'sluice-appha-run-'));
    out = await mkdtemp(join(tmpdir(), 'sluice-appha-out-'));
  });

  afterAll(async () => {
    for (const name of await readdir(runDir).catch(() => [] as string[])) {
      const file = join(runDir, name, 'cluster.json');
      if (!existsSync(file)) continue;
      for (const p of (JSON.parse(readFileSync(file, 'utf8')) as ClusterFile).processes) {
        if (isAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
      }
    }
    await nats?.stop();
    await rm(runDir, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  });

  it('survives the leader being killed during a sequential job and during the async jobs', async () => {
    const client = spawn(
      process.execPath,
      [
        SLUICE_BIN,
        'run-application',
        '--nats',
        nats.url,
        '-D',
        `cluster.run-dir=${runDir}`,
        '-D',
        'high-availability.type=nats',
        '-D',
        'heartbeat.interval=200 ms',
        '-D',
        'heartbeat.timeout=1500 ms',
        '-D',
        'rest.enabled=false',
        '-D',
        'metrics.enabled=false',
        '--jobmanagers',
        '3',
        '--taskmanagers',
        '2',
        '-p',
        '1',
        join(JOBS, 'four-jobs-checkpointed.ts'),
        out,
        String(RECORDS),
        String(RATE),
      ],
      { env: { ...process.env, SLUICE_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    client.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    client.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => client.once('close', (code) => resolve(code)));

    // The application's cluster directory, and its JobManagers.
    let clusterDir = '';
    await until(
      'the application cluster',
      async () => {
        const [name] = await readdir(runDir);
        if (!name || !existsSync(join(runDir, name, 'cluster.json'))) return false;
        clusterDir = join(runDir, name);
        return true;
      },
      30_000,
    );
    const applicationId = clusterDir.split('/').pop()!;
    // cluster.json goes when the cluster stops: remember its processes.
    let processes: ClusterFile['processes'] = [];
    const jobManagers = () => {
      const file = join(clusterDir, 'cluster.json');
      if (existsSync(file)) processes = (JSON.parse(readFileSync(file, 'utf8')) as ClusterFile).processes;
      return processes.filter((p) => p.role === 'jobmanager');
    };
    /** The JobManager that leads now: alive, and its log says its leadership is active. */
    const leader = () =>
      jobManagers().find(
        (jm) => isAlive(jm.pid) && logLines(jm.log).some((l) => l.msg === 'leadership active'),
      );
    const killed: number[] = [];
    const killLeader = async () => {
      expect(jobManagers()).toHaveLength(3);
      const jm = leader();
      expect(jm, 'a leading JobManager').toBeDefined();
      process.kill(jm!.pid, 'SIGKILL');
      killed.push(jm!.pid);
    };

    // 1. While the first sequential job runs (it has committed a checkpoint's output, not all of it).
    await until(
      'job 0 to commit a checkpoint',
      async () => {
        const p = await parts(out, 0);
        return p.committed > 0 && !p.final && leader() !== undefined;
      },
      40_000,
    );
    await killLeader();

    // 2. While both async jobs run, under the next leader.
    await until(
      'jobs 2 and 3 to commit a checkpoint under a new leader',
      async () => {
        const [a, b] = [await parts(out, 2), await parts(out, 3)];
        const l = leader();
        return a.committed > 0 && b.committed > 0 && !a.final && !b.final && l !== undefined;
      },
      60_000,
    );
    await killLeader();

    const code = await exited;
    expect(code, stdout + stderr).toBe(0);
    expect(stdout).toContain(`Application ${applicationId} ended: 4 job(s), exit status 0`);
    expect(killed).toHaveLength(2);

    // Every record of every job exactly once.
    for (let k = 0; k < 4; k++) {
      const dir = join(out, `job-${k}`);
      const files = (await readdir(dir)).filter((f) => !f.startsWith('.'));
      const values: number[] = [];
      for (const f of files) {
        const text = (await readFile(join(dir, f), 'utf8')).trim();
        if (text) values.push(...text.split('\n').map(Number));
      }
      values.sort((a, b) => a - b);
      expect(values, `job ${k}`).toEqual([...Array(RECORDS).keys()].map((i) => i * 10 + k));
    }

    // The jobs have the fixed ids of the application's four execute() calls, and each was submitted once:
    // later submissions of the same job (main run again by a new leader) attached to it.
    const expectedIds = [0, 1, 2, 3].map((i) => applicationJobId(applicationId, i));
    const lines = jobManagers().flatMap((jm) => logLines(jm.log));
    const submitted = lines.filter((l) => l.msg === 'job submitted' && l.client !== 'recovery');
    expect(submitted.map((l) => l.job).sort()).toEqual([...expectedIds].sort());
    const recovered = lines.filter((l) => l.msg === 'job submitted' && l.client === 'recovery');
    expect(recovered.length, 'jobs recovered by a new leader').toBeGreaterThanOrEqual(3);
    const attached = lines.filter((l) => String(l.msg).startsWith('application job already'));
    expect(attached.length, 'resubmissions attached to known jobs').toBeGreaterThanOrEqual(2);
    const result = JSON.parse(await readFile(join(clusterDir, 'result.json'), 'utf8')) as {
      exitCode: number;
      jobs: Array<{ jobId: string; status: string }>;
    };
    expect(result.exitCode).toBe(0);
    expect(result.jobs.map((j) => j.jobId).sort()).toEqual([...expectedIds].sort());
    expect(result.jobs.every((j) => j.status === 'FINISHED')).toBe(true);
    // Nothing of the cluster is left.
    expect(processes).toHaveLength(5);
    expect(processes.filter((p) => isAlive(p.pid))).toEqual([]);
  }, 120_000);
});
