/**
 * `executeAndCollect()` keeps its promise across a restart (issue 12: 20 000 records, a map that throws once
 * at record 15 000, 14 439 collected before). With checkpoints the result is exactly once: every record,
 * none twice. The job restores from a checkpoint (not from its beginning), shown by its debug log. And the
 * client's side alone: batches of an older run are refused, a later run's copy of a transaction replaces
 * the earlier one, direct batches of an older run are dropped when a newer run starts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FINAL_TRANSACTION } from '../../src/api/sinks/collect-sink.js';
import { CollectedResults } from '../../src/client/collected-results.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/local-collect.ts', import.meta.url));

describe('executeAndCollect through a restart', () => {
  it('returns every record exactly once after a restore from a checkpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-collect-'));
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', JOB], {
        env: {
          ...process.env,
          FAIL_ONCE_MARKER: join(dir, 'failed'),
          SLUICE_LOG_FORMAT: 'json',
          SLUICE_LOG_LEVEL: 'debug',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      const [code] = (await once(child, 'close')) as [number | null];
      clearTimeout(timer);
      expect(code).toBe(0);
      expect(stderr).toContain('fails once at record 15000');
      expect(stderr).toMatch(/restoring from checkpoint \d+/);
      // 0 + 1 + … + 19 999 = 199 990 000
      expect(stdout.trim()).toBe('collected 20000 distinct 20000 sum 199990000');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('the client side of collect', () => {
  const run = (attempt: number, epoch = 0) => ({ epoch, attempt });
  const committed = (
    subtask: number,
    txn: number,
    attempt: number,
    records: unknown[],
    part = 0,
    parts = 1,
  ) => ({
    mode: 'committed' as const,
    subtask,
    run: run(attempt),
    txn,
    part,
    parts,
    records,
  });

  it('keeps one copy per transaction; a later run replaces a transaction entirely', () => {
    const results = new CollectedResults();
    expect(results.accept(committed(0, 1, 0, [1, 2]))).toBeUndefined();
    expect(results.accept(committed(0, FINAL_TRANSACTION, 0, [5, 6, 7], 0, 2))).toBeUndefined();
    expect(results.accept(committed(0, FINAL_TRANSACTION, 0, [8], 1, 2))).toBeUndefined();
    // A restart from checkpoint 1: it sends transaction 1 again, then 2, then a shorter final.
    expect(results.accept(committed(0, 1, 1, [1, 2]))).toBeUndefined();
    expect(results.accept(committed(0, 2, 1, [3, 4, 5]))).toBeUndefined();
    expect(results.accept(committed(0, FINAL_TRANSACTION, 1, [6, 7, 8]))).toBeUndefined();
    expect(results.records()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('refuses batches of an older run and garbage, changing nothing', () => {
    const results = new CollectedResults();
    expect(results.accept(committed(0, 3, 2, ['a']))).toBeUndefined();
    expect(results.accept(committed(0, 4, 1, ['stale']))).toMatch(/older than the job's current run 0\.2/);
    // A new leader (epoch 2) starts its attempts from 0 again: newer all the same.
    expect(results.accept({ ...committed(0, 5, 0, ['b']), run: run(0, 2) })).toBeUndefined();
    expect(results.accept(committed(0, 6, 3, ['stale too']))).toMatch(/older/);
    expect(results.accept({ mode: 'committed', subtask: -1, records: 'x' })).toMatch(/malformed/);
    expect(results.accept(null)).toMatch(/malformed/);
    expect(results.records()).toEqual(['a', 'b']);
  });

  it('without checkpoints keeps only the newest run (a restart replays from the beginning)', () => {
    const results = new CollectedResults();
    const direct = (attempt: number, seq: number, records: unknown[]) => ({
      mode: 'direct' as const,
      subtask: 0,
      run: run(attempt),
      seq,
      records,
      last: false,
    });
    results.accept(direct(0, 0, [1, 2]));
    results.accept(direct(0, 1, [3]));
    results.accept(direct(1, 0, [1, 2, 3]));
    expect(results.records()).toEqual([1, 2, 3]);
  });
});
