/**
 * Per-job mode (legacy, deprecated as in Flink 1.15+): main runs on the client, against a cluster
 * started for this one program and torn down when it ends.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { SluiceConfig } from '../config/config.js';
import { bundleJobFile } from '../execution/job-program.js';
import { startCluster, stopCluster } from '../providers/standalone.js';
import { globalArgs } from './global-options.js';
import { type RunOptions, runJobFile } from './run-job-file.js';

export async function runPerJob(
  job: string,
  args: string[],
  config: SluiceConfig,
  options: RunOptions,
): Promise<number> {
  await bundleJobFile(resolve(job));
  const clusterId = `job-${randomBytes(4).toString('hex')}`;
  const jobConfig: SluiceConfig = { ...config, clusterId };
  const slots = config.taskmanager.numberOfTaskSlots;
  await startCluster(jobConfig, {
    taskManagers: Math.max(1, Math.ceil(config.parallelismDefault / slots)),
    slots,
    childArgs: globalArgs({ ...options, clusterId }),
    // Detached, nobody stays to stop the cluster: its JobManager does, once the jobs have ended.
    ...(options.detached ? { jobManagerArgs: ['--exit-when-jobs-end'] } : {}),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  const onSigint = () => {
    if (options.shutdownOnAttachedExit) void stopCluster(jobConfig).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSigint);
  let handedOver = false;
  try {
    const code = await runJobFile(job, args, jobConfig, { ...options, clusterId });
    handedOver = options.detached === true && code === 0;
    if (handedOver) process.stdout.write(`Per-job cluster ${clusterId} stops by itself when its jobs end\n`);
    return code;
  } finally {
    process.off('SIGINT', onSigint);
    if (!handedOver) await stopCluster(jobConfig);
  }
}
