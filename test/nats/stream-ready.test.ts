/**
 * Buckets are usable when opened, on a real 3-node NATS cluster: `waitForStreamLeader` returns once a new
 * replicated stream has a leader and gives up clearly on a missing one; a bucket created by one client is
 * written at once by another client on another node (chaos seed 2015 on 7bd4703 failed so: `storing
 * artifact … failed: stream not found`); and a JobManager with HA creates the artifact bucket itself,
 * replicated like its HA stores, before any client would create it with one replica.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/common/errors.js';
import { bucketName, waitForStreamLeader } from '../../src/nats/jetstream.js';
import { liveServerCount, type NatsCluster, startNatsCluster } from '../../src/nats/launcher.js';
import { sha256Hex } from '../../src/nats/object-chunks.js';
import { ArtifactStore } from '../../src/runtime/artifacts/artifact-store.js';
import { SluiceProcess } from '../harness/processes.js';

let cluster: NatsCluster;
const clients: NatsConnection[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  for (const url of cluster.urls) clients.push(await connect({ servers: url, name: 'stream-ready-test' }));
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((nc) => nc.close()));
  await cluster?.stop();
  expect(liveServerCount()).toBe(0);
});

describe('waitForStreamLeader', () => {
  it('returns a new replicated stream once it has a leader', async () => {
    const jsm = await jetstreamManager(clients[0]!);
    await jsm.streams.add({ name: 'READY_R3', subjects: ['ready.r3'], num_replicas: 3 });
    const info = await waitForStreamLeader(await jetstreamManager(clients[1]!), 'READY_R3', {
      timeoutMs: 1_000,
      retries: 4,
    });
    expect(info.cluster?.leader).toMatch(/^sluice-n[123]$/);
    expect(info.cluster?.replicas).toHaveLength(2);
  });

  it('gives up on a stream that does not exist, saying so', async () => {
    const started = Date.now();
    await expect(
      waitForStreamLeader(await jetstreamManager(clients[2]!), 'NO_SUCH_STREAM', {
        timeoutMs: 200,
        retries: 2,
      }),
    ).rejects.toMatchObject({
      code: ErrorCode.JetStreamUnavailable,
      message: expect.stringMatching(/NO_SUCH_STREAM.*last: stream not found/),
    });
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('the artifact bucket', () => {
  it('is written at once by a client on another node than the one that created it', async () => {
    for (let i = 0; i < 8; i++) {
      const id = `ready${process.pid}x${i}`;
      const code = new TextEncoder().encode(`export const n = ${i};`);
      // Created from node 1 and, at the same moment, opened and written from node 2 and node 3.
      const [, a, b] = await Promise.all([
        ArtifactStore.open(clients[0]!, id, { replicas: 3 }),
        ArtifactStore.open(clients[1]!, id, { replicas: 3 }),
        ArtifactStore.open(clients[2]!, id, { replicas: 3 }),
      ]);
      const sha256 = sha256Hex(code);
      await Promise.all([a.put({ code, sha256 }), b.put({ code, sha256 })]);
      expect(await a.get({ sha256, sizeBytes: code.byteLength })).toEqual(code);
    }
  }, 60_000);

  it('is created by a JobManager with HA, with high-availability.replicas', async () => {
    const id = `readyjm${process.pid}`;
    const jm = new SluiceProcess([
      'jobmanager',
      '--nats',
      cluster.urls.join(','),
      '--cluster-id',
      id,
      '-D',
      'high-availability.type=nats',
      '-D',
      'high-availability.replicas=3',
      '-D',
      'rest.enabled=false',
      '-D',
      'metrics.enabled=false',
    ]);
    try {
      await jm.waitForMessage('JobManager started');
      const info = await jetstreamManager(clients[0]!).then((jsm) =>
        jsm.streams.info(`OBJ_${bucketName(id, 'artifacts')}`),
      );
      expect(info.config.num_replicas).toBe(3);
    } finally {
      await jm.stop();
    }
  }, 60_000);
});
