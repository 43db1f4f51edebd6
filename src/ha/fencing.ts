/**
 * Fencing on the receiving side. Every command a leader sends carries its epoch (the KV revision at which
 * it won, strictly increasing from one leadership to the next). A receiver keeps one {@link EpochFence}
 * and passes every command's epoch through it:
 *
 * ```ts
 * const fence = new EpochFence({
 *   onAdvance: (epoch, previous) => cancelTasksOfEpochsBelow(epoch), // a new leader took over
 * });
 * // in the TaskExecutor's deploy / cancel / trigger handlers:
 * const verdict = fence.check(envelope.epoch);
 * if (!verdict.accepted) throw fence.refusal(verdict); // LEADERSHIP_LOST, with the newer epoch
 * ```
 *
 * So a deposed leader that is still running (a zombie) cannot deploy, cancel or trigger anything once the
 * receiver has heard from its successor, and tasks deployed under an older epoch are cancelled when a
 * newer one arrives (the new leader redeploys what it wants from the latest checkpoint).
 *
 * Only take epochs from leader commands the receiver trusts (validated envelopes from the leader it looked
 * up with `currentLeader()`, which refuses records whose epoch is above their revision): one forged huge
 * epoch would make the fence refuse every real leader afterwards.
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
import { LeadershipLostError } from './errors.js';

export type FenceVerdict =
  /** `advanced`: the epoch is newer than any seen before (`previous` is the one it replaces). */
  | { accepted: true; epoch: number; advanced: boolean; previous: number | undefined }
  /** An older epoch: `supersededBy` is the highest epoch seen. */
  | { accepted: false; epoch: number; supersededBy: number };

export interface EpochFenceOptions {
  /** The highest epoch already known (e.g. from the leader record at start). */
  initial?: number;
  /** Called when an accepted epoch is newer than every one before; not for the first one without `initial`. */
  onAdvance?: (epoch: number, previous: number) => void;
}

export class EpochFence {
  #highest: number | undefined;
  readonly #onAdvance: ((epoch: number, previous: number) => void) | undefined;

  constructor(options: EpochFenceOptions = {}) {
    if (options.initial !== undefined) checkEpoch(options.initial);
    this.#highest = options.initial;
    this.#onAdvance = options.onAdvance;
  }

  /** The highest epoch accepted so far. */
  get current(): number | undefined {
    return this.#highest;
  }

  /**
   * Accepts `epoch` if it is ≥ the highest seen (and records it), refuses it otherwise. Throws
   * `INVALID_MESSAGE` for something that is not an epoch (a positive safe integer).
   */
  check(epoch: number): FenceVerdict {
    checkEpoch(epoch);
    const previous = this.#highest;
    if (previous !== undefined && epoch < previous) return { accepted: false, epoch, supersededBy: previous };
    const advanced = previous === undefined || epoch > previous;
    this.#highest = epoch;
    if (advanced && previous !== undefined) this.#onAdvance?.(epoch, previous);
    return { accepted: true, epoch, advanced, previous };
  }

  /** {@link check}, as a boolean. */
  accept(epoch: number): boolean {
    return this.check(epoch).accepted;
  }

  /** The error to answer a refused command with (`LEADERSHIP_LOST`, details `{ epoch, supersededBy }`). */
  refusal(verdict: Extract<FenceVerdict, { accepted: false }>): LeadershipLostError {
    return new LeadershipLostError(
      verdict.epoch,
      `epoch ${verdict.epoch} is superseded by epoch ${verdict.supersededBy}: a newer JobManager leads`,
      { supersededBy: verdict.supersededBy },
    );
  }

  /** Accepts `epoch` or throws the {@link refusal}. */
  require(epoch: number): void {
    const verdict = this.check(epoch);
    if (!verdict.accepted) throw this.refusal(verdict);
  }
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch <= 0) {
    throw new SluiceError(
      ErrorCode.InvalidMessage,
      `'${String(epoch)}' is not an epoch (a positive integer)`,
    );
  }
}
