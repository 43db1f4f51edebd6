/**
 * Broadcast state through a savepoint on a cluster of processes, rescaled: a keyed broadcast job is
 * stopped with a savepoint at parallelism 2 and resumed from it at parallelism 3 and at 1. The resumed
 * runs' rules source has nothing left to send, so every event they price needs the broadcast state
 * restored into every new subtask (each takes one old copy). Together with the first run, each record is
 * priced exactly once, with the right rule.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/broadcast-rules.ts', import.meta.url));
const RECORDS = 20_000;

/** The plain-JS reference: record i's price. */
function price(i: number): number {
  const k = (i * 5) % 12;
  return ((i % 17) + 1) * (((k * 7) % 13) + 2);
}

async function lines(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const file of await readdir(dir)) {
    if (file.startsWith('.')) continue;
    out.push(...(await readFile(join(dir, file), 'utf8')).split('\n').filter(Boolean));
  }
  return out;
}

describe('broadcast state through a savepoint, rescaled', () => {
  let nats: NatsServerHandle;
  let dir: string;
  let common: string[];
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let savepoint: string;
  let first: string[];

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-broadcast-sp-'));
    common = ['--nats', nats.url, '--cluster-id', 'bsp'];
    jm = new SluiceProcess(['jobmanager', ...common]);
    await jm.waitForMessage('JobManager started');
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '3']);
    await tm.waitForMessage('registered at ResourceManager');

    // Parallelism 2 (20 000 records at 2 × 1 000/s take 10 s), stopped with a savepoint while it runs.
    const submitted = await sluice([
      'run',
      ...common,
      '-d',
      JOB,
      join(dir, 'p2'),
      String(RECORDS),
      '1000',
      '100000',
      '300',
      '2',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    await jm.waitForMessage('checkpoint 2 completed', 20_000);
    const stopped = await sluice(['stop', ...common, '--savepoint-path', 'savepoints/rules', jobId]);
    expect(stopped.code, stopped.stderr).toBe(0);
    savepoint = /Path: (\S+)/.exec(stopped.stdout)![1]!;
    const details = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    expect(details.status).toBe('FINISHED');
    first = await lines(join(dir, 'p2'));
    // It stopped early, after pricing some records.
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(RECORDS);
  }, 60_000);

  afterAll(async () => {
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const parallelism of [3, 1]) {
    it(`resumes at parallelism ${parallelism}: every record priced once, with the restored rules`, async () => {
      const out = join(dir, `p${parallelism}`);
      const run = await sluice([
        'run',
        ...common,
        '-s',
        savepoint,
        JOB,
        out,
        String(RECORDS),
        '100000',
        '0',
        '300',
        String(parallelism),
      ]);
      expect(run.code, run.stderr).toBe(0);
      const resumed = await lines(out);
      expect(resumed.length).toBeGreaterThan(0);
      const all = [...first, ...resumed].sort();
      const expected = Array.from({ length: RECORDS }, (_, i) => `${i} ${price(i)}`).sort();
      expect(all).toEqual(expected);
    }, 60_000);
  }
});
