/**
 * References to stored state (no dependencies on the actors' protocols, which import these): a state
 * object, one subtask's state handle, and what a task restores from.
 */
import { z } from 'zod';

export const CheckpointIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Where a checkpoint's objects go: `checkpoints/<jobId>/chk-<n>` or a savepoint's path. */
export const TargetSchema = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9_.\-/]+$/, 'letters, digits, _ . - and / only');

export const StateObjectRefSchema = z.object({
  name: z.string().min(1).max(1_024),
  sizeBytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type StateObjectRef = z.infer<typeof StateObjectRefSchema>;

/** The state one subtask stored for a checkpoint. */
export const SubtaskStateHandleSchema = z.object({
  vertexId: z.string().max(256),
  subtaskIndex: z.number().int().min(0),
  parallelism: z.number().int().min(1),
  /** Null when the subtask had no state. */
  object: StateObjectRefSchema.nullable(),
  /** The chained operators with state in the object. */
  operators: z
    .array(
      z.object({
        uid: z.string().max(256),
        maxParallelism: z.number().int().min(1),
        /** Keyed state or timers (restored by key group). */
        keyed: z.boolean(),
        /** Source position or sink transactions (restored as a union over the old subtasks). */
        connector: z.boolean(),
        /**
         * The operator's own state is broadcast state: the same in every old subtask, so a new subtask
         * reads only one copy (old subtask `index mod old parallelism`) instead of the union.
         */
        broadcast: z.boolean().optional(),
      }),
    )
    .max(1_000),
});
export type SubtaskStateHandle = z.infer<typeof SubtaskStateHandleSchema>;

/** What a task restores from (in its deploy request): the handles holding state of its operators. */
export const RestoreSpecSchema = z.object({
  checkpointId: CheckpointIdSchema,
  handles: z.array(SubtaskStateHandleSchema),
});
export type RestoreSpec = z.infer<typeof RestoreSpecSchema>;
