/**
 * The attached client of an HA application (`sluice run-application` with `high-availability.type: nats`)
 * follows the application, not one JobManager process: it reads the application's result from the HA
 * application store, which whichever JobManager ends the application writes, once.
 * Promises: `result()` never throws (a store that cannot be read now is "not ended yet"); `close()` is
 * idempotent. Refuses: nothing.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { SluiceConfig } from '../config/config.js';
import { type ApplicationResult, ApplicationResultSchema } from '../entrypoint/application.js';
import { ApplicationStore } from '../ha/application-store.js';
import { connectNats } from '../nats/connection.js';

export class ApplicationFollower {
  readonly #nc: NatsConnection;
  readonly #store: ApplicationStore;

  private constructor(nc: NatsConnection, store: ApplicationStore) {
    this.#nc = nc;
    this.#store = store;
  }

  static async connect(config: SluiceConfig): Promise<ApplicationFollower> {
    const nc = await connectNats(config.nats, { name: `sluice-application-client-${config.clusterId}` });
    try {
      const store = await ApplicationStore.open(nc, config.clusterId, {
        replicas: config.highAvailability.replicas,
      });
      return new ApplicationFollower(nc, store);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /** The application's result once it has ended; undefined before (or while the store is unreachable). */
  async result(): Promise<ApplicationResult | undefined> {
    const value = await this.#store.result().catch(() => null);
    if (value === null) return undefined;
    const parsed = ApplicationResultSchema.safeParse(value);
    return parsed.success ? parsed.data : undefined;
  }

  async close(): Promise<void> {
    if (!this.#nc.isClosed()) await this.#nc.drain().catch(() => this.#nc.close());
  }
}
