/**
 * The e-commerce example end to end: a real nats-server (JetStream) and redis-server, the generator's
 * records published, the application run with `sluice run-application` (a JobManager and TaskManagers as
 * processes), then Redis and the output streams compared with the plain-JS reference of model.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishGenerated } from '../../examples/ecommerce/generate.js';
import { type Expected, expectedResults, REDIS_HOT_PREFIX, STREAMS } from '../../examples/ecommerce/model.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { sluice } from '../harness/processes.js';
import { type RedisServerHandle, startRedisServer } from '../harness/redis.js';

const APP = fileURLToPath(new URL('../../examples/ecommerce/app.ts', import.meta.url));

/** Every message of a stream, JSON-decoded. */
async function readStream(url: string, stream: string): Promise<unknown[]> {
  const nc = await connect({ servers: url });
  try {
    const js = jetstream(nc);
    const consumer = await js.consumers.get(stream);
    const info = await consumer.info();
    const total = info.num_pending;
    const out: unknown[] = [];
    while (out.length < total) {
      const batch = await consumer.fetch({ max_messages: 500, expires: 2_000 });
      for await (const m of batch) out.push(m.json());
    }
    return out;
  } finally {
    await nc.close();
  }
}

const sortedJson = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();

describe('e-commerce application', () => {
  let nats: NatsServerHandle;
  let redis: RedisServerHandle;
  let runDir: string;
  let expected: Expected;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    runDir = await mkdtemp(join(tmpdir(), 'sluice-ecommerce-run-'));
    expected = expectedResults(await publishGenerated(nats.url, { seed: 7, count: 3_000 }));
  });

  afterAll(async () => {
    try {
      const pids = execFileSync('pgrep', ['-f', `cluster.run-dir=${runDir}`], { encoding: 'utf8' });
      for (const pid of pids.trim().split('\n').filter(Boolean).map(Number)) process.kill(pid, 'SIGKILL');
    } catch {
      // none left
    }
    await Promise.all([nats?.stop(), redis?.stop()]);
    await rm(runDir, { recursive: true, force: true });
  });

  it('four jobs in application mode: hot items in Redis, statistics, alerts and bad records in JetStream', async () => {
    // The reference has something to compare in every output.
    expect(expected.bad.length).toBeGreaterThan(10);
    expect(expected.hotItems.size).toBeGreaterThan(10);
    expect(expected.stats.filter((s) => s.kind === 'conversion').length).toBeGreaterThan(10);
    expect(expected.alerts.filter((a) => a.kind === 'lowStock').length).toBeGreaterThan(0);
    expect(expected.alerts.filter((a) => a.kind === 'trafficSpike').length).toBeGreaterThan(0);

    const run = await sluice(
      [
        'run-application',
        '--nats',
        nats.url,
        '-D',
        `cluster.run-dir=${runDir}`,
        '-p',
        '2',
        APP,
        nats.url,
        redis.url,
      ],
      {},
      55_000,
    );
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toMatch(/ended: 4 job\(s\), exit status 0/);

    const [clean, bad, stats, alerts] = await Promise.all([
      readStream(nats.url, STREAMS.clean.name),
      readStream(nats.url, STREAMS.bad.name),
      readStream(nats.url, STREAMS.stats.name),
      readStream(nats.url, STREAMS.alerts.name),
    ]);
    expect.soft(clean).toEqual(expected.clean);
    expect.soft(sortedJson(bad)).toEqual(sortedJson(expected.bad));
    expect.soft(sortedJson(stats)).toEqual(sortedJson(expected.stats));
    expect.soft(sortedJson(alerts)).toEqual(sortedJson(expected.alerts));

    const client = createClient({ url: redis.url });
    await client.connect();
    try {
      const keys = (await client.keys(`${REDIS_HOT_PREFIX}:*`)).sort();
      expect.soft(keys).toEqual([...expected.hotItems.keys()].sort());
      for (const key of keys) {
        expect(JSON.parse((await client.get(key))!), key).toEqual(expected.hotItems.get(key)!.items);
      }
    } finally {
      await client.quit();
    }
  }, 90_000);
});
