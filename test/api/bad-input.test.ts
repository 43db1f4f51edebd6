/**
 * Jobs that are wrong in some way: each gives a clear error, and the local cluster keeps working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  GeneratorSource,
  JobExecutionError,
  StreamExecutionEnvironment,
  TextFileSource,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { sorted } from './recording-sink.js';

describe('bad jobs', () => {
  let nats: NatsServerHandle;
  const env = (parallelism = 1) => StreamExecutionEnvironment.createLocalEnvironment(parallelism, nats.url);

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
  });

  it('refuses an operator uid used twice, naming it', async () => {
    const e = env();
    e.fromElements(1)
      .map((x) => x)
      .uid('twice')
      .map((x) => x)
      .uid('twice')
      .print();
    await expect(e.execute()).rejects.toThrow("operator uid 'twice' is used twice");
  });

  it('refuses a job without a sink, and forward edges between different parallelism', async () => {
    const e = env();
    e.fromElements(1).map((x) => x);
    await expect(e.execute()).rejects.toThrow('the job has no sink');
    const f = env(2);
    f.fromElements(1)
      .forward()
      .map((x) => x)
      .print();
    await expect(f.execute()).rejects.toThrow(/forward partitioning .* needs equal parallelism/);
  });

  it('fails the job with the user error, its stack and where it happened when a function throws', async () => {
    const e = env(2);
    const failure = e
      .fromSource(new GeneratorSource(1_000, (i) => i))
      .map(function parseAmount(x: number) {
        if (x === 700) throw new TypeError(`bad amount in record ${x}`);
        return x;
      })
      .rebalance()
      .executeAndCollect('fails')
      .catch((err: unknown) => err);
    const err = (await failure) as JobExecutionError;
    expect(err).toBeInstanceOf(JobExecutionError);
    expect(err.status).toBe('FAILED');
    expect(err.message).toContain('TypeError: bad amount in record 700');
    expect(err.message).toMatch(/at Source: Generator Source -> Map \(\d\/2\)#0 on tm-/);
    expect(err.remoteStack).toContain('parseAmount');
    // The cluster still runs jobs.
    expect(
      sorted(
        await env(2)
          .fromElements(1, 2, 3)
          .map((x) => x + 1)
          .executeAndCollect(),
      ),
    ).toEqual([2, 3, 4]);
  });

  it('fails clearly on a record that cannot be serialized for the network', async () => {
    const e = env(1);
    const err = (await e
      .fromElements(1)
      .map((x) => ({ x, callback: () => x }))
      .rebalance()
      .map((r) => r.x)
      .setParallelism(2)
      .executeAndCollect()
      .catch((error: unknown) => error)) as Error;
    expect(err).toBeInstanceOf(JobExecutionError);
    expect(err.message).toMatch(/cannot be serialized/);
  });

  it('fails clearly when the input file is missing', async () => {
    const e = env();
    const err = (await e
      .fromSource(new TextFileSource('/nonexistent/input.txt'))
      .executeAndCollect()
      .catch((error: unknown) => error)) as Error;
    expect(err).toBeInstanceOf(JobExecutionError);
    expect(err.message).toContain('input file not found: /nonexistent/input.txt');
  });

  it('returns a JobClient from executeAsync that can cancel an unbounded job', async () => {
    const e = env(2);
    e.fromSource(new GeneratorSource(Number.POSITIVE_INFINITY, (i) => i, { ratePerSecond: 1_000 }))
      .rebalance()
      .print();
    const client = await e.executeAsync('endless');
    expect(client.jobId).toMatch(/^[0-9a-f]{32}$/);
    await expect.poll(() => client.getJobStatus()).toBe('RUNNING');
    await client.cancel();
    const err = (await client.getJobExecutionResult().catch((error: unknown) => error)) as JobExecutionError;
    expect(err).toBeInstanceOf(JobExecutionError);
    expect(err.status).toBe('CANCELED');
  });
});
