/** `sluice list`, `sluice status`, `sluice cancel`: asking the Dispatcher about jobs. */
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
