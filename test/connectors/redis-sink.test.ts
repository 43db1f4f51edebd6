/**
 * RedisSink against a real redis-server: the commands a mapper describes, the exactly-once commit at
 * checkpoints (a restore commits a pending transaction once), at-least-once pipelining, bad input, and a
 * server that goes away (bounded retries, a clear error, then recovery from the checkpointed state).
 */
import { pack, unpack } from 'msgpackr';
import { createClient } from 'redis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/log.js';
import {
  type ConnectorContext,
  RedisCommandDescription,
  type RedisMapper,
  RedisSink,
  type SinkWriter,
} from '../../src/index.js';
import { type RedisServerHandle, startRedisServer } from '../harness/redis.js';

interface Sale {
  item: string;
  qty: number;
}

const stored = (state: unknown): unknown[] => [unpack(pack(state))];

const mapper = <T>(
  description: RedisCommandDescription,
  key: (v: T) => string,
  value: (v: T) => string | number,
): RedisMapper<T> => ({
  getCommandDescription: () => description,
  getKeyFromData: key,
  getValueFromData: value,
});

const counts = () =>
  mapper<Sale>(
    new RedisCommandDescription('HINCRBY', 'sold'),
    (s) => s.item,
    (s) => s.qty,
  );

describe('RedisSink', () => {
  let redis: RedisServerHandle;
  let client: ReturnType<typeof createClient>;

  const ctx = (over: Partial<ConnectorContext> = {}): ConnectorContext => ({
    jobId: 'job',
    clusterId: 'test',
    subtaskIndex: 0,
    parallelism: 1,
    log: silentLogger(),
    signal: new AbortController().signal,
    nats: undefined as never,
    checkpointing: true,
    restoredState: undefined,
    ...over,
  });

  beforeAll(async () => {
    redis = await startRedisServer();
    client = createClient({ url: redis.url });
    client.on('error', () => {});
    await client.connect();
  });
  afterAll(async () => {
    client?.destroy();
    await redis?.stop();
  });
  beforeEach(async () => {
    if (client.isReady) await client.flushAll();
  });

  it('writes what the mapper describes: SET (with TTL), HSET, ZADD, SADD, RPUSH, INCRBY', async () => {
    const write = async <T>(m: RedisMapper<T>, values: T[]) => {
      const w = await new RedisSink<T>(
        { url: redis.url, deliveryGuarantee: 'AT_LEAST_ONCE' },
        m,
      ).createWriter(ctx({ checkpointing: false }));
      for (const v of values) w.write(v, undefined);
      await w.finish!();
      await w.close!();
    };
    const sales: Sale[] = [
      { item: 'apple', qty: 3 },
      { item: 'pear', qty: 5 },
      { item: 'apple', qty: 4 },
    ];
    await write(
      mapper<Sale>(
        new RedisCommandDescription('SET', undefined, 60),
        (s) => `last:${s.item}`,
        (s) => s.qty,
      ),
      sales,
    );
    await write(
      mapper<Sale>(
        new RedisCommandDescription('HSET', 'qty'),
        (s) => s.item,
        (s) => s.qty,
      ),
      sales,
    );
    await write(
      mapper<Sale>(
        new RedisCommandDescription('ZADD', 'top'),
        (s) => s.item,
        (s) => s.qty,
      ),
      sales,
    );
    await write(
      mapper<Sale>(
        new RedisCommandDescription('SADD'),
        () => 'items',
        (s) => s.item,
      ),
      sales,
    );
    await write(
      mapper<Sale>(
        new RedisCommandDescription('RPUSH'),
        () => 'log',
        (s) => s.item,
      ),
      sales,
    );
    await write(
      mapper<Sale>(
        new RedisCommandDescription('INCRBY'),
        (s) => `n:${s.item}`,
        (s) => s.qty,
      ),
      sales,
    );
    expect(await client.get('last:apple')).toBe('4');
    expect(await client.ttl('last:apple')).toBeGreaterThan(50);
    expect(await client.hGetAll('qty')).toEqual({ apple: '4', pear: '5' });
    expect(await client.zRangeWithScores('top', 0, -1)).toEqual([
      { value: 'apple', score: 4 },
      { value: 'pear', score: 5 },
    ]);
    expect((await client.sMembers('items')).sort()).toEqual(['apple', 'pear']);
    expect(await client.lRange('log', 0, -1)).toEqual(['apple', 'pear', 'apple']);
    expect(await client.get('n:apple')).toBe('7');
  });

  it('exactly-once: a checkpoint’s commands become visible when it completes; a restore applies a pending one once', async () => {
    const sink = new RedisSink<Sale>({ url: redis.url }, counts());
    const w = await sink.createWriter(ctx());
    w.write({ item: 'apple', qty: 1 }, undefined);
    w.write({ item: 'pear', qty: 2 }, undefined);
    w.snapshotState!(1);
    w.write({ item: 'apple', qty: 10 }, undefined);
    expect(await client.hGetAll('sold')).toEqual({});
    await w.notifyCheckpointComplete!(1);
    expect(await client.hGetAll('sold')).toEqual({ apple: '1', pear: '2' });
    const state2 = w.snapshotState!(2);
    // The task fails before checkpoint 2's notification; whether or not 2 was applied, restores apply it once.
    await w.notifyCheckpointComplete!(2);
    await w.close!();
    for (let restore = 0; restore < 2; restore++) {
      const again = await sink.createWriter(ctx({ restoredState: stored(state2) }));
      await again.close!();
    }
    expect(await client.hGetAll('sold')).toEqual({ apple: '11', pear: '2' });
    // A pending transaction never applied before is applied by the restore.
    const w3 = await sink.createWriter(ctx({ jobId: 'job-b' }));
    w3.write({ item: 'pear', qty: 100 }, undefined);
    const state3 = w3.snapshotState!(7);
    await w3.close!();
    expect(await client.hGetAll('sold')).toEqual({ apple: '11', pear: '2' });
    const restored = await sink.createWriter(
      ctx({ restoredState: stored(state3), subtaskIndex: 0, parallelism: 2 }),
    );
    await restored.close!();
    expect(await client.hGetAll('sold')).toEqual({ apple: '11', pear: '102' });
    // The marker records the last committed checkpoint per job and subtask.
    expect(await client.hGetAll('sluice:redis-sink:commits')).toEqual({ 'job/0': '2', 'job-b/0': '7' });
  });

  it('exactly-once: close without finish drops what no checkpoint covers; finish applies the rest', async () => {
    const sink = new RedisSink<Sale>({ url: redis.url, markerKey: 'm' }, counts());
    const w = await sink.createWriter(ctx());
    w.write({ item: 'x', qty: 1 }, undefined);
    await w.close!();
    expect(await client.hGetAll('sold')).toEqual({});
    const w2 = await sink.createWriter(ctx());
    w2.write({ item: 'x', qty: 1 }, undefined);
    w2.snapshotState!(1);
    w2.write({ item: 'x', qty: 2 }, undefined);
    await w2.finish!();
    await w2.close!();
    expect(await client.hGetAll('sold')).toEqual({ x: '3' });
  });

  it('at-least-once: a checkpoint stores the commands Redis has not acknowledged', async () => {
    const sink = new RedisSink<Sale>(
      { url: redis.url, deliveryGuarantee: 'AT_LEAST_ONCE', flushIntervalMs: 10_000, batchSize: 1_000 },
      mapper<Sale>(
        new RedisCommandDescription('ZADD', 'top'),
        (s) => s.item,
        (s) => s.qty,
      ),
    );
    const w = await sink.createWriter(ctx());
    w.write({ item: 'a', qty: 1 }, undefined);
    w.write({ item: 'b', qty: 2 }, undefined);
    const state = w.snapshotState!(1) as { pending: Array<{ commands: string[][] }> };
    expect(state.pending[0]!.commands).toEqual([
      ['ZADD', 'top', '1', 'a'],
      ['ZADD', 'top', '2', 'b'],
    ]);
    await w.close!();
    expect(await client.zCard('top')).toBe(0);
    const again = await sink.createWriter(ctx({ restoredState: stored(state) }));
    await again.close!();
    expect(await client.zRangeWithScores('top', 0, -1)).toEqual([
      { value: 'a', score: 1 },
      { value: 'b', score: 2 },
    ]);
  });

  it('refuses bad configuration and bad records clearly', async () => {
    expect(() => new RedisSink({ url: 'http://x' }, counts())).toThrow(/url must start with redis:\/\//);
    expect(() => new RedisSink({ url: redis.url, maxRetries: -1 }, counts())).toThrow(
      /maxRetries must be an integer >= 0/,
    );
    expect(
      () =>
        new RedisSink(
          { url: redis.url },
          mapper<Sale>(
            new RedisCommandDescription('HSET'),
            (s) => s.item,
            (s) => s.qty,
          ),
        ),
    ).toThrow(/HSET needs an additional key/);
    expect(() => new RedisCommandDescription('GETDEL' as never)).toThrow(/unknown command/);
    const w = await new RedisSink<Sale>({ url: redis.url }, counts()).createWriter(ctx());
    expect(() => w.write({ item: '', qty: 1 }, undefined)).toThrow(/getKeyFromData returned ""/);
    await w.close!();
    // A command Redis refuses fails at once, naming it (no retries).
    await client.set('sold', 'not a hash');
    const w2 = await new RedisSink<Sale>({ url: redis.url }, counts()).createWriter(ctx());
    w2.write({ item: 'a', qty: 1 }, undefined);
    w2.snapshotState!(1);
    const started = Date.now();
    await expect(w2.notifyCheckpointComplete!(1)).rejects.toThrow(
      /Redis refused the command HINCRBY sold a 1: WRONGTYPE/,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    await w2.close!();
  });

  it('a Redis that is down: bounded retries, a clear error; after it is back the restored state is applied without loss', async () => {
    const sink = new RedisSink<Sale>(
      { url: redis.url, maxRetries: 3, initialBackoffMs: 50, maxBackoffMs: 200 },
      counts(),
    );
    const w = await sink.createWriter(ctx());
    w.write({ item: 'apple', qty: 1 }, undefined);
    w.snapshotState!(1);
    await w.notifyCheckpointComplete!(1);
    w.write({ item: 'apple', qty: 2 }, undefined);
    const state = w.snapshotState!(2);
    await redis.kill();
    const started = Date.now();
    const failure = await (w.notifyCheckpointComplete!(2) as Promise<void>).catch(
      (err: unknown) => err as Error,
    );
    const took = Date.now() - started;
    expect((failure as { code?: string }).code).toBe('CONNECTION_FAILED');
    expect((failure as Error).message).toMatch(
      new RegExp(
        `Redis Sink \\(HINCRBY redis://127.0.0.1:${redis.port}\\): could not commit a transaction to Redis at redis://127.0.0.1:${redis.port} after 4 attempts in \\d+ ms`,
      ),
    );
    // 50 + 100 + 200 ms of backoff, and not much more.
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(3_000);
    // The writer stays failed.
    expect(w.writable).toBe(false);
    await w.close!();
    // A restore while Redis is still down fails the same way.
    await expect(sink.createWriter(ctx({ restoredState: stored(state) }))).rejects.toThrow(
      /after 4 attempts/,
    );
    await redis.restart();
    await client.connect().catch(() => {});
    await expect.poll(() => client.isReady).toBe(true);
    const restored: SinkWriter<Sale> = await sink.createWriter(ctx({ restoredState: stored(state) }));
    await restored.close!();
    expect(await client.hGetAll('sold')).toEqual({ apple: '3' });
  }, 30_000);
});
