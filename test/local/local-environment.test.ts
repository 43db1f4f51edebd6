/**
 * A job file run directly with node (through tsx) runs on a private local cluster: its own nats-server
 * child with a temp store dir. Neither survives Ctrl-C nor a failing job.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../src/providers/standalone.js';
import { SluiceProcess } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/local-endless.ts', import.meta.url));

/** The private nats-server started by `pid`, and the temp dir holding its config and store. */
function natsChild(pid: number): { pid: number; dir: string } | undefined {
  let out: string;
  try {
    out = execFileSync('pgrep', ['-P', String(pid), 'nats-server'], { encoding: 'utf8' });
  } catch {
    return undefined;
  }
  const child = Number(out.trim().split('\n')[0]);
  const args = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
  const config = args[args.indexOf('-c') + 1] ?? args[args.indexOf('--config') + 1]!;
  return { pid: child, dir: dirname(config) };
}

function runJob(env: Record<string, string> = {}): SluiceProcess {
  return new SluiceProcess([], env, ['--import', 'tsx', JOB]);
}

describe('local environment', () => {
  it('prints the job output, and on Ctrl-C leaves no nats-server and no temp dir', async () => {
    const job = runJob();
    await job.waitForLog((l) => /^\d+$/.test(String(l.msg)), 30_000);
    const nats = natsChild(job.pid);
    expect(nats).toBeDefined();
    expect(existsSync(nats!.dir)).toBe(true);
    job.kill('SIGINT');
    expect(await job.exited).toBe(130);
    expect(isAlive(nats!.pid)).toBe(false);
    expect(existsSync(nats!.dir)).toBe(false);
  });

  it('cleans up the same way when the job fails, and exits non-zero with the cause', async () => {
    const job = runJob({ FAIL_AT: '600' });
    await job.waitForLog((l) => /^\d+$/.test(String(l.msg)), 30_000);
    const nats = natsChild(job.pid)!;
    expect(nats).toBeDefined();
    const code = await job.exited;
    expect(code).not.toBe(0);
    expect(job.output).toContain('failing at record 600');
    expect(isAlive(nats.pid)).toBe(false);
    expect(existsSync(nats.dir)).toBe(false);
  });
});
