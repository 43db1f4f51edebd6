/**
 * The election logic on the in-memory driver and a manual clock: deterministic, no NATS. The same
 * scenarios against a real nats-server are in `leader-election.test.ts`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError, SluiceError } from '../../src/common/errors.js';
import { ManualClock } from '../../src/ha/clock.js';
import { isLeadershipLost, LeadershipLostError } from '../../src/ha/errors.js';
import { InMemoryLeaderElectionDriver } from '../../src/ha/in-memory-leader-election-driver.js';
import {
  type LeaderElectionOptions,
  LeaderElectionService,
  RevokeReason,
} from '../../src/ha/leader-election.js';
import { decodeLeaderEntry, encodeLeaderRecord } from '../../src/ha/leader-election-driver.js';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_RENEW_INTERVAL_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SAFETY_MARGIN_MS,
  parseLeaderElectionTimings,
} from '../../src/ha/leader-election-timings.js';
import { assertOneLeaderAtATime, RecordingContender } from './helpers.js';

const LEASE = DEFAULT_LEASE_MS; // 3000: renew 1000, margin 500, poll 500, request timeout 1000
const DEADLINE = LEASE - DEFAULT_SAFETY_MARGIN_MS;

let services: LeaderElectionService[] = [];

afterEach(async () => {
  // Services on a manual clock whose driver hangs would wait for the clock: stop them without awaiting.
  for (const s of services) void s.stop();
  services = [];
});

function setup(n: number, options: LeaderElectionOptions = {}) {
  const clock = new ManualClock(1_000);
  const driver = new InMemoryLeaderElectionDriver({ leaseMs: options.leaseMs ?? LEASE, clock });
  const contenders = Array.from({ length: n }, (_, i) => new RecordingContender(`c${i}`, () => clock.now()));
  const elections = contenders.map((c, i) => {
    const s = new LeaderElectionService(
      driver,
      { leaderId: c.name, rpcAddress: `addr-${i}` },
      { clock, ...options },
    );
    services.push(s);
    return s;
  });
  return { clock, driver, contenders, elections };
}

function leaderIndex(contenders: RecordingContender[]): number {
  const leading = contenders.flatMap((c, i) => (c.leading !== undefined ? [i] : []));
  expect(leading.length).toBeLessThanOrEqual(1);
  return leading[0] ?? -1;
}

describe('timings', () => {
  it('defaults to lease/3 renewals, lease/6 margin and polls', () => {
    expect(parseLeaderElectionTimings()).toEqual({
      leaseMs: 3_000,
      renewIntervalMs: DEFAULT_RENEW_INTERVAL_MS,
      safetyMarginMs: DEFAULT_SAFETY_MARGIN_MS,
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
      requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
    });
    expect(parseLeaderElectionTimings({ leaseMs: 6_000, pollIntervalMs: 250 })).toEqual({
      leaseMs: 6_000,
      renewIntervalMs: 2_000,
      safetyMarginMs: 1_000,
      pollIntervalMs: 250,
      requestTimeoutMs: 2_000,
    });
  });

  it('refuses inconsistent timings with one message naming every problem', () => {
    const bad = (t: Parameters<typeof parseLeaderElectionTimings>[0]) => {
      try {
        parseLeaderElectionTimings(t);
      } catch (err) {
        expect(isSluiceError(err, ErrorCode.InvalidConfig)).toBe(true);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ leaseMs: 3_000, renewIntervalMs: 1_500 })).toMatch(/more than twice renewIntervalMs/);
    expect(bad({ renewIntervalMs: -1, pollIntervalMs: Number.NaN })).toMatch(
      /renewIntervalMs must be a positive.*pollIntervalMs must be a positive/,
    );
    expect(bad({ safetyMarginMs: 2_000 })).toMatch(/safetyMarginMs \(2000\) must be less than/);
    expect(bad({ requestTimeoutMs: 2_000 })).toMatch(/renewIntervalMs \+ requestTimeoutMs/);
    expect(bad({ leaseMs: 50 })).toMatch(/≥ 100/);
    expect(bad({ pollIntervalMs: 4_000 })).toMatch(/pollIntervalMs \(4000\) must not exceed leaseMs/);
    expect(bad({ leaseMs: -5 })).toBe(
      'invalid leader election timings: leaseMs must be a positive number of milliseconds, got -5',
    );
  });

  it('ignores options that are not timings', () => {
    const options: LeaderElectionOptions = { leaseMs: 1_200, clock: new ManualClock(), wallClock: () => 0 };
    expect(parseLeaderElectionTimings(options)).toEqual({
      leaseMs: 1_200,
      renewIntervalMs: 400,
      safetyMarginMs: 200,
      pollIntervalMs: 200,
      requestTimeoutMs: 400,
    });
  });

  it('refuses a lease that differs from the store TTL, and a bad identity', () => {
    const driver = new InMemoryLeaderElectionDriver({ leaseMs: 3_000 });
    expect(() => new LeaderElectionService(driver, { rpcAddress: 'a' }, { leaseMs: 6_000 })).toThrow(
      /differs from the store's/,
    );
    expect(() => new LeaderElectionService(driver, { rpcAddress: 'a', leaderId: '' })).toThrow(/identity/);
  });
});

describe('the leader record', () => {
  const entry = (revision: number, value: unknown) => ({
    revision,
    value: typeof value === 'string' ? new TextEncoder().encode(value) : (value as Uint8Array),
  });

  it('takes the epoch from the record, or the revision of the create', () => {
    const created = encodeLeaderRecord({ v: 1, leaderId: 'a', rpcAddress: 'x', renewedAt: 1 });
    expect(decodeLeaderEntry(entry(7, created))).toMatchObject({ state: 'held', leader: { epoch: 7 } });
    const renewed = encodeLeaderRecord({ v: 1, leaderId: 'a', rpcAddress: 'x', renewedAt: 1, epoch: 7 });
    expect(decodeLeaderEntry(entry(9, renewed))).toMatchObject({
      state: 'held',
      leader: { epoch: 7, revision: 9, leaderId: 'a', rpcAddress: 'x', restUrl: undefined },
    });
  });

  it('reads garbage and forged records as unreadable, never throws', () => {
    expect(decodeLeaderEntry(entry(3, new Uint8Array([0xff, 0xfe, 0, 1])))).toMatchObject({
      state: 'unreadable',
    });
    expect(decodeLeaderEntry(entry(3, '{"v":1}'))).toMatchObject({ state: 'unreadable' });
    expect(decodeLeaderEntry(entry(3, 'null'))).toMatchObject({ state: 'unreadable' });
    expect(decodeLeaderEntry(entry(3, 'x'.repeat(100_000)))).toMatchObject({ state: 'unreadable' });
    const forged = JSON.stringify({ v: 1, leaderId: 'mallory', rpcAddress: 'x', epoch: 1e12, renewedAt: 0 });
    expect(decodeLeaderEntry(entry(3, forged))).toMatchObject({ state: 'unreadable', reason: /forged/ });
  });
});

describe('LeaderElectionService (in memory)', () => {
  it('elects exactly one of two contenders; the epoch is the revision of the create', async () => {
    const { clock, contenders, elections } = setup(2);
    elections.forEach((s, i) => s.start(contenders[i]!));
    await clock.advance(0);
    const winner = leaderIndex(contenders);
    expect(winner).toBeGreaterThanOrEqual(0);
    const epoch = contenders[winner]!.leading!;
    expect(epoch).toBe(1); // the first write to the store
    expect(elections[winner]!.isLeader(epoch)).toBe(true);
    expect(elections[1 - winner]!.isLeader(epoch)).toBe(false);
    expect(await elections[1 - winner]!.currentLeader()).toMatchObject({ leaderId: `c${winner}`, epoch });

    // Renewals keep it: ten leases later, same leader, same epoch, a later revision.
    await clock.advance(10 * LEASE);
    expect(leaderIndex(contenders)).toBe(winner);
    expect(contenders[winner]!.grants).toHaveLength(1);
    const info = await elections[1 - winner]!.currentLeader();
    expect(info).toMatchObject({ epoch, rpcAddress: `addr-${winner}` });
    expect(info!.revision).toBeGreaterThan(epoch);
  });

  it('steps down at once on a failed renewal and frees the key; the other takes over', async () => {
    const { clock, driver, contenders, elections } = setup(2);
    elections[0]!.start(contenders[0]!);
    await clock.advance(0);
    elections[1]!.start(contenders[1]!);
    await clock.advance(0);
    const epoch = contenders[0]!.leading!;
    driver.gate = (op) => {
      if (op === 'update') throw new SluiceError(ErrorCode.Timeout, 'renewal timed out');
    };
    const failAt = clock.now() + DEFAULT_RENEW_INTERVAL_MS;
    await clock.advance(DEFAULT_RENEW_INTERVAL_MS);
    expect(contenders[0]!.lastRevocation).toMatchObject({
      epoch,
      reason: RevokeReason.RenewalFailed,
      at: failAt,
    });
    expect(elections[0]!.isLeader(epoch)).toBe(false);
    await clock.advance(DEFAULT_POLL_INTERVAL_MS);
    // Released at once (not expired): the standby won within one poll interval.
    expect(contenders[1]!.leading).toBeGreaterThan(epoch);
    assertOneLeaderAtATime(contenders);
  });

  it('steps down when the key was changed behind its back (compare-and-set miss)', async () => {
    const { clock, driver, contenders, elections } = setup(1);
    elections[0]!.start(contenders[0]!);
    await clock.advance(0);
    driver.putRaw(encodeLeaderRecord({ v: 1, leaderId: 'other', rpcAddress: 'y', renewedAt: 0 }));
    await clock.advance(DEFAULT_RENEW_INTERVAL_MS);
    expect(contenders[0]!.lastRevocation?.reason).toBe(RevokeReason.RenewalRejected);
    // The other record is left alone, and it is not re-taken while it lives.
    await clock.advance(LEASE - DEFAULT_RENEW_INTERVAL_MS - 1);
    expect(contenders[0]!.leading).toBeUndefined();
    expect(await elections[0]!.currentLeader()).toMatchObject({ leaderId: 'other' });
  });

  it('a paused leader (monotonic time jumps past the deadline) is no leader before its lease can expire', async () => {
    const { clock, driver, contenders, elections } = setup(2);
    elections[0]!.start(contenders[0]!);
    await clock.advance(0);
    elections[1]!.start(contenders[1]!);
    await clock.advance(0);
    const epoch = contenders[0]!.leading!;
    const grantedAt = clock.now();

    // The process is frozen: no timer has fired, but time has passed.
    clock.jump(DEADLINE);
    expect(contenders[0]!.revocations).toHaveLength(0);
    expect(elections[0]!.isLeader(epoch)).toBe(false); // checks the clock, revokes on the spot
    expect(contenders[0]!.lastRevocation).toMatchObject({ epoch, reason: RevokeReason.DeadlineMissed });
    const run = elections[0]!.runIfLeader(epoch, () => 'acted');
    await expect(run).rejects.toBeInstanceOf(LeadershipLostError);
    await expect(run).rejects.toSatisfy(isLeadershipLost);
    // It stepped down before its key could expire in the store, and released it: the standby's overdue
    // poll takes it at once.
    expect(contenders[0]!.lastRevocation!.at).toBeLessThan(grantedAt + LEASE);
    await clock.advance(0);
    expect(decodeLeaderEntry(driver.peek()!)).toMatchObject({ state: 'held', leader: { leaderId: 'c1' } });
    expect(contenders[1]!.leading).toBeGreaterThan(epoch);
    assertOneLeaderAtATime(contenders);
  });

  it('stalled renewals: the deadline timer revokes at lease − margin, the other wins only after expiry', async () => {
    const { clock, driver, contenders, elections } = setup(2);
    elections[0]!.start(contenders[0]!);
    await clock.advance(0);
    elections[1]!.start(contenders[1]!);
    const epoch = contenders[0]!.leading!;
    await clock.advance(5 * DEFAULT_RENEW_INTERVAL_MS); // a few good renewals
    const lastWrite = driver.peek()!.revision;
    const lastRenewedAt = clock.now(); // renewals are on whole intervals of the manual clock
    driver.gate = (op) => (op === 'update' ? new Promise<void>(() => {}) : undefined);
    await clock.advance(2 * LEASE);
    const revoked = contenders[0]!.lastRevocation!;
    expect(revoked).toMatchObject({ epoch, reason: RevokeReason.DeadlineMissed });
    expect(revoked.at).toBe(lastRenewedAt + DEADLINE);
    const grant = contenders[1]!.lastGrant!;
    expect(grant.at).toBeGreaterThanOrEqual(lastRenewedAt + LEASE); // only once the key expired
    expect(grant.at).toBeLessThanOrEqual(lastRenewedAt + LEASE + DEFAULT_POLL_INTERVAL_MS);
    expect(grant.epoch).toBeGreaterThan(lastWrite);
    expect(revoked.at).toBeLessThan(grant.at);
    assertOneLeaderAtATime(contenders);
  });

  it('wall-clock jumps do not extend leadership', async () => {
    const clock = new ManualClock();
    const driver = new InMemoryLeaderElectionDriver({ leaseMs: LEASE, clock });
    let wall = Date.UTC(2030, 0, 1);
    const contender = new RecordingContender('a', () => clock.now());
    const s = new LeaderElectionService(
      driver,
      { leaderId: 'a', rpcAddress: 'x' },
      { clock, wallClock: () => wall },
    );
    services.push(s);
    s.start(contender);
    await clock.advance(0);
    driver.gate = (op) => (op === 'update' ? new Promise<void>(() => {}) : undefined);
    wall -= 3_600_000; // back an hour
    await clock.advance(DEADLINE - 1);
    expect(contender.leading).toBe(1);
    wall += 7_200_000; // forward two
    await clock.advance(1);
    expect(contender.lastRevocation).toMatchObject({ reason: RevokeReason.DeadlineMissed, at: DEADLINE });
  });

  it('a standby whose monotonic clock jumps far ahead does not take a held key; it wins only after expiry', async () => {
    // Two clocks: the store's (and the leader's), and the standby's, which jumps an hour ahead (a VM
    // resumed, a host whose clock source stepped). A standby decides nothing on time: it only tries to
    // create the key, which the store refuses while the leader renews it.
    const store = new ManualClock(1_000);
    const standbyClock = new ManualClock(1_000);
    const driver = new InMemoryLeaderElectionDriver({ leaseMs: LEASE, clock: store });
    const a = new RecordingContender('a', () => store.now());
    const b = new RecordingContender('b', () => store.now());
    const leader = new LeaderElectionService(driver, { leaderId: 'a', rpcAddress: 'x' }, { clock: store });
    const standby = new LeaderElectionService(
      driver,
      { leaderId: 'b', rpcAddress: 'y' },
      { clock: standbyClock },
    );
    services.push(leader, standby);
    const tick = async (ms: number) => {
      for (let t = 0; t < ms; t += 10) {
        await store.advance(10);
        await standbyClock.advance(10);
      }
    };
    leader.start(a);
    await tick(10);
    const epoch = a.leading!;
    expect(epoch).toBe(1);
    standby.start(b);
    await tick(100);

    standbyClock.jump(3_600_000);
    let creates = 0;
    let lastRenewalAt = 0;
    driver.gate = (op) => {
      if (op === 'create') creates++;
      if (op === 'update') lastRenewalAt = store.now();
    };
    await tick(5 * LEASE);
    expect(creates).toBeGreaterThan(5); // it kept trying (overdue polls at once, then every poll interval)
    expect(b.grants).toHaveLength(0);
    expect(a.leading).toBe(epoch);
    expect(a.revocations).toHaveLength(0);
    expect(standby.currentEpoch()).toBeUndefined();

    // The leader's renewals stall: it revokes itself at its deadline, the key expires a margin later (store
    // time), and only then does the standby win.
    driver.gate = (op) => (op === 'update' ? new Promise<void>(() => {}) : undefined);
    await tick(2 * LEASE);
    expect(a.lastRevocation).toMatchObject({ epoch, reason: RevokeReason.DeadlineMissed });
    const grant = b.lastGrant!;
    expect(grant).toBeDefined();
    expect(grant.epoch).toBeGreaterThan(epoch);
    expect(grant.at).toBeGreaterThanOrEqual(lastRenewalAt + LEASE);
    expect(a.lastRevocation!.at).toBeLessThanOrEqual(grant.at - DEFAULT_SAFETY_MARGIN_MS);
    assertOneLeaderAtATime([a, b]);
  });

  it('garbage or a forged record in the key: nobody claims leadership until it expires', async () => {
    for (const bytes of [
      new Uint8Array([0, 159, 146, 150]),
      new TextEncoder().encode(
        JSON.stringify({ v: 1, leaderId: 'mallory', rpcAddress: 'x', epoch: 1e12, renewedAt: 0 }),
      ),
    ]) {
      const { clock, driver, contenders, elections } = setup(2);
      driver.putRaw(bytes);
      const writtenAt = clock.now();
      elections.forEach((s, i) => s.start(contenders[i]!));
      await clock.advance(LEASE - 1);
      expect(contenders.every((c) => c.grants.length === 0)).toBe(true);
      expect(await elections[0]!.currentLeader()).toBeNull();
      await clock.advance(DEFAULT_POLL_INTERVAL_MS + 1);
      const winner = leaderIndex(contenders);
      expect(winner).toBeGreaterThanOrEqual(0);
      expect(contenders[winner]!.lastGrant!.at).toBeGreaterThanOrEqual(writtenAt + LEASE);
      expect(contenders[winner]!.leading).toBeLessThan(1e12);
      for (const s of elections) await s.stop();
    }
  });

  it('two standbys that find the holder gone race ONE compare-and-set: exactly one wins, every time', async () => {
    for (let round = 0; round < 20; round++) {
      const clock = new ManualClock(1_000);
      const driver = new InMemoryLeaderElectionDriver({ leaseMs: LEASE, clock, liveness: true });
      // The dead holder's record: its process is gone from NATS, nobody renews the key.
      const deadRevision = driver.putRaw(
        encodeLeaderRecord({ v: 1, leaderId: 'dead', rpcAddress: 'x', renewedAt: 0, instance: 'dead' }),
      );
      driver.markGone('dead');
      const ops: string[] = [];
      // Hold every takeover until both standbys have sent theirs: they race on the same revision.
      let release: () => void = () => undefined;
      const bothSent = new Promise<void>((resolve) => {
        release = resolve;
      });
      let takeovers = 0;
      driver.gate = async (op) => {
        ops.push(op);
        if (op === 'takeOver' && ++takeovers === 2) release();
        if (op === 'takeOver') await bothSent;
      };
      const contenders = [0, 1].map((i) => new RecordingContender(`s${i}`, () => clock.now()));
      const elections = contenders.map((c, i) => {
        const s = new LeaderElectionService(driver, { leaderId: c.name, rpcAddress: `a${i}` }, { clock });
        services.push(s);
        s.start(c);
        return s;
      });
      // Both probe the holder every poll; after a renew interval of "gone" both go for the key at once.
      for (let t = 0; t < DEFAULT_RENEW_INTERVAL_MS + 3 * DEFAULT_POLL_INTERVAL_MS; t += 50) {
        await clock.advance(50);
      }
      expect(takeovers).toBe(2);
      const winners = contenders.filter((c) => c.grants.length > 0);
      expect(winners).toHaveLength(1);
      expect(winners[0]!.leading).toBe(deadRevision + 1);
      // One write each, no delete-then-create: nothing between the dead holder's revision and the winner's.
      expect(ops).not.toContain('delete');
      expect(ops.filter((o) => o === 'takeOver')).toHaveLength(2);
      assertOneLeaderAtATime(contenders);
      for (const e of elections) void e.stop();
    }
  });

  it('graceful stop deletes the key; a standby takes over within a poll interval', async () => {
    const { clock, driver, contenders, elections } = setup(2);
    elections[0]!.start(contenders[0]!);
    await clock.advance(0);
    elections[1]!.start(contenders[1]!);
    await clock.advance(2 * LEASE);
    const epoch = contenders[0]!.leading!;
    await elections[0]!.stop();
    expect(elections[0]!.state).toBe('STOPPED');
    expect(contenders[0]!.lastRevocation).toMatchObject({ epoch, reason: RevokeReason.Stopped });
    expect(driver.peek()).toBeNull();
    const stoppedAt = clock.now();
    await clock.advance(DEFAULT_POLL_INTERVAL_MS);
    expect(contenders[1]!.lastGrant!.at - stoppedAt).toBeLessThanOrEqual(DEFAULT_POLL_INTERVAL_MS);
    expect(contenders[1]!.leading).toBeGreaterThan(epoch);
  });

  it('runIfLeader runs under the epoch and aborts its signal on revocation', async () => {
    const { clock, driver, contenders, elections } = setup(1);
    elections[0]!.start(contenders[0]!);
    await clock.advance(0);
    const epoch = contenders[0]!.leading!;
    let signal: AbortSignal | undefined;
    const result = await elections[0]!.runIfLeader(epoch, (s) => {
      signal = s;
      return 42;
    });
    expect(result).toBe(42);
    await expect(elections[0]!.runIfLeader(epoch + 1, () => 0)).rejects.toMatchObject({
      code: ErrorCode.LeadershipLost,
      epoch: epoch + 1,
    });
    expect(signal!.aborted).toBe(false);
    driver.gate = (op) => {
      if (op === 'update') throw new SluiceError(ErrorCode.JetStreamUnavailable, 'no stream leader');
    };
    await clock.advance(DEFAULT_RENEW_INTERVAL_MS);
    expect(signal!.aborted).toBe(true);
    expect(isLeadershipLost(signal!.reason)).toBe(true);
  });

  it('a create that answers after the deadline is not used', async () => {
    const { clock, driver, contenders, elections } = setup(1);
    driver.gate = (op) =>
      op === 'create' ? new Promise<void>((r) => clock.setTimeout(r, DEADLINE)) : undefined;
    elections[0]!.start(contenders[0]!);
    await clock.advance(DEADLINE);
    expect(contenders[0]!.grants).toHaveLength(0);
    expect(driver.peek()).toBeNull(); // released
  });

  it('steps down when onGrantLeadership throws', async () => {
    const clock = new ManualClock();
    const driver = new InMemoryLeaderElectionDriver({ leaseMs: LEASE, clock });
    const revoked: string[] = [];
    const s = new LeaderElectionService(driver, { rpcAddress: 'x' }, { clock });
    services.push(s);
    s.start({
      onGrantLeadership: () => {
        throw new Error('boom');
      },
      onRevokeLeadership: (r) => revoked.push(r.reason),
    });
    await clock.advance(0);
    expect(revoked).toEqual([RevokeReason.ContenderError]);
    expect(driver.peek()).toBeNull();
  });

  it('fails for good (FAILED, onError) when the connection is closed', async () => {
    const { clock, driver, contenders, elections } = setup(1);
    elections[0]!.start(contenders[0]!);
    await clock.advance(0);
    await driver.close();
    await clock.advance(DEFAULT_RENEW_INTERVAL_MS);
    expect(elections[0]!.state).toBe('FAILED');
    expect(contenders[0]!.leading).toBeUndefined();
    expect(contenders[0]!.errors.map((e) => e.code)).toEqual([ErrorCode.ConnectionFailed]);
    expect(clock.pendingTimers).toBe(0);
    await elections[0]!.stop();
  });

  it('keeps polling through transient errors', async () => {
    const { clock, driver, contenders, elections } = setup(1);
    let failures = 3;
    driver.gate = (op) => {
      if (op === 'create' && failures-- > 0)
        throw new SluiceError(ErrorCode.JetStreamUnavailable, 'leaderless');
    };
    elections[0]!.start(contenders[0]!);
    await clock.advance(3 * DEFAULT_POLL_INTERVAL_MS);
    expect(contenders[0]!.leading).toBeDefined();
  });

  it('has a lifecycle', async () => {
    const { clock, contenders, elections } = setup(1);
    expect(elections[0]!.state).toBe('CREATED');
    elections[0]!.start(contenders[0]!);
    expect(() => elections[0]!.start(contenders[0]!)).toThrow(/cannot start: it is RUNNING/);
    await clock.advance(0);
    await elections[0]!.stop();
    await elections[0]!.stop();
    expect(elections[0]!.state).toBe('STOPPED');
    expect(clock.pendingTimers).toBe(0);
  });
});
