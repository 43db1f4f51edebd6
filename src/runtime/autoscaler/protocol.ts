/**
 * The autoscaler's part of the Dispatcher's gateway: `dispatcher.autoscaler` ({ jobId }) answers with the
 * job's autoscaler state and its recent decisions (REST `GET /jobs/:jobid/autoscaler`, the dashboard).
 * A job without an autoscaler gets `enabled: false` and why; an unknown job gets `UNKNOWN_JOB`.
 */
import { z } from 'zod';

const Parallelism = z.record(z.string(), z.number());

export const VertexEvaluationSchema = z.object({
  id: z.string(),
  name: z.string(),
  parallelism: z.number(),
  targetParallelism: z.number(),
  recordsInPerSecond: z.number(),
  recordsOutPerSecond: z.number(),
  busyTimeMsPerSecond: z.number(),
  backpressuredTimeMsPerSecond: z.number(),
  trueProcessingRate: z.number().nullable(),
  targetDataRate: z.number(),
  utilization: z.number().nullable(),
  backlog: z.number().nullable(),
  note: z.string(),
});

export const AutoscalerDecisionSchema = z.object({
  timestamp: z.number(),
  outcome: z.string(),
  reason: z.string(),
  vertices: z.array(VertexEvaluationSchema),
  target: Parallelism.optional(),
  rescale: z
    .object({ previous: Parallelism, target: Parallelism, downtimeMs: z.number().optional() })
    .optional(),
  error: z.string().optional(),
});

export const AutoscalerReply = z.object({
  jobId: z.string(),
  enabled: z.boolean(),
  /** Why there is no autoscaler (enabled: false). */
  reason: z.string().optional(),
  scalingEnabled: z.boolean().optional(),
  state: z.string().optional(),
  /** Why decisions are not applied although job.autoscaler.scaling.enabled is true (reactive mode). */
  adviceOnly: z.string().optional(),
  config: z.record(z.string(), z.union([z.number(), z.boolean()])).optional(),
  /** The job's effective `job.autoscaler.*` (the JobManager's, with the job's own keys over them). */
  settings: z.record(z.string(), z.string()).optional(),
  /** The keys the job set itself (`sluice run -D`), as given. */
  jobSettings: z.record(z.string(), z.string()).optional(),
  latest: AutoscalerDecisionSchema.optional(),
  decisions: z.array(AutoscalerDecisionSchema).default([]),
  counts: z.record(z.string(), z.number()).default({}),
  rescales: z.number().default(0),
  ineffective: z.record(z.string(), z.string()).default({}),
});
export type AutoscalerReply = z.infer<typeof AutoscalerReply>;
