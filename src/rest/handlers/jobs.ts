/**
 * Jobs: `/jobs`, `/jobs/overview`, `/jobs/:jobid` (GET, PATCH = cancel), and per job `exceptions`,
 * `accumulators`, `checkpoints`, `savepoints`, `stop`. Shapes follow Flink's REST API v1; the
 * differences are in docs/rest-api.md.
 */
import type { ClusterClient } from '../../client/cluster-client.js';
import { ErrorCode, isSluiceError } from '../../common/errors.js';
import { isJobId } from '../../jobgraph/job-id.js';
import type { ErrorInfo, JobDetails, JobSummary } from '../../runtime/dispatcher/protocol.js';
import { isTerminalJobStatus, TaskState } from '../../runtime/job-status.js';
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

  router.get('/jobs/:jobid/checkpoints', async (ctx) => {
    await details(ctx);
    return ok(NO_CHECKPOINTS);
  });

  router.post('/jobs/:jobid/savepoints', async (ctx) => {
    await details(ctx);
    throw new RestError(
      501,
      'savepoints are not supported yet: Sluice has no checkpoints; cancel the job with PATCH /jobs/:jobid?mode=cancel',
    );
  });

  router.post('/jobs/:jobid/stop', async (ctx) => {
    await details(ctx);
    throw new RestError(
      501,
      'stop with a savepoint is not supported yet: Sluice has no checkpoints; cancel the job with PATCH /jobs/:jobid?mode=cancel',
    );
  });
}

/** A job id from the path (case-insensitive, as Flink's JobID); anything else names no job: 404. */
function jobIdOf(raw: string): string {
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

function unknownJobAs404(err: unknown, jobId: string): unknown {
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
