/**
 * Where checkpoints live (design §3):
 * - object store `sluice_<clusterId>_state`: each subtask's state object and each checkpoint's or savepoint's
 *   `_metadata`, named under the checkpoint's target (`checkpoints/<jobId>/chk-<n>/…`, `savepoints/…/…`);
 * - KV `sluice_<clusterId>_checkpoints`: jobId → the retained checkpoints, latest last. Writing it is the
 *   commit point of a checkpoint; it is fenced by the leader epoch like the other HA stores.
 *
 * Every request has a short timeout and idempotent ones are retried (p-retry). Reads verify size and
 * SHA-256 against the reference they were given: a damaged object is `CORRUPTED_STATE`, a missing one
 * `STATE_NOT_FOUND`, neither retried.
 */
import { type JetStreamManager, jetstream } from '@nats-io/jetstream';
import { type ObjectInfo, type ObjectStore, setSha256Backend } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { Packr } from 'msgpackr';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import { FencedKvStore } from '../../ha/fenced-kv-store.js';
import { bucketName, openKvBucket, openObjectStore, retrying, withTimeout } from '../../nats/jetstream.js';
import { hasSha256, readObjectChunks, sha256Hex } from '../../nats/object-chunks.js';

// The object store hashes every chunk; its default is a JavaScript SHA-256, several times slower than
// Node's (it was 40 % of a TaskManager's CPU while checkpointing 100 MB of state).
setSha256Backend('native');

import {
  type CheckpointMetadata,
  CheckpointMetadataSchema,
  type CheckpointPointer,
  CheckpointPointerSchema,
  metadataName,
  type StateObjectRef,
} from './protocol.js';

export interface StateStoreOptions {
  /** Replicas of the buckets' streams when created (1, 3 or 5). Default 1. */
  replicas?: number;
  /** Timeout of one NATS request, ms. Default 5000. */
  timeoutMs?: number;
  /** Retries after the first try. Default 4. */
  retries?: number;
}

/** Where the time of reads went (summed over objects; reads may overlap). */
export interface ReadTiming {
  /** Object info and chunks. */
  readMs: number;
  /** SHA-256 of the bytes read. */
  hashMs: number;
  bytes: number;
}

/** msgpack of plain data; Maps come back as objects, as on the data plane. */
export const stateCodec = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/**
 * Retries of a read (object info, chunks): at least this many, about 8 s of backoff (50 ms doubling to 1 s).
 * A task restoring right after a partition heals meets "JetStream system temporarily unavailable" while
 * the object store's stream elects its leader; failing the task on it restarts the whole job (chaos seed
 * 33: four restarts in a row). Reads are idempotent; writes keep `retries`, a failed checkpoint is cheap.
 */
const MIN_READ_RETRIES = 12;

export class StateStore {
  readonly bucket: string;
  readonly #os: ObjectStore;
  readonly #jsm: JetStreamManager;
  readonly #pointers: FencedKvStore<CheckpointPointer>;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #readRetries: number;
  /** The bucket's stream allows Direct Get (chunks are read with it: raw bytes, no JSON or base64). */
  readonly #directGet: boolean;

  private constructor(
    bucket: string,
    os: ObjectStore,
    jsm: JetStreamManager,
    pointers: FencedKvStore<CheckpointPointer>,
    timeoutMs: number,
    retries: number,
    directGet: boolean,
  ) {
    this.bucket = bucket;
    this.#directGet = directGet;
    this.#os = os;
    this.#jsm = jsm;
    this.#pointers = pointers;
    this.#timeoutMs = timeoutMs;
    this.#retries = retries;
    this.#readRetries = Math.max(retries, MIN_READ_RETRIES);
  }

  static async open(
    nc: NatsConnection,
    clusterId: string,
    options: StateStoreOptions = {},
  ): Promise<StateStore> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const retries = options.retries ?? 4;
    const replicas = options.replicas ?? 1;
    const bucket = bucketName(clusterId, 'state');
    const js = jetstream(nc, { timeout: timeoutMs });
    const os = await openObjectStore(nc, bucket, {
      replicas,
      description: `Sluice checkpoints and savepoints of cluster ${clusterId}`,
      timeoutMs,
      retries,
    });
    const jsm = await js.jetstreamManager(false);
    const what = `reading the config of ${bucket}`;
    const streamInfo = await retrying(
      () => withTimeout(jsm.streams.info(`OBJ_${bucket}`), timeoutMs, what),
      retries,
      what,
    );
    const kvName = bucketName(clusterId, 'checkpoints');
    const kv = await openKvBucket(nc, kvName, {
      history: 1,
      replicas,
      description: `Checkpoint pointers of Sluice cluster ${clusterId}`,
      timeoutMs,
      retries,
    });
    const pointers = new FencedKvStore(kv, kvName, CheckpointPointerSchema, { timeoutMs, retries });
    return new StateStore(
      bucket,
      os,
      jsm,
      pointers,
      timeoutMs,
      retries,
      streamInfo.config.allow_direct === true,
    );
  }

  /** Stores `bytes` under `name` (replacing what was there); the reference to read it back with. */
  async put(name: string, bytes: Uint8Array): Promise<StateObjectRef> {
    const ref: StateObjectRef = { name, sizeBytes: bytes.byteLength, sha256: sha256Hex(bytes) };
    const what = `storing state object ${name}`;
    await retrying(
      () =>
        withTimeout(
          this.#os.putBlob({ name }, bytes, { timeout: this.#timeoutMs }),
          this.#timeoutMs * (2 + Math.ceil(bytes.byteLength / (128 * 1024))),
          what,
        ),
      this.#retries,
      what,
    );
    return ref;
  }

  /** Reads an object and checks it against `ref`; adds the time it took to `timing` when given. */
  async get(ref: StateObjectRef, timing?: ReadTiming): Promise<Uint8Array> {
    const started = performance.now();
    const info = await this.#info(ref.name);
    if (info === null) throw notFound(ref.name);
    if (info.size !== ref.sizeBytes)
      throw corrupted(ref.name, `${info.size} bytes instead of ${ref.sizeBytes}`);
    const bytes = await this.#read(info, ref.name);
    const read = performance.now();
    if (bytes.byteLength !== ref.sizeBytes || sha256Hex(bytes) !== ref.sha256) {
      throw corrupted(ref.name, 'its SHA-256 does not match');
    }
    if (timing) {
      timing.readMs += read - started;
      timing.hashMs += performance.now() - read;
      timing.bytes += bytes.byteLength;
    }
    return bytes;
  }

  /** Whether the object is there with the size and digest of `ref` (metadata only: no bytes read). */
  async check(ref: StateObjectRef): Promise<'ok' | 'missing' | 'corrupted'> {
    const info = await this.#info(ref.name);
    if (info === null) return 'missing';
    if (info.size !== ref.sizeBytes) return 'corrupted';
    return hasSha256(info, ref.sha256) ? 'ok' : 'corrupted';
  }

  /** Deletes an object; a missing one is fine. */
  async delete(name: string): Promise<void> {
    const what = `deleting state object ${name}`;
    await retrying(
      async () => {
        // The object store client reports a missing object only by message text: ask first (null =
        // missing). A retry after a delete that went through then finds nothing and is done.
        const info = await withTimeout(this.#os.info(name), this.#timeoutMs, what);
        if (info === null) return;
        await withTimeout(this.#os.delete(name), this.#timeoutMs, what);
      },
      this.#retries,
      what,
    );
  }

  /** Writes a checkpoint's or savepoint's `_metadata`. */
  putMetadata(metadata: CheckpointMetadata): Promise<StateObjectRef> {
    return this.put(metadataName(metadata.target), stateCodec.pack(metadata));
  }

  /** Reads metadata by reference (verified), or by target name alone (a savepoint path: size unknown). */
  async getMetadata(refOrTarget: StateObjectRef | string): Promise<CheckpointMetadata> {
    let bytes: Uint8Array;
    let name: string;
    if (typeof refOrTarget === 'string') {
      name = metadataName(refOrTarget);
      const info = await this.#info(name);
      if (info === null) throw notFound(name);
      bytes = await this.#read(info, name);
    } else {
      name = refOrTarget.name;
      bytes = await this.get(refOrTarget);
    }
    let decoded: unknown;
    try {
      decoded = stateCodec.unpack(bytes);
    } catch (err) {
      throw corrupted(name, `not msgpack: ${(err as Error).message}`);
    }
    const parsed = CheckpointMetadataSchema.safeParse(decoded);
    if (!parsed.success) throw corrupted(name, 'not checkpoint metadata');
    return parsed.data;
  }

  /** The job's pointer: retained checkpoints and the highest id notified (empty when it has none). */
  async pointer(jobId: string): Promise<CheckpointPointer> {
    return (await this.#pointers.read(jobId))?.data ?? { checkpoints: [], maxCheckpointId: 0 };
  }

  /** The job's retained checkpoints, oldest first (empty when it has none). */
  async retained(jobId: string): Promise<CheckpointPointer['checkpoints']> {
    return (await this.#pointers.read(jobId))?.data.checkpoints ?? [];
  }

  /**
   * Fences the pointers at `epoch` (see FencedKvStore.fence): a restore under `epoch` calls it before it
   * reads a pointer, so a former leader resumed after a pause cannot commit a checkpoint behind its back.
   */
  async fencePointers(epoch: number): Promise<void> {
    await this.#pointers.fence(epoch);
  }

  /** Replaces the job's pointer: the commit point of a checkpoint. `LEADERSHIP_LOST` if a newer leader wrote. */
  async writePointer(epoch: number, jobId: string, pointer: CheckpointPointer): Promise<void> {
    await this.#pointers.write(epoch, jobId, pointer);
  }

  /** Forgets a job's checkpoints pointer (the objects are deleted by the caller). */
  async removePointer(epoch: number, jobId: string): Promise<void> {
    await this.#pointers.remove(epoch, jobId);
  }

  /** An object's bytes, chunk by chunk (each request with its timeout and retries). */
  async #read(info: ObjectInfo, name: string): Promise<Uint8Array> {
    const what = `reading state object ${name}`;
    const bytes = await readObjectChunks(
      this.#jsm,
      this.bucket,
      info,
      (get) => retrying(() => withTimeout(get(), this.#timeoutMs, what), this.#readRetries, what),
      { direct: this.#directGet },
    );
    if (bytes === null) throw corrupted(name, 'a chunk is missing');
    return bytes;
  }

  async #info(name: string): Promise<ObjectInfo | null> {
    const what = `reading the info of state object ${name}`;
    const info = await retrying(
      () => withTimeout(this.#os.info(name), this.#timeoutMs, what),
      this.#readRetries,
      what,
    );
    return info === null || info.deleted ? null : info;
  }
}

function notFound(name: string): SluiceError {
  return new SluiceError(ErrorCode.StateNotFound, `state object ${name} does not exist`, {
    retryable: false,
  });
}

function corrupted(name: string, why: string): SluiceError {
  return new SluiceError(ErrorCode.CorruptedState, `state object ${name} is corrupted: ${why}`, {
    retryable: false,
  });
}
