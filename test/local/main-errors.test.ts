/**
 * The local run path (a job file run directly with node through tsx) keeps the README's promise: a main
 * that throws prints one line — its error — and exits 1; the stack only with `SLUICE_DEBUG=1`. And a local
 * run with checkpointing ends without a warning: the finished job's checkpoints are deleted before the
 * local cluster closes its connections (before: "deleting state object … failed: connection draining").
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));

async function runJobFile(
  file: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${JOBS}${file}`], {
    env: { ...process.env, SLUICE_LOG_FORMAT: 'json', SLUICE_DEBUG: '', ...env },
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
  return { code, stdout, stderr };
}

describe('the local run path', () => {
  it('a main that throws prints one line and exits 1; SLUICE_DEBUG=1 adds the stack', async () => {
    const plain = await runJobFile('fails-while-building.ts');
    expect(plain.code).toBe(1);
    expect(plain.stderr).toBe('Error: cannot read the job configuration\n');

    const debug = await runJobFile('fails-while-building.ts', { SLUICE_DEBUG: '1' });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/^Error: cannot read the job configuration\n\s+at readSettings /);
  }, 60_000);

  it('a run with checkpointing ends with its result and no warning', async () => {
    const run = await runJobFile('local-collect.ts');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('collected 20000 distinct 20000 sum 199990000');
    const warnings = run.stderr
      .split('\n')
      .filter((l) => l.trim() !== '')
      .filter((l) => !l.startsWith('{') || (JSON.parse(l) as { level: number }).level >= 40);
    expect(warnings).toEqual([]);
  }, 90_000);
});
