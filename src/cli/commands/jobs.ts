/**
 * `sluice list`, `status`, `cancel`, `savepoint`, `stop`, `checkpoints`, `rescale`: asking the Dispatcher
 * about jobs.
 */
import { Command } from 'commander';
import { ClusterClient } from '../../client/cluster-client.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import { isJobId } from '../../jobgraph/job-id.js';
import { jobDetailsText, jobTable } from '../format.js';
import { clientLogger, configFrom, type GlobalOptions, withGlobalOptions } from '../global-options.js';

async function withClient<T>(options: GlobalOptions, fn: (client: ClusterClient) => Promise<T>): Promise<T> {
  const config = configFrom(options);
  const client = await ClusterClient.connect(config, clientLogger(config));
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

function checkJobId(jobId: string): string {
  if (!isJobId(jobId)) {
    throw new SluiceError(ErrorCode.UnknownJob, `'${jobId}' is not a job id (32 lower-case hex characters)`);
  }
  return jobId;
}

export function listCommand(): Command {
  return withGlobalOptions(new Command('list'))
    .description('list running jobs (--all: also ended ones)')
    .option('-a, --all', 'include finished, failed and cancelled jobs')
    .option('--json', 'print JSON')
    .action((options: GlobalOptions & { all?: boolean; json?: boolean }) =>
      withClient(options, async (client) => {
        const jobs = await client.list(options.all === true);
        if (options.json) process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
        else if (jobs.length === 0) process.stdout.write(options.all ? 'No jobs.\n' : 'No running jobs.\n');
        else process.stdout.write(`${jobTable(jobs)}\n`);
      }),
    );
}

export function statusCommand(): Command {
  return withGlobalOptions(new Command('status'))
    .description("show a job's status, subtasks and failure cause")
    .argument('<jobId>')
    .option('--json', 'print JSON')
    .action((jobId: string, options: GlobalOptions & { json?: boolean }) =>
      withClient(options, async (client) => {
        const details = await client.status(checkJobId(jobId));
        process.stdout.write(
          options.json ? `${JSON.stringify(details, null, 2)}\n` : `${jobDetailsText(details)}\n`,
        );
      }),
    );
}

export function cancelCommand(): Command {
  return withGlobalOptions(new Command('cancel'))
    .description('cancel a running job')
    .argument('<jobId>')
    .action((jobId: string, options: GlobalOptions) =>
      withClient(options, async (client) => {
        const status = await client.cancel(checkJobId(jobId));
        process.stdout.write(`Job ${jobId}: ${status}\n`);
      }),
    );
}

export function savepointCommand(): Command {
  return withGlobalOptions(new Command('savepoint'))
    .description(
      'take a savepoint of a running job (DIR: a path in the state store; default state.savepoints.dir)',
    )
    .argument('<jobId>')
    .argument('[dir]')
    .option('--timeout <ms>', 'how long to wait for it', '600000')
    .action((jobId: string, dir: string | undefined, options: GlobalOptions & { timeout: string }) =>
      withClient(options, async (client) => {
        const reply = await client.savepoint(checkJobId(jobId), {
          ...(dir === undefined ? {} : { dir }),
          timeoutMs: Number(options.timeout),
        });
        process.stdout.write(
          `Savepoint completed. Path: ${reply.path}\n(${formatBytes(reply.sizeBytes)} in ${Math.round(reply.durationMs)} ms; resume with 'sluice run -s ${reply.path} <job file>')\n`,
        );
      }),
    );
}

export function stopCommand(): Command {
  return withGlobalOptions(new Command('stop'))
    .description('stop a job with a savepoint: the sources end after it, the job finishes')
    .argument('<jobId>')
    .option('-p, --savepoint-path <dir>', 'where the savepoint goes (default state.savepoints.dir)')
    .option('--timeout <ms>', 'how long to wait for it', '600000')
    .action((jobId: string, options: GlobalOptions & { savepointPath?: string; timeout: string }) =>
      withClient(options, async (client) => {
        const reply = await client.savepoint(checkJobId(jobId), {
          stop: true,
          ...(options.savepointPath === undefined ? {} : { dir: options.savepointPath }),
          timeoutMs: Number(options.timeout),
        });
        process.stdout.write(`Job ${jobId} stopped with a savepoint. Path: ${reply.path}\n`);
      }),
    );
}

export function checkpointsCommand(): Command {
  return withGlobalOptions(new Command('checkpoints'))
    .description("list a job's checkpoints and savepoints (newest first) with size and duration")
    .argument('<jobId>')
    .option('--json', 'print JSON')
    .action((jobId: string, options: GlobalOptions & { json?: boolean }) =>
      withClient(options, async (client) => {
        const reply = await client.checkpoints(checkJobId(jobId));
        if (options.json) {
          process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
          return;
        }
        const { counts } = reply;
        const lines = [
          `Job ${jobId}: checkpoints ${reply.intervalMs > 0 ? `every ${reply.intervalMs} ms` : 'off'}; ${counts.completed} completed, ${counts.failed} failed, ${counts.inProgress} in progress`,
        ];
        if (reply.restored)
          lines.push(`restored from ${reply.restored.kind} ${reply.restored.id} (${reply.restored.path})`);
        if (reply.history.length > 0) {
          lines.push('ID      KIND        STATUS       SIZE        DURATION  TRIGGERED                 PATH');
          for (const c of reply.history) {
            lines.push(
              [
                String(c.id).padEnd(7),
                c.kind.padEnd(11),
                c.status.padEnd(12),
                formatBytes(c.sizeBytes).padEnd(11),
                `${Math.round(c.durationMs)} ms`.padEnd(9),
                new Date(c.triggerTimestamp).toISOString().padEnd(25),
                c.failure ? `${c.target} (${c.failure})` : c.target,
              ].join(' '),
            );
          }
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** `-p 4` / `--vertex v1=4`: a whole number, else INVALID_RESCALE before anything is asked. */
function parseParallelism(text: string, what: string): number {
  if (!/^-?\d+$/.test(text.trim())) {
    throw new SluiceError(ErrorCode.InvalidRescale, `${what}: '${text}' is not a whole number`);
  }
  return Number(text);
}

function parseVertex(text: string, previous: Record<string, number>): Record<string, number> {
  const eq = text.indexOf('=');
  if (eq <= 0) {
    throw new SluiceError(ErrorCode.InvalidRescale, `--vertex '${text}': expected VERTEX_ID=PARALLELISM`);
  }
  const id = text.slice(0, eq);
  return { ...previous, [id]: parseParallelism(text.slice(eq + 1), `--vertex ${id}`) };
}

export function rescaleCommand(): Command {
  return withGlobalOptions(new Command('rescale'))
    .description(
      'rescale a running job from a fresh checkpoint: every vertex (-p N) or single ones (--vertex ID=N; ids as `sluice status` shows them); waits until the new tasks run',
    )
    .argument('<jobId>')
    .option('-p, --parallelism <n>', 'the new parallelism of every vertex')
    .option(
      '--vertex <id=n>',
      'the new parallelism of one vertex (repeatable)',
      parseVertex,
      {} as Record<string, number>,
    )
    .option('--timeout <ms>', 'how long to wait for it', '600000')
    .action(
      (
        jobId: string,
        options: GlobalOptions & { parallelism?: string; vertex: Record<string, number>; timeout: string },
      ) =>
        withClient(options, async (client) => {
          const vertices = Object.keys(options.vertex).length > 0 ? options.vertex : undefined;
          if (options.parallelism === undefined && vertices === undefined) {
            throw new SluiceError(ErrorCode.InvalidRescale, 'rescale needs -p N or --vertex ID=N');
          }
          const reply = await client.rescale(checkJobId(jobId), {
            ...(options.parallelism === undefined
              ? {}
              : { parallelism: parseParallelism(options.parallelism, '-p') }),
            ...(vertices === undefined ? {} : { vertices }),
            reason: `sluice rescale${options.parallelism === undefined ? '' : ` -p ${options.parallelism}`}${Object.entries(
              vertices ?? {},
            )
              .map(([id, n]) => ` --vertex ${id}=${n}`)
              .join('')}`,
            timeoutMs: Number(options.timeout),
          });
          const changes = Object.keys(reply.target)
            .filter((id) => reply.previous[id] !== reply.target[id])
            .map((id) => `${id} ${reply.previous[id]} -> ${reply.target[id]}`);
          process.stdout.write(
            changes.length === 0
              ? `Job ${jobId} already runs at that parallelism; nothing changed.\n`
              : `Job ${jobId} rescaled: ${changes.join(', ')} (${reply.downtimeMs} ms from stopping the old tasks until every new one ran)\n`,
          );
        }),
    );
}
