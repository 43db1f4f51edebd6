import { createHash } from 'node:crypto';
import type { JobId } from '../common/ids.js';

export { isJobId, JOB_ID_PATTERN, type JobId, newJobId } from '../common/ids.js';

/**
 * The fixed job id of an application's `index`-th execute()/executeAsync() call (application mode, as
 * Flink derives fixed job ids in HA application mode): the same on every run of the application's main, so
 * a main run again by a new leader finds the jobs the former leader's run submitted.
 */
export function applicationJobId(applicationId: string, executionIndex: number): JobId {
  return createHash('sha256')
    .update(`${applicationId}\0${executionIndex}`)
    .digest('hex')
    .slice(0, 32) as JobId;
}
