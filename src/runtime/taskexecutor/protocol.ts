/**
 * The TaskExecutor's protocol (`sluice.<cluster>.tm.<tmId>.<type>`), declared once
 * ({@link TaskExecutorProtocol}): commands from the leader's JobMasters and ResourceManager, fenced by the
 * leader epoch of their envelope (`leader-epoch`: a command of an older leader is refused). Also the
 * reports a TaskExecutor sends its JobMasters (their declaration is in ../jobmaster/protocol.ts).
 */
import { z } from 'zod';
import { ask, defineProtocol, tell } from '../../actors/protocol.js';
import { TaskState } from '../../api/job-status.js';
import {
  ErrorInfoSchema,
  type ExecutionAttemptId,
  ExecutionAttemptIdSchema,
  JobIdSchema,
} from '../../common/ids.js';
import { OperatorDescriptorSchema, ProgramSchema } from '../../jobgraph/job-graph.js';
import { CheckpointCompleteSchema, TriggerCheckpointSchema } from '../checkpoint/protocol.js';
import { RestoreSpecSchema } from '../checkpoint/state-handles.js';

/** A task: one execution attempt of one subtask (see ExecutionAttemptIdSchema). */
export const TaskIdSchema = ExecutionAttemptIdSchema;
export type TaskId = ExecutionAttemptId;

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

export const DeployReply = z.object({ accepted: z.literal(true) });

export const TaskExecutorProtocol = defineProtocol({
  role: 'TaskExecutor',
  subject: 'tm.<taskManagerId>',
  address: (subjects, taskManagerId: string) => subjects.taskExecutor(taskManagerId),
  clientFacing: false,
  messages: {
    deploy: ask(DeployRequest, DeployReply, {
      description: 'A JobMaster deploys one task into a slot.',
      fenced: 'leader-epoch',
    }),
    cancel: tell(CancelRequest, {
      description: 'A JobMaster cancels every task of its job here.',
      fenced: 'leader-epoch',
    }),
    'cancel-executions': tell(CancelExecutionsRequest, {
      description: 'A JobMaster cancels executions reported here that it does not know (reconciliation).',
      fenced: 'leader-epoch',
    }),
    epoch: tell(EpochAnnouncement, {
      description:
        "A new leader's ResourceManager announces its epoch (tasks of older epochs are cancelled).",
      fenced: 'leader-epoch',
    }),
    trigger: tell(TriggerCheckpointSchema, {
      description: 'A JobMaster triggers a checkpoint at a source task (a declined one says why).',
      fenced: 'leader-epoch',
    }),
    complete: tell(CheckpointCompleteSchema, {
      description: 'A JobMaster says a checkpoint is committed (sinks make its output visible).',
      fenced: 'leader-epoch',
    }),
    shutdown: tell(ShutdownRequest, {
      description: 'The ResourceManager ends the TaskManager (end of an application or per-job cluster).',
    }),
  },
});
