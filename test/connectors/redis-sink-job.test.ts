/**
 * RedisSink in jobs on a cluster of processes (JobManager, TaskManager), a real nats-server and a real
 * redis-server: a job that fails once restarts from its latest checkpoint and Redis holds exactly the
 * expected counts (no double count); a redis-server killed mid-run makes the sink retry, then the job fails
 * with the sink's cause; with Redis back, the job started again from its latest checkpoint completes the
 * counts without loss.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';
import { type RedisServerHandle, startRedisServer } from '../harness/redis.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/redis-sales.ts', import.meta.url));

/** What HINCRBY sold should hold after sales 0..count-1. */
function expectedSold(count: number): Record<string, string> {
  const sold: Record<string, number> = {};
  for (let i = 0; i < count; i++) sold[`item-${i % 7}`] = (sold[`item-${i % 7}`] ?? 0) + 1 + (i % 5);
  return Object.fromEntries(Object.entries(sold).map(([k, v]) => [k, String(v)]));
}

describe('RedisSink in jobs', () => {
  let nats: NatsServerHandle;
  let redis: RedisServerHandle;
  let client: ReturnType<typeof createClient>;
  let dir: string;
  let common: string[];
  let jm: SluiceProcess;
  let tm: SluiceProcess;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    client = createClient({ url: redis.url });
    client.on('error', () => {});
    await client.connect();
    dir = await mkdtemp(join(tmpdir(), 'sluice-redis-job-'));
    // A long heartbeat timeout: this test is about Redis going away, not TaskManagers (a loaded machine
    // can stall a TaskManager past a short one).
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'redis',
      '-D',
      'heartbeat.interval=500 ms',
      '-D',
      'heartbeat.timeout=10 s',
    ];
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'restart-strategy.type=fixed-delay',
      '-D',
      'restart-strategy.fixed-delay.attempts=1',
      '-D',
      'restart-strategy.fixed-delay.delay=200 ms',
    ]);
    await jm.waitForMessage('JobManager started');
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '2']);
    await tm.waitForMessage('registered at ResourceManager');
  }, 60_000);

  afterAll(async () => {
    client?.destroy();
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await client.flushAll();
  });

  const status = async (jobId: string) =>
    JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;

  it('a job that fails once restarts from its checkpoint: exact counts in Redis, nothing doubled', async () => {
    const marker = join(dir, 'failed-once');
    const run = await sluice(['run', ...common, JOB, redis.url, '3000', '1000', '150', marker]);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(marker)).toBe(true);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const details = await status(jobId);
    expect(details.status).toBe('FINISHED');
    expect(details.restarts).toBe(1);
    expect(await client.hGetAll('sold')).toEqual(expectedSold(3_000));
    expect(await client.sCard('seen')).toBe(3_000);
  }, 90_000);

  it('redis-server killed mid-run: retries, then the job fails with the sink as cause; with Redis back the job resumes from its checkpoint without loss', async () => {
    const count = 8_000;
    const submitted = await sluice(['run', ...common, '-d', JOB, redis.url, String(count), '500', '200']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    const fromThisJob = (l: Record<string, unknown>) => l.job === jobId;
    await jm.waitForLog((l) => fromThisJob(l) && /^checkpoint 3 completed/.test(String(l.msg)), 30_000);
    await redis.kill();
    // The sink retries with backoff (logged) before it gives up.
    await tm.waitForLog(
      (l) => /^Redis sink: .* failed; retrying$/.test(String(l.msg)) && l.attempt === 5,
      20_000,
    );
    const cause = new RegExp(
      `Redis Sink \\((HINCRBY|SADD) redis://127\\.0\\.0\\.1:${redis.port}\\): could not (commit a transaction|write) to Redis at redis://127\\.0\\.0\\.1:${redis.port} after 6 attempts in \\d+ ms`,
    );
    const failed = await jm.waitForLog(
      (l) => fromThisJob(l) && l.msg === 'task failed; failing the job' && cause.test(String(l.error)),
      30_000,
    );
    expect(String(failed.error)).toMatch(/CONNECTION_FAILED|SluiceError/);
    // One restart is allowed; it cannot commit the restored transactions either: the job fails.
    await expect
      .poll(async () => (await status(jobId)).status, { timeout: 40_000, interval: 500 })
      .toBe('FAILED');

    await redis.restart();
    const listed = JSON.parse((await sluice(['checkpoints', ...common, '--json', jobId])).stdout) as {
      history: Array<{ id: number; kind: string; status: string; target: string }>;
    };
    const latest = listed.history.find((c) => c.kind === 'checkpoint' && c.status === 'COMPLETED');
    expect(latest, JSON.stringify(listed.history)).toBeDefined();
    const resumed = await sluice([
      'run',
      ...common,
      '-s',
      latest!.target,
      JOB,
      redis.url,
      String(count),
      '2000',
      '200',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await client.hGetAll('sold')).toEqual(expectedSold(count));
    expect(await client.sCard('seen')).toBe(count);
  }, 150_000);
});
