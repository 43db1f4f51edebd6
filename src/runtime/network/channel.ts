/** Small helpers shared by the gates: argument checks and channel names for messages. */

import type { NatsConnection, Status } from '@nats-io/transport-node';
import { SUBJECT_TOKEN } from '../../actors/subjects.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';

export function checkToken(what: string, value: string): void {
  if (typeof value !== 'string' || !SUBJECT_TOKEN.test(value)) {
    throw new SluiceError(
      ErrorCode.InvalidJob,
      `${what} ${JSON.stringify(value)} is not a subject token ([A-Za-z0-9_-], 1 to 64 characters)`,
    );
  }
}

export function checkIndex(what: string, value: number, min = 0): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new SluiceError(ErrorCode.InvalidJob, `${what} must be an integer >= ${min}, got ${value}`);
  }
}

export function checkPositive(what: string, value: number | undefined, allowZero = false): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new SluiceError(
      ErrorCode.InvalidConfig,
      `${what} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${value}`,
    );
  }
}

/** `edge e1 subtask 0 -> 2 (job <id> attempt 1)`, for messages. */
export function channelName(
  jobId: string,
  attempt: number,
  edgeId: string,
  sourceSubtask: number,
  targetSubtask: number,
): string {
  return `edge ${edgeId} subtask ${sourceSubtask} -> ${targetSubtask} (job ${jobId} attempt ${attempt})`;
}

/** Logs a dropped message: the first few at warn, the rest at debug (a stranger must not flood the log). */
export function logDrop(log: Logger | undefined, count: number, fields: object, message: string): void {
  if (log === undefined) return;
  if (count <= 10) log.warn({ ...fields, dropped: count }, message);
  else log.debug({ ...fields, dropped: count }, message);
}

/** Connection events after which frames or credits may have been lost. */
const LOSSY_STATUS = new Set(['disconnect', 'reconnect', 'staleConnection', 'forceReconnect', 'close']);

/**
 * Calls `onLoss` once when the connection drops (disconnect, reconnect, close): NATS core does not resend
 * what was in flight, so a gate cannot vouch for its channels afterwards. Returns a function that stops
 * watching.
 */
export function watchConnection(nc: NatsConnection, onLoss: (event: string) => void): () => void {
  const statuses = nc.status() as AsyncIterable<Status> & { stop?: () => void };
  let stopped = false;
  const loss = (event: string) => {
    if (stopped) return;
    stopped = true;
    onLoss(event);
  };
  void (async () => {
    try {
      for await (const s of statuses) {
        if (stopped) return;
        if (LOSSY_STATUS.has(s.type)) return loss(s.type);
      }
    } catch {
      // the iterator ends with the connection
    }
    if (nc.isClosed()) loss('close');
  })();
  return () => {
    stopped = true;
    statuses.stop?.();
  };
}
