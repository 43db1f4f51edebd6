/**
 * Job artifacts (bundled user code, see `src/execution/bundler.ts`) in the JetStream object store.
 *
 * - One bucket per cluster, `sluice_<clusterId>_artifacts`, created on first use. Objects are named by the
 *   SHA-256 (lowercase hex) of their bytes: content-addressed, so storing the same bundle twice uploads
 *   nothing the second time, and a reader verifies what it got against the name.
 * - Every NATS request has a short timeout (`timeoutMs`) and the idempotent ones are retried with p-retry
 *   (`retries`). Downloads do not use the client's `get`, which creates an ephemeral consumer: on NATS 2.9
 *   with a node of the cluster down, about one such read in four times out creating its consumer (it is
 *   placed on the dead node). They read the object's chunks with message-get requests instead, one per
 *   128 KiB chunk, each retried on its own, then check the bytes against the sha256 name.
 * - Errors: a missing or corrupted artifact is `INVALID_JOB` (not retried); a NATS problem that outlasts the
 *   retries is `TIMEOUT` or the client's error wrapped as `INTERNAL`.
 *
 * {@link ArtifactCache} keeps downloaded bundles on local disk for `import()`.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JetStreamManager, jetstream } from '@nats-io/jetstream';
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import { bucketName, openObjectStore, retrying, withTimeout } from '../../nats/jetstream.js';
import { hasSha256, readObjectChunks, sha256Hex } from '../../nats/object-chunks.js';

export interface ArtifactRef {
  /** SHA-256 of the artifact's bytes, lowercase hex; also its object name. */
  sha256: string;
  sizeBytes: number;
}

export interface ArtifactStoreOptions {
  /** Replicas of the bucket's stream when it is created. Default 1. */
  replicas?: number;
  /** Timeout of one try of one NATS request (for a download: of each chunk's), in ms. Default 5000. */
  timeoutMs?: number;
  /** Retries of an operation after its first try. Default 4. */
  retries?: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The object-store bucket of a cluster's artifacts (only letters, digits, `_` and `-` are allowed). */
export function artifactBucketName(clusterId: string): string {
  return bucketName(clusterId, 'artifacts');
}

export class ArtifactStore {
  readonly bucket: string;
  readonly #os: ObjectStore;
  readonly #jsm: JetStreamManager;
  readonly #timeoutMs: number;
  readonly #retries: number;

  private constructor(
    bucket: string,
    os: ObjectStore,
    jsm: JetStreamManager,
    timeoutMs: number,
    retries: number,
  ) {
    this.bucket = bucket;
    this.#os = os;
    this.#jsm = jsm;
    this.#timeoutMs = timeoutMs;
    this.#retries = retries;
  }

  /** Opens the cluster's artifact bucket, creating it if missing. */
  static async open(
    nc: NatsConnection,
    clusterId: string,
    options: ArtifactStoreOptions = {},
  ): Promise<ArtifactStore> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const retries = options.retries ?? 4;
    const bucket = artifactBucketName(clusterId);
    const os = await openObjectStore(nc, bucket, {
      replicas: options.replicas ?? 1,
      description: `Sluice job artifacts of cluster ${clusterId}`,
      timeoutMs,
      retries,
    });
    const jsm = await jetstream(nc, { timeout: timeoutMs }).jetstreamManager(false);
    return new ArtifactStore(bucket, os, jsm, timeoutMs, retries);
  }

  /**
   * Uploads unless an object with this sha256 name, size and digest exists already; returns whether bytes
   * were uploaded. The sha256 must be that of `code` (checked).
   */
  async put(bundle: { code: Uint8Array; sha256: string }): Promise<{ ref: ArtifactRef; uploaded: boolean }> {
    const { code, sha256 } = bundle;
    checkSha(sha256);
    const actual = sha256Hex(code);
    if (actual !== sha256) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `artifact ${sha256} does not match its bytes (sha256 ${actual})`,
      );
    }
    const ref: ArtifactRef = { sha256, sizeBytes: code.byteLength };
    let uploaded = false;
    await retrying(
      async () => {
        const info = await this.#info(sha256);
        if (info !== null && !info.deleted && info.size === code.byteLength && hasSha256(info, sha256)) {
          return;
        }
        // Replacing an object of that name (a corrupted or partial one) is what putBlob does anyway.
        uploaded = true;
        await withTimeout(
          this.#os.putBlob({ name: sha256 }, code, { timeout: this.#timeoutMs }),
          // Each chunk's publish has its own timeout; this bounds the whole put.
          this.#timeoutMs * (2 + Math.ceil(code.byteLength / (128 * 1024))),
          `uploading artifact ${sha256}`,
        );
      },
      this.#retries,
      `storing artifact ${sha256}`,
    );
    return { ref, uploaded };
  }

  /** Downloads an artifact and verifies its SHA-256 and size. */
  async get(ref: ArtifactRef): Promise<Uint8Array> {
    checkSha(ref.sha256);
    const what = `downloading artifact ${ref.sha256}`;
    // A chunk can vanish when the object is being replaced (see `put`): then read its new version.
    for (let pass = 1; ; pass++) {
      const info = await retrying(() => this.#info(ref.sha256), this.#retries, what);
      if (info === null || info.deleted) {
        throw new SluiceError(ErrorCode.InvalidJob, `artifact ${ref.sha256} not found in ${this.bucket}`);
      }
      if (info.options?.link !== undefined || info.size !== ref.sizeBytes) throw corrupted(ref);
      const bytes = await this.#readChunks(info, what);
      if (bytes === null) {
        if (pass < 3) continue;
        throw corrupted(ref);
      }
      if (bytes.byteLength !== ref.sizeBytes || sha256Hex(bytes) !== ref.sha256) throw corrupted(ref);
      return bytes;
    }
  }

  /** Deletes an artifact; deleting a missing one does nothing. */
  async delete(ref: ArtifactRef): Promise<void> {
    checkSha(ref.sha256);
    await retrying(
      () => withTimeout(this.#os.delete(ref.sha256), this.#timeoutMs, `deleting artifact ${ref.sha256}`),
      this.#retries,
      `deleting artifact ${ref.sha256}`,
    );
  }

  #info(sha256: string): Promise<ObjectInfo | null> {
    return withTimeout(this.#os.info(sha256), this.#timeoutMs, `reading the info of artifact ${sha256}`);
  }

  /** The object's bytes, read chunk by chunk without a consumer; null when a chunk is missing. */
  #readChunks(info: ObjectInfo, what: string): Promise<Uint8Array | null> {
    return readObjectChunks(
      this.#jsm,
      this.bucket,
      info,
      (get) => retrying(() => withTimeout(get(), this.#timeoutMs, what), this.#retries, what),
      { direct: false },
    );
  }
}

/**
 * A per-process on-disk cache of downloaded bundles, `<cacheDir>/<sha256>.mjs`. Files are written
 * atomically (temp file + rename; several processes may share the directory) and verified by hash the
 * first time this process uses them (then only checked to be still there). Concurrent callers for the same
 * artifact share one download.
 */
export class ArtifactCache {
  readonly cacheDir: string;
  readonly #store: ArtifactStore;
  /** Paths being made or verified in this process, by sha256. A failed one is forgotten. */
  readonly #paths = new Map<string, Promise<string>>();

  constructor(store: ArtifactStore, cacheDir: string = join(tmpdir(), 'sluice-artifacts')) {
    this.#store = store;
    this.cacheDir = cacheDir;
  }

  /** A local file holding the artifact, ready for `import(pathToFileURL(path).href)`. */
  path(ref: ArtifactRef): Promise<string> {
    checkSha(ref.sha256);
    const known = this.#paths.get(ref.sha256);
    if (known !== undefined) {
      // A file made earlier may have been removed since (a temp-dir cleaner): then make it again.
      return known.then(async (file) => {
        if (await isFile(file)) return file;
        if (this.#paths.get(ref.sha256) === known) this.#paths.delete(ref.sha256);
        return this.path(ref);
      });
    }
    const p = this.#fetch(ref);
    this.#paths.set(ref.sha256, p);
    p.catch(() => {
      if (this.#paths.get(ref.sha256) === p) this.#paths.delete(ref.sha256);
    });
    return p;
  }

  async #fetch(ref: ArtifactRef): Promise<string> {
    const file = join(this.cacheDir, `${ref.sha256}.mjs`);
    const existing = await readFile(file).catch(() => undefined);
    if (
      existing !== undefined &&
      existing.byteLength === ref.sizeBytes &&
      sha256Hex(existing) === ref.sha256
    ) {
      return file;
    }
    const bytes = await this.#store.get(ref);
    await mkdir(this.cacheDir, { recursive: true });
    const temp = join(this.cacheDir, `.${ref.sha256}.${process.pid}.${randomUUID()}.tmp`);
    try {
      await writeFile(temp, bytes);
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return file;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

function checkSha(sha256: string): void {
  if (!SHA256_HEX.test(sha256)) {
    throw new SluiceError(ErrorCode.InvalidJob, `'${sha256}' is not a sha256 (64 lowercase hex digits)`);
  }
}

function corrupted(ref: ArtifactRef): SluiceError {
  return new SluiceError(ErrorCode.InvalidJob, `artifact ${ref.sha256} is corrupted`);
}

/**
 * A TaskManager's artifact cache, opened on first use and opened again after a failed open. The open
 * retries about 8 s (12 retries, not 4): right after a partition heals the store's stream may still be
 * electing its leader, and a task that fails on it restarts the whole job.
 */
export function lazyArtifactCache(
  nc: NatsConnection,
  clusterId: string,
  replicas: number,
): () => Promise<ArtifactCache> {
  let artifacts: Promise<ArtifactCache> | undefined;
  return () => {
    artifacts ??= ArtifactStore.open(nc, clusterId, { replicas, retries: 12 }).then(
      (store) => new ArtifactCache(store),
    );
    artifacts.catch(() => {
      artifacts = undefined;
    });
    return artifacts;
  };
}
