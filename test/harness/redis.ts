/**
 * Starts a real `redis-server` for tests: on 127.0.0.1 and a free port, with a private temp dir for its
 * data (append-only file, fsync on every write, so a SIGKILLed server restarted on the same dir still has
 * every acknowledged write).
 *
 * - The port: a free one found by binding port 0 and closing it (redis-server cannot pick one itself).
 * - Ready: a PING on the port answers PONG.
 * - Fails fast: if the process exits before it is ready, or `startTimeoutMs` passes, the start rejects with
 *   the server's last output.
 * - `kill()` SIGKILLs it and keeps the dir; `restart()` starts it again on the same port and dir; `stop()`
 *   ends it and removes the dir. Servers still running when the test process exits are SIGKILLed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerHandle {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** SIGKILL; the data dir stays (for `restart`). */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

function launch(port: number, dir: string, startTimeoutMs: number): Promise<ChildProcess> {
  const binary = process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const child = spawn(
    binary,
    [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--protected-mode',
      'no',
      '--daemonize',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_192);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} ${why}; its output:\n${output}`));
    };
    child.once('error', (err) => fail(`could not start (${err.message}): is redis-server installed?`));
    child.once('exit', (code, signal) => fail(`exited before it was ready (code ${code}, signal ${signal})`));
    const deadline = Date.now() + startTimeoutMs;
    const poll = async () => {
      while (!settled) {
        if (await ping(port)) {
          settled = true;
          resolve(child);
          return;
        }
        if (Date.now() > deadline) return fail(`was not ready within ${startTimeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    void poll();
  });
}

export async function startRedisServer(
  options: { startTimeoutMs?: number } = {},
): Promise<RedisServerHandle> {
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  // Another process may take the port between the probe and the bind: try a few.
  for (let i = 0; ; i++) {
    port = await freePort();
    try {
      child = await launch(port, dir, startTimeoutMs);
      break;
    } catch (err) {
      if (i >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const ended = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve();
      else c.once('exit', () => resolve());
    });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async kill() {
      if (!child) return;
      const c = child;
      child = undefined;
      c.kill('SIGKILL');
      await ended(c);
    },
    async restart() {
      if (child) throw new Error('redis-server is running');
      child = await launch(port, dir, startTimeoutMs);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c) {
        c.kill('SIGTERM');
        await ended(c);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
