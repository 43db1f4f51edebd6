/**
 * Submits a JobGraph through a ClusterClient and returns a JobClient for it: job events are followed
 * from before the submission, and the records of collect sinks are received when asked for.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeEnvelope, encodeError, encodeOk } from '../actors/envelope.js';
import { type JobClient, JobExecutionError, type JobExecutionResult } from '../api/job-client.js';
import { JobStatus } from '../api/job-status.js';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { JobGraph } from '../jobgraph/job-graph.js';
import type { JobDetails, JobEvent } from '../runtime/dispatcher/protocol.js';
import type { ClusterClient } from './cluster-client.js';
import { CollectedResults } from './collected-results.js';

export interface SubmittedJob extends JobClient {
  /** Resolves with the job's final details (whatever the status). */
  readonly done: Promise<JobDetails>;
  /** Records of the job's collect sinks, once it ended (requires `collect` at submission). */
  collected(): Promise<unknown[]>;
}

export interface SubmitOptions {
  collect?: boolean;
  onEvent?: (event: JobEvent) => void;
  maxMessageBytes: number;
}

export async function submitJobGraph(
  client: ClusterClient,
  nc: NatsConnection,
  graph: JobGraph,
  options: SubmitOptions,
): Promise<SubmittedJob> {
  const jobId = graph.jobId;
  const collector = options.collect
    ? collectRecords(nc, client.subjects.collect(jobId), options.maxMessageBytes)
    : undefined;
  const follower = client.follow(jobId, options.onEvent ? { onEvent: options.onEvent } : {});
  try {
    await client.submit(graph);
  } catch (err) {
    follower.stop();
    collector?.stop();
    throw err;
  }
  const done = follower.done.finally(() => collector?.stop());
  done.catch(() => undefined);
  const result = done.then((details): JobExecutionResult => {
    if (details.status !== JobStatus.FINISHED) {
      const cause = details.error ? `: ${details.error.message}` : '';
      const where = details.error?.location ? ` (at ${details.error.location})` : '';
      throw new JobExecutionError(
        jobId,
        details.status,
        `job ${jobId} ${details.status}${cause}${where}`,
        details.error?.stack,
      );
    }
    return {
      jobId,
      jobName: details.name,
      status: details.status,
      netRuntimeMs: details.durationMs,
      accumulators: details.accumulators,
    };
  });
  result.catch(() => undefined);
  return {
    jobId,
    done,
    getJobStatus: async () => (await client.status(jobId)).status,
    cancel: async () => {
      await client.cancel(jobId);
    },
    getJobExecutionResult: () => result,
    collected: async () => {
      if (!collector)
        throw new SluiceError(ErrorCode.IllegalState, 'the job was not submitted to collect results');
      await done;
      return collector.records();
    },
  };
}

function collectRecords(nc: NatsConnection, subject: string, maxMessageBytes: number) {
  const results = new CollectedResults();
  const sub: Subscription = nc.subscribe(subject, {
    callback: (_err, msg) => {
      try {
        const env = decodeEnvelope(msg.data, Math.max(maxMessageBytes, 64 * 1024 * 1024));
        const refused = results.accept(env.body);
        if (refused !== undefined) throw new SluiceError(ErrorCode.InvalidMessage, refused);
        msg.respond(encodeOk(null));
      } catch (err) {
        if (msg.reply) {
          msg.respond(
            encodeError(
              err instanceof SluiceError ? err : new SluiceError(ErrorCode.InvalidMessage, String(err)),
            ),
          );
        }
      }
    },
  });
  return {
    stop: () => sub.unsubscribe(),
    records: (): unknown[] => results.records(),
  };
}
