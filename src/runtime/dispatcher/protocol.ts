/**
 * The Dispatcher's protocol: what a client may ask on `sluice.<cluster>.dispatcher.<type>`, declared once
 * ({@link DispatcherProtocol}) with request and reply schemas. Every ask is client-facing: it takes msgpack
 * envelopes or JSON (`Content-Type: application/json`); docs/protocol.md is generated from here.
 */
import { z } from 'zod';
import { ask, defineProtocol } from '../../actors/protocol.js';
import { JobStatus, TaskState } from '../../api/job-status.js';
import { ErrorInfoSchema, JobIdSchema } from '../../common/ids.js';
import { AutoscalerReply } from '../autoscaler/protocol.js';

export type { ErrorInfo } from '../../common/ids.js';
export { ErrorInfoSchema, JobIdSchema };

export const SubmitRequest = z.object({
  /** Validated further by the Dispatcher (see JobGraphSchema), so the error can name the job. */
  jobGraph: z.record(z.string(), z.unknown()),
  client: z.string().max(256).optional(),
});
export const SubmitReply = z.object({ jobId: JobIdSchema });

export const ListRequest = z.object({ all: z.boolean().default(false) });
export const JobIdRequest = z.object({ jobId: JobIdSchema });
export const OverviewRequest = z.object({}).default({});

const JobStatusSchema = z.enum(JobStatus);
const TaskStateSchema = z.enum(TaskState);

export const JobSummarySchema = z.object({
  jobId: JobIdSchema,
  name: z.string(),
  status: JobStatusSchema,
  parallelism: z.number(),
  startTime: z.number(),
  endTime: z.number().nullable(),
  durationMs: z.number(),
  /** The application whose main submitted the job (application mode), else null. */
  applicationId: z.string().nullable().default(null),
});
export type JobSummary = z.infer<typeof JobSummarySchema>;

export const SubtaskInfoSchema = z.object({
  index: z.number(),
  state: TaskStateSchema,
  attempt: z.number(),
  taskManagerId: z.string().nullable(),
});

export const JobDetailsSchema = JobSummarySchema.extend({
  vertices: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      parallelism: z.number(),
      subtasks: z.array(SubtaskInfoSchema),
      /** Live counters of the vertex, summed over its subtasks (e.g. records in / out). */
      accumulators: z.record(z.string(), z.number()).default({}),
    }),
  ),
  /** The job graph's edges between vertices, with their partitioner. */
  edges: z.array(z.object({ source: z.string(), target: z.string(), partitioner: z.string() })).default([]),
  error: ErrorInfoSchema.nullable(),
  accumulators: z.record(z.string(), z.number()),
  /** How often the job restarted after failures. */
  restarts: z.number(),
});
export type JobDetails = z.infer<typeof JobDetailsSchema>;

export const ListReply = z.object({ jobs: z.array(JobSummarySchema) });
export const CancelReply = z.object({ jobId: JobIdSchema, status: JobStatusSchema });

export const TaskManagerInfoSchema = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number(),
  slotsTotal: z.number(),
  slotsFree: z.number(),
  lastHeartbeatMs: z.number(),
});
export type TaskManagerInfo = z.infer<typeof TaskManagerInfoSchema>;

export const OverviewReply = z.object({
  jobManagerId: z.string(),
  version: z.string(),
  taskManagers: z.array(TaskManagerInfoSchema),
  slotsTotal: z.number(),
  slotsFree: z.number(),
  jobs: z.record(z.string(), z.number()),
});
export type Overview = z.infer<typeof OverviewReply>;

/** A job status change, published on `events.job.<jobId>`. */
export const JobEventSchema = z.object({
  jobId: JobIdSchema,
  name: z.string(),
  status: JobStatusSchema,
  timestamp: z.number(),
  error: ErrorInfoSchema.nullable(),
  accumulators: z.record(z.string(), z.number()),
  /** Human-readable progress note, e.g. waiting for slots. */
  message: z.string().optional(),
});
export type JobEvent = z.infer<typeof JobEventSchema>;

export const SavepointRequest = z.object({
  jobId: JobIdSchema,
  /** Where in the state store (default `state.savepoints.dir`). */
  dir: z
    .string()
    .regex(/^[A-Za-z0-9_.\-/]{1,200}$/, 'a savepoint directory is a path of letters, digits, _ . - and /')
    .optional(),
  /** Stop-with-savepoint: the sources end after it and the job finishes. */
  stop: z.boolean().default(false),
});
export type SavepointRequest = z.infer<typeof SavepointRequest>;

export const SavepointReply = z.object({
  jobId: JobIdSchema,
  path: z.string(),
  checkpointId: z.number().int(),
  sizeBytes: z.number().int(),
  durationMs: z.number(),
});
export type SavepointReply = z.infer<typeof SavepointReply>;

export const CheckpointStatsSchema = z.object({
  id: z.number().int(),
  kind: z.enum(['checkpoint', 'savepoint']),
  status: z.enum(['IN_PROGRESS', 'COMPLETED', 'FAILED']),
  triggerTimestamp: z.number(),
  durationMs: z.number(),
  sizeBytes: z.number(),
  acknowledged: z.number().int(),
  total: z.number().int(),
  target: z.string(),
  failure: z.string().optional(),
});

export const CheckpointsReply = z.object({
  jobId: JobIdSchema,
  intervalMs: z.number(),
  counts: z.object({
    completed: z.number().int(),
    failed: z.number().int(),
    inProgress: z.number().int(),
    restored: z.number().int(),
  }),
  history: z.array(CheckpointStatsSchema),
  restored: z
    .object({ id: z.number(), kind: z.enum(['checkpoint', 'savepoint']), path: z.string() })
    .nullable(),
});
export type CheckpointsReply = z.infer<typeof CheckpointsReply>;

/** Vertex id → parallelism, as it travels (checked further by the JobMaster against the job's graph). */
const VertexParallelismSchema = z.record(
  z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'vertex ids are 1-64 letters, digits, - or _'),
  z.number(),
);

/**
 * Rescales a running job: `parallelism` sets every vertex (`sluice rescale -p N`), `vertices` single ones
 * (`--vertex ID=N`, REST resource requirements); both may be given, `vertices` wins for its vertices.
 */
export const RescaleRequestSchema = z
  .object({
    jobId: JobIdSchema,
    parallelism: z.number().optional(),
    vertices: VertexParallelismSchema.optional(),
    cause: z.enum(['user', 'reactive', 'autoscaler']).default('user'),
    reason: z.string().max(1_024).default('asked by a user'),
  })
  .refine((r) => r.parallelism !== undefined || r.vertices !== undefined, {
    message: 'a rescale names a parallelism, vertices, or both',
  });
export type RescaleRequestMessage = z.infer<typeof RescaleRequestSchema>;

export const RescaleRecordSchema = z.object({
  cause: z.enum(['user', 'reactive', 'autoscaler']),
  reason: z.string(),
  previous: z.record(z.string(), z.number()),
  target: z.record(z.string(), z.number()),
  status: z.enum(['IN_PROGRESS', 'COMPLETED', 'FAILED']),
  startTime: z.number(),
  endTime: z.number().nullable(),
  checkpointId: z.number().nullable(),
  downtimeMs: z.number().nullable(),
  failure: z.string().optional(),
});

export const RescaleReply = z.object({
  jobId: JobIdSchema,
  previous: z.record(z.string(), z.number()),
  target: z.record(z.string(), z.number()),
  downtimeMs: z.number().optional(),
});
export type RescaleReply = z.infer<typeof RescaleReply>;

/** A job's parallelism, bounds and rescales (`dispatcher.resource-requirements`). */
export const ResourceRequirementsReply = z.object({
  jobId: JobIdSchema,
  parallelism: z.record(z.string(), z.number()),
  maxParallelism: z.record(z.string(), z.number()),
  schedulerMode: z.enum(['default', 'reactive']),
  rescales: z.array(RescaleRecordSchema),
});
export type ResourceRequirementsReply = z.infer<typeof ResourceRequirementsReply>;

export const DispatcherProtocol = defineProtocol({
  role: 'Dispatcher',
  subject: 'dispatcher',
  address: (subjects) => subjects.dispatcher,
  clientFacing: true,
  messages: {
    submit: ask(SubmitRequest, SubmitReply, {
      description:
        'Submits a JobGraph (a built-in job, or a program whose bundle is in the artifact store). Idempotent by job id: the same graph again gets the same answer, another graph under a used id JOB_ALREADY_EXISTS.',
      idempotent: true,
      json: true,
    }),
    list: ask(ListRequest, ListReply, {
      description: 'Running jobs, newest first; with `all`, also the ended ones the Dispatcher keeps.',
      idempotent: true,
      json: true,
    }),
    status: ask(JobIdRequest, JobDetailsSchema, {
      description:
        "A job's details: status, vertices and subtasks, accumulators, failure cause. Poll it to follow a job to its end (or subscribe to `events.job.<jobId>`, msgpack).",
      idempotent: true,
      json: true,
    }),
    cancel: ask(JobIdRequest, CancelReply, {
      description:
        'Cancels a running job; answers with the status it is in afterwards (CANCELLING or CANCELED).',
      idempotent: true,
      json: true,
    }),
    savepoint: ask(SavepointRequest, SavepointReply, {
      description:
        'Takes a savepoint (with `stop`, the job finishes right after it); answers once it is complete.',
      json: true,
    }),
    checkpoints: ask(JobIdRequest, CheckpointsReply, {
      description: "A job's checkpoint counts, recent history and what it restored from.",
      idempotent: true,
      json: true,
    }),
    rescale: ask(RescaleRequestSchema, RescaleReply, {
      description:
        'Rescales a running job (`parallelism` for every vertex, `vertices` for single ones); answers once every new task runs.',
      json: true,
    }),
    'resource-requirements': ask(JobIdRequest, ResourceRequirementsReply, {
      description: "A running job's parallelism per vertex, its bounds, the scheduler mode and its rescales.",
      idempotent: true,
      json: true,
    }),
    autoscaler: ask(JobIdRequest, AutoscalerReply, {
      description: "The autoscaler's view of a job: its metrics window and decisions.",
      idempotent: true,
      json: true,
    }),
    overview: ask(OverviewRequest, OverviewReply, {
      description: 'The cluster: TaskManagers, slots, jobs by status, the JobManager and its version.',
      idempotent: true,
      json: true,
    }),
  },
});
