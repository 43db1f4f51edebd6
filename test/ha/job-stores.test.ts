import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError } from '../../src/common/errors.js';
import type { JobId } from '../../src/common/ids.js';
import { isLeadershipLost, LeadershipLostError } from '../../src/ha/errors.js';
import { FENCE_KEY } from '../../src/ha/fenced-kv-store.js';
import { JobGraphStore, JobResultStore, recoverableJobs } from '../../src/ha/job-stores.js';
import { newJobId } from '../../src/jobgraph/job-id.js';
import { bucketName, natsError } from '../../src/nats/jetstream.js';
import { liveServerCount, type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { testClusterId } from './helpers.js';

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, name: 'ha-job-stores-test' });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  expect(liveServerCount()).toBe(0);
});

async function stores() {
  const id = testClusterId('stores');
  const jobs = await JobGraphStore.open(nc, id, { timeoutMs: 1_000, retries: 2 });
  const results = await JobResultStore.open(nc, id, { timeoutMs: 1_000, retries: 2 });
  return { id, jobs, results };
}

const graph = (name: string) => ({ name, vertices: [{ id: 'v1', parallelism: 2 }], edges: [] });

describe('JobGraphStore and JobResultStore', () => {
  it('round-trip job graphs and results; recoverableJobs is jobs without a result', async () => {
    const { jobs, results } = await stores();
    expect(jobs.bucket).toMatch(/^sluice_stores_.*_jobs$/);
    expect(results.bucket).toMatch(/^sluice_stores_.*_results$/);
    const [a, b, c] = [newJobId(), newJobId(), newJobId()];
    expect(await jobs.list()).toEqual([]);
    expect(await jobs.get(a)).toBeNull();

    await jobs.put(4, a, { jobGraph: graph('a'), submitOptions: { detached: true } });
    await jobs.put(4, b, { jobGraph: graph('b') });
    await jobs.put(4, c, { jobGraph: graph('c') });
    expect(await jobs.get(a)).toMatchObject({
      jobId: a,
      jobGraph: graph('a'),
      submitOptions: { detached: true },
      epoch: 4,
    });
    expect(await jobs.list()).toEqual([a, b, c].sort());
    expect(await jobs.fenceEpoch()).toBe(4);

    expect(await results.has(b)).toBe(false);
    await results.put(4, b, { status: 'FINISHED', endedAt: 1_700_000_000_000 });
    await results.put(4, c, { status: 'FAILED', endedAt: 1_700_000_000_001, failure: 'boom' });
    expect(await results.has(b)).toBe(true);
    expect(await results.get(c)).toMatchObject({ jobId: c, status: 'FAILED', failure: 'boom', epoch: 4 });
    expect(await results.list()).toEqual([b, c].sort());
    expect(await recoverableJobs(jobs, results)).toEqual([a]);

    // A newer epoch takes over: overwrites, removes.
    await jobs.put(9, a, { jobGraph: graph('a2') });
    expect(await jobs.get(a)).toMatchObject({ jobGraph: graph('a2'), epoch: 9 });
    expect(await jobs.remove(9, b)).toBe(true);
    expect(await jobs.remove(9, b)).toBe(false);
    expect(await jobs.get(b)).toBeNull();
    expect(await jobs.list()).toEqual([a, c].sort());
    expect(await recoverableJobs(jobs, results)).toEqual([a]);
    // A removed job can be stored again (over the delete marker).
    await jobs.put(9, b, { jobGraph: graph('b2') });
    expect(await jobs.get(b)).toMatchObject({ jobGraph: graph('b2') });
  });

  it('refuses a write with a stale epoch once a newer epoch has written', async () => {
    const { jobs, results } = await stores();
    const [a, b] = [newJobId(), newJobId()];
    await jobs.put(3, a, { jobGraph: graph('a') });
    await jobs.put(7, b, { jobGraph: graph('b') }); // the new leader raises the fence

    const stale = jobs.put(3, a, { jobGraph: graph('zombie') });
    await expect(stale).rejects.toBeInstanceOf(LeadershipLostError);
    await expect(stale).rejects.toMatchObject({ code: ErrorCode.LeadershipLost, epoch: 3, supersededBy: 7 });
    await expect(jobs.remove(3, b)).rejects.toSatisfy(isLeadershipLost);
    await expect(jobs.put(5, newJobId(), { jobGraph: graph('new') })).rejects.toSatisfy(isLeadershipLost);
    expect(await jobs.get(a)).toMatchObject({ jobGraph: graph('a'), epoch: 3 });
    expect(await jobs.get(b)).toMatchObject({ epoch: 7 });
    expect(await jobs.list()).toEqual([a, b].sort());

    // Each store has its own fence.
    await results.put(7, a, { status: 'CANCELED', endedAt: 1 });
    await expect(results.put(6, b, { status: 'FINISHED', endedAt: 2 })).rejects.toMatchObject({
      code: ErrorCode.LeadershipLost,
      supersededBy: 7,
    });
    expect(await results.has(b)).toBe(false);
  });

  it('never overwrites a value written under a newer epoch, even if the fence was lowered', async () => {
    const { id, jobs } = await stores();
    const a = newJobId();
    await jobs.put(8, a, { jobGraph: graph('a') });
    // Someone deletes the fence key by hand: the per-value epoch still protects the value.
    const kv = await new Kvm(nc).open(bucketName(id, 'jobs'));
    await kv.delete(FENCE_KEY);
    await expect(jobs.put(2, a, { jobGraph: graph('zombie') })).rejects.toMatchObject({
      code: ErrorCode.LeadershipLost,
      supersededBy: 8,
    });
    expect(await jobs.get(a)).toMatchObject({ epoch: 8, jobGraph: graph('a') });
  });

  it('reads from the stream leader, not by Direct Get (which a lagging replica may answer)', async () => {
    const { id, jobs } = await stores();
    const a = newJobId();
    const stream = `KV_${bucketName(id, 'jobs')}`;
    // A plain subscriber sees every request on these subjects (the server's own handlers answer them).
    const seen = { direct: 0, leader: 0 };
    const direct = nc.subscribe(`$JS.API.DIRECT.GET.${stream}.>`, { callback: () => void seen.direct++ });
    const directAll = nc.subscribe(`$JS.API.DIRECT.GET.${stream}`, { callback: () => void seen.direct++ });
    const leader = nc.subscribe(`$JS.API.STREAM.MSG.GET.${stream}`, { callback: () => void seen.leader++ });
    await nc.flush();
    await jobs.put(3, a, { jobGraph: graph('a') });
    expect(await jobs.get(a)).toMatchObject({ epoch: 3, jobGraph: graph('a') });
    expect(await jobs.list()).toEqual([a]);
    expect(await jobs.fenceEpoch()).toBe(3);
    expect(await jobs.remove(3, a)).toBe(true);
    expect(await jobs.get(a)).toBeNull();
    await nc.flush();
    // The NATS client's own get on a bucket it created (as the stores open theirs) is a Direct Get: the
    // counter sees it.
    await (await new Kvm(nc).create(bucketName(id, 'jobs'))).get(a);
    await nc.flush();
    for (const sub of [direct, directAll, leader]) sub.unsubscribe();
    expect(seen.direct).toBe(1);
    expect(seen.leader).toBeGreaterThanOrEqual(6);
  });

  it('reports bytes it did not write as CORRUPTED_HA_DATA, and can overwrite them', async () => {
    const { id, jobs, results } = await stores();
    const a = newJobId();
    const kv = await new Kvm(nc).open(bucketName(id, 'jobs'));
    await kv.put(a, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    await kv.put(FENCE_KEY, 'not a fence');
    await kv.put('not-a-job-id', '{}');
    await expect(jobs.get(a)).rejects.toMatchObject({ code: ErrorCode.CorruptedHaData, retryable: false });
    expect(await jobs.list()).toEqual([a]);
    expect(await jobs.fenceEpoch()).toBeUndefined();
    await jobs.put(1, a, { jobGraph: graph('a') });
    expect(await jobs.get(a)).toMatchObject({ epoch: 1 });
    expect(await recoverableJobs(jobs, results)).toEqual([a]);
  });

  it('validates job ids, epochs and values', async () => {
    const { jobs, results } = await stores();
    await expect(jobs.put(1, 'nope' as JobId, { jobGraph: graph('x') })).rejects.toMatchObject({
      code: ErrorCode.InvalidJob,
    });
    await expect(jobs.get('../etc' as JobId)).rejects.toMatchObject({ code: ErrorCode.InvalidJob });
    await expect(jobs.put(0, newJobId(), { jobGraph: graph('x') })).rejects.toMatchObject({
      code: ErrorCode.InvalidMessage,
    });
    await expect(jobs.put(1, newJobId(), { jobGraph: undefined })).rejects.toMatchObject({
      code: ErrorCode.InvalidJob,
    });
    await expect(
      // SUSPENDED is terminal for a JobManager, not for the cluster: such a job must be recovered.
      results.put(1, newJobId(), { status: 'SUSPENDED' as 'FINISHED', endedAt: 1 }),
    ).rejects.toMatchObject({ code: ErrorCode.InvalidJob });
  });
});

describe('NATS errors', () => {
  it('maps "jetstream is not enabled" (2.9: a leaderless stream) to a retryable JETSTREAM_UNAVAILABLE', () => {
    const notEnabled = Object.assign(new Error('jetstream is not enabled'), { name: 'JetStreamNotEnabled' });
    const err = natsError(new Error('publish failed', { cause: notEnabled }), 'renewing');
    expect(err).toMatchObject({ code: ErrorCode.JetStreamUnavailable, retryable: true });
  });

  it('a server without JetStream: opening a store fails with JETSTREAM_UNAVAILABLE after its retries', async () => {
    const plain = await startNatsServer({ jetstream: false });
    const pnc = await connect({ servers: plain.url });
    try {
      const err = await JobGraphStore.open(pnc, 'nojs', { timeoutMs: 500, retries: 1 }).catch(
        (e: unknown) => e,
      );
      expect(isSluiceError(err, ErrorCode.JetStreamUnavailable)).toBe(true);
    } finally {
      await pnc.close();
      await plain.stop();
    }
  });
});
