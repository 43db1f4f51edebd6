import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  findNatsServerBinary,
  liveServerCount,
  type NatsCluster,
  type NatsServerHandle,
  NatsServerStartError,
  startNatsCluster,
  startNatsServer,
} from '../../src/nats/launcher.js';

/** Every pid any test started; none may be alive at the end. */
const pids = new Set<number>();
const toStop: Array<{ stop(): Promise<void> }> = [];
const toClose: NatsConnection[] = [];

function track<T extends NatsServerHandle | NatsCluster>(x: T): T {
  toStop.push(x);
  const servers: NatsServerHandle[] = 'servers' in x ? x.servers : [x as NatsServerHandle];
  for (const s of servers) pids.add(s.pid);
  return x;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterEach(async () => {
  await Promise.all(toClose.splice(0).map((nc) => nc.close().catch(() => {})));
  await Promise.all(toStop.splice(0).map((s) => s.stop()));
});

afterAll(() => {
  expect(liveServerCount()).toBe(0);
  expect([...pids].filter(alive)).toEqual([]);
});

/** Retries `fn` until it succeeds or `totalMs` passes (stream leader elections take seconds on 2.9). */
async function retry<T>(fn: () => Promise<T>, totalMs = 30_000): Promise<T> {
  const deadline = Date.now() + totalMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('findNatsServerBinary', () => {
  it('finds the installed server', () => {
    expect(existsSync(findNatsServerBinary())).toBe(true);
  });

  it('says how to install it when missing', () => {
    expect(() => findNatsServerBinary('/nonexistent/nats-server')).toThrow(
      /nats-server not found: install it \(apt-get install -y nats-server\) or set NATS_SERVER_BIN/,
    );
  });
});

describe('startNatsServer', () => {
  it('starts a JetStream server on a random loopback port and cleans up on stop', async () => {
    const started = Date.now();
    const server = track(await startNatsServer());
    const startMs = Date.now() - started;
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.port).toBeGreaterThan(0);
    expect(server.port).not.toBe(4222);
    expect(alive(server.pid)).toBe(true);
    expect(existsSync(server.storeDir)).toBe(true);
    console.log(`single server ready in ${startMs} ms`);

    const nc = await connect({ servers: server.url });
    toClose.push(nc);
    const kv = await new Kvm(nc).create('launcher');
    await kv.put('k', 'hello');
    expect((await kv.get('k'))?.string()).toBe('hello');
    await nc.close();

    await server.stop();
    await server.stop(); // idempotent
    expect(await server.exited).not.toBeUndefined();
    expect(alive(server.pid)).toBe(false);
    expect(existsSync(server.storeDir)).toBe(false);
    expect(existsSync(dirname(server.storeDir))).toBe(false); // the whole temp dir, ports dir included
  });

  it('keeps a given store dir and writes output to a given log file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-launcher-test-'));
    try {
      const server = track(
        await startNatsServer({ storeDir: join(dir, 'store'), logFile: join(dir, 'server.log') }),
      );
      expect(server.storeDir).toBe(join(dir, 'store'));
      await server.stop();
      expect(existsSync(join(dir, 'store', 'jetstream'))).toBe(true);
      expect(await readFile(join(dir, 'server.log'), 'utf8')).toMatch(/Server is ready/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects fast with the server output when the config is bad', async () => {
    const started = Date.now();
    const err = await startNatsServer({ extraConfig: 'no_such_option_xyz: 1' }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err).toBeInstanceOf(NatsServerStartError);
    expect((err as Error).message).toMatch(/exited with code 1 before it was ready/);
    expect((err as Error).message).toMatch(/unknown field "no_such_option_xyz"/);
    expect(liveServerCount()).toBe(0);
  });

  it('includes the log file tail in the error when output goes to a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-launcher-test-'));
    try {
      const err = await startNatsServer({ extraConfig: 'bogus {', logFile: join(dir, 'server.log') }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NatsServerStartError);
      expect((err as NatsServerStartError).output).not.toBe('');
      expect((err as Error).message).toContain((err as NatsServerStartError).output.trim());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects when the start timeout passes and kills the server', async () => {
    const err = await startNatsServer({ startTimeoutMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsServerStartError);
    expect((err as Error).message).toMatch(/not ready within 1 ms/);
    expect(liveServerCount()).toBe(0);
  });

  it('kill() sends a raw signal and exited reports it', async () => {
    const server = track(await startNatsServer({ jetstream: false }));
    server.kill();
    expect(await server.exited).toBeNull(); // ended by a signal
    expect(alive(server.pid)).toBe(false);
    await server.stop();
    expect(existsSync(dirname(server.storeDir))).toBe(false);
  });
});

describe('startNatsCluster', () => {
  it('forms a 3-node JetStream cluster whose R3 KV survives losing a node', async () => {
    const started = Date.now();
    const cluster = track(await startNatsCluster(3));
    console.log(`3-node cluster ready in ${Date.now() - started} ms`);
    expect(new Set(cluster.servers.map((s) => s.port)).size).toBe(3);
    expect(new Set(cluster.servers.map((s) => s.storeDir)).size).toBe(3);
    expect(cluster.urls).toEqual(cluster.servers.map((s) => s.url));

    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    toClose.push(nc);
    const kvm = new Kvm(jetstream(nc, { timeout: 2_000 }));
    const kv = await retry(() => kvm.create('ha', { replicas: 3 }));
    expect((await kv.status()).replicas).toBe(3);
    await kv.put('before', 'one');

    // Kill the KV stream's leader: the harder case (a new leader must be elected before writes go on).
    const leader = (await (await jetstreamManager(nc)).streams.info('KV_ha')).cluster?.leader;
    expect(cluster.servers.map((s) => s.serverName)).toContain(leader);
    const victim = cluster.servers.find((s) => s.serverName === leader)!;
    victim.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();

    await retry(() => kv.put('after', 'two'));
    // KV reads are direct gets, answered by any replica: one that is still catching up after the new
    // stream leader's election may not have the write yet. Durable means every value shows up.
    const value = (key: string) =>
      retry(async () => {
        const v = (await kv.get(key))?.string();
        if (v === undefined) throw new Error(`${key} not (yet) on the replica that answered`);
        return v;
      });
    expect(await value('after')).toBe('two');
    expect(await value('before')).toBe('one');
    console.log(`put/get after killing a node took ${Date.now() - killedAt} ms`);

    await nc.close();
    await cluster.stop();
    await cluster.stop(); // idempotent
    for (const s of cluster.servers) expect(alive(s.pid)).toBe(false);
  });
});
