/**
 * The backend side of a leader election: the leader record as stored (UTF-8 JSON, readable with
 * `nats kv get`), its decoding, and the {@link LeaderElectionDriver} interface that a store implements —
 * JetStream KV in production (`nats-kv-leader-election-driver.ts`), a map in memory for unit tests
 * (`in-memory-leader-election-driver.ts`). Decoding never throws: garbage and forged records are
 * `unreadable`, never a leader.
 */
import { z } from 'zod';

/**
 * The leader record, stored as UTF-8 JSON (readable with `nats kv get`). `epoch` is absent in the record
 * written by the winning `create` (its revision is not known before the write: the epoch *is* that
 * revision) and present from the first renewal on. `renewedAt` is the writer's wall clock, for people;
 * no decision is made on it.
 */
export const LeaderRecordSchema = z.object({
  v: z.literal(1),
  leaderId: z.string().min(1).max(256),
  rpcAddress: z.string().max(1_024),
  restUrl: z.string().max(2_048).optional(),
  epoch: z.number().int().positive().optional(),
  renewedAt: z.number().finite(),
  /** The holder's process incarnation (random per start): what its liveness subject answers for. */
  instance: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
});
export type LeaderRecord = z.infer<typeof LeaderRecordSchema>;

/** The leader as a reader sees it. */
export interface LeaderInfo {
  leaderId: string;
  rpcAddress: string;
  restUrl: string | undefined;
  /** The fencing token: the store revision at which this leadership was won. */
  epoch: number;
  /** The leader's wall clock at its last renewal (informational). */
  renewedAt: number;
  /** The revision of the record read (the last renewal). */
  revision: number;
  /** The holder's process incarnation, when the record names one. */
  instance?: string;
}

/** What a read of the leader key found. */
export type LeaderRead =
  | { state: 'none' }
  | { state: 'held'; leader: LeaderInfo }
  /** The key exists but is not a valid record (garbage or forged): held by someone, leader unknown. */
  | { state: 'unreadable'; revision: number; reason: string };

const MAX_RECORD_BYTES = 8 * 1024;

export function encodeLeaderRecord(record: LeaderRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(record));
}

/**
 * Interprets a stored leader entry. Never throws. Besides the schema, a record whose epoch is above its
 * own revision is refused as forged: a leader's epoch is the revision of an earlier (or the same) write to
 * the same key, so it can never be larger. Accepting such an epoch would make every TaskExecutor refuse
 * the real leaders that follow.
 */
export function decodeLeaderEntry(entry: LeaderEntry): LeaderRead {
  const unreadable = (reason: string): LeaderRead => ({
    state: 'unreadable',
    revision: entry.revision,
    reason,
  });
  if (entry.value.byteLength > MAX_RECORD_BYTES) return unreadable(`${entry.value.byteLength} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(entry.value));
  } catch {
    return unreadable('not UTF-8 JSON');
  }
  const parsed = LeaderRecordSchema.safeParse(json);
  if (!parsed.success) return unreadable(`not a leader record: ${z.prettifyError(parsed.error)}`);
  const r = parsed.data;
  const epoch = r.epoch ?? entry.revision;
  if (epoch > entry.revision) {
    return unreadable(`epoch ${epoch} is above the record's revision ${entry.revision} (forged)`);
  }
  return {
    state: 'held',
    leader: {
      leaderId: r.leaderId,
      rpcAddress: r.rpcAddress,
      restUrl: r.restUrl,
      epoch,
      renewedAt: r.renewedAt,
      revision: entry.revision,
      ...(r.instance !== undefined ? { instance: r.instance } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The driver (backend).

/** A stored value of the leader key and its revision. */
export interface LeaderEntry {
  revision: number;
  value: Uint8Array;
}

/**
 * The backend of an election: one key with compare-and-set writes and a lease. The store must:
 * - give every write a revision greater than every earlier write's (of any key in the store);
 * - make the key absent `leaseMs` after its last write (expiry), and on delete;
 * - apply `create`, `update` and `delete` atomically against the key's current revision.
 *
 * Methods throw SluiceErrors (`TIMEOUT`, `JETSTREAM_UNAVAILABLE`, `CONNECTION_FAILED` — a closed connection
 * is not retryable —, …). A compare-and-set miss is not an error: it is the `null` / `false` result.
 */
export interface LeaderElectionDriver {
  /** The lease the store enforces (the TTL of the key after its last write), ms. */
  readonly leaseMs: number;
  /** Writes `value` if the key is absent (never written, expired or deleted): its revision, or null. */
  create(value: Uint8Array, timeoutMs: number): Promise<number | null>;
  /** Replaces the value if the key is still at `revision`: the new revision, or null if it is not. */
  update(value: Uint8Array, revision: number, timeoutMs: number): Promise<number | null>;
  /**
   * Takes the key over from a holder gone from NATS: replaces the value if the key is still at `revision`
   * (the dead holder's), in ONE compare-and-set that exactly one of several contenders racing on the same
   * `revision` can win — also on a store whose compare-and-set alone does not serialize concurrent writers
   * (nats-server < 2.9.21 on a replicated stream: nats-io/nats-server#4320). The new revision, or null.
   */
  takeOver(value: Uint8Array, revision: number, timeoutMs: number): Promise<number | null>;
  /** Deletes the key if it is still at `revision`; false if it is not. */
  delete(revision: number, timeoutMs: number): Promise<boolean>;
  /** The key's current value; null when absent. */
  read(timeoutMs: number): Promise<LeaderEntry | null>;
  /** Answers liveness probes for `instance` (this process) while the driver is open (optional). */
  serveLiveness?(instance: string): void;
  /**
   * Whether the process of `leaderId` is still connected: `gone` only when nobody answers for it at all
   * (NATS "no responders": its connection, and with it its subscription, is gone), `unknown` on anything
   * else (a timeout is not proof of death: the process may be paused or slow).
   */
  probe?(instance: string, timeoutMs: number): Promise<'alive' | 'gone' | 'unknown'>;
  /** Calls `onLost` whenever the connection to the store drops (optional; with `serveLiveness`). */
  watchConnection?(onLost: (event: string) => void): void;
  /** Releases the driver's resources (not the connection it was given). Idempotent. */
  close(): Promise<void>;
}

/** Reads and interprets the leader key: for clients and TaskExecutors that look for the leader. */
export async function readLeader(driver: LeaderElectionDriver, timeoutMs: number): Promise<LeaderRead> {
  const entry = await driver.read(timeoutMs);
  return entry === null ? { state: 'none' } : decodeLeaderEntry(entry);
}
