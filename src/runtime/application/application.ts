/**
 * Application mode: a dedicated cluster whose JobManager runs the program's main. The main runs in a
 * child process (a `sluice run` of the job file against this cluster), never in the JobManager's own
 * event loop, so user code cannot stall heartbeats or leadership. When main has returned and no job
 * runs any more, the JobManager shuts the TaskManagers down and exits with the application's status.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ClusterClient } from '../../client/cluster-client.js';
import type { Logger } from '../../common/log.js';
import type { SluiceConfig } from '../../config/config.js';
import { isTerminalJobStatus } from '../job-status.js';
import type { JobManager } from '../jobmanager.js';

const BIN = fileURLToPath(new URL('../../../bin/sluice.js', import.meta.url));

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
  const args = [BIN, 'run', ...spec.clientArgs, '-p', String(spec.parallelism), spec.entry, ...spec.args];
  log.info({ application: spec.applicationId, entry: spec.entry }, 'running the application main');
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SLUICE_APPLICATION_ID: spec.applicationId },
  });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  const exitCode = await new Promise<number>((resolve) => {
    // 'close', not 'exit': only then has everything the main wrote come through the pipes.
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on('error', (err) => {
      out.write(`cannot start the application main: ${err.message}\n`);
      resolve(1);
    });
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
