/**
 * The production {@link LeaderElectionDriver}: the key `jobmanager` in the JetStream KV bucket
 * `sluice_<clusterId>_leader` (history 1, bucket TTL = the lease).
 *
 * - create: read the key; if absent, publish with `Nats-Expected-Last-Subject-Sequence` = 0 (never written or
 *   expired) or the delete marker's revision, and a `Nats-Msg-Id` derived from that base (see takeOver);
 * - update / delete: publish with `Nats-Expected-Last-Subject-Sequence` = the revision we hold;
 * - takeOver: one publish with `Nats-Expected-Last-Subject-Sequence` = the dead holder's revision AND a
 *   `Nats-Msg-Id` derived from that revision. nats-server before 2.9.21 checks the expected sequence of a
 *   replicated stream only before proposing the write (nats-io/nats-server#4320), so two standbys racing
 *   on the same revision could both be accepted; the message id is staged at proposal under the stream's
 *   lock, so the second one is answered as a duplicate (not stored) within the duplicate window (the
 *   lease). Exactly one standby wins, on any server version;
 * - lease: the stream's `max_age`. nats-server 2.9 has no per-key TTL and writes no delete marker when a
 *   key expires, so nobody is told: standbys poll with `create`.
 * Every call has its own timeout (2.9 can leave a request to a leaderless stream hanging).
 */
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { type NatsConnection, NoRespondersError, type Subscription } from '@nats-io/transport-node';
import { ErrorCode, SluiceError } from '../common/errors.js';
import { bucketName, isCasConflict, kvCall, openKvBucket } from '../nats/jetstream.js';
import type { LeaderElectionDriver, LeaderEntry } from './leader-election-driver.js';

export interface NatsKvLeaderElectionDriverOptions {
  clusterId: string;
  /** The lease: TTL of the leader bucket, ms. */
  leaseMs: number;
  /** Replicas of the bucket's stream when it is created (1, 3 or 5). Default 1. */
  replicas?: number | undefined;
  /** Timeout of the JetStream requests that open the bucket, ms. Default 1000. */
  requestTimeoutMs?: number | undefined;
  /** Retries of opening the bucket. Default 5. */
  openRetries?: number | undefined;
}

/** The key of the leader record in the leader bucket. */
export const LEADER_KEY = 'jobmanager';

/** `sluice_<clusterId>_leader`. */
export function leaderBucketName(clusterId: string): string {
  return bucketName(clusterId, 'leader');
}

export class NatsKvLeaderElectionDriver implements LeaderElectionDriver {
  readonly leaseMs: number;
  readonly bucket: string;
  readonly #kv: KV;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  #liveness: Subscription | undefined;
  #unwatch: (() => void) | undefined;
  #closed = false;

  private constructor(nc: NatsConnection, kv: KV, bucket: string, leaseMs: number) {
    this.#nc = nc;
    this.#kv = kv;
    this.#js = jetstream(nc);
    this.bucket = bucket;
    this.leaseMs = leaseMs;
  }

  /**
   * Opens the leader bucket, creating it if missing. Refuses (`INVALID_CONFIG`) a bucket whose TTL is not
   * `leaseMs`: every contender of a cluster must use the same lease.
   */
  static async open(
    nc: NatsConnection,
    options: NatsKvLeaderElectionDriverOptions,
  ): Promise<NatsKvLeaderElectionDriver> {
    const bucket = leaderBucketName(options.clusterId);
    const kv = await openKvBucket(nc, bucket, {
      history: 1,
      ttlMs: options.leaseMs,
      replicas: options.replicas ?? 1,
      description: `Sluice leader election of cluster ${options.clusterId}`,
      timeoutMs: options.requestTimeoutMs ?? 1_000,
      retries: options.openRetries ?? 5,
    });
    return new NatsKvLeaderElectionDriver(nc, kv, bucket, options.leaseMs);
  }

  /**
   * Reads the key, then writes only if it is absent, with one compare-and-set on what was read — the delete
   * marker's revision, or "no message" (expected sequence 0) for a key never written or expired — and a
   * message id derived from that base (the marker's revision, or the stream's last sequence), for the same
   * reason as {@link takeOver}: two standbys that find the key absent at once must not both win it.
   */
  async create(value: Uint8Array, timeoutMs: number): Promise<number | null> {
    this.#checkOpen();
    const deadline = performance.now() + timeoutMs;
    const left = () => Math.max(1, deadline - performance.now());
    const entry = await kvCall(() => this.#kv.get(LEADER_KEY), left(), 'reading the leader key');
    if (entry?.operation === 'PUT') return null; // held (a stale replica at worst delays us a poll)
    let expected = 0;
    let base: number;
    if (entry !== null) {
      expected = entry.revision; // a delete or purge marker
      base = entry.revision;
    } else {
      const status = await kvCall(() => this.#kv.status(), left(), 'reading the leader bucket');
      base = status.streamInfo.state.last_seq;
    }
    return this.#publishOnce(value, expected, `create.${base}`, left(), 'creating the leader key');
  }

  async update(value: Uint8Array, revision: number, timeoutMs: number): Promise<number | null> {
    this.#checkOpen();
    try {
      return await kvCall(
        () => this.#kv.update(LEADER_KEY, value, revision, Math.max(1, Math.floor(timeoutMs))),
        timeoutMs,
        'renewing the leader key',
      );
    } catch (err) {
      if (isCasConflict(err)) return null;
      throw err;
    }
  }

  async takeOver(value: Uint8Array, revision: number, timeoutMs: number): Promise<number | null> {
    this.#checkOpen();
    return this.#publishOnce(
      value,
      revision,
      `takeover.${revision}`,
      timeoutMs,
      'taking the leader key over',
    );
  }

  /**
   * One compare-and-set write of the leader key from `expected` (0: no message for the key), deduplicated
   * by the stream under `<bucket>.<id>`: of several writers racing with the same id, exactly one is stored;
   * the others get a duplicate ack (or a compare-and-set conflict) and null.
   */
  async #publishOnce(
    value: Uint8Array,
    expected: number,
    id: string,
    timeoutMs: number,
    what: string,
  ): Promise<number | null> {
    try {
      const ack = await kvCall(
        () =>
          this.#js.publish(`$KV.${this.bucket}.${LEADER_KEY}`, value, {
            expect: { lastSubjectSequence: expected },
            msgID: `${this.bucket}.${id}`,
            timeout: Math.max(1, Math.floor(timeoutMs)),
          }),
        timeoutMs,
        what,
      );
      // Another writer's write with the same base was accepted first: ours was not stored.
      return ack.duplicate ? null : ack.seq;
    } catch (err) {
      if (isCasConflict(err)) return null;
      throw err;
    }
  }

  async delete(revision: number, timeoutMs: number): Promise<boolean> {
    this.#checkOpen();
    try {
      await kvCall(
        () => this.#kv.delete(LEADER_KEY, { previousSeq: revision }),
        timeoutMs,
        'deleting the leader key',
      );
      return true;
    } catch (err) {
      if (isCasConflict(err)) return false;
      throw err;
    }
  }

  async read(timeoutMs: number): Promise<LeaderEntry | null> {
    this.#checkOpen();
    const entry = await kvCall(() => this.#kv.get(LEADER_KEY), timeoutMs, 'reading the leader key');
    if (entry === null || entry.operation !== 'PUT') return null;
    return { revision: entry.revision, value: entry.value };
  }

  /** Answers `<bucket>.alive.<instance>` (any payload; empty reply) while the driver is open. */
  serveLiveness(instance: string): void {
    this.#checkOpen();
    this.#liveness?.unsubscribe();
    this.#liveness = this.#nc.subscribe(this.#livenessSubject(instance), {
      callback: (_err, msg) => {
        if (msg.reply) msg.respond();
      },
    });
  }

  async probe(instance: string, timeoutMs: number): Promise<'alive' | 'gone' | 'unknown'> {
    this.#checkOpen();
    try {
      await this.#nc.request(this.#livenessSubject(instance), undefined, { timeout: Math.max(1, timeoutMs) });
      return 'alive';
    } catch (err) {
      for (let e: unknown = err; e instanceof Error; e = e.cause) {
        if (e instanceof NoRespondersError || e.name === 'NoRespondersError') return 'gone';
      }
      return 'unknown';
    }
  }

  /** Calls `onLost` on every disconnect of the connection (it may reconnect), until the driver is closed. */
  watchConnection(onLost: (event: string) => void): void {
    const statuses = this.#nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    this.#unwatch = () => statuses.stop?.();
    void (async () => {
      try {
        for await (const s of statuses) {
          if (this.#closed) return;
          // A closed connection fails the election through its next request, as before.
          if (s.type === 'disconnect' || s.type === 'staleConnection') onLost(s.type);
        }
      } catch {
        // the iterator ends with the connection
      }
    })();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#liveness?.unsubscribe();
    this.#liveness = undefined;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  #livenessSubject(instance: string): string {
    // Instances are [A-Za-z0-9_-] (checked by the record schema): a valid subject token as they are.
    return `${this.bucket}.alive.${instance}`;
  }

  #checkOpen(): void {
    if (this.#closed) throw new SluiceError(ErrorCode.IllegalState, 'the leader election driver is closed');
  }
}
