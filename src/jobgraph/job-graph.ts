/**
 * The JobGraph: what a client submits. Vertices are (chains of) operators with a parallelism; edges say
 * how records move between them. The ExecutionGraph in the JobMaster expands each vertex into subtasks.
 */
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../common/errors.js';
import { JobIdSchema } from '../common/ids.js';

const MAX_PARALLELISM = 32_768;

export const BuiltinOperatorSchema = z.object({
  /** Built-in test jobs that ship with Sluice. */
  kind: z.literal('builtin'),
  name: z.string().min(1).max(64),
  args: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});

export const ChainOperatorSchema = z.object({
  /** Operators of a user program, chained; matched to the program's functions by uid. */
  kind: z.literal('chain'),
  operators: z
    .array(z.object({ uid: z.string().min(1).max(256), name: z.string().max(256), kind: z.string().max(32) }))
    .min(1)
    .max(100),
});

export const OperatorDescriptorSchema = z.discriminatedUnion('kind', [
  BuiltinOperatorSchema,
  ChainOperatorSchema,
]);
export type OperatorDescriptor = z.infer<typeof OperatorDescriptorSchema>;
export type BuiltinOperator = z.infer<typeof BuiltinOperatorSchema>;

export const JobVertexSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'vertex ids are 1-64 letters, digits, - or _'),
  name: z.string().min(1).max(256),
  parallelism: z.number().int().min(1).max(MAX_PARALLELISM),
  maxParallelism: z.number().int().min(1).max(MAX_PARALLELISM).default(128),
  operator: OperatorDescriptorSchema,
});
export type JobVertex = z.infer<typeof JobVertexSchema>;

export const PartitionerSchema = z.enum(['forward', 'rebalance', 'hash', 'broadcast', 'shuffle']);

export const JobEdgeSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  source: z.string(),
  target: z.string(),
  partitioner: PartitionerSchema,
});
export type JobEdge = z.infer<typeof JobEdgeSchema>;

export const ProgramSchema = z.object({
  /** The job bundle in the artifact store; absent when the plan is held in memory (local mode). */
  artifact: z
    .object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), sizeBytes: z.number().int().min(0) })
    .optional(),
  /** Program arguments, as given after the job file. */
  args: z.array(z.string().max(4_096)).max(1_000),
  /** The default parallelism the program ran with (planning must build the same graph). */
  parallelism: z.number().int().min(1).max(MAX_PARALLELISM),
  /** Which execute() call of the program this job is (0 = the first). */
  executionIndex: z.number().int().min(0),
  /** The job file's name, for messages. */
  entry: z.string().max(1_024),
});
export type Program = z.infer<typeof ProgramSchema>;

export const JobGraphSchema = z
  .object({
    jobId: JobIdSchema,
    name: z.string().min(1).max(256),
    vertices: z.array(JobVertexSchema).min(1).max(1_000),
    edges: z.array(JobEdgeSchema).max(10_000).default([]),
    /** The user program that built the graph (absent for built-in jobs). */
    program: ProgramSchema.optional(),
    bufferTimeoutMs: z.number().int().min(0).max(60_000).default(100),
    /** The application (application mode) whose main submitted the job. */
    applicationId: z.string().max(64).optional(),
    /** Checkpointing asked for by the program (else the cluster's `execution.checkpointing.*`). */
    checkpointing: z
      .object({
        intervalMs: z.number().int().min(0).max(86_400_000),
        mode: z.enum(['EXACTLY_ONCE', 'AT_LEAST_ONCE']).optional(),
      })
      .optional(),
    /**
     * The job's own configuration keys, as given (`sluice run -D job.autoscaler.…=…`): over the JobManager's
     * values for this job; the Dispatcher checks them at submission (src/config/job-configuration.ts).
     */
    configuration: z
      .record(z.string().min(1).max(128), z.string().max(1_024))
      .refine((c) => Object.keys(c).length <= 64, 'a job configuration has at most 64 keys')
      .optional(),
    /** Start from this savepoint (`sluice run -s PATH`). */
    savepoint: z
      .object({
        path: z.string().min(1).max(512),
        allowNonRestoredState: z.boolean().default(false),
      })
      .optional(),
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
