/**
 * `sluice run-application` (and `sluice run -t application`): start a dedicated cluster whose
 * JobManager runs the job file's main; follow it (attached) or return at once (-d).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { SluiceConfig } from '../config/config.js';
import type { ApplicationResult, ApplicationSpec } from '../entrypoint/application.js';
import { bundleJobFile } from '../execution/job-program.js';
import { clusterDir, isAlive, startCluster, stopCluster } from '../providers/standalone.js';
import { ApplicationFollower } from './application-follower.js';
import { type GlobalOptions, globalArgs } from './global-options.js';

export interface ApplicationOptions {
  detached: boolean;
  parallelism: number;
  taskManagers?: number;
  /** JobManagers to start (default 1); more need `high-availability.type: nats` (standbys). */
  jobManagers?: number;
  shutdownOnAttachedExit: boolean;
}

export async function runApplicationMode(
  job: string,
  args: string[],
  config: SluiceConfig,
  global: GlobalOptions,
  options: ApplicationOptions,
): Promise<number> {
  // Bundling first: a missing file or a syntax error fails here, before any process starts.
  const entry = resolve(job);
  const jobManagers = options.jobManagers ?? 1;
  const ha = config.highAvailability.type !== 'none';
  if (jobManagers > 1 && !ha) {
    throw new SluiceError(
      ErrorCode.InvalidConfig,
      `--jobmanagers ${jobManagers} needs high availability: add -D high-availability.type=nats`,
    );
  }
  await bundleJobFile(entry);
  const applicationId = `app-${randomBytes(4).toString('hex')}`;
  const appConfig: SluiceConfig = { ...config, clusterId: applicationId };
  const dir = clusterDir(appConfig);
  await mkdir(dir, { recursive: true });
  const spec: ApplicationSpec = {
    applicationId,
    entry,
    args,
    parallelism: options.parallelism,
    clientArgs: globalArgs({ ...global, clusterId: applicationId, nats: config.nats.servers.join(',') }),
    outputFile: join(dir, 'application.out'),
    resultFile: join(dir, 'result.json'),
  };
  const specFile = join(dir, 'application.json');
  await writeFile(specFile, `${JSON.stringify(spec, null, 2)}\n`);
  const slots = config.taskmanager.numberOfTaskSlots;
  const taskManagers = options.taskManagers ?? Math.max(1, Math.ceil(options.parallelism / slots));
  const childArgs = globalArgs({ ...global, clusterId: applicationId, nats: config.nats.servers.join(',') });
  let state: Awaited<ReturnType<typeof startCluster>>;
  try {
    state = await startCluster(appConfig, {
      taskManagers,
      jobManagers,
      slots,
      childArgs,
      jobManagerArgs: ['--application-spec', specFile],
      onProgress: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (err) {
    // A main that ends at once (it throws, or submits nothing) can finish the application before the
    // cluster was seen up: its JobManager wrote the result and left. That is the application's outcome.
    if (!existsSync(spec.resultFile)) throw err;
    await stopCluster(appConfig).catch(() => undefined);
    return reportResult(applicationId, spec);
  }
  process.stdout.write(
    `Application ${applicationId} started (cluster id ${applicationId}, ${taskManagers} TaskManagers)\n`,
  );
  if (options.detached) {
    process.stdout.write(`Follow it with: sluice list --all --cluster-id ${applicationId}\n`);
    return 0;
  }

  // With HA the client follows the application (its result in the HA application store), not one
  // JobManager process: the leader may die and a standby finish the application.
  const jobManagerPids = state.processes.filter((p) => p.role === 'jobmanager').map((p) => p.pid);
  const jm = state.processes.find((p) => p.role === 'jobmanager')!;
  const follower = ha ? await ApplicationFollower.connect(appConfig) : undefined;
  let printed = 0;
  const flushOutput = () => {
    if (!existsSync(spec.outputFile)) return;
    const text = readFileSync(spec.outputFile, 'utf8');
    if (text.length > printed) process.stdout.write(text.slice(printed));
    printed = text.length;
  };
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  let ended: ApplicationResult | undefined;
  try {
    while (jobManagerPids.some(isAlive) && !interrupted) {
      flushOutput();
      ended = await follower?.result();
      if (ended) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    flushOutput();
  } finally {
    process.off('SIGINT', onSigint);
    await follower?.close();
  }
  if (interrupted) {
    if (options.shutdownOnAttachedExit) {
      await stopCluster(appConfig);
      process.stderr.write(
        `Client interrupted: application ${applicationId} and its cluster were shut down\n`,
      );
      return 130;
    }
    process.stderr.write(
      `Client interrupted; application ${applicationId} keeps running. Stop it with: sluice cluster stop --cluster-id ${applicationId}\n`,
    );
    return 130;
  }
  if (ended) {
    // Let the JobManagers finish their shutdown (TaskManagers first), then make sure nothing is left.
    const deadline = Date.now() + 15_000;
    while (jobManagerPids.some(isAlive) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    await stopCluster(appConfig);
    flushOutput();
    return reportResult(applicationId, spec, printed, ended);
  }
  // The JobManager asked its TaskManagers to leave; make sure nothing of the cluster is left.
  await stopCluster(appConfig);
  if (!existsSync(spec.resultFile)) {
    process.stderr.write(
      `Application ${applicationId}: the JobManager ended without a result; see ${jm.log}\n`,
    );
    return 1;
  }
  return reportResult(applicationId, spec, printed);
}

/** Prints what the main wrote (from `printed` on) and the application's result; its exit status. */
function reportResult(
  applicationId: string,
  spec: ApplicationSpec,
  printed = 0,
  stored?: ApplicationResult,
): number {
  if (existsSync(spec.outputFile)) process.stdout.write(readFileSync(spec.outputFile, 'utf8').slice(printed));
  const result = stored ?? (JSON.parse(readFileSync(spec.resultFile, 'utf8')) as ApplicationResult);
  process.stdout.write(
    `Application ${applicationId} ended: ${result.jobs.length} job(s), exit status ${result.exitCode}\n`,
  );
  return result.exitCode;
}
