/**
 * The HA job stores, in JetStream KV (see `docs/high-availability.md`):
 * - {@link JobGraphStore}, bucket `sluice_<clusterId>_jobs`: jobId → job graph (JSON) + submit options.
 *   Written when a job is submitted, removed when it has ended and its result is stored.
 * - {@link JobResultStore}, bucket `sluice_<clusterId>_results`: jobId → globally terminal status + time.
 *   A new leader never re-runs a job that has a result.
 * - {@link recoverableJobs}: what a new leader must recover — in `jobs` and not in `results`.
 *
 * Every write carries the writer's leader epoch and is fenced per bucket (`fenced-kv-store.ts`): it is
 * refused with `LEADERSHIP_LOST` once a newer epoch has written to the bucket. Reads use short timeouts and
 * retries (a leaderless stream during NATS failover is the retryable `JETSTREAM_UNAVAILABLE`).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../common/errors.js';
import { isJobId, type JobId } from '../jobgraph/job-id.js';
import { bucketName, openKvBucket } from '../nats/jetstream.js';
import type { WallClock } from './clock.js';
import { FencedKvStore } from './fenced-kv-store.js';

export const DEFAULT_HA_STORE_TIMEOUT_MS = 2_000;
export const DEFAULT_HA_STORE_RETRIES = 5;

export interface HaStoreOptions {
  /** Replicas of the bucket's stream when it is created (1, 3 or 5). Default 1. */
  replicas?: number;
  /** Timeout of one NATS request, ms. Default {@link DEFAULT_HA_STORE_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Retries of an operation after its first try. Default {@link DEFAULT_HA_STORE_RETRIES}. */
  retries?: number;
  /** For the informational `writtenAt` of each value. Default `Date.now`. */
  wallClock?: WallClock;
}

async function openStore<T>(
  nc: NatsConnection,
  clusterId: string,
  store: 'jobs' | 'results',
  schema: z.ZodType<T>,
  description: string,
  options: HaStoreOptions,
): Promise<FencedKvStore<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HA_STORE_TIMEOUT_MS;
  const retries = options.retries ?? DEFAULT_HA_STORE_RETRIES;
  const bucket = bucketName(clusterId, store);
  const kv = await openKvBucket(nc, bucket, {
    history: 1,
    replicas: options.replicas ?? 1,
    description: `${description} of Sluice cluster ${clusterId}`,
    timeoutMs,
    retries,
  });
  return new FencedKvStore(kv, bucket, schema, { timeoutMs, retries, wallClock: options.wallClock });
}

function checkJobId(jobId: string): void {
  if (!isJobId(jobId)) {
    throw new SluiceError(ErrorCode.InvalidJob, `'${jobId}' is not a job id (32 lower-case hex characters)`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Job graphs.

const JobGraphEntrySchema = z.object({
  /** The JobGraph as the Dispatcher validated it; the store does not interpret it. */
  jobGraph: z.custom<unknown>((v) => v !== undefined && v !== null, 'a job graph is required'),
  /** What the client asked for besides the graph (e.g. `fromSavepoint`, detached). */
  submitOptions: z.record(z.string(), z.unknown()).optional(),
});
export type JobGraphEntry = z.infer<typeof JobGraphEntrySchema>;

export interface StoredJobGraph extends JobGraphEntry {
  jobId: JobId;
  /** The epoch of the leader that stored it. */
  epoch: number;
  /** The writer's wall clock, ms since the epoch (informational). */
  writtenAt: number;
}

export class JobGraphStore {
  readonly #store: FencedKvStore<JobGraphEntry>;

  private constructor(store: FencedKvStore<JobGraphEntry>) {
    this.#store = store;
  }

  /** Opens (creating if missing) `sluice_<clusterId>_jobs`. */
  static async open(
    nc: NatsConnection,
    clusterId: string,
    options: HaStoreOptions = {},
  ): Promise<JobGraphStore> {
    return new JobGraphStore(
      await openStore(nc, clusterId, 'jobs', JobGraphEntrySchema, 'Job graphs', options),
    );
  }

  get bucket(): string {
    return this.#store.bucket;
  }

  /** Stores (or replaces) a job's graph under the writer's epoch. `LEADERSHIP_LOST` if a newer epoch wrote. */
  async put(epoch: number, jobId: JobId, entry: JobGraphEntry): Promise<void> {
    checkJobId(jobId);
    await this.#store.write(epoch, jobId, entry);
  }

  /** The stored graph; null when there is none. `CORRUPTED_HA_DATA` for bytes Sluice did not write. */
  async get(jobId: JobId): Promise<StoredJobGraph | null> {
    checkJobId(jobId);
    const v = await this.#store.read(jobId);
    return v === null ? null : { jobId, ...v.data, epoch: v.epoch, writtenAt: v.writtenAt };
  }

  /** Removes a job's graph; false if there was none. `LEADERSHIP_LOST` if a newer epoch wrote. */
  remove(epoch: number, jobId: JobId): Promise<boolean> {
    checkJobId(jobId);
    return this.#store.remove(epoch, jobId);
  }

  /** The ids of the stored jobs, sorted. */
  async list(): Promise<JobId[]> {
    return (await this.#store.keys()).filter(isJobId);
  }

  /** The highest epoch that wrote to this store. */
  fenceEpoch(): Promise<number | undefined> {
    return this.#store.fenceEpoch();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Job results.

/**
 * The globally terminal statuses. `SUSPENDED` is not one: a job suspended because its JobManager stopped
 * must be recovered by the next leader, so it never goes into the result store.
 */
export const GloballyTerminalStatus = z.enum(['FINISHED', 'FAILED', 'CANCELED']);
export type GloballyTerminalStatus = z.infer<typeof GloballyTerminalStatus>;

const JobResultSchema = z.object({
  status: GloballyTerminalStatus,
  /** When the job reached it, ms since the epoch. */
  endedAt: z.number().finite(),
  /** The failure cause's message, for FAILED. */
  failure: z
    .string()
    .max(64 * 1024)
    .optional(),
});
export type JobResult = z.infer<typeof JobResultSchema>;

export interface StoredJobResult extends JobResult {
  jobId: JobId;
  epoch: number;
  writtenAt: number;
}

export class JobResultStore {
  readonly #store: FencedKvStore<JobResult>;

  private constructor(store: FencedKvStore<JobResult>) {
    this.#store = store;
  }

  /** Opens (creating if missing) `sluice_<clusterId>_results`. */
  static async open(
    nc: NatsConnection,
    clusterId: string,
    options: HaStoreOptions = {},
  ): Promise<JobResultStore> {
    return new JobResultStore(
      await openStore(nc, clusterId, 'results', JobResultSchema, 'Job results', options),
    );
  }

  get bucket(): string {
    return this.#store.bucket;
  }

  /** Records a job's terminal result under the writer's epoch. `LEADERSHIP_LOST` if a newer epoch wrote. */
  async put(epoch: number, jobId: JobId, result: JobResult): Promise<void> {
    checkJobId(jobId);
    await this.#store.write(epoch, jobId, result);
  }

  async has(jobId: JobId): Promise<boolean> {
    checkJobId(jobId);
    return this.#store.has(jobId);
  }

  async get(jobId: JobId): Promise<StoredJobResult | null> {
    checkJobId(jobId);
    const v = await this.#store.read(jobId);
    return v === null ? null : { jobId, ...v.data, epoch: v.epoch, writtenAt: v.writtenAt };
  }

  /** The ids of the jobs with a result, sorted. */
  async list(): Promise<JobId[]> {
    return (await this.#store.keys()).filter(isJobId);
  }

  fenceEpoch(): Promise<number | undefined> {
    return this.#store.fenceEpoch();
  }
}

/** The jobs a new leader must recover: stored in `jobs` and without a result. Sorted. */
export async function recoverableJobs(jobs: JobGraphStore, results: JobResultStore): Promise<JobId[]> {
  const [stored, ended] = await Promise.all([jobs.list(), results.list()]);
  const done = new Set(ended);
  return stored.filter((id) => !done.has(id));
}
