/**
 * Application mode: a dedicated cluster whose JobManager runs the program's main. The main runs in a
 * child process (a `sluice run` of the job file against this cluster), never in the JobManager's own
 * event loop, so user code cannot stall heartbeats or leadership. When main has returned and no job
 * runs any more, the JobManager shuts the TaskManagers down and exits with the application's status.
 */
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { isTerminalJobStatus } from '../api/job-status.js';
import { ClusterClient } from '../client/cluster-client.js';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import { runProgramInChild } from '../execution/run-program-in-child.js';
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

export interface ApplicationResult {
  applicationId: string;
  exitCode: number;
  jobs: Array<{ jobId: string; name: string; status: string; error: string | null }>;
}

export async function readApplicationSpec(file: string): Promise<ApplicationSpec> {
  return ApplicationSpecSchema.parse(JSON.parse(await readFile(file, 'utf8')));
}

/** Runs the application's main to its end, waits for its jobs, and records the result. */
export async function runApplication(
  jm: JobManager,
  spec: ApplicationSpec,
  config: SluiceConfig,
  log: Logger,
): Promise<ApplicationResult> {
  const out = createWriteStream(spec.outputFile, { flags: 'a' });
  log.info({ application: spec.applicationId, entry: spec.entry }, 'running the application main');
  const child = runProgramInChild({
    entry: spec.entry,
    args: spec.args,
    detached: false,
    clientArgs: spec.clientArgs,
    parallelism: spec.parallelism,
    applicationId: spec.applicationId,
  });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  const exitCode = await child.exited.catch((err: Error) => {
    out.write(`cannot start the application main: ${err.message}\n`);
    return 1;
  });
  log.info({ application: spec.applicationId, exitCode }, 'application main returned');

  // Jobs that main started without waiting for them (detached, or executeAsync not awaited) still count.
  const client = ClusterClient.on(jm.nc, config);
  let jobs = await client.list(true);
  while (jobs.some((j) => !isTerminalJobStatus(j.status))) {
    await new Promise((r) => setTimeout(r, 200));
    jobs = await client.list(true);
  }
  const details = await Promise.all(jobs.map((j) => client.status(j.jobId)));
  const result: ApplicationResult = {
    applicationId: spec.applicationId,
    exitCode,
    jobs: details.map((d) => ({
      jobId: d.jobId,
      name: d.name,
      status: d.status,
      error: d.error?.message ?? null,
    })),
  };
  await new Promise<void>((resolve) => out.end(resolve));
  await writeFile(spec.resultFile, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}
