/**
 * A JetStream KV bucket whose writes are fenced by leader epoch; the base of the HA stores
 * (`job-stores.ts`, and later the checkpoint store).
 *
 * Every value is an envelope `{ v: 1, epoch, writtenAt, data }` (UTF-8 JSON). A write under epoch `e`:
 * 1. raises the bucket's fence: the key `epoch` holds the highest epoch that ever wrote; if it is above
 *    `e` the write is refused with `LEADERSHIP_LOST`, if below it is raised to `e` by compare-and-set;
 * 2. reads the target key; if its value was written under a newer epoch the write is refused;
 * 3. writes by compare-and-set on the revision it read (create when absent).
 * A compare-and-set miss in 1 or 3 (a concurrent writer) starts again from 1.
 *
 * What this guarantees: once a leader has written to a store, no older leader's write is accepted by it
 * afterwards, and no value is ever overwritten (or removed) under an older epoch than its own. What it does
 * not: JetStream 2.9 has no multi-key transaction, so a write whose fence check passed just before a newer
 * leader raised the fence can still land (on a key the newer leader has not written). That window is the
 * network delay of one request; the election makes the old leader step down `safetyMarginMs` before a new
 * one can be elected, so the fence is the second line, not the first.
 *
 * Reads and writes have short timeouts and are retried on retryable errors (timeouts, a leaderless stream
 * during NATS failover: `JETSTREAM_UNAVAILABLE`). Retrying a write is safe: it re-reads before it writes.
 *
 * Every read asks the bucket stream's leader, never a replica. Listing the keys takes the stream's subjects,
 * then each one's last message, never the client's `kv.keys()`: that ordered consumer takes its first idle
 * heartbeat, or a consumer info saying nothing is pending, for the end of the keys — right after a NATS
 * failover it returned no key at all without an error, and a new leader recovered none of the jobs (chaos
 * seed 9999 on eae08b2). A single key is read with STREAM.MSG.GET too, not the client's `kv.get()`: that is
 * a Direct Get, which any replica may answer, and a replica that lags after a NATS-node loss can answer
 * "absent" or an older value for a key written just before it — a new leader that fenced the store and then
 * read an older checkpoint pointer would restore from a subsumed checkpoint.
 */
import { Bucket, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../common/errors.js';
import { isCasConflict, kvCall, retrying } from '../nats/jetstream.js';
import { systemWallClock, type WallClock } from './clock.js';
import { LeadershipLostError } from './errors.js';

/** The key holding a bucket's fence (highest epoch that wrote). Not a job id (those are 32 hex digits). */
export const FENCE_KEY = 'epoch';

const FenceSchema = z.object({ v: z.literal(1), epoch: z.number().int().positive(), writtenAt: z.number() });
const EnvelopeSchema = z.object({
  v: z.literal(1),
  epoch: z.number().int().positive(),
  writtenAt: z.number(),
  data: z.unknown(),
});

/** Compare-and-set misses in a row before a write gives up (and is retried as a whole). */
const MAX_CAS_ATTEMPTS = 8;

export interface FencedKvStoreOptions {
  /** Timeout of one NATS request, ms. */
  timeoutMs: number;
  /** Retries of an operation after its first try. */
  retries: number;
  wallClock?: WallClock | undefined;
}

export interface FencedValue<T> {
  key: string;
  data: T;
  /** The epoch of the leader that wrote it. */
  epoch: number;
  /** The writer's wall clock (informational). */
  writtenAt: number;
  revision: number;
}

/** One key's last message, as read from the stream's leader. */
interface Entry {
  operation: 'PUT' | 'DEL' | 'PURGE';
  /** The message's stream sequence: the KV revision. */
  revision: number;
  value: Uint8Array;
}

export class FencedKvStore<T> {
  readonly bucket: string;
  readonly #kv: KV;
  readonly #schema: z.ZodType<T>;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #wallClock: WallClock;

  constructor(kv: KV, bucket: string, schema: z.ZodType<T>, options: FencedKvStoreOptions) {
    this.#kv = kv;
    this.bucket = bucket;
    this.#schema = schema;
    this.#timeoutMs = options.timeoutMs;
    this.#retries = options.retries;
    this.#wallClock = options.wallClock ?? systemWallClock;
  }

  /** Writes `data` under `epoch` (see the module comment); the new revision. */
  async write(epoch: number, key: string, data: T): Promise<number> {
    checkEpoch(epoch);
    const checked = this.#schema.safeParse(data);
    if (!checked.success) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `invalid value for ${this.bucket}/${key}: ${z.prettifyError(checked.error)}`,
      );
    }
    const what = `writing ${this.bucket}/${key}`;
    return retrying(
      () =>
        this.#casLoop(epoch, key, async (current) => {
          const value = encode({ v: 1, epoch, writtenAt: this.#wallClock(), data: checked.data });
          return current === null
            ? this.#call(() => this.#kv.create(key, value), what)
            : this.#call(() => this.#kv.update(key, value, current.revision, this.#timeoutMs), what);
        }),
      this.#retries,
      what,
    );
  }

  /** Removes `key` under `epoch`; false if it was not there. */
  async remove(epoch: number, key: string): Promise<boolean> {
    checkEpoch(epoch);
    const what = `removing ${this.bucket}/${key}`;
    return retrying(
      () =>
        this.#casLoop(epoch, key, async (current) => {
          if (current === null || current.operation !== 'PUT') return false;
          await this.#call(() => this.#kv.delete(key, { previousSeq: current.revision }), what);
          return true;
        }),
      this.#retries,
      what,
    );
  }

  /** The value of `key`; null when absent. A value Sluice did not write is `CORRUPTED_HA_DATA`. */
  async read(key: string): Promise<FencedValue<T> | null> {
    const entry = await this.#get(key);
    if (entry === null || entry.operation !== 'PUT') return null;
    const envelope = decodeEnvelope(entry);
    const data = envelope === undefined ? undefined : this.#schema.safeParse(envelope.data);
    if (envelope === undefined || data === undefined || !data.success) {
      throw new SluiceError(
        ErrorCode.CorruptedHaData,
        `${this.bucket}/${key} (revision ${entry.revision}) is not a value Sluice wrote`,
      );
    }
    return {
      key,
      data: data.data,
      epoch: envelope.epoch,
      writtenAt: envelope.writtenAt,
      revision: entry.revision,
    };
  }

  /** Whether `key` holds a value (without decoding it). */
  async has(key: string): Promise<boolean> {
    const entry = await this.#get(key);
    return entry !== null && entry.operation === 'PUT';
  }

  /** The keys holding a value, fence key excluded. */
  async keys(): Promise<string[]> {
    const what = `listing the keys of ${this.bucket}`;
    const keys = await retrying(() => this.#listKeys(what), this.#retries, what);
    return keys.filter((k) => k !== FENCE_KEY).sort();
  }

  /**
   * Raises the bucket's fence to `epoch` without writing a key (`LEADERSHIP_LOST` when a newer epoch holds
   * it). A new leader calls it before it reads what it will act on: from then on no older leader's write
   * is accepted, so it cannot change what was read (e.g. commit a checkpoint after the restore chose one).
   */
  async fence(epoch: number): Promise<void> {
    const what = `raising the fence of ${this.bucket}`;
    await retrying(
      async () => {
        for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++)
          if (await this.#raiseFence(epoch)) return;
        throw new SluiceError(ErrorCode.Timeout, `${what}: gave up after ${MAX_CAS_ATTEMPTS} conflicts`);
      },
      this.#retries,
      what,
    );
  }

  /** The highest epoch that wrote to this bucket (undefined if none did, or the fence is unreadable). */
  async fenceEpoch(): Promise<number | undefined> {
    const entry = await this.#get(FENCE_KEY);
    return entry === null || entry.operation !== 'PUT' ? undefined : decodeFence(entry);
  }

  // ---- internals ----

  /**
   * Raises the fence to `epoch`, checks the key's current epoch, then runs `write` with the entry read
   * (null when the key never held a value; a delete marker when it was removed); starts again on
   * compare-and-set misses.
   */
  async #casLoop<R>(epoch: number, key: string, write: (current: Entry | null) => Promise<R>): Promise<R> {
    for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
      if (!(await this.#raiseFence(epoch))) continue;
      const current = await this.#getOnce(key);
      if (current !== null && current.operation === 'PUT') {
        const existing = decodeEnvelope(current)?.epoch;
        if (existing !== undefined && existing > epoch) {
          throw new LeadershipLostError(
            epoch,
            `${this.bucket}/${key} was written under epoch ${existing}; a write under epoch ${epoch} is refused`,
            { supersededBy: existing },
          );
        }
      }
      try {
        return await write(current);
      } catch (err) {
        if (isCasConflict(err)) continue;
        throw err;
      }
    }
    throw new SluiceError(
      ErrorCode.Timeout,
      `${this.bucket}/${key}: gave up after ${MAX_CAS_ATTEMPTS} concurrent-write conflicts`,
    );
  }

  /** True when the fence is at `epoch` now; false on a compare-and-set miss (try again). */
  async #raiseFence(epoch: number): Promise<boolean> {
    const entry = await this.#getOnce(FENCE_KEY);
    const fence = entry === null || entry.operation !== 'PUT' ? undefined : decodeFence(entry);
    if (fence !== undefined && fence > epoch) {
      throw new LeadershipLostError(
        epoch,
        `${this.bucket} has been written under epoch ${fence}; a write under epoch ${epoch} is refused`,
        { supersededBy: fence },
      );
    }
    if (fence === epoch) return true;
    const value = encode({ v: 1, epoch, writtenAt: this.#wallClock() });
    const what = `raising the fence of ${this.bucket}`;
    try {
      if (entry === null) await this.#call(() => this.#kv.create(FENCE_KEY, value), what);
      else await this.#call(() => this.#kv.update(FENCE_KEY, value, entry.revision, this.#timeoutMs), what);
      return true;
    } catch (err) {
      if (isCasConflict(err)) return false;
      throw err;
    }
  }

  #get(key: string): Promise<Entry | null> {
    const what = `reading ${this.bucket}/${key}`;
    return retrying(() => this.#getOnce(key), this.#retries, what);
  }

  /** One try at reading `key`'s last message from the stream's leader (null when it never had one). */
  async #getOnce(key: string): Promise<Entry | null> {
    const { jsm, stream, prefix } = this.#bucket(`reading ${this.bucket}/${key}`);
    return this.#lastMessage(jsm, stream, `${prefix}.${key}`, `reading ${this.bucket}/${key}`);
  }

  async #lastMessage(
    jsm: Bucket['jsm'],
    stream: string,
    subject: string,
    what: string,
  ): Promise<Entry | null> {
    const last = await this.#call(() => jsm.streams.getMessage(stream, { last_by_subj: subject }), what);
    if (last === null) return null;
    const header = last.header?.get('KV-Operation');
    const operation = header === 'DEL' || header === 'PURGE' ? header : 'PUT';
    return { operation, revision: last.seq, value: last.data };
  }

  #bucket(what: string): Bucket {
    if (!(this.#kv instanceof Bucket)) {
      throw new SluiceError(ErrorCode.Internal, `${what}: the bucket was not opened by @nats-io/kv's Kvm`);
    }
    return this.#kv;
  }

  #call<R>(fn: () => Promise<R>, what: string): Promise<R> {
    return kvCall(fn, this.#timeoutMs, what);
  }

  /**
   * One try at listing, from the stream's leader: STREAM.INFO with a subjects filter gives every key that
   * has a message; the last message of each (STREAM.MSG.GET, also the leader's) leaves out deleted ones.
   */
  async #listKeys(what: string): Promise<string[]> {
    const { jsm, stream, prefix } = this.#bucket(what);
    const info = await this.#call(
      () => jsm.streams.info(stream, { subjects_filter: `${prefix}.>` }),
      `${what} (stream info)`,
    );
    const keys: string[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const last = await this.#lastMessage(jsm, stream, subject, `${what} (${subject})`);
      if (last?.operation === 'PUT') keys.push(subject.slice(prefix.length + 1));
    }
    return keys;
  }
}

function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

function parseJson(entry: Entry): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(entry.value));
  } catch {
    return undefined;
  }
}

function decodeEnvelope(entry: Entry): z.infer<typeof EnvelopeSchema> | undefined {
  const parsed = EnvelopeSchema.safeParse(parseJson(entry));
  return parsed.success ? parsed.data : undefined;
}

/** The fence's epoch; undefined when unreadable (then any writer may overwrite it, by compare-and-set). */
function decodeFence(entry: Entry): number | undefined {
  const parsed = FenceSchema.safeParse(parseJson(entry));
  return parsed.success ? parsed.data.epoch : undefined;
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch <= 0) {
    throw new SluiceError(
      ErrorCode.InvalidMessage,
      `'${String(epoch)}' is not an epoch (a positive integer)`,
    );
  }
}
