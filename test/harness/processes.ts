/**
 * Test harness: real `sluice` processes (JobManager, TaskManagers, client commands) started from the
 * built CLI (`npm run build` runs before the tests), with their output captured for assertions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const SLUICE_BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const BASE_ENV = { ...process.env, SLUICE_LOG_FORMAT: 'json', SLUICE_LOG_LEVEL: 'info' };

/** Runs `sluice <args>` to completion. */
export async function sluice(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<CliResult> {
  const child = spawn(process.execPath, [SLUICE_BIN, ...args], {
    env: { ...BASE_ENV, ...env },
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
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A long-running sluice process (jobmanager / taskmanager) whose JSON log lines are kept. */
export class SluiceProcess {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>> = [];
  output = '';
  readonly exited: Promise<number | null>;
  readonly #waiters: Array<{
    test: (line: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];

  /**
   * `nodeArgs` replaces the sluice CLI (e.g. to run a job file directly). `wrap` turns the node argv into
   * the argv to spawn, e.g. a test host's `ip netns exec` (test/harness/netns.ts); it must exec, so that
   * `pid` and signals are the node process's own.
   */
  constructor(
    args: string[],
    env: Record<string, string> = {},
    nodeArgs: string[] = [SLUICE_BIN],
    wrap: (argv: string[]) => string[] = (argv) => argv,
  ) {
    const [command, ...argv] = wrap([process.execPath, ...nodeArgs, ...args]);
    this.child = spawn(command!, argv, {
      env: { ...BASE_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    const onData = (chunk: string) => {
      this.output += chunk;
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) {
        let line: Record<string, unknown>;
        try {
          const parsed: unknown = JSON.parse(text);
          line =
            typeof parsed === 'object' && parsed !== null
              ? (parsed as Record<string, unknown>)
              : { msg: text };
        } catch {
          line = { msg: text };
        }
        this.lines.push(line);
        for (const w of [...this.#waiters]) {
          if (w.test(line)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    };
    this.child.stdout!.setEncoding('utf8').on('data', onData);
    this.child.stderr!.setEncoding('utf8').on('data', onData);
    this.exited = once(this.child, 'exit').then(([code]) => code as number | null);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line (past or future) that passes `test`; rejects after `timeoutMs`. */
  waitForLog(
    test: (line: Record<string, unknown>) => boolean,
    timeoutMs = 20_000,
  ): Promise<Record<string, unknown>> {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`no matching log line within ${timeoutMs} ms; output:\n${this.output.slice(-4_000)}`),
        );
      }, timeoutMs);
      this.#waiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(
          new Error(`process exited (${code}) before the log line; output:\n${this.output.slice(-4_000)}`),
        );
      });
    });
  }

  waitForMessage(msg: string | RegExp, timeoutMs?: number): Promise<Record<string, unknown>> {
    const test = (l: Record<string, unknown>) =>
      typeof l.msg === 'string' && (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg));
    return this.waitForLog(test, timeoutMs);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }

  /** SIGTERM and wait; SIGKILL if it takes longer than `graceMs`. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
