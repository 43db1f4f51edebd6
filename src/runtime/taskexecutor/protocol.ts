/**
 * The TaskExecutor's gateway for JobMasters (`sluice.<cluster>.tm.<tmId>.<type>`) and what it reports
 * back to a JobMaster (`sluice.<cluster>.jm.<jobId>.task-state`).
 */
import { z } from 'zod';
import { TaskState } from '../../api/job-status.js';
import { OperatorDescriptorSchema, ProgramSchema } from '../../jobgraph/job-graph.js';
import { RestoreSpecSchema } from '../checkpoint/state-handles.js';
import { ErrorInfoSchema, JobIdSchema } from '../dispatcher/protocol.js';

export const TaskIdSchema = z.object({
  jobId: JobIdSchema,
  vertexId: z.string(),
  subtaskIndex: z.number().int().min(0),
  attempt: z.number().int().min(0),
});
export type TaskId = z.infer<typeof TaskIdSchema>;

export const DeployRequest = z.object({
  task: TaskIdSchema,
  vertexName: z.string(),
  parallelism: z.number().int().min(1),
  slotIndex: z.number().int().min(0),
  operator: OperatorDescriptorSchema,
  /** For user programs: the vertex's channels and where its code comes from. */
  stream: z
    .object({
      attempt: z.number().int().min(0),
      inputs: z.array(
        z.object({
          edgeId: z.string(),
          sourceParallelism: z.number().int().min(1),
          inputIndex: z.number().int(),
        }),
      ),
      outputs: z.array(z.object({ edgeId: z.string(), targetParallelism: z.number().int().min(1) })),
      bufferTimeoutMs: z.number().int().min(0),
      program: ProgramSchema.optional(),
      /** Present when the job takes checkpoints. */
      checkpointing: z.object({ mode: z.enum(['EXACTLY_ONCE', 'AT_LEAST_ONCE']) }).optional(),
      /** The checkpoint or savepoint to restore the task's state from. */
      restore: RestoreSpecSchema.optional(),
    })
    .optional(),
});
export type DeployRequest = z.infer<typeof DeployRequest>;

export const CancelRequest = z.object({ jobId: JobIdSchema });
/** JobMaster → TaskExecutor: cancel these executions (reported there, unknown to the JobMaster). */
export const CancelExecutionsRequest = z.object({ tasks: z.array(TaskIdSchema).max(4_096) });
/** ResourceManager → TaskExecutor under HA: the leader's epoch is the envelope's `epoch`; no body. */
export const EpochAnnouncement = z.object({}).default({});
export const ShutdownRequest = z.object({ reason: z.string().max(1_024) });

export const TaskStateUpdate = z.object({
  task: TaskIdSchema,
  taskManagerId: z.string(),
  state: z.enum(TaskState),
  error: ErrorInfoSchema.optional(),
  accumulators: z.record(z.string(), z.number()).optional(),
  /** The leader epoch the task was deployed under (HA); a JobMaster of another epoch ignores the update. */
  epoch: z.number().int().positive().optional(),
});
export type TaskStateUpdate = z.infer<typeof TaskStateUpdate>;

/** Live counters of a running task, sent with every heartbeat (TaskExecutor → JobMaster, tell). */
export const TaskProgress = z.object({
  task: TaskIdSchema,
  taskManagerId: z.string(),
  accumulators: z.record(z.string(), z.number()),
  epoch: z.number().int().positive().optional(),
});
export type TaskProgress = z.infer<typeof TaskProgress>;

export function taskName(task: TaskId, vertexName: string, parallelism: number): string {
  return `${vertexName} (${task.subtaskIndex + 1}/${parallelism})#${task.attempt}`;
}
