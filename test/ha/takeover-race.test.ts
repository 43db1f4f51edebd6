/**
 * The takeover of a dead leader's key is ONE compare-and-set that exactly one standby can win, on a real
 * nats-server: a single server and a 3-node cluster with a replicated leader bucket (nats-server 2.9 checks
 * the expected revision of a replicated stream only before proposing the write, nats-io/nats-server#4320:
 * two plain compare-and-sets on the same revision in the same millisecond could both be accepted — this
 * is how issue 12 saw two leaders at once).
 *
 * Two standbys on their own connections race the takeover of the same dead revision, many times; every
 * time exactly one of them wins, and the key then holds the winner's record; likewise when both find the key
 * deleted (a graceful step-down) and create it at once. Then the whole service: two
 * standby JobManagers find the holder gone at the same moment; exactly one is granted leadership.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElectionService } from '../../src/ha/leader-election.js';
import { decodeLeaderEntry, encodeLeaderRecord } from '../../src/ha/leader-election-driver.js';
import { DEFAULT_LEASE_MS } from '../../src/ha/leader-election-timings.js';
import { NatsKvLeaderElectionDriver } from '../../src/ha/nats-kv-leader-election-driver.js';
import { liveServerCount, type NatsCluster, startNatsCluster } from '../../src/nats/launcher.js';
import { assertOneLeaderAtATime, RecordingContender, testClusterId, waitFor } from './helpers.js';

const ITERATIONS = 100;

let cluster: NatsCluster;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
}, 60_000);

afterAll(async () => {
  await Promise.all(conns.map((nc) => nc.close()));
  await cluster?.stop();
  expect(liveServerCount()).toBe(0);
});

async function connectTo(i: number, name: string): Promise<NatsConnection> {
  const urls = [...cluster.urls.slice(i), ...cluster.urls.slice(0, i)];
  const nc = await connect({ servers: urls, noRandomize: true, name });
  conns.push(nc);
  return nc;
}

function record(leaderId: string, instance: string): Uint8Array {
  return encodeLeaderRecord({ v: 1, leaderId, rpcAddress: leaderId, renewedAt: Date.now(), instance });
}

async function raceTakeovers(replicas: number): Promise<void> {
  const clusterId = testClusterId(`race${replicas}`);
  // The two standbys sit on different servers (different routes to the stream leader), as in production.
  const open = async (i: number) =>
    NatsKvLeaderElectionDriver.open(await connectTo(i, `standby-${i}-r${replicas}`), {
      clusterId,
      leaseMs: DEFAULT_LEASE_MS,
      replicas,
      requestTimeoutMs: 2_000,
      openRetries: 15,
    });
  const [a, b] = [await open(1), await open(2)];
  let wonByA = 0;
  let wonByB = 0;
  let base: number | null = null; // the key's last revision
  for (let i = 0; i < ITERATIONS; i++) {
    // The dead holder's record (its process is gone; nobody renews it).
    const dead: number | null =
      base === null
        ? await a.create(record('dead', `dead${i}`), 2_000)
        : await a.update(record('dead', `dead${i}`), base, 2_000);
    expect(dead, `iteration ${i}: the dead holder's write`).not.toBeNull();
    const [ra, rb]: (number | null)[] = await Promise.all([
      a.takeOver(record('a', `a${i}`), dead!, 2_000),
      b.takeOver(record('b', `b${i}`), dead!, 2_000),
    ]);
    const winners = [ra, rb].filter((r): r is number => r !== null);
    expect(winners, `iteration ${i}: a=${ra} b=${rb}`).toHaveLength(1);
    base = winners[0]!;
    // Reads of a replicated bucket may be served by a replica a write or two behind (direct get): wait
    // until it has caught up to the winner's write, then nothing must have been written after it.
    let entry = await a.read(2_000);
    for (let tries = 0; (entry?.revision ?? 0) < base && tries < 50; tries++) {
      await new Promise((r) => setTimeout(r, 20));
      entry = await a.read(2_000);
    }
    const read = entry === null ? undefined : decodeLeaderEntry(entry);
    expect(read?.state).toBe('held');
    if (read?.state !== 'held') return;
    // The key is at the winner's revision and names the winner: the loser's write was never stored.
    expect(read.leader.revision, `iteration ${i}: a=${ra} b=${rb} key by ${read.leader.leaderId}`).toBe(base);
    expect(read.leader.leaderId).toBe(ra !== null ? 'a' : 'b');
    if (ra !== null) wonByA++;
    else wonByB++;
    // A graceful step-down: the winner deletes its key; both standbys find it absent and create it at once.
    expect(await (ra !== null ? a : b).delete(base, 2_000)).toBe(true);
    // A read served by a replica that has not applied the delete yet still sees the key held: then
    // nobody writes this round (a standby tries again at its next poll). Never two.
    let created: number[] = [];
    for (let round = 0; round < 20 && created.length === 0; round++) {
      created = (
        await Promise.all([a.create(record('a', `ca${i}`), 2_000), b.create(record('b', `cb${i}`), 2_000)])
      ).filter((r): r is number => r !== null);
      expect(created.length, `iteration ${i}: creates after a delete`).toBeLessThanOrEqual(1);
      if (created.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(created, `iteration ${i}: creates after a delete`).toHaveLength(1);
    base = created[0]!;
  }
  expect(wonByA + wonByB).toBe(ITERATIONS);
  await a.close();
  await b.close();
}

describe('taking a dead leader key over', () => {
  it(`two standbys race ${ITERATIONS} takeovers on one replica: exactly one wins each`, async () => {
    await raceTakeovers(1);
  }, 60_000);

  it(`two standbys race ${ITERATIONS} takeovers on a 3-replica bucket: exactly one wins each`, async () => {
    await raceTakeovers(3);
  }, 90_000);

  it('two standby services find the holder gone at the same time: exactly one is granted', async () => {
    for (let round = 0; round < 3; round++) {
      const clusterId = testClusterId(`svc${round}`);
      const holderNc = await connectTo(0, `holder-${round}`);
      const holder = new RecordingContender('holder');
      const services: LeaderElectionService[] = [];
      const make = async (i: number, name: string) => {
        const nc = i === 0 ? holderNc : await connectTo(i, `${name}-${round}`);
        const s = await LeaderElectionService.createOnNats(nc, {
          clusterId,
          leaderId: name,
          rpcAddress: name,
          replicas: 3,
        });
        services.push(s);
        return s;
      };
      (await make(0, 'holder')).start(holder);
      await waitFor(() => holder.leading !== undefined, 10_000, 'the holder to lead');
      const standbys = [new RecordingContender('s1'), new RecordingContender('s2')];
      (await make(1, 's1')).start(standbys[0]!);
      (await make(2, 's2')).start(standbys[1]!);
      const diedAt = performance.now();
      await holderNc.close(); // the holder dies: its liveness subject has no responders any more
      await waitFor(
        () => standbys.some((s) => s.leading !== undefined),
        DEFAULT_LEASE_MS + 5_000,
        'a standby to lead',
      );
      // Well inside the lease: this was the takeover, not an expiry.
      expect(performance.now() - diedAt).toBeLessThan(DEFAULT_LEASE_MS);
      // Give a second (wrong) grant time to show up: a renewal interval and more.
      await new Promise((r) => setTimeout(r, DEFAULT_LEASE_MS / 2));
      expect(standbys.filter((s) => s.grants.length > 0)).toHaveLength(1);
      assertOneLeaderAtATime([holder, ...standbys]);
      await Promise.all(services.map((s) => s.stop()));
    }
  }, 120_000);
});
