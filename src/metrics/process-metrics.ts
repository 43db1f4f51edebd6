/**
 * The metrics registry of one Sluice process: Node's process metrics plus what the process's actors
 * and tasks register. Values are read at scrape time (`collect`), so the record path only bumps plain
 * numbers.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import { type MetricsServer, startMetricsServer } from './metrics-server.js';

export function createProcessRegistry(labels: Record<string, string>, nc: NatsConnection): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
  new Gauge({
    name: 'sluice_nats_connected',
    help: '1 while the NATS connection is up',
    registers: [registry],
    collect() {
      this.set(nc.isClosed() ? 0 : 1);
    },
  });
  return registry;
}

export interface ProcessMetrics {
  readonly registry: Registry;
  /** `http://host:port/metrics`, when served. */
  readonly url: string | undefined;
  stop(): Promise<void>;
}

/**
 * The registry of a process and, when `metrics.enabled`, its endpoint. A port that cannot be bound is
 * logged, not fatal: the process works without its metrics.
 */
export async function startProcessMetrics(
  config: SluiceConfig,
  labels: Record<string, string>,
  nc: NatsConnection,
  log: Logger,
): Promise<ProcessMetrics> {
  const registry = createProcessRegistry(labels, nc);
  let server: MetricsServer | undefined;
  if (config.metrics.enabled) {
    try {
      server = await startMetricsServer(
        registry,
        { host: config.metrics.bindAddress, ports: config.metrics.ports },
        log,
      );
      log.info({ url: server.url }, 'metrics endpoint listening');
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics endpoint not started');
    }
  }
  return { registry, url: server?.url, stop: async () => server?.close() };
}
