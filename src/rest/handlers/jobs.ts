/**
 * Jobs: `/jobs`, `/jobs/overview`, `/jobs/:jobid` (GET, PATCH = cancel), and per job `exceptions`,
 * `accumulators`, `checkpoints`, `savepoints`, `stop`, `autoscaler`. Shapes follow Flink's REST API v1; the
 * differences are in docs/rest-api.md.
 */

import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { isTerminalJobStatus, TaskState } from '../../api/job-status.js';
import type { ClusterClient } from '../../client/cluster-client.js';
import { ErrorCode, isSluiceError } from '../../common/errors.js';
import { isJobId } from '../../jobgraph/job-id.js';
import type {
  CheckpointsReply,
  ErrorInfo,
  JobDetails,
  JobSummary,
} from '../../runtime/dispatcher/protocol.js';
import { readJson } from '../body.js';
import { badRequest, notFound, RestError } from '../errors.js';
import { ok, type RequestContext, type Router } from '../router.js';

type Vertex = JobDetails['vertices'][number];

export function jobRoutes(router: Router, client: ClusterClient): void {
  const details = (ctx: RequestContext) => jobDetails(client, ctx.params.jobid!);

  router.get('/jobs', async () =>
    ok({ jobs: (await client.list(true)).map((j) => ({ id: j.jobId, status: j.status })) }),
  );

  router.get('/jobs/overview', async () => ok({ jobs: (await client.list(true)).map(jobOverview) }));

  router.get('/jobs/:jobid', async (ctx) => ok(jobDetailsBody(await details(ctx))));

  router.patch('/jobs/:jobid', async (ctx) => {
    const mode = ctx.query.get('mode') ?? 'cancel';
    if (mode === 'stop') {
      throw badRequest(
        "the termination mode 'stop' has been removed (as in Flink): use mode=cancel, or POST /jobs/:jobid/stop for a graceful stop",
      );
    }
    if (mode !== 'cancel') throw badRequest(`mode: '${mode}' is not a termination mode (expected cancel)`);
    const jobId = jobIdOf(ctx.params.jobid!);
    try {
      return ok({ jobid: jobId, status: await client.cancel(jobId) }, 202);
    } catch (err) {
      throw unknownJobAs404(err, jobId);
    }
  });

  router.get('/jobs/:jobid/exceptions', async (ctx) => ok(exceptionsBody(await details(ctx))));

  router.get('/jobs/:jobid/accumulators', async (ctx) => {
    const job = await details(ctx);
    return ok({
      'job-accumulators': [],
      'user-task-accumulators': Object.entries(job.accumulators).map(([name, value]) => ({
        name,
        type: Number.isInteger(value) ? 'Long' : 'Double',
        value: String(value),
      })),
      'serialized-user-task-accumulators': {},
    });
  });

  // The autoscaler's state and its recent decisions, each with its inputs (Sluice's own; Flink has none).
  router.get('/jobs/:jobid/autoscaler', async (ctx) => {
    const jobId = jobIdOf(ctx.params.jobid!);
    try {
      return ok(await client.autoscaler(jobId));
    } catch (err) {
      throw unknownJobAs404(err, jobId);
    }
  });

  router.get('/jobs/:jobid/checkpoints', async (ctx) => {
    const jobId = jobIdOf(ctx.params.jobid!);
    try {
      return ok(checkpointsBody(await client.checkpoints(jobId)));
    } catch (err) {
      throw unknownJobAs404(err, jobId);
    }
  });

  // Savepoints and stop-with-savepoint: 202 with a trigger id, polled at /jobs/:jobid/savepoints/:triggerid.
  const triggers = new Map<
    string,
    { jobId: string; state: 'IN_PROGRESS' | 'COMPLETED'; location?: string; failure?: string }
  >();
  const trigger = async (ctx: RequestContext, stop: boolean) => {
    const jobId = jobIdOf(ctx.params.jobid!);
    const body = await readJson(ctx.req, stop ? StopRequest : SavepointRequestBody);
    const dir =
      'targetDirectory' in body
        ? body.targetDirectory
        : (body as { 'target-directory'?: string | null })['target-directory'];
    const job = await details(ctx);
    if (isTerminalJobStatus(job.status))
      throw new RestError(409, `job ${jobId} has already ended (${job.status})`);
    const id = randomUUID().replaceAll('-', '');
    const entry: { jobId: string; state: 'IN_PROGRESS' | 'COMPLETED'; location?: string; failure?: string } =
      {
        jobId,
        state: 'IN_PROGRESS',
      };
    triggers.set(id, entry);
    while (triggers.size > 1_000) triggers.delete(triggers.keys().next().value as string);
    const cancelJob = 'cancel-job' in body && body['cancel-job'] === true;
    client
      .savepoint(jobId, { stop, ...(dir == null ? {} : { dir }) })
      .then(async (reply) => {
        entry.state = 'COMPLETED';
        entry.location = reply.path;
        if (cancelJob) await client.cancel(jobId).catch(() => undefined);
      })
      .catch((err: unknown) => {
        entry.state = 'COMPLETED';
        entry.failure = err instanceof Error ? err.message : String(err);
      });
    return ok({ 'request-id': id }, 202);
  };
  router.post('/jobs/:jobid/savepoints', (ctx) => trigger(ctx, false));
  router.post('/jobs/:jobid/stop', (ctx) => trigger(ctx, true));
  router.get('/jobs/:jobid/savepoints/:triggerid', (ctx) => {
    const jobId = jobIdOf(ctx.params.jobid!);
    const entry = triggers.get(ctx.params.triggerid!);
    if (!entry || entry.jobId !== jobId)
      throw notFound(`no savepoint trigger '${ctx.params.triggerid}' for job ${jobId}`);
    return ok({
      status: { id: entry.state },
      ...(entry.state === 'COMPLETED'
        ? {
            operation: entry.failure
              ? {
                  'failure-cause': {
                    class: 'SluiceError',
                    'stack-trace': entry.failure,
                    'serialized-throwable': null,
                  },
                }
              : { location: entry.location },
          }
        : {}),
    });
  });
}

const SAVEPOINT_DIR = /^[A-Za-z0-9_.\-/]{1,200}$/;
const SAVEPOINT_DIR_HINT = 'a savepoint directory is a path in the state store: letters, digits, _ . - and /';
const SavepointRequestBody = z
  .object({
    'target-directory': z.string().regex(SAVEPOINT_DIR, SAVEPOINT_DIR_HINT).nullish(),
    'cancel-job': z.boolean().default(false),
    formatType: z.string().optional(),
  })
  .default({ 'cancel-job': false });
const StopRequest = z
  .object({
    targetDirectory: z.string().regex(SAVEPOINT_DIR, SAVEPOINT_DIR_HINT).nullish(),
    drain: z.boolean().default(true),
  })
  .default({ drain: true });

/** Flink's checkpoint statistics shape from Sluice's history. */
function checkpointsBody(reply: CheckpointsReply) {
  const done = reply.history.filter((c) => c.status === 'COMPLETED');
  const stats = (values: number[]) =>
    values.length === 0
      ? ZERO_STATS
      : {
          min: Math.min(...values),
          max: Math.max(...values),
          avg: Math.round(values.reduce((a, b) => a + b, 0) / values.length),
          p50: percentile(values, 0.5),
          p90: percentile(values, 0.9),
          p95: percentile(values, 0.95),
          p99: percentile(values, 0.99),
          p999: percentile(values, 0.999),
        };
  const entry = (c: CheckpointsReply['history'][number]) => ({
    className: c.kind === 'savepoint' ? '.SavepointStats' : '.CompletedCheckpointStats',
    id: c.id,
    status: c.status,
    is_savepoint: c.kind === 'savepoint',
    trigger_timestamp: c.triggerTimestamp,
    latest_ack_timestamp: c.triggerTimestamp + Math.round(c.durationMs),
    checkpointed_size: c.sizeBytes,
    state_size: c.sizeBytes,
    end_to_end_duration: Math.round(c.durationMs),
    num_subtasks: c.total,
    num_acknowledged_subtasks: c.acknowledged,
    external_path: c.target,
    ...(c.failure ? { failure_message: c.failure } : {}),
  });
  const latest = (pred: (c: CheckpointsReply['history'][number]) => boolean) => {
    const c = reply.history.find(pred);
    return c ? entry(c) : null;
  };
  return {
    counts: {
      restored: reply.counts.restored,
      total: reply.history.length,
      in_progress: reply.counts.inProgress,
      completed: reply.counts.completed,
      failed: reply.counts.failed,
    },
    summary: {
      ...NO_CHECKPOINTS.summary,
      checkpointed_size: stats(done.map((c) => c.sizeBytes)),
      state_size: stats(done.map((c) => c.sizeBytes)),
      end_to_end_duration: stats(done.map((c) => Math.round(c.durationMs))),
    },
    latest: {
      completed: latest((c) => c.status === 'COMPLETED' && c.kind === 'checkpoint'),
      savepoint: latest((c) => c.status === 'COMPLETED' && c.kind === 'savepoint'),
      failed: latest((c) => c.status === 'FAILED'),
      restored: reply.restored
        ? {
            id: reply.restored.id,
            is_savepoint: reply.restored.kind === 'savepoint',
            external_path: reply.restored.path,
          }
        : null,
    },
    history: reply.history.map(entry),
    interval_ms: reply.intervalMs,
  };
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A job id from the path (case-insensitive, as Flink's JobID); anything else names no job: 404. */
export function jobIdOf(raw: string): string {
  const jobId = raw.toLowerCase();
  if (!isJobId(jobId)) throw notFound(`job ${raw} not found`);
  return jobId;
}

async function jobDetails(client: ClusterClient, raw: string): Promise<JobDetails> {
  const jobId = jobIdOf(raw);
  try {
    return await client.status(jobId);
  } catch (err) {
    throw unknownJobAs404(err, jobId);
  }
}

export function unknownJobAs404(err: unknown, jobId: string): unknown {
  return isSluiceError(err, ErrorCode.UnknownJob) ? notFound(`job ${jobId} not found`) : err;
}

function jobOverview(job: JobSummary) {
  return {
    jid: job.jobId,
    name: job.name,
    state: job.status,
    'start-time': job.startTime,
    'end-time': job.endTime ?? -1,
    duration: job.durationMs,
    'last-modification': job.endTime ?? job.startTime,
    parallelism: job.parallelism,
  };
}

function jobDetailsBody(job: JobDetails) {
  const vertices = job.vertices.map((v) => vertexBody(v, job.accumulators));
  const statusCounts = zeroCounts();
  for (const v of vertices) statusCounts[v.status] = (statusCounts[v.status] ?? 0) + 1;
  const timestamps: Record<string, number> = { CREATED: job.startTime };
  if (job.endTime !== null) timestamps[job.status] = job.endTime;
  return {
    jid: job.jobId,
    name: job.name,
    isStoppable: false,
    state: job.status,
    'job-type': 'STREAMING',
    'start-time': job.startTime,
    'end-time': job.endTime ?? -1,
    duration: job.durationMs,
    now: Date.now(),
    timestamps,
    parallelism: job.parallelism,
    restarts: job.restarts,
    vertices,
    'status-counts': statusCounts,
    // Flink's plan shape: each vertex with the vertices it reads from and how records are shipped.
    plan: {
      jid: job.jobId,
      name: job.name,
      nodes: job.vertices.map((v) => ({
        id: v.id,
        description: v.name,
        parallelism: v.parallelism,
        inputs: job.edges
          .filter((e) => e.target === v.id)
          .map((e, num) => ({ num, id: e.source, ship_strategy: e.partitioner.toUpperCase() })),
      })),
    },
    // The job's accumulators (summed over its subtasks), e.g. `records` and `sum` of builtin:count.
    metrics: job.accumulators,
  };
}

function vertexBody(vertex: Vertex, accumulators: Record<string, number>) {
  const tasks = zeroCounts();
  // Program tasks count their records in the accumulators `<vertex name> records in` / `records out`.
  const metrics: Record<string, number> = {};
  const recordsIn = accumulators[`${vertex.name} records in`];
  const recordsOut = accumulators[`${vertex.name} records out`];
  if (recordsIn !== undefined) metrics['read-records'] = recordsIn;
  if (recordsOut !== undefined) metrics['write-records'] = recordsOut;
  const backpressured = accumulators[`${vertex.name} backpressured ms`];
  if (backpressured !== undefined) metrics['backpressured-time-ms'] = backpressured;
  // Busy time (summed over subtasks, ms) and a source's backlog: what the autoscaler reads.
  const busy = accumulators[`${vertex.name} busy ms`];
  if (busy !== undefined) metrics['busy-time-ms'] = busy;
  const pending = accumulators[`${vertex.name} pending records`];
  if (pending !== undefined) metrics['pending-records'] = pending;
  const watermark = accumulators[`${vertex.name} watermark`];
  // Flink's `currentInputWatermark`; absent until every subtask has one.
  if (watermark !== undefined && watermark > Number.MIN_SAFE_INTEGER)
    metrics['current-watermark'] = watermark;
  for (const s of vertex.subtasks) tasks[s.state] = (tasks[s.state] ?? 0) + 1;
  return {
    id: vertex.id,
    name: vertex.name,
    parallelism: vertex.parallelism,
    status: vertexStatus(vertex),
    tasks,
    metrics,
    subtasks: vertex.subtasks.map((s) => ({
      subtask: s.index,
      status: s.state,
      attempt: s.attempt,
      'taskmanager-id': s.taskManagerId,
    })),
  };
}

function zeroCounts(): Record<string, number> {
  return Object.fromEntries(Object.values(TaskState).map((s) => [s, 0]));
}

/** A vertex's state from its subtasks' (Flink's ExecutionJobVertex.getAggregateJobVertexState). */
function vertexStatus(vertex: Vertex): TaskState {
  const states = vertex.subtasks.map((s) => s.state);
  const any = (state: TaskState) => states.includes(state);
  if (any(TaskState.FAILED)) return TaskState.FAILED;
  if (any(TaskState.CANCELED)) return TaskState.CANCELED;
  if (any(TaskState.RUNNING)) return TaskState.RUNNING;
  if (any(TaskState.FINISHED)) {
    return states.every((s) => s === TaskState.FINISHED) ? TaskState.FINISHED : TaskState.RUNNING;
  }
  if (any(TaskState.DEPLOYING)) return TaskState.DEPLOYING;
  return TaskState.SCHEDULED;
}

function exceptionsBody(job: JobDetails) {
  const error = job.error;
  // Sluice keeps the last failure of a job, without its time: a job that ended failed at its end time.
  const timestamp = error !== null && isTerminalJobStatus(job.status) ? job.endTime : null;
  const entries = error === null ? [] : [historyEntry(error, timestamp)];
  return {
    'root-exception': error === null ? null : (error.stack ?? error.message),
    timestamp,
    location: error?.location ?? null,
    'all-exceptions': [],
    truncated: false,
    exceptionHistory: { entries, truncated: false },
  };
}

function historyEntry(error: ErrorInfo, timestamp: number | null) {
  // Locations read `Source: Counter (2/4) on tm-host-1234`.
  const at = error.location === undefined ? null : /^(.*) on (\S+)$/.exec(error.location);
  return {
    exceptionName: exceptionName(error),
    message: error.message,
    stacktrace: error.stack ?? error.message,
    timestamp,
    taskName: at ? at[1]! : (error.location ?? null),
    location: error.location ?? null,
    taskManagerId: at ? at[2]! : null,
    failureLabels: {},
    concurrentExceptions: [],
  };
}

/** `RangeError` of `RangeError: record 4242 is out of range`; `Error` when the text names none. */
function exceptionName(error: ErrorInfo): string {
  const first = (error.stack ?? error.message).split('\n')[0] ?? '';
  return /^([A-Za-z_$][\w$.]*(?:Error|Exception))(?::|$)/.exec(first)?.[1] ?? 'Error';
}

const ZERO_STATS = { min: 0, max: 0, avg: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0 };

/** Flink's checkpoint statistics of a job that never took a checkpoint (Sluice has none yet). */
const NO_CHECKPOINTS = {
  counts: { restored: 0, total: 0, in_progress: 0, completed: 0, failed: 0 },
  summary: {
    checkpointed_size: ZERO_STATS,
    state_size: ZERO_STATS,
    end_to_end_duration: ZERO_STATS,
    alignment_buffered: ZERO_STATS,
    processed_data: ZERO_STATS,
    persisted_data: ZERO_STATS,
  },
  latest: { completed: null, savepoint: null, failed: null, restored: null },
  history: [],
};
