/**
 * createRemoteEnvironment(): the program itself submits to a running cluster, shipping its own entry
 * file as the job bundle (as Flink's remote environment ships jars).
 */
import type { ExecutionBridge, RemoteEnvironmentOptions } from '../api/execution-bridge.js';
import { ClusterClient } from '../client/cluster-client.js';
import { loadConfig } from '../config/config.js';
import { ClientBridge } from './client-bridge.js';
import { bundleJobFile, uploadBundle } from './job-program.js';

export function runRemotely(options: RemoteEnvironmentOptions): ExecutionBridge {
  let bridge: Promise<{ bridge: ClientBridge; client: ClusterClient }> | undefined;
  let active = 0;
  const connect = async () => {
    const config = loadConfig({
      env: process.env,
      overrides: { 'nats.servers': options.nats, 'cluster.id': options.clusterId },
    });
    const entry = options.jobFile ?? process.argv[1];
    if (!entry) throw new Error('createRemoteEnvironment: no job file to ship (set jobFile)');
    const bundle = await bundleJobFile(entry);
    const client = await ClusterClient.connect(config);
    const { ref } = await uploadBundle(client.nc, config.clusterId, bundle, config.highAvailability.replicas);
    return {
      client,
      bridge: new ClientBridge({
        client,
        nc: client.nc,
        maxMessageBytes: config.rpc.maxMessageBytes,
        artifact: ref,
        entry,
        args: process.argv.slice(2),
        parallelism: config.parallelismDefault,
        bufferTimeoutMs: config.bufferTimeoutMs,
        detached: false,
        report: (line) => process.stderr.write(`${line}\n`),
      }),
    };
  };
  return {
    submit: async (request) => {
      bridge ??= connect();
      const { bridge: b, client } = await bridge;
      active++;
      const job = await b.submit(request);
      void job
        .getJobExecutionResult()
        .catch(() => undefined)
        .finally(() => {
          if (--active === 0) {
            bridge = undefined;
            void client.close();
          }
        });
      return job;
    },
  };
}
