/**
 * The ResourceManager's protocol for TaskExecutors, `sluice.<cluster>.rm.<type>`, declared once
 * ({@link ResourceManagerProtocol}). Registration and heartbeat carry the same report (the slot report), so
 * a heartbeat from an unknown TaskManager re-registers it (e.g. at a new leader's ResourceManager).
 */
import { z } from 'zod';
import { ask, defineProtocol, tell } from '../../actors/protocol.js';
import { TaskManagerIdSchema } from '../../common/ids.js';

export { TaskManagerIdSchema };

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

export const ResourceManagerProtocol = defineProtocol({
  role: 'ResourceManager',
  subject: 'rm',
  address: (subjects) => subjects.resourceManager,
  clientFacing: false,
  messages: {
    register: ask(TaskManagerReport, RegisterReply, {
      description: 'A TaskExecutor registers its slots; answered with the heartbeat interval.',
    }),
    heartbeat: tell(TaskManagerReport, {
      description: "A TaskExecutor's heartbeat with its slot report (re-registers an unknown one).",
    }),
    unregister: tell(UnregisterRequest, { description: 'A TaskExecutor leaves (its slots go).' }),
  },
});
