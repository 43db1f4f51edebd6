/**
 * A JetStream cluster whose nodes each run on their own test host (network namespace, see ./netns.ts), so
 * that a test can cut one node off from its peers and its clients.
 *
 * Promises: node i listens on `<host address>:4222` (clients) and `:6222` (routes; each namespace has its
 * own ports, so they are fixed) with full-mesh routes (one host alone: a plain server, no routes), server name `<clusterName>-n<i>`, and its JetStream
 * store in a dir of its own that survives a kill, so {@link NetnsNatsCluster.restart} brings a killed node
 * back with its data. Ready means: every node answers `$JS.API.INFO` and a stream with one replica per node
 * can be placed (as `startNatsCluster` in src/nats/launcher.ts). `stop()` stops every node and removes the
 * store dirs. The servers are started by the launcher (its exit hook kills them), through a small wrapper
 * script that execs `ip netns exec <ns> nats-server`: the handle's pid is the server's own.
 *
 * Refuses: fewer hosts than 1; hosts of another network are not checked (pass the ones you added).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { findNatsServerBinary, type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { NetHost } from './netns.js';

const CLIENT_PORT = 4222;
const ROUTE_PORT = 6222;

export interface NetnsNatsCluster {
  /** The running handle of each node (a restarted node's new handle replaces the killed one). */
  readonly servers: NatsServerHandle[];
  readonly urls: string[];
  readonly hosts: NetHost[];
  /** Starts node `index` again on its host, ports and store dir (after it was killed). */
  restart(index: number): Promise<NatsServerHandle>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startNatsClusterOnHosts(
  hosts: NetHost[],
  options: { clusterName?: string; logDir?: string; readyTimeoutMs?: number } = {},
): Promise<NetnsNatsCluster> {
  if (hosts.length < 1) throw new Error('a cluster needs at least one host');
  const name = options.clusterName ?? 'sluice';
  const natsServer = findNatsServerBinary();
  const root = await mkdtemp(join(tmpdir(), 'sluice-netns-nats-'));
  const routes = hosts.map((h) => `nats-route://${h.address}:${ROUTE_PORT}`);
  const wrappers = await Promise.all(
    hosts.map(async (h, i) => {
      const path = join(root, `nats-n${i + 1}.sh`);
      const argv = h.wrap([natsServer]).map((a) => `'${a.replace(/'/g, `'\\''`)}'`);
      await writeFile(path, `#!/bin/sh\nexec ${argv.join(' ')} "$@"\n`, { mode: 0o755 });
      return path;
    }),
  );
  const start = (i: number) =>
    startNatsServer({
      host: hosts[i]!.address,
      port: CLIENT_PORT,
      serverName: `${name}-n${i + 1}`,
      storeDir: join(root, `store-n${i + 1}`),
      // One node alone is a plain server (nats-server refuses JetStream in a cluster of one).
      cluster:
        hosts.length > 1 ? { name, port: ROUTE_PORT, routes: routes.filter((_, j) => j !== i) } : undefined,
      binary: wrappers[i]!,
      waitForJetStream: false,
      logFile: options.logDir !== undefined ? join(options.logDir, `n${i + 1}.log`) : undefined,
    });
  const servers: NatsServerHandle[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    servers.push(...(await Promise.all(hosts.map((_, i) => start(i)))));
    await waitReady(
      servers.map((s) => s.url),
      hosts.length,
      Date.now() + (options.readyTimeoutMs ?? 30_000),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    servers,
    urls: servers.map((s) => s.url),
    hosts,
    async restart(index: number) {
      const handle = await start(index);
      servers[index] = handle;
      return handle;
    },
    stop,
  };
}

/** Every node answers JetStream, then a stream with `replicas` replicas can be placed. */
async function waitReady(urls: string[], replicas: number, deadline: number): Promise<void> {
  let lastError: unknown;
  for (const url of urls) {
    for (;;) {
      try {
        const nc = await connect({
          servers: url,
          timeout: 2_000,
          reconnect: false,
          name: 'sluice-netns-probe',
        });
        try {
          await (await jetstreamManager(nc, { timeout: 1_000, checkAPI: false })).getAccountInfo();
          break;
        } finally {
          await nc.close().catch(() => {});
        }
      } catch (err) {
        lastError = err;
        if (Date.now() > deadline) throw new Error(`${url}: JetStream not ready: ${String(lastError)}`);
        await sleep(100);
      }
    }
  }
  const nc = await connect({ servers: urls, timeout: 2_000, name: 'sluice-netns-probe' });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 2_000, checkAPI: false });
    const stream = `sluice_netns_probe_${process.pid}_${Date.now()}`;
    for (;;) {
      try {
        await jsm.streams.add({
          name: stream,
          subjects: [`${stream}.>`],
          num_replicas: replicas,
          storage: StorageType.Memory,
        });
        await jsm.streams.delete(stream).catch(() => undefined);
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`no stream of ${replicas} replicas could be placed: ${String(err)}`);
        await sleep(100);
      }
    }
  } finally {
    await nc.close().catch(() => {});
  }
}
