/** The errors of high availability. */
import { ErrorCode, isSluiceError, SluiceError } from '../common/errors.js';

/**
 * Something was to be done under a leader epoch that is no longer held: this JobManager stepped down
 * (`runIfLeader`), or a newer leader's epoch is already known to the receiver (an `EpochFence`, an HA
 * store). Code `LEADERSHIP_LOST`, not retryable: the caller must stop acting as leader, not try again.
 * Across NATS it arrives as a plain SluiceError with that code: test with {@link isLeadershipLost}.
 */
export class LeadershipLostError extends SluiceError {
  /** The epoch the refused action carried. */
  readonly epoch: number;
  /** The newer epoch known to whoever refused, when there is one. */
  readonly supersededBy: number | undefined;

  constructor(epoch: number, message: string, options: { supersededBy?: number; cause?: unknown } = {}) {
    super(ErrorCode.LeadershipLost, message, {
      cause: options.cause,
      details: {
        epoch,
        ...(options.supersededBy !== undefined ? { supersededBy: options.supersededBy } : {}),
      },
    });
    this.epoch = epoch;
    this.supersededBy = options.supersededBy;
  }
}

/** Whether `err` is a `LEADERSHIP_LOST` error (a {@link LeadershipLostError}, or one that came over NATS). */
export function isLeadershipLost(err: unknown): err is SluiceError {
  return isSluiceError(err, ErrorCode.LeadershipLost);
}
