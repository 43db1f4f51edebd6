/**
 * The ResourceManager's gateway for TaskExecutors: `sluice.<cluster>.rm.<type>`.
 */
import { z } from 'zod';
import { SUBJECT_TOKEN } from '../../actors/subjects.js';

export const TaskManagerIdSchema = z.string().regex(SUBJECT_TOKEN, 'ids are 1-64 letters, digits, - or _');

export const SlotReportSchema = z.array(
  z.object({ index: z.number().int().min(0), jobId: z.string().nullable() }),
);

/** Registration and heartbeat carry the same report, so a heartbeat can re-register (e.g. a new RM). */
export const TaskManagerReport = z.object({
  taskManagerId: TaskManagerIdSchema,
  host: z.string().max(256),
  pid: z.number().int(),
  slots: z.number().int().min(1).max(1024),
  slotReport: SlotReportSchema,
});
export type TaskManagerReport = z.infer<typeof TaskManagerReport>;

export const RegisterReply = z.object({
  resourceManagerId: z.string(),
  heartbeatIntervalMs: z.number(),
});

export const UnregisterRequest = z.object({
  taskManagerId: TaskManagerIdSchema,
  reason: z.string().max(1024),
});
