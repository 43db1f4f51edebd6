/**
 * The JobGraph: what a client submits. Vertices are (chains of) operators with a parallelism; edges say
 * how records move between them. The ExecutionGraph in the JobMaster expands each vertex into subtasks.
 */
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../common/errors.js';
import { JOB_ID_PATTERN } from './job-id.js';

const MAX_PARALLELISM = 32_768;

export const OperatorDescriptorSchema = z.object({
  /** Where the code comes from: `builtin` operators ship with Sluice. */
  kind: z.literal('builtin'),
  name: z.string().min(1).max(64),
  args: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});
export type OperatorDescriptor = z.infer<typeof OperatorDescriptorSchema>;

export const JobVertexSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'vertex ids are 1-64 letters, digits, - or _'),
  name: z.string().min(1).max(256),
  parallelism: z.number().int().min(1).max(MAX_PARALLELISM),
  operator: OperatorDescriptorSchema,
});
export type JobVertex = z.infer<typeof JobVertexSchema>;

export const PartitionerSchema = z.enum(['forward', 'rebalance', 'hash', 'broadcast', 'shuffle']);

export const JobEdgeSchema = z.object({
  source: z.string(),
  target: z.string(),
  partitioner: PartitionerSchema,
});
export type JobEdge = z.infer<typeof JobEdgeSchema>;

export const JobGraphSchema = z
  .object({
    jobId: z.string().regex(JOB_ID_PATTERN, 'job ids are 32 lower-case hex characters'),
    name: z.string().min(1).max(256),
    vertices: z.array(JobVertexSchema).min(1).max(1_000),
    edges: z.array(JobEdgeSchema).max(10_000).default([]),
  })
  .superRefine((graph, ctx) => {
    const ids = new Set<string>();
    for (const v of graph.vertices) {
      if (ids.has(v.id)) ctx.addIssue({ code: 'custom', message: `vertex id '${v.id}' is used twice` });
      ids.add(v.id);
    }
    for (const e of graph.edges) {
      for (const end of [e.source, e.target]) {
        if (!ids.has(end)) ctx.addIssue({ code: 'custom', message: `edge names unknown vertex '${end}'` });
      }
    }
  });
export type JobGraph = z.infer<typeof JobGraphSchema>;

/** Number of slots a job needs: subtask i of every vertex shares slot i (Flink's default slot sharing). */
export function requiredSlots(graph: JobGraph): number {
  return Math.max(...graph.vertices.map((v) => v.parallelism));
}

export function validateJobGraph(value: unknown): JobGraph {
  const parsed = JobGraphSchema.safeParse(value);
  if (!parsed.success) {
    throw new SluiceError(ErrorCode.InvalidJob, `invalid job graph: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
