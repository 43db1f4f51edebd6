/**
 * Leader election against a real nats-server (2.9: bucket TTL, no per-key TTL, no expiry markers), with
 * the default timings: lease 3000 ms, renewals every 1000 ms, safety margin 500 ms, polls every 500 ms.
 */
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/log.js';
import { isLeadershipLost, LeadershipLostError } from '../../src/ha/errors.js';
import {
  type LeaderElectionOptions,
  LeaderElectionService,
  RevokeReason,
} from '../../src/ha/leader-election.js';
import type { LeaderElectionDriver, LeaderEntry } from '../../src/ha/leader-election-driver.js';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_RENEW_INTERVAL_MS,
  DEFAULT_SAFETY_MARGIN_MS,
} from '../../src/ha/leader-election-timings.js';
import {
  LEADER_KEY,
  leaderBucketName,
  NatsKvLeaderElectionDriver,
} from '../../src/ha/nats-kv-leader-election-driver.js';
import { liveServerCount, type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { assertOneLeaderAtATime, RecordingContender, testClusterId, waitFor } from './helpers.js';

const LEASE = DEFAULT_LEASE_MS;

let server: NatsServerHandle;
let admin: NatsConnection;
let conns: NatsConnection[] = [];
let services: LeaderElectionService[] = [];
let stallables: StallableDriver[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  admin = await connect({ servers: server.url, name: 'ha-test-admin' });
});

afterEach(async () => {
  for (const d of stallables) d.stalled = false;
  await Promise.all(services.map((s) => s.stop()));
  await Promise.all(conns.map((nc) => nc.close()));
  services = [];
  conns = [];
  stallables = [];
});

afterAll(async () => {
  await admin?.close();
  await server?.stop();
  expect(liveServerCount()).toBe(0);
});

/** A driver whose renewals can be held up, as in a leader whose process or network is stuck. */
class StallableDriver implements LeaderElectionDriver {
  stalled = false;
  readonly leaseMs: number;
  readonly #inner: LeaderElectionDriver;
  constructor(inner: LeaderElectionDriver) {
    this.#inner = inner;
    this.leaseMs = inner.leaseMs;
  }
  create(value: Uint8Array, timeoutMs: number) {
    return this.#inner.create(value, timeoutMs);
  }
  async update(value: Uint8Array, revision: number, timeoutMs: number) {
    const until = performance.now() + 2 * this.leaseMs;
    while (this.stalled && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    return this.#inner.update(value, revision, timeoutMs);
  }
  takeOver(value: Uint8Array, revision: number, timeoutMs: number) {
    return this.#inner.takeOver(value, revision, timeoutMs);
  }
  delete(revision: number, timeoutMs: number) {
    return this.#inner.delete(revision, timeoutMs);
  }
  read(timeoutMs: number): Promise<LeaderEntry | null> {
    return this.#inner.read(timeoutMs);
  }
  // The process stays connected while its renewals hang: it answers liveness probes.
  serveLiveness(instance: string): void {
    this.#inner.serveLiveness?.(instance);
  }
  probe(instance: string, timeoutMs: number) {
    return this.#inner.probe?.(instance, timeoutMs) ?? Promise.resolve('unknown' as const);
  }
  close() {
    return this.#inner.close();
  }
}

async function contender(clusterId: string, name: string, options: LeaderElectionOptions = {}) {
  const nc = await connect({ servers: server.url, name });
  conns.push(nc);
  const recorder = new RecordingContender(name);
  const election = await LeaderElectionService.createOnNats(nc, {
    clusterId,
    leaderId: name,
    rpcAddress: `sluice.${clusterId}.${name}`,
    restUrl: `http://${name}:8081`,
    ...options,
  });
  services.push(election);
  return { nc, recorder, election };
}

async function stallableContender(clusterId: string, name: string, options: LeaderElectionOptions = {}) {
  const nc = await connect({ servers: server.url, name });
  conns.push(nc);
  const driver = new StallableDriver(
    await NatsKvLeaderElectionDriver.open(nc, { clusterId, leaseMs: LEASE }),
  );
  stallables.push(driver);
  const recorder = new RecordingContender(name);
  const election = new LeaderElectionService(driver, { leaderId: name, rpcAddress: name }, options);
  services.push(election);
  return { nc, recorder, election, driver };
}

async function rawBucket(clusterId: string) {
  return new Kvm(admin).open(leaderBucketName(clusterId));
}

describe('leader election on NATS KV', () => {
  it('elects exactly one of two contenders; its epoch is the KV revision of its create', async () => {
    const id = testClusterId('two');
    const a = await contender(id, 'a');
    const b = await contender(id, 'b');
    a.election.start(a.recorder);
    b.election.start(b.recorder);
    await waitFor(
      () => a.recorder.leading !== undefined || b.recorder.leading !== undefined,
      5_000,
      'a leader',
    );
    // Give the loser a few polls to make a mistake.
    await new Promise((r) => setTimeout(r, 4 * DEFAULT_POLL_INTERVAL_MS));
    const [winner, loser] = a.recorder.leading !== undefined ? [a, b] : [b, a];
    expect(loser.recorder.grants).toHaveLength(0);
    const epoch = winner.recorder.leading!;
    // A fresh bucket: the winning create is its first message.
    expect(epoch).toBe(1);
    const raw = await (await rawBucket(id)).get(LEADER_KEY);
    const record = raw!.json<{ epoch?: number; leaderId: string }>();
    expect(record.leaderId).toBe(winner.recorder.name);
    expect(record.epoch ?? raw!.revision).toBe(epoch);

    const seen = await loser.election.currentLeader();
    expect(seen).toMatchObject({
      leaderId: winner.recorder.name,
      epoch,
      rpcAddress: `sluice.${id}.${winner.recorder.name}`,
      restUrl: `http://${winner.recorder.name}:8081`,
    });
    expect(winner.election.isLeader(epoch)).toBe(true);
    expect(loser.election.isLeader(epoch)).toBe(false);
  });

  it('the other contender takes over once the dead leader has been gone from NATS for a renew interval', async () => {
    const id = testClusterId('dies');
    const a = await contender(id, 'a');
    a.election.start(a.recorder);
    await waitFor(() => a.recorder.leading !== undefined, 5_000, 'a to lead');
    const b = await contender(id, 'b');
    b.election.start(b.recorder);
    await new Promise((r) => setTimeout(r, 2 * DEFAULT_RENEW_INTERVAL_MS)); // a renews a few times
    const oldEpoch = a.recorder.leading!;

    // Kill a's renewals: its connection goes away, the key stays until it expires.
    const diedAt = performance.now();
    await a.nc.close();
    await waitFor(() => b.recorder.leading !== undefined, LEASE + 3_000, 'b to lead');
    const failoverMs = b.recorder.lastGrant!.at - diedAt;
    console.info(`[ha] new leader ${Math.round(failoverMs)} ms after the leader died (default timings)`);
    // Its connection is gone, so its liveness probe finds no responders: b takes the key over (compare-and-set)
    // once a has been gone for a renew interval (probed every poll), well before the key would expire.
    expect(failoverMs).toBeGreaterThan(DEFAULT_RENEW_INTERVAL_MS - 50);
    expect(failoverMs).toBeLessThan(DEFAULT_RENEW_INTERVAL_MS + 3 * DEFAULT_POLL_INTERVAL_MS + 500);
    expect(failoverMs).toBeLessThan(LEASE);
    expect(b.recorder.leading!).toBeGreaterThan(oldEpoch);
    // a stepped down (its renewal failed on the closed connection) before b took over.
    expect(a.recorder.lastRevocation?.epoch).toBe(oldEpoch);
    expect(a.election.state).toBe('FAILED');
    assertOneLeaderAtATime([a.recorder, b.recorder]);
  });

  it('a leader restarted at once under the same id is another incarnation: its dead key is taken over early', async () => {
    const id = testClusterId('restarted');
    const a = await contender(id, 'a');
    a.election.start(a.recorder);
    await waitFor(() => a.recorder.leading !== undefined, 5_000, 'a to lead');
    const diedAt = performance.now();
    await a.nc.close();
    // The same id comes back at once (a restarted pod), as the only contender.
    const again = await contender(id, 'a');
    again.election.start(again.recorder);
    await waitFor(() => again.recorder.leading !== undefined, LEASE + 3_000, 'the restarted a to lead');
    const failoverMs = again.recorder.lastGrant!.at - diedAt;
    // Its own instance does not answer for the dead one: the probe finds no responders, as for any holder.
    expect(failoverMs).toBeLessThan(LEASE - 500);
    expect(again.recorder.leading!).toBeGreaterThan(a.recorder.lastRevocation?.epoch ?? 0);
  });

  it('graceful step-down deletes the key; a standby takes over at once', async () => {
    const id = testClusterId('graceful');
    const a = await contender(id, 'a');
    a.election.start(a.recorder);
    await waitFor(() => a.recorder.leading !== undefined, 5_000, 'a to lead');
    const b = await contender(id, 'b');
    b.election.start(b.recorder);
    await new Promise((r) => setTimeout(r, DEFAULT_RENEW_INTERVAL_MS));
    const oldEpoch = a.recorder.leading!;

    const stoppedAt = performance.now();
    await a.election.stop();
    expect(a.recorder.lastRevocation).toMatchObject({ epoch: oldEpoch, reason: RevokeReason.Stopped });
    await waitFor(() => b.recorder.leading !== undefined, LEASE, 'b to lead');
    const takeoverMs = b.recorder.lastGrant!.at - stoppedAt;
    console.info(`[ha] standby led ${Math.round(takeoverMs)} ms after a graceful stop`);
    expect(takeoverMs).toBeLessThan(DEFAULT_POLL_INTERVAL_MS + 500); // a poll, not a lease
    expect(b.recorder.leading!).toBeGreaterThan(oldEpoch);
    assertOneLeaderAtATime([a.recorder, b.recorder]);
  });

  it('a paused leader revokes itself before its lease runs out, and runIfLeader then refuses', async () => {
    const id = testClusterId('paused');
    const a = await stallableContender(id, 'a');
    a.election.start(a.recorder);
    await waitFor(() => a.recorder.leading !== undefined, 5_000, 'a to lead');
    const b = await contender(id, 'b');
    b.election.start(b.recorder);
    await new Promise((r) => setTimeout(r, 2 * DEFAULT_RENEW_INTERVAL_MS));
    const oldEpoch = a.recorder.leading!;
    expect(await a.election.runIfLeader(oldEpoch, () => 'acted')).toBe('acted');

    a.driver.stalled = true; // its renewals hang: the key is no longer renewed
    await waitFor(() => b.recorder.leading !== undefined, 2 * LEASE, 'b to lead');
    const revoked = a.recorder.lastRevocation!;
    const granted = b.recorder.lastGrant!;
    expect(revoked).toMatchObject({ epoch: oldEpoch, reason: RevokeReason.DeadlineMissed });
    // a gave up at (last renewal + lease − margin); the key expired at (last renewal + lease) at the
    // earliest, and only then could b create it: at least the safety margin lies between the two.
    expect(revoked.observedAt).toBeLessThan(granted.at);
    const gapMs = granted.at - revoked.observedAt;
    console.info(`[ha] paused leader revoked itself ${Math.round(gapMs)} ms before the new leader's grant`);
    expect(gapMs).toBeGreaterThanOrEqual(DEFAULT_SAFETY_MARGIN_MS - 50);
    expect(granted.epoch).toBeGreaterThan(oldEpoch);

    expect(a.election.isLeader(oldEpoch)).toBe(false);
    const refused = a.election.runIfLeader(oldEpoch, () => 'acted');
    await expect(refused).rejects.toBeInstanceOf(LeadershipLostError);
    await expect(refused).rejects.toMatchObject({ code: ErrorCode.LeadershipLost, epoch: oldEpoch });
    await expect(refused).rejects.toSatisfy(isLeadershipLost);
    assertOneLeaderAtATime([a.recorder, b.recorder]);
  });

  it('a wall-clock jump does not extend leadership', async () => {
    const id = testClusterId('wall');
    let offsetMs = 0;
    const a = await stallableContender(id, 'a', { wallClock: () => Date.now() + offsetMs });
    a.election.start(a.recorder);
    await waitFor(() => a.recorder.leading !== undefined, 5_000, 'a to lead');
    // b's wall clock is a day ahead all along (and it logs): no effect either.
    const b = await contender(id, 'b', { wallClock: () => Date.now() + 86_400_000, log: silentLogger() });
    b.election.start(b.recorder);
    const epoch = a.recorder.leading!;

    offsetMs = -3_600_000; // back an hour: renewals go on, leadership is unaffected
    await new Promise((r) => setTimeout(r, 2 * DEFAULT_RENEW_INTERVAL_MS + 100));
    const raw = await (await rawBucket(id)).get(LEADER_KEY);
    expect(raw!.json<{ renewedAt: number }>().renewedAt).toBeLessThan(Date.now() - 3_000_000);
    expect(a.recorder.revocations).toHaveLength(0);

    offsetMs = +3_600_000; // forward an hour, and the renewals stop
    a.driver.stalled = true;
    const stalledAt = performance.now();
    await waitFor(() => a.recorder.leading === undefined, LEASE, 'a to step down');
    // Measured on the monotonic clock: at most one renewal interval + (lease − margin) after the stall.
    expect(a.recorder.lastRevocation).toMatchObject({ epoch, reason: RevokeReason.DeadlineMissed });
    expect(a.recorder.lastRevocation!.observedAt - stalledAt).toBeLessThan(
      DEFAULT_RENEW_INTERVAL_MS + LEASE - DEFAULT_SAFETY_MARGIN_MS + 200,
    );
    await waitFor(() => b.recorder.leading !== undefined, 2 * LEASE, 'b to lead');
    assertOneLeaderAtATime([a.recorder, b.recorder]);
  });

  it.each([
    ['garbage bytes', new Uint8Array([0xff, 0x00, 0xc3, 0x28, 0x7b])],
    [
      'a forged record (huge epoch, another leader)',
      new TextEncoder().encode(
        JSON.stringify({
          v: 1,
          leaderId: 'mallory',
          rpcAddress: 'sluice.evil',
          epoch: 1e15,
          renewedAt: Date.now(),
        }),
      ),
    ],
  ])('%s in the leader key: nobody crashes or claims leadership until it expires', async (_, bytes) => {
    const id = testClusterId('junk');
    const a = await contender(id, 'a');
    const b = await contender(id, 'b');
    const kv = await rawBucket(id);
    const putStart = performance.now();
    await kv.put(LEADER_KEY, bytes);

    a.election.start(a.recorder);
    b.election.start(b.recorder);
    await new Promise((r) => setTimeout(r, LEASE / 2));
    expect(await a.election.currentLeader()).toBeNull();
    expect(await b.election.currentLeader()).toBeNull();
    expect(a.recorder.grants).toHaveLength(0);
    expect(b.recorder.grants).toHaveLength(0);

    await waitFor(
      () => a.recorder.leading !== undefined || b.recorder.leading !== undefined,
      LEASE + 3_000,
      'a leader once the junk expired',
    );
    const grant = [a, b].flatMap((c) => c.recorder.grants)[0]!;
    expect(grant.at).toBeGreaterThanOrEqual(putStart + LEASE - 25); // not while the key existed
    expect(grant.epoch).toBeLessThan(1e15);
    const leader = await a.election.currentLeader();
    expect(leader?.epoch).toBe(grant.epoch);
    expect(a.election.state).toBe('RUNNING');
    expect(b.election.state).toBe('RUNNING');
  });

  it('refuses to share a bucket with a contender configured with another lease', async () => {
    const id = testClusterId('lease');
    await contender(id, 'a');
    await expect(contender(id, 'b', { leaseMs: 6_000 })).rejects.toMatchObject({
      code: ErrorCode.InvalidConfig,
      message: expect.stringMatching(/TTL of 3000 ms, but this process wants 6000 ms/),
    });
  });
});
