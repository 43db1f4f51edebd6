import { randomBytes } from 'node:crypto';

/** A job id, as in Flink: 32 lower-case hex characters. */
export type JobId = string;

export const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;

export function newJobId(): JobId {
  return randomBytes(16).toString('hex');
}

export function isJobId(value: string): value is JobId {
  return JOB_ID_PATTERN.test(value);
}
