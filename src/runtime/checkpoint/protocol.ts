/**
 * Messages and records of checkpointing (design §6):
 * - JobMaster → TaskExecutor: `tm.<tmId>.trigger` (a source subtask injects a barrier), `tm.<tmId>.complete`
 *   (a checkpoint is committed: sinks make its output visible).
 * - TaskExecutor → JobMaster: `jm.<jobId>.ack` (a subtask's state is stored: here is its handle),
 *   `jm.<jobId>.decline` (it could not take part).
 * - What is stored: the handle of one subtask's state object, and the checkpoint's metadata (the handles of
 *   every subtask), in the `state` object store; the `checkpoints` KV pointer lists the retained ones.
 */
import { z } from 'zod';
import { JobIdSchema, ExecutionAttemptIdSchema as TaskIdSchema } from '../../common/ids.js';
import {
  CheckpointIdSchema,
  StateObjectRefSchema,
  SubtaskStateHandleSchema,
  TargetSchema,
} from './state-handles.js';

export {
  CheckpointIdSchema,
  type RestoreSpec,
  RestoreSpecSchema,
  type StateObjectRef,
  StateObjectRefSchema,
  type SubtaskStateHandle,
  SubtaskStateHandleSchema,
  TargetSchema,
} from './state-handles.js';

export const TriggerCheckpointSchema = z.object({
  task: TaskIdSchema,
  checkpointId: CheckpointIdSchema,
  target: TargetSchema,
  /** Stop-with-savepoint: the source ends right after the barrier. */
  stop: z.boolean().default(false),
});
export type TriggerCheckpoint = z.infer<typeof TriggerCheckpointSchema>;

export const CheckpointCompleteSchema = z.object({
  jobId: JobIdSchema,
  checkpointId: CheckpointIdSchema,
});
export type CheckpointComplete = z.infer<typeof CheckpointCompleteSchema>;

export const CheckpointAckSchema = z.object({
  task: TaskIdSchema,
  taskManagerId: z.string().max(256),
  checkpointId: CheckpointIdSchema,
  handle: SubtaskStateHandleSchema,
  /** Alignment plus the synchronous snapshot, ms. */
  syncMs: z.number().min(0),
  epoch: z.number().int().positive().optional(),
});
export type CheckpointAck = z.infer<typeof CheckpointAckSchema>;

export const CheckpointDeclineSchema = z.object({
  task: TaskIdSchema,
  taskManagerId: z.string().max(256),
  checkpointId: CheckpointIdSchema,
  reason: z.string().max(4_096),
  /**
   * The TaskExecutor has no such task (it ended, failed or was cancelled there). A JobMaster that still
   * counts it as running has missed its final state (lost while NATS failed over) and fails it.
   */
  taskGone: z.boolean().optional(),
  epoch: z.number().int().positive().optional(),
});
export type CheckpointDecline = z.infer<typeof CheckpointDeclineSchema>;

export const CheckpointKindSchema = z.enum(['checkpoint', 'savepoint']);
export type CheckpointKind = z.infer<typeof CheckpointKindSchema>;

/** `<target>/_metadata`: a completed checkpoint or savepoint. */
export const CheckpointMetadataSchema = z.object({
  version: z.literal(1),
  jobId: JobIdSchema,
  jobName: z.string(),
  checkpointId: CheckpointIdSchema,
  kind: CheckpointKindSchema,
  target: TargetSchema,
  /** When it was triggered (ms since the epoch). */
  timestamp: z.number(),
  durationMs: z.number().min(0),
  sizeBytes: z.number().int().min(0),
  handles: z.array(SubtaskStateHandleSchema),
});
export type CheckpointMetadata = z.infer<typeof CheckpointMetadataSchema>;

/** One retained checkpoint in the `checkpoints` KV pointer. */
export const RetainedCheckpointSchema = z.object({
  checkpointId: CheckpointIdSchema,
  metadata: StateObjectRefSchema,
  timestamp: z.number(),
  durationMs: z.number().min(0),
  sizeBytes: z.number().int().min(0),
});
export type RetainedCheckpoint = z.infer<typeof RetainedCheckpointSchema>;

/** KV `checkpoints`, key jobId: the retained checkpoints, oldest first (the last is the latest). */
export const CheckpointPointerSchema = z.object({
  checkpoints: z.array(RetainedCheckpointSchema).max(1_000),
  /**
   * The highest checkpoint or savepoint id whose completion was notified: a new leader numbers from
   * above it (sinks derive transaction ids from checkpoint ids; one must never be reused).
   */
  maxCheckpointId: z.number().int().min(0).default(0),
});
export type CheckpointPointer = z.infer<typeof CheckpointPointerSchema>;

/**
 * Where checkpoint n of a job goes: `checkpoints/<jobId>/chk-<n>-e<epoch>`. The leader epoch keeps a
 * former leader that still runs (paused past its lease, not yet stepped down) from writing or deleting
 * the objects of the new leader's checkpoint of the same number.
 */
export function checkpointTarget(jobId: string, checkpointId: number, epoch = 1): string {
  return `checkpoints/${jobId}/chk-${checkpointId}-e${epoch}`;
}

export function metadataName(target: string): string {
  return `${target}/_metadata`;
}

export function subtaskObjectName(target: string, vertexId: string, subtaskIndex: number): string {
  return `${target}/${vertexId}-${subtaskIndex}`;
}
