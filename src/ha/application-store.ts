/**
 * The HA application store (application mode with `high-availability.type: nats`), bucket
 * `sluice_<clusterId>_application`: the application's spec (key `spec`: what to run, so that any
 * JobManager that becomes leader can run its main again) and its result (key `result`: written once, when
 * the application has ended; a leader that finds it does not run the application again).
 *
 * Promises: writes are fenced by leader epoch ({@link FencedKvStore}): once a newer leader wrote (it writes
 * the spec first, on every grant), an older leader's result is refused with `LEADERSHIP_LOST`; a result is
 * never replaced. Reads may be done by anyone (a standby, the attached client).
 * Refuses: to interpret the spec and the result — the entrypoint validates them.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../common/errors.js';
import { bucketName, openKvBucket } from '../nats/jetstream.js';
import { FencedKvStore } from './fenced-kv-store.js';
import { DEFAULT_HA_STORE_RETRIES, DEFAULT_HA_STORE_TIMEOUT_MS, type HaStoreOptions } from './job-stores.js';

const EntrySchema = z.object({ value: z.custom<unknown>((v) => v !== undefined && v !== null) });

const SPEC_KEY = 'spec';
const RESULT_KEY = 'result';

export class ApplicationStore {
  readonly #store: FencedKvStore<{ value: unknown }>;

  private constructor(store: FencedKvStore<{ value: unknown }>) {
    this.#store = store;
  }

  /** Opens (creating if missing) `sluice_<clusterId>_application`. */
  static async open(
    nc: NatsConnection,
    clusterId: string,
    options: HaStoreOptions = {},
  ): Promise<ApplicationStore> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_HA_STORE_TIMEOUT_MS;
    const retries = options.retries ?? DEFAULT_HA_STORE_RETRIES;
    const bucket = bucketName(clusterId, 'application');
    const kv = await openKvBucket(nc, bucket, {
      history: 1,
      replicas: options.replicas ?? 1,
      description: `Application of Sluice cluster ${clusterId}`,
      timeoutMs,
      retries,
    });
    return new ApplicationStore(
      new FencedKvStore(kv, bucket, EntrySchema, { timeoutMs, retries, wallClock: options.wallClock }),
    );
  }

  /** Stores the spec under `epoch` (raising the fence: older leaders can no longer write). */
  async putSpec(epoch: number, spec: unknown): Promise<void> {
    await this.#store.write(epoch, SPEC_KEY, { value: spec });
  }

  async spec(): Promise<unknown> {
    return (await this.#store.read(SPEC_KEY))?.data.value ?? null;
  }

  /** Records the application's result under `epoch`; `ILLEGAL_STATE` if there is one already. */
  async putResult(epoch: number, result: unknown): Promise<void> {
    if (await this.#store.has(RESULT_KEY)) {
      throw new SluiceError(ErrorCode.IllegalState, `${this.#store.bucket}: the application already ended`);
    }
    await this.#store.write(epoch, RESULT_KEY, { value: result });
  }

  /** The application's result; null while it has not ended. */
  async result(): Promise<unknown> {
    return (await this.#store.read(RESULT_KEY))?.data.value ?? null;
  }
}
