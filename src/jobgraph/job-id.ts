import { createHash, randomBytes } from 'node:crypto';

/** A job id, as in Flink: 32 lower-case hex characters. */
export type JobId = string;

export const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;

export function newJobId(): JobId {
  return randomBytes(16).toString('hex');
}

export function isJobId(value: string): value is JobId {
  return JOB_ID_PATTERN.test(value);
}

/**
 * The fixed job id of an application's `index`-th execute()/executeAsync() call (application mode, as
 * Flink derives fixed job ids in HA application mode): the same on every run of the application's main, so
 * a main run again by a new leader finds the jobs the former leader's run submitted.
 */
export function applicationJobId(applicationId: string, executionIndex: number): JobId {
  return createHash('sha256').update(`${applicationId}\0${executionIndex}`).digest('hex').slice(0, 32);
}
