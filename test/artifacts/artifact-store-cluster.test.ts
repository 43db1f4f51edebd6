import { createHash, randomBytes } from 'node:crypto';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveServerCount, type NatsCluster, startNatsCluster } from '../../src/nats/launcher.js';
import { type ArtifactRef, ArtifactStore } from '../../src/runtime/artifacts/artifact-store.js';

let cluster: NatsCluster;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  // Connected to the first server, never the one killed (the third) unless it fails over.
  nc = await connect({ servers: cluster.urls, noRandomize: true, name: 'artifact-store-cluster-test' });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
  expect(liveServerCount()).toBe(0);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function streamLeader(stream: string): Promise<string | undefined> {
  return (await jsm.streams.info(stream)).cluster?.leader;
}

/** Moves the stream's leadership (a random other peer takes it) until `wanted(leader)` holds. */
async function moveLeader(stream: string, wanted: (leader: string) => boolean): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const leader = await streamLeader(stream);
    if (leader !== undefined && wanted(leader)) return;
    if (leader !== undefined)
      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, '', { timeout: 5_000 });
    await sleep(500);
  }
  throw new Error(`could not move the leader of ${stream}`);
}

function bundle(size: number) {
  const code = randomBytes(size);
  return { code, sha256: createHash('sha256').update(code).digest('hex') };
}

describe('ArtifactStore on a 3-node JetStream cluster', () => {
  it('reads every artifact back while a node is down, whether it led the stream or not', async () => {
    const options = { replicas: 3, timeoutMs: 1_000, retries: 12 };
    const follower = await ArtifactStore.open(nc, 'victim-follows', options);
    const leader = await ArtifactStore.open(nc, 'victim-leads', options);
    const bundles = Array.from({ length: 5 }, () => bundle(150_000)); // two chunks each
    const refs: ArtifactRef[] = [];
    for (const b of bundles) {
      refs.push((await follower.put(b)).ref);
      await leader.put(b);
    }

    const victim = cluster.servers[2]!;
    const victimName = victim.serverName!;
    await moveLeader(`OBJ_${follower.bucket}`, (l) => l !== victimName);
    await moveLeader(`OBJ_${leader.bucket}`, (l) => l === victimName);
    victim.kill();
    await victim.exited;

    // A follower down: no read waits on it (the client's consumer-based get would, ~1 in 3 times).
    let started = performance.now();
    for (let round = 0; round < 4; round++) {
      for (const [i, ref] of refs.entries()) {
        expect(Buffer.from(await follower.get(ref)).equals(bundles[i]!.code)).toBe(true);
      }
    }
    const followerMs = performance.now() - started;

    // The leader down: reads retry until a new leader is elected.
    started = performance.now();
    for (const [i, ref] of refs.entries()) {
      expect(Buffer.from(await leader.get(ref)).equals(bundles[i]!.code)).toBe(true);
    }
    const leaderMs = performance.now() - started;
    console.log(
      `with a node down: 20 reads of 150 kB in ${followerMs.toFixed(0)} ms (it followed the stream); ` +
        `5 reads in ${leaderMs.toFixed(0)} ms (it led the stream: election included)`,
    );
  });
});
