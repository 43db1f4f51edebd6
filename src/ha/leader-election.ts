/**
 * Leader election for `high-availability.type: nats` (see `docs/high-availability.md`): the service side.
 *
 * As in Flink, the election is split in two:
 * - a {@link LeaderElectionDriver} (`leader-election-driver.ts`): the backend, a single key with
 *   compare-and-set and a lease — JetStream KV in production (`NatsKvLeaderElectionDriver`), a map in memory
 *   for unit tests (`InMemoryLeaderElectionDriver`);
 * - the {@link LeaderElectionService} (this file): one per contender (JobManager). It wins by creating the
 *   key (or by taking over the key of a holder gone from NATS in one compare-and-set), renews it by
 *   compare-and-set, and steps down at once when a renewal fails or its deadline passes, measured on a
 *   monotonic clock so that it always gives up *before* the key can expire in the store. Its timings are
 *   in `leader-election-timings.ts`.
 *
 * The epoch of a leadership is the store revision at which it was won (the revision of the winning write);
 * it is strictly increasing and is the fencing token every leader action carries. At most one contender
 * leads at any instant: every way to win is one compare-and-set that exactly one contender can win.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { ErrorCode, isSluiceError, SluiceError, toSluiceError } from '../common/errors.js';
import { type Logger, silentLogger } from '../common/log.js';
import { type Clock, systemClock, systemWallClock, type TimerHandle, type WallClock } from './clock.js';
import { LeadershipLostError } from './errors.js';
import {
  decodeLeaderEntry,
  encodeLeaderRecord,
  type LeaderElectionDriver,
  type LeaderInfo,
  type LeaderRead,
  LeaderRecordSchema,
  readLeader,
} from './leader-election-driver.js';
import { type LeaderElectionTimings, parseLeaderElectionTimings } from './leader-election-timings.js';
import { NatsKvLeaderElectionDriver } from './nats-kv-leader-election-driver.js';

/** Why a leader stopped being one. */
export const RevokeReason = {
  /** A renewal's compare-and-set missed: the key was changed, deleted or had expired in the store. */
  RenewalRejected: 'renewal-rejected',
  /** A renewal request failed (timeout, JetStream unavailable, connection trouble). */
  RenewalFailed: 'renewal-failed',
  /** No successful renewal within `leaseMs − safetyMarginMs` (a paused process, a slow store). */
  DeadlineMissed: 'deadline-missed',
  /** `stop()`: graceful step-down. */
  Stopped: 'stopped',
  /**
   * The store connection dropped. A leader steps down at once: without a connection it can do nothing, and
   * a standby that finds its liveness subject gone ("no responders") may take the key over.
   */
  ConnectionLost: 'connection-lost',
  /** The contender's `onGrantLeadership` threw. */
  ContenderError: 'contender-error',
  /** The election failed for good (the NATS connection was closed). */
  Failed: 'failed',
} as const;
export type RevokeReason = (typeof RevokeReason)[keyof typeof RevokeReason];

export interface LeadershipRevocation {
  /** The epoch that is no longer held. */
  epoch: number;
  reason: RevokeReason;
  message: string;
  /** Monotonic time of the revocation (the service's clock). */
  at: number;
  cause?: unknown;
}

/**
 * Who competes for leadership (the JobManager). Callbacks are synchronous and run in order: a revoke is
 * always delivered before the next grant. Do the quick part at once (mark the epoch lost, unsubscribe
 * `dispatcher.*`) and start slow work (stopping JobMasters) without awaiting it here.
 */
export interface LeaderContender {
  /** This contender now leads under `epoch`. */
  onGrantLeadership(epoch: number): void;
  /** This contender no longer leads under `revocation.epoch`. Called at most once per grant. */
  onRevokeLeadership(revocation: LeadershipRevocation): void;
  /** The election failed for good (state `FAILED`): e.g. the NATS connection was closed. */
  onError?(error: SluiceError): void;
}

/** Who this contender is; goes into the leader record. */
export interface LeaderIdentity {
  /** Unique per contender process. Default: a random UUID. */
  leaderId?: string;
  /** Subject prefix (or address) where the leader's actors answer. */
  rpcAddress: string;
  /** The leader's REST endpoint, if it serves one. */
  restUrl?: string;
}

export interface LeaderElectionOptions extends Partial<LeaderElectionTimings> {
  /** Monotonic clock for every lease decision. Default `performance.now()` and the runtime's timers. */
  clock?: Clock;
  /** Wall clock for the record's `renewedAt` only. Default `Date.now`. */
  wallClock?: WallClock;
  log?: Logger;
  /** Close the driver in `stop()`. Default false (the caller opened it, the caller closes it). */
  closeDriverOnStop?: boolean;
}

export interface NatsLeaderElectionOptions extends LeaderElectionOptions, LeaderIdentity {
  clusterId: string;
  /** Replicas of the leader bucket when it is created (1, 3 or 5). Default 1. */
  replicas?: number;
}

/**
 * Lifecycle: `CREATED` → `start()` → `RUNNING` → `stop()` → `STOPPING` → `STOPPED`; `FAILED` when the
 * driver fails for good (a closed connection). Methods called in the wrong state throw `ILLEGAL_STATE`.
 */
export type LeaderElectionState = 'CREATED' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'FAILED';

interface Term {
  readonly epoch: number;
  /** Revision of our last successful write. */
  revision: number;
  /** Monotonic start time of the request of our last successful write (create or renewal). */
  renewedAt: number;
  readonly controller: AbortController;
  deadlineTimer: TimerHandle | undefined;
  active: boolean;
}

/**
 * One contender's side of the election. Create it, `start(contender)`, and `stop()` it on shutdown: a
 * leader that stops deletes its own key (compare-and-set on its last revision), so a standby takes over
 * within a poll interval instead of a lease.
 *
 * Safety: the leader's deadline is `start of last successful renewal + leaseMs − safetyMarginMs` on the
 * monotonic clock. The store wrote that renewal after the request started, so the key lives at least
 * `safetyMarginMs` longer than the leader believes it leads; nobody else can create it before then.
 * {@link isLeader} and {@link runIfLeader} check the deadline synchronously, so even a process that was
 * paused past it (and whose timers have not fired yet) never acts as leader.
 */
export class LeaderElectionService {
  readonly leaderId: string;
  readonly timings: LeaderElectionTimings;
  readonly #driver: LeaderElectionDriver;
  readonly #ownsDriver: boolean;
  readonly #identity: { rpcAddress: string; restUrl: string | undefined };
  readonly #clock: Clock;
  readonly #wallClock: WallClock;
  readonly #log: Logger;
  #state: LeaderElectionState = 'CREATED';
  #contender: LeaderContender | undefined;
  #term: Term | undefined;
  /** The next poll or renewal. */
  #opTimer: TimerHandle | undefined;
  /** The store operation under way; operations never overlap. */
  #inFlight: Promise<void> | undefined;
  #failingSince: number | undefined;
  #stopping: Promise<void> | undefined;
  /** This process's incarnation: its liveness subject, and what its records name. */
  readonly #instance = randomUUID().replaceAll('-', '');
  /** The holder of the key seen gone from NATS: since when, at which revision of the key. */
  #holderGone: { revision: number; since: number } | undefined;

  constructor(driver: LeaderElectionDriver, identity: LeaderIdentity, options: LeaderElectionOptions = {}) {
    const { clock, wallClock, log, closeDriverOnStop, ...timings } = options;
    this.timings = parseLeaderElectionTimings(timings);
    if (driver.leaseMs !== this.timings.leaseMs) {
      throw new SluiceError(
        ErrorCode.InvalidConfig,
        `the election's lease (${this.timings.leaseMs} ms) differs from the store's (${driver.leaseMs} ms)`,
      );
    }
    const leaderId = identity.leaderId ?? randomUUID();
    const check = LeaderRecordSchema.pick({ leaderId: true, rpcAddress: true, restUrl: true }).safeParse({
      leaderId,
      rpcAddress: identity.rpcAddress,
      restUrl: identity.restUrl,
    });
    if (!check.success) {
      throw new SluiceError(
        ErrorCode.InvalidConfig,
        `invalid leader identity: ${z.prettifyError(check.error)}`,
      );
    }
    this.leaderId = leaderId;
    this.#identity = { rpcAddress: identity.rpcAddress, restUrl: identity.restUrl };
    this.#driver = driver;
    this.#ownsDriver = closeDriverOnStop ?? false;
    this.#clock = clock ?? systemClock;
    this.#wallClock = wallClock ?? systemWallClock;
    this.#log = (log ?? silentLogger()).child({ component: 'leader-election', leaderId });
  }

  /**
   * Opens the cluster's leader bucket (`sluice_<clusterId>_leader`, TTL = lease, history 1) on `nc` and
   * returns a service that owns the driver (closed by `stop()`; the connection stays open).
   */
  static async createOnNats(
    nc: NatsConnection,
    options: NatsLeaderElectionOptions,
  ): Promise<LeaderElectionService> {
    const { clusterId, replicas, leaderId, rpcAddress, restUrl, ...rest } = options;
    const timings = parseLeaderElectionTimings(rest);
    const driver = await NatsKvLeaderElectionDriver.open(nc, {
      clusterId,
      leaseMs: timings.leaseMs,
      replicas,
      requestTimeoutMs: timings.requestTimeoutMs,
    });
    return new LeaderElectionService(
      driver,
      { leaderId, rpcAddress, restUrl },
      { ...rest, ...timings, closeDriverOnStop: true },
    );
  }

  get state(): LeaderElectionState {
    return this.#state;
  }

  /** Starts competing: tries to create the key at once, then polls. */
  start(contender: LeaderContender): void {
    this.#driver.serveLiveness?.(this.#instance);
    // A leader that lost its connection steps down at once: it is what makes a standby's "no responders"
    // probe mean that the holder no longer acts as leader.
    this.#driver.watchConnection?.((event) => {
      const term = this.#term;
      if (term?.active)
        this.#revoke(term, RevokeReason.ConnectionLost, `the NATS connection was lost (${event})`);
    });
    if (this.#state !== 'CREATED') {
      throw new SluiceError(ErrorCode.IllegalState, `leader election cannot start: it is ${this.#state}`);
    }
    this.#contender = contender;
    this.#transition('RUNNING');
    this.#schedule(0, 'poll');
  }

  /**
   * Whether this contender leads under `epoch` right now. Checks the deadline on the monotonic clock first:
   * past it, leadership is revoked on the spot (the revoke callback runs before this returns false).
   */
  isLeader(epoch: number): boolean {
    this.#checkDeadline();
    return this.#term !== undefined && this.#term.epoch === epoch;
  }

  /** The epoch this contender leads under, if any (deadline checked as in {@link isLeader}). */
  currentEpoch(): number | undefined {
    this.#checkDeadline();
    return this.#term?.epoch;
  }

  /**
   * Runs `fn` if this contender still leads under `epoch` (Flink's `runAsyncIfLeader`); otherwise throws a
   * {@link LeadershipLostError} without running it. `fn` gets an AbortSignal that aborts when this
   * leadership is revoked: long work must watch it (or call `isLeader` again) before each step that acts.
   */
  async runIfLeader<T>(epoch: number, fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    if (!this.isLeader(epoch)) {
      const held = this.#term?.epoch;
      throw new LeadershipLostError(
        epoch,
        held === undefined
          ? `not leader under epoch ${epoch}: this JobManager is not the leader`
          : `not leader under epoch ${epoch}: this JobManager now leads under epoch ${held}`,
        held !== undefined && held > epoch ? { supersededBy: held } : {},
      );
    }
    return fn(this.#term!.controller.signal);
  }

  /** The current leader record from the store; null when there is none or it is unreadable/forged. */
  async currentLeader(): Promise<LeaderInfo | null> {
    const read = await readLeader(this.#driver, this.timings.requestTimeoutMs);
    if (read.state === 'unreadable') {
      this.#log.warn({ revision: read.revision, reason: read.reason }, 'leader record is unreadable');
    }
    return read.state === 'held' ? read.leader : null;
  }

  /**
   * The leader key as it is now, interpreted ({@link decodeLeaderEntry}): `none`, `held` or `unreadable`.
   * Unlike {@link currentLeader} it logs nothing (callers such as the REST API ask often) and tells an
   * absent key from one that holds garbage or a forged record. Throws the driver's errors (`TIMEOUT`, …).
   */
  readCurrentLeader(): Promise<LeaderRead> {
    return readLeader(this.#driver, this.timings.requestTimeoutMs);
  }

  /**
   * Graceful stop: no more polls or renewals; a leader is revoked (`stopped`) and deletes its key if it is
   * still at its last revision. Closes the driver if this service opened it. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(): Promise<void> {
    const wasRunning = this.#state === 'RUNNING';
    if (this.#state !== 'FAILED') this.#transition('STOPPING');
    this.#clearOpTimer();
    if (wasRunning && this.#inFlight !== undefined) {
      // Operations are bounded by request timeouts; a driver that hangs anyway does not hold stop() up.
      let timer: TimerHandle | undefined;
      await Promise.race([
        this.#inFlight,
        new Promise<void>((resolve) => {
          timer = this.#clock.setTimeout(resolve, 2 * this.timings.requestTimeoutMs);
        }),
      ]);
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    }
    const term = this.#term;
    if (term !== undefined) {
      this.#revoke(term, RevokeReason.Stopped, 'the leader election was stopped');
      await this.#release(term.revision);
    }
    if (this.#ownsDriver) await this.#driver.close().catch(() => undefined);
    if (this.#state !== 'FAILED') this.#transition('STOPPED');
  }

  // ---- operations ----

  #schedule(delayMs: number, op: 'poll' | 'renew'): void {
    this.#clearOpTimer();
    this.#opTimer = this.#clock.setTimeout(
      () => {
        this.#opTimer = undefined;
        this.#startOp(op === 'poll' ? () => this.#tryAcquire() : () => this.#renew());
      },
      Math.max(0, delayMs),
    );
  }

  #clearOpTimer(): void {
    if (this.#opTimer !== undefined) this.#clock.clearTimeout(this.#opTimer);
    this.#opTimer = undefined;
  }

  /** Runs one store operation, then schedules the next (a renewal if leading, else a poll). */
  #startOp(op: () => Promise<void>): void {
    if (this.#state !== 'RUNNING' || this.#inFlight !== undefined) return;
    const p = op()
      .catch((err: unknown) => this.#log.error({ err }, 'leader election operation failed unexpectedly'))
      .finally(() => {
        this.#inFlight = undefined;
        this.#scheduleNext();
      });
    this.#inFlight = p;
  }

  #scheduleNext(): void {
    if (this.#state !== 'RUNNING' || this.#inFlight !== undefined) return;
    const term = this.#term;
    if (term !== undefined) {
      this.#schedule(term.renewedAt + this.timings.renewIntervalMs - this.#clock.now(), 'renew');
    } else {
      this.#schedule(this.timings.pollIntervalMs, 'poll');
    }
  }

  async #tryAcquire(): Promise<void> {
    let started = this.#clock.now();
    let revision: number | null;
    try {
      revision = await this.#driver.create(this.#record(undefined), this.timings.requestTimeoutMs);
      // Someone holds the key (a leader, or bytes we cannot read). If the holder's process is gone from
      // NATS, take the key over now instead of waiting for it to expire: one compare-and-set from the
      // holder's revision to our record, so of several standbys that saw it gone exactly one wins.
      const goneAt = revision === null ? await this.#goneHolderRevision() : undefined;
      if (goneAt !== undefined) {
        started = this.#clock.now();
        revision = await this.#driver.takeOver(
          this.#record(undefined),
          goneAt.revision,
          this.timings.requestTimeoutMs,
        );
        if (revision !== null) {
          this.#log.info(
            { holder: goneAt.holder, epoch: goneAt.epoch, goneMs: goneAt.goneMs, revision },
            'the leader is gone from NATS (no responders): took its key over',
          );
        } else {
          this.#log.debug({ holder: goneAt.holder }, 'another standby took the leader key over first');
        }
      }
    } catch (err) {
      this.#driverError(err, 'trying to become leader');
      return;
    }
    this.#driverOk();
    if (revision === null) return;
    if (this.#state !== 'RUNNING') {
      await this.#release(revision);
      return;
    }
    const deadline = started + this.timings.leaseMs - this.timings.safetyMarginMs;
    if (this.#clock.now() >= deadline) {
      this.#log.warn(
        { revision },
        'won the leader key too late to use it (the request was slow); releasing it',
      );
      await this.#release(revision);
      return;
    }
    const term: Term = {
      epoch: revision,
      revision,
      renewedAt: started,
      controller: new AbortController(),
      deadlineTimer: undefined,
      active: true,
    };
    this.#term = term;
    this.#armDeadline(term);
    this.#log.info({ epoch: term.epoch }, 'leadership granted');
    try {
      this.#contender!.onGrantLeadership(term.epoch);
    } catch (err) {
      this.#log.error({ err, epoch: term.epoch }, 'onGrantLeadership threw: stepping down');
      if (term.active) {
        this.#revoke(term, RevokeReason.ContenderError, 'onGrantLeadership threw', err);
        await this.#release(term.revision);
      }
    }
  }

  /**
   * The revision of the key to take over, when its holder is gone: the holder's process has answered no
   * liveness probe ("no responders", not a timeout) for at least a renew interval, with the key unchanged
   * meanwhile, so it has also missed a renewal. A holder that only lost its connection cannot renew either
   * (its next compare-and-set fails) and steps down by its deadline; whatever it sent meanwhile carries its
   * older epoch, which TaskExecutors and stores refuse. Writes nothing: the caller takes the key over.
   */
  async #goneHolderRevision(): Promise<
    { revision: number; holder: string; epoch: number; goneMs: number } | undefined
  > {
    const probe = this.#driver.probe;
    if (probe === undefined) return undefined;
    const entry = await this.#driver.read(this.timings.requestTimeoutMs);
    if (entry === null) return undefined;
    const read = decodeLeaderEntry(entry);
    // A process restarted under the same id is another incarnation: the record's instance is what answers.
    const holder = read.state === 'held' ? read.leader : undefined;
    const instance = holder?.instance;
    if (holder === undefined || instance === undefined || instance === this.#instance) {
      this.#holderGone = undefined;
      return undefined;
    }
    const status = await probe.call(this.#driver, instance, Math.min(250, this.timings.requestTimeoutMs));
    const now = this.#clock.now();
    if (status !== 'gone') {
      this.#holderGone = undefined;
      return undefined;
    }
    const gone = this.#holderGone;
    if (gone === undefined || gone.revision !== entry.revision) {
      this.#holderGone = { revision: entry.revision, since: now };
      return undefined;
    }
    if (now - gone.since < this.timings.renewIntervalMs) return undefined;
    this.#holderGone = undefined;
    return {
      revision: entry.revision,
      holder: holder.leaderId,
      epoch: holder.epoch,
      goneMs: Math.round(now - gone.since),
    };
  }

  async #renew(): Promise<void> {
    const term = this.#term;
    if (term === undefined) return;
    const started = this.#clock.now();
    const deadline = term.renewedAt + this.timings.leaseMs - this.timings.safetyMarginMs;
    if (started >= deadline) {
      this.#revoke(term, RevokeReason.DeadlineMissed, 'the renewal came after the leader deadline');
      await this.#release(term.revision);
      return;
    }
    let revision: number | null;
    try {
      revision = await this.#driver.update(
        this.#record(term.epoch),
        term.revision,
        Math.min(this.timings.requestTimeoutMs, deadline - started),
      );
    } catch (err) {
      if (term.active) {
        this.#revoke(term, RevokeReason.RenewalFailed, `renewal failed: ${errorMessage(err)}`, err);
      }
      // If the update did not land the key is still ours at the old revision: free it for a standby.
      await this.#release(term.revision);
      this.#driverError(err, 'renewing leadership');
      return;
    }
    this.#driverOk();
    if (!term.active) {
      // Revoked while the renewal was under way (deadline, stop): give back what it wrote.
      await this.#release(revision ?? term.revision);
      return;
    }
    if (revision === null) {
      this.#revoke(
        term,
        RevokeReason.RenewalRejected,
        'the leader key was changed, deleted or had expired in the store',
      );
      return;
    }
    term.revision = revision;
    term.renewedAt = started;
    this.#armDeadline(term);
    this.#checkDeadline();
  }

  /** Deletes our key if it is still at `revision`; best effort (it expires anyway). */
  async #release(revision: number): Promise<void> {
    try {
      const deleted = await this.#driver.delete(revision, this.timings.requestTimeoutMs);
      this.#log.debug(
        { revision, deleted },
        deleted ? 'leader key released' : 'leader key was not ours any more',
      );
    } catch (err) {
      this.#log.debug(
        { revision, err: errorMessage(err) },
        'could not release the leader key; it will expire',
      );
    }
  }

  #record(epoch: number | undefined): Uint8Array {
    return encodeLeaderRecord({
      v: 1,
      leaderId: this.leaderId,
      rpcAddress: this.#identity.rpcAddress,
      ...(this.#identity.restUrl !== undefined ? { restUrl: this.#identity.restUrl } : {}),
      ...(epoch !== undefined ? { epoch } : {}),
      renewedAt: this.#wallClock(),
      instance: this.#instance,
    });
  }

  // ---- deadline and revocation ----

  #armDeadline(term: Term): void {
    if (term.deadlineTimer !== undefined) this.#clock.clearTimeout(term.deadlineTimer);
    const deadline = term.renewedAt + this.timings.leaseMs - this.timings.safetyMarginMs;
    term.deadlineTimer = this.#clock.setTimeout(() => {
      term.deadlineTimer = undefined;
      if (!term.active) return;
      if (this.#clock.now() < term.renewedAt + this.timings.leaseMs - this.timings.safetyMarginMs) {
        this.#armDeadline(term); // fired early (timer granularity) or renewed meanwhile
        return;
      }
      this.#checkDeadline();
    }, deadline - this.#clock.now());
  }

  /** Revokes at once if the current term's deadline has passed. */
  #checkDeadline(): void {
    const term = this.#term;
    if (term === undefined) return;
    const now = this.#clock.now();
    const deadline = term.renewedAt + this.timings.leaseMs - this.timings.safetyMarginMs;
    if (now < deadline) return;
    this.#revoke(
      term,
      RevokeReason.DeadlineMissed,
      `no successful renewal for ${Math.round(now - term.renewedAt)} ms (deadline ${Math.round(
        this.timings.leaseMs - this.timings.safetyMarginMs,
      )} ms)`,
    );
    // Free the key for a standby (unless an operation under way does it when it ends).
    if (this.#inFlight === undefined && this.#state === 'RUNNING') {
      this.#clearOpTimer();
      this.#startOp(() => this.#release(term.revision));
    }
  }

  #revoke(term: Term, reason: RevokeReason, message: string, cause?: unknown): void {
    if (!term.active) return;
    term.active = false;
    if (term.deadlineTimer !== undefined) this.#clock.clearTimeout(term.deadlineTimer);
    term.deadlineTimer = undefined;
    if (this.#term === term) this.#term = undefined;
    const revocation: LeadershipRevocation = {
      epoch: term.epoch,
      reason,
      message,
      at: this.#clock.now(),
      ...(cause !== undefined ? { cause } : {}),
    };
    term.controller.abort(
      new LeadershipLostError(term.epoch, `leadership under epoch ${term.epoch} lost: ${message}`),
    );
    const level = reason === RevokeReason.Stopped ? 'info' : 'warn';
    this.#log[level]({ epoch: term.epoch, reason, detail: message }, 'leadership revoked');
    try {
      this.#contender?.onRevokeLeadership(revocation);
    } catch (err) {
      this.#log.error({ err, epoch: term.epoch }, 'onRevokeLeadership threw');
    }
  }

  // ---- errors and state ----

  #driverError(err: unknown, what: string): void {
    const error = toSluiceError(err);
    if (isSluiceError(error, ErrorCode.ConnectionFailed) && !error.retryable) {
      this.#fail(error);
      return;
    }
    const now = this.#clock.now();
    if (this.#failingSince === undefined) {
      this.#failingSince = now;
      this.#log.warn({ err: error.message, code: error.code }, `leader election: ${what} failed; will retry`);
    } else {
      this.#log.debug({ err: error.message, code: error.code }, `leader election: ${what} failed again`);
    }
  }

  #driverOk(): void {
    if (this.#failingSince !== undefined) {
      this.#log.info(
        { afterMs: Math.round(this.#clock.now() - this.#failingSince) },
        'leader election: the store answers again',
      );
      this.#failingSince = undefined;
    }
  }

  #fail(error: SluiceError): void {
    if (this.#state !== 'RUNNING') return;
    const term = this.#term;
    if (term !== undefined) this.#revoke(term, RevokeReason.Failed, error.message, error);
    this.#clearOpTimer();
    this.#transition('FAILED');
    this.#log.error({ err: error.message, code: error.code }, 'leader election failed');
    try {
      this.#contender?.onError?.(error);
    } catch (err) {
      this.#log.error({ err }, 'onError threw');
    }
  }

  #transition(to: LeaderElectionState): void {
    this.#log.debug({ from: this.#state, to }, 'leader election state');
    this.#state = to;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
