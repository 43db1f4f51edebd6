/**
 * Application mode: a dedicated cluster whose JobManager runs the program's main. The main runs in a
 * child process (a `sluice run` of the job file against this cluster), never in the JobManager's own
 * event loop, so user code cannot stall heartbeats or leadership. When main has returned and no job
 * runs any more, the JobManager shuts the TaskManagers down and exits with the application's status.
 *
 * With high availability (`high-availability.type: nats`) every JobManager of the cluster runs this; only
 * the leader runs the main. The spec and, at the end, the result live in the HA application store
 * (`ApplicationStore`). A new leader runs the main again from the start: its jobs have fixed ids (from the
 * application id and the execute() index), so the Dispatcher attaches the main to the jobs the former
 * leader's run submitted (recovered from their checkpoints, or ended: from the job result store) instead of
 * running them again. The application ends once: the result is written under the leader's epoch (fenced);
 * a JobManager that finds it (a standby, or a leader after a failover) ends with it, running nothing.
 * Refuses: a stored spec or result that does not parse (`CORRUPTED_HA_DATA`).
 */
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { isTerminalJobStatus } from '../api/job-status.js';
import { ClusterClient } from '../client/cluster-client.js';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import { runProgramInChild } from '../execution/run-program-in-child.js';
import { ApplicationStore } from '../ha/application-store.js';
import type { JobManager } from './jobmanager.js';

export const ApplicationSpecSchema = z.object({
  applicationId: z.string(),
  /** Absolute path of the job file. */
  entry: z.string(),
  args: z.array(z.string()),
  parallelism: z.number().int().min(1),
  /** The configuration arguments given at submission (--nats, --config, -D, --cluster-id), for the program's client. */
  clientArgs: z.array(z.string()),
  /** Where the program's output and the result go. */
  outputFile: z.string(),
  resultFile: z.string(),
});
export type ApplicationSpec = z.infer<typeof ApplicationSpecSchema>;

export const ApplicationResultSchema = z.object({
  applicationId: z.string(),
  exitCode: z.number().int(),
  jobs: z.array(
    z.object({ jobId: z.string(), name: z.string(), status: z.string(), error: z.string().nullable() }),
  ),
});
export type ApplicationResult = z.infer<typeof ApplicationResultSchema>;

export interface ApplicationOutcome {
  result: ApplicationResult;
  /** Whether this JobManager ran the application to its end (it then shuts the TaskManagers down). */
  ranIt: boolean;
}

const LEADERSHIP_POLL_MS = 200;

export async function readApplicationSpec(file: string): Promise<ApplicationSpec> {
  return ApplicationSpecSchema.parse(JSON.parse(await readFile(file, 'utf8')));
}

/** Runs the application to its end (with HA: as leader, or waits for the leader's result). */
export async function runApplication(
  jm: JobManager,
  spec: ApplicationSpec,
  config: SluiceConfig,
  log: Logger,
): Promise<ApplicationOutcome> {
  if (config.highAvailability.type === 'none') {
    // Without HA this JobManager always leads: the run always ends with a result.
    const result = (await runOnce(jm, spec, config, log, () => true))!;
    await writeFile(spec.resultFile, `${JSON.stringify(result, null, 2)}\n`);
    return { result, ranIt: true };
  }
  const store = await ApplicationStore.open(jm.nc, config.clusterId, {
    replicas: config.highAvailability.replicas,
  });
  for (;;) {
    const ended = await storedResult(store).catch(() => undefined);
    if (ended) {
      log.info({ application: ended.applicationId, exitCode: ended.exitCode }, 'the application has ended');
      return { result: ended, ranIt: false };
    }
    const epoch = jm.leaderEpoch;
    if (epoch === undefined) {
      await sleep(LEADERSHIP_POLL_MS);
      continue;
    }
    const leading = () => jm.leaderEpoch === epoch;
    try {
      // The spec of the first leader is the application's; writing it raises the store's fence, so no
      // former leader can store a result from now on.
      const stored = await store.spec();
      const current = stored === null ? spec : parseStored(ApplicationSpecSchema, stored, 'spec');
      await store.putSpec(epoch, current);
      if (await storedResult(store)) continue;
      const result = await runOnce(jm, current, config, log, leading);
      if (result === undefined) continue;
      await store.putResult(epoch, result);
      await writeFile(current.resultFile, `${JSON.stringify(result, null, 2)}\n`);
      return { result, ranIt: true };
    } catch (err) {
      if (err instanceof SluiceError && err.code === ErrorCode.CorruptedHaData) throw err;
      log.warn(
        { epoch, err: err instanceof Error ? err.message : String(err) },
        'application run interrupted; trying again while this JobManager leads',
      );
      await sleep(LEADERSHIP_POLL_MS);
    }
  }
}

async function storedResult(store: ApplicationStore): Promise<ApplicationResult | undefined> {
  const value = await store.result();
  return value === null ? undefined : parseStored(ApplicationResultSchema, value, 'result');
}

function parseStored<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new SluiceError(ErrorCode.CorruptedHaData, `the stored application ${what} is not valid`);
  }
  return parsed.data;
}

/**
 * Runs main in a child and waits for the application's jobs; undefined when `leading()` turned false
 * first (the child is killed: the next leader runs main again).
 */
async function runOnce(
  jm: JobManager,
  spec: ApplicationSpec,
  config: SluiceConfig,
  log: Logger,
  leading: () => boolean,
): Promise<ApplicationResult | undefined> {
  const out = createWriteStream(spec.outputFile, { flags: 'a' });
  const closeOut = () => new Promise<void>((resolve) => out.end(resolve));
  log.info({ application: spec.applicationId, entry: spec.entry }, 'running the application main');
  const child = runProgramInChild({
    entry: spec.entry,
    args: spec.args,
    detached: false,
    clientArgs: spec.clientArgs,
    parallelism: spec.parallelism,
    applicationId: spec.applicationId,
    exitWithParent: true,
  });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  let lost = false;
  let mainReturned = false;
  const exitCode = await Promise.race([
    child.exited
      .catch((err: Error) => {
        out.write(`cannot start the application main: ${err.message}\n`);
        return 1;
      })
      .finally(() => {
        mainReturned = true;
      }),
    (async () => {
      while (leading() && !mainReturned) await sleep(LEADERSHIP_POLL_MS);
      lost = !mainReturned;
      return -1;
    })(),
  ]);
  if (lost) {
    child.kill();
    await child.exited.catch(() => undefined);
    await closeOut();
    log.warn({ application: spec.applicationId }, 'leadership lost while the application main ran');
    return undefined;
  }
  log.info({ application: spec.applicationId, exitCode }, 'application main returned');

  // Jobs that main started without waiting for them (detached, or executeAsync not awaited) still count.
  const client = ClusterClient.on(jm.nc, config);
  for (;;) {
    if (!leading()) {
      await closeOut();
      return undefined;
    }
    const jobs = await client.list(true).catch(() => undefined);
    if (jobs && !jobs.some((j) => !isTerminalJobStatus(j.status))) {
      const details = await Promise.all(jobs.map((j) => client.status(j.jobId)));
      await closeOut();
      return {
        applicationId: spec.applicationId,
        exitCode,
        jobs: details.map((d) => ({
          jobId: d.jobId,
          name: d.name,
          status: d.status,
          error: d.error?.message ?? null,
        })),
      };
    }
    await sleep(LEADERSHIP_POLL_MS);
  }
}
