/**
 * The ids and the error info every protocol shares, in one place: a job id is its own (branded) type, an
 * execution attempt is (job, vertex, subtask, attempt), a TaskManager id is a subject token, and a failure
 * travels as {@link ErrorInfo} (a job's or task's cause) or as a {@link WireErrorSchema} (a SluiceError's
 * code and message in an error reply).
 *
 * Promises: each schema accepts exactly the ids the runtime can use in a subject or a key, and nothing
 * else (a job id is 32 lower-case hex characters; a TaskManager id 1–64 letters, digits, `-` or `_`).
 * Refuses: parsing anything else gives a zod error naming the rule.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

export const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;

export const JobIdSchema = z
  .string()
  .regex(JOB_ID_PATTERN, 'job ids are 32 lower-case hex characters')
  .brand<'JobId'>();

/** A job id, as Flink's JobID: 32 lower-case hex characters. Its own type: a plain string is not one. */
export type JobId = z.infer<typeof JobIdSchema>;

export function isJobId(value: string): value is JobId {
  return JOB_ID_PATTERN.test(value);
}

/** A fresh random job id. */
export function newJobId(): JobId {
  return randomBytes(16).toString('hex') as JobId;
}

/** Tokens used as ids in subjects: no dots, wildcards or spaces. */
export const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export const TaskManagerIdSchema = z.string().regex(SUBJECT_TOKEN, 'ids are 1-64 letters, digits, - or _');

/** One execution attempt of one subtask (Flink's ExecutionAttemptID): job, vertex, subtask, attempt. */
export const ExecutionAttemptIdSchema = z.object({
  jobId: JobIdSchema,
  vertexId: z.string(),
  subtaskIndex: z.number().int().min(0),
  attempt: z.number().int().min(0),
});
export type ExecutionAttemptId = z.infer<typeof ExecutionAttemptIdSchema>;

/** Why a job or task failed, as clients see it. */
export const ErrorInfoSchema = z.object({
  message: z.string(),
  stack: z.string().optional(),
  /** Where it happened, e.g. `Source: Counter (2/4) on tm-host-1234`. */
  location: z.string().optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

/** A SluiceError in an error reply: its code (see errors.ts), message and whether a retry can help. */
export const WireErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  retryable: z.boolean(),
  details: z.record(z.string(), z.unknown()).optional(),
});
