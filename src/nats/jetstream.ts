/**
 * The one JetStream adapter: what every user of JetStream in Sluice (the HA stores, the artifact store,
 * the state store, the JetStream connectors) shares — bucket names, opening KV buckets and object stores
 * with a deadline and retries, one mapping of the NATS client's errors onto Sluice codes (by error class
 * and JetStream API error code, never by message text), and the timeout/retry wrappers.
 *
 * 2.9 facts this module encodes:
 * - While a stream has no leader (a NATS node died; re-election takes 4–9 s) a request to it gets
 *   "no responders" at once, which nats.js reports as `JetStreamNotEnabled` ("jetstream is not enabled").
 *   That is transient: it maps to the retryable `JETSTREAM_UNAVAILABLE`.
 * - `STREAM.INFO` (which opening a bucket and `status()` use) can hang: every call gets its own timeout.
 * - A compare-and-set miss (`Nats-Expected-Last-Subject-Sequence` not matching) is JetStream API error
 *   10071 (or 10164): see {@link isCasConflict}. It is an answer, not a failure.
 * - A stream just created in a cluster is not usable at once: for a moment a request to it can be answered
 *   "stream not found" (chaos seed 2015 on 7bd4703: a client created the artifact bucket and its first read
 *   of it failed so, 0.1 s before nats-server logged the new stream's leader). Opening a bucket therefore
 *   returns only once its stream answers with a leader ({@link waitForStreamLeader}).
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  type StreamInfo,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { type ObjectStore, Objm, StorageType } from '@nats-io/obj';
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  millis,
  type NatsConnection,
  NoRespondersError,
  TimeoutError,
} from '@nats-io/transport-node';
import pRetry from 'p-retry';
import { ErrorCode, SluiceError } from '../common/errors.js';

/**
 * `sluice_<clusterId>_<store>`, the name of every bucket of a cluster (KV and object store); characters a
 * bucket name may not hold become `_`.
 */
export function bucketName(clusterId: string, store: string): string {
  return `sluice_${clusterId.replace(/[^A-Za-z0-9_-]/g, '_')}_${store}`;
}

export interface OpenBucketOptions {
  replicas: number;
  history: number;
  /** Bucket-wide TTL (stream `max_age`); undefined = keep forever. */
  ttlMs?: number | undefined;
  description: string;
  /** Timeout of one NATS request, ms. */
  timeoutMs: number;
  /** Retries of opening the bucket after the first try. */
  retries: number;
}

/**
 * Opens a KV bucket, creating it when missing. An existing bucket whose TTL differs from `ttlMs` is
 * refused (`INVALID_CONFIG`): for the leader bucket the TTL *is* the lease, and two JobManagers with
 * different leases would break the guarantee that a leader steps down before its key expires.
 */
export async function openKvBucket(
  nc: NatsConnection,
  name: string,
  options: OpenBucketOptions,
): Promise<KV> {
  const js = jetstream(nc, { timeout: options.timeoutMs });
  const kvm = new Kvm(js);
  const what = `opening KV bucket ${name}`;
  const kv = await retrying(
    () =>
      withTimeout(
        kvm.create(name, {
          history: options.history,
          replicas: options.replicas,
          description: options.description,
          ...(options.ttlMs !== undefined ? { ttl: options.ttlMs } : {}),
        }),
        // account info, stream info, then stream create if missing
        3 * options.timeoutMs,
        what,
      ),
    options.retries,
    what,
  );
  // The leader's STREAM.INFO also carries the bucket's TTL (what `kv.status()` would ask for again).
  const info = await waitForStreamLeader(await js.jetstreamManager(false), `KV_${name}`, options);
  const ttl = millis(info.config.max_age); // ms; 0 = none
  const wanted = options.ttlMs ?? 0;
  if (ttl !== wanted) {
    throw new SluiceError(
      ErrorCode.InvalidConfig,
      `KV bucket ${name} exists with a TTL of ${ttl} ms, but this process wants ${wanted} ms: every ` +
        `JobManager of a cluster must use the same high-availability lease (delete the bucket to change it)`,
    );
  }
  return kv;
}

export interface OpenObjectStoreOptions {
  replicas: number;
  description: string;
  /** Timeout of one NATS request, ms. */
  timeoutMs: number;
  /** Retries of opening the store after the first try. */
  retries: number;
}

/** Opens an object store (file storage), creating it when missing. */
export async function openObjectStore(
  nc: NatsConnection,
  name: string,
  options: OpenObjectStoreOptions,
): Promise<ObjectStore> {
  const js = jetstream(nc, { timeout: options.timeoutMs });
  const objm = new Objm(js);
  const what = `opening object store ${name}`;
  const store = await retrying(
    () =>
      withTimeout(
        objm.create(name, {
          storage: StorageType.File,
          replicas: options.replicas,
          description: options.description,
        }),
        2 * options.timeoutMs, // stream info, then stream create if missing
        what,
      ),
    options.retries,
    what,
  );
  await waitForStreamLeader(await js.jetstreamManager(false), `OBJ_${name}`, options);
  return store;
}

/**
 * Waits until `stream` answers `STREAM.INFO` as a stream with a leader (a stream of a single server has
 * no cluster info: answering is enough). "Stream not found", no leader yet and retryable errors are waited
 * out, up to `timeoutMs × (retries + 1)` in all; then `JETSTREAM_UNAVAILABLE`. Other errors are thrown.
 */
export async function waitForStreamLeader(
  jsm: JetStreamManager,
  stream: string,
  options: { timeoutMs: number; retries: number },
): Promise<StreamInfo> {
  const deadline = Date.now() + options.timeoutMs * (options.retries + 1);
  const what = `waiting for stream ${stream} to have a leader`;
  let last = 'no answer yet';
  for (let pause = 50; ; pause = Math.min(1_000, pause * 2)) {
    try {
      const info = await withTimeout(
        jsm.streams.info(stream),
        Math.max(1, Math.min(options.timeoutMs, deadline - Date.now())),
        what,
      );
      if (info.cluster === undefined || info.cluster.leader) return info;
      last = 'it has no leader';
    } catch (err) {
      const mapped = natsError(err, what);
      if (!isStreamNotFound(err) && !mapped.retryable) throw mapped;
      last = isStreamNotFound(err) ? 'stream not found' : mapped.message;
    }
    if (Date.now() + pause >= deadline) {
      throw new SluiceError(ErrorCode.JetStreamUnavailable, `${what}: gave up, last: ${last}`);
    }
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** Whether `err` is JetStream's answer to a compare-and-set whose expected revision did not match. */
export function isCasConflict(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (
      e instanceof JetStreamApiError &&
      (e.code === JetStreamApiCodes.StreamWrongLastSequence ||
        e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
    ) {
      return true;
    }
  }
  return false;
}

/** Whether `err` (or a cause) is JetStream API error 10059: the stream does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  return hasApiCode(err, JetStreamApiCodes.StreamNotFound);
}

/** Whether `err` (or a cause) is JetStream API error 10037: no message at that sequence or subject. */
export function isMessageNotFound(err: unknown): boolean {
  return hasApiCode(err, JetStreamApiCodes.NoMessageFound);
}

/**
 * Whether nobody answered a JetStream request: no stream captures the subject, or (on 2.9) the stream has
 * no leader right now. nats.js reports it as NoRespondersError, or as its JetStreamNotEnabled class.
 */
export function isNoResponders(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    // JetStreamNotEnabled is not exported by @nats-io/jetstream's public module; its name is its class.
    if (e instanceof NoRespondersError || e.name === 'JetStreamNotEnabled') return true;
  }
  return false;
}

/** Whether `err` (or a cause) is a NATS request timeout or a Sluice `TIMEOUT`. */
export function isTimeout(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof TimeoutError || (e instanceof SluiceError && e.code === ErrorCode.Timeout)) return true;
  }
  return false;
}

function hasApiCode(err: unknown, code: number): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof JetStreamApiError && e.code === code) return true;
  }
  return false;
}

/**
 * The Sluice error for a NATS client error. Retryable: timeouts, "no responders" (JetStream unavailable:
 * 2.9's leaderless stream), a lost connection. Not retryable: a closed or draining connection (it will not
 * come back), any other JetStream API error. Errors that already are SluiceErrors pass through.
 */
export function natsError(err: unknown, what: string): SluiceError {
  if (err instanceof SluiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const make = (code: ErrorCode, retryable?: boolean) =>
    new SluiceError(code, `${what} failed: ${message}`, {
      cause: err,
      ...(retryable !== undefined ? { retryable } : {}),
    });
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof SluiceError) return e;
    if (isNoResponders(e)) return make(ErrorCode.JetStreamUnavailable);
    if (e instanceof TimeoutError) return make(ErrorCode.Timeout);
    if (e instanceof ClosedConnectionError || e instanceof DrainingConnectionError) {
      return make(ErrorCode.ConnectionFailed, false);
    }
    if (e instanceof ConnectionError) return make(ErrorCode.ConnectionFailed);
    if (e instanceof JetStreamApiError) {
      // 503: "JetStream system temporarily unavailable", a stream or peer offline.
      return e.status === 503 ? make(ErrorCode.JetStreamUnavailable) : make(ErrorCode.Internal, false);
    }
  }
  return make(ErrorCode.Internal, false);
}

/** Runs a NATS call under a timeout and maps what it throws (CAS conflicts pass through untouched). */
export async function kvCall<T>(fn: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  try {
    return await withTimeout(fn(), timeoutMs, what);
  } catch (err) {
    if (isCasConflict(err)) throw err;
    throw natsError(err, what);
  }
}

/**
 * Runs `fn` with up to `retries` retries (jittered exponential backoff, 50 ms to 1 s) while it fails with a
 * retryable SluiceError; what still fails in the end is thrown as a SluiceError.
 */
export async function retrying<T>(fn: () => Promise<T>, retries: number, what: string): Promise<T> {
  try {
    return await pRetry(
      async () => {
        try {
          return await fn();
        } catch (err) {
          throw isCasConflict(err) ? err : natsError(err, what);
        }
      },
      {
        retries,
        minTimeout: 50,
        maxTimeout: 1_000,
        factor: 2,
        randomize: true,
        shouldRetry: ({ error }) => error instanceof SluiceError && error.retryable,
      },
    );
  } catch (err) {
    if (isCasConflict(err)) throw err;
    throw natsError(err, what);
  }
}

/** Rejects with a retryable `TIMEOUT` if `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SluiceError(ErrorCode.Timeout, `${what} timed out after ${Math.round(ms)} ms`)),
      Math.max(0, ms),
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
