/**
 * The in-process channel registry: where an OutputGate finds a consumer that runs in the same thread, to
 * hand frames over in memory (Flink's LocalInputChannel) instead of encoding them and going through NATS.
 *
 * - Keyed by the channel's NATS data subject (cluster, job, attempt, edge, target subtask): the same
 *   identity the remote path uses, so a sender of another attempt never finds a receiver of this one.
 * - Module-level state, hence one registry per JavaScript realm: per process, and per worker thread when
 *   slots run in worker threads (each worker loads its own copy of this module). "Local" therefore always
 *   means "the same event loop": a handed-over frame is read by the consumer without any copy or lock.
 * - A local channel keeps the remote protocol's semantics: frames numbered from 1, a cumulative credit
 *   grant with the same window, watermarks, barriers and the end of partition in band in the same frames.
 *   What it skips: encoding, decoding, NATS, the credit re-send (a function call cannot be lost).
 * - Records are handed over by reference, not copied: a function must not change a record after emitting
 *   it (Flink's object-reuse rule). The sender still measures (encodes) the first record and every 64th of
 *   a frame, so a value that cannot be serialized fails locally as it would remotely, if not always on the
 *   same record.
 * - `SLUICE_LOCAL_CHANNELS=off` in a process's environment turns local channels off there (every channel
 *   goes through NATS): a diagnostic switch and what the benches use to measure the remote path.
 * - Refuses a second receiver for the same subject (the same subtask deployed twice in one thread).
 */
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { ConnectGrant } from './control.js';
import type { DecodedFrame } from './frame.js';

/** The sender's side of a local channel, as the receiver sees it. */
export interface LocalSender {
  /** The receiver's cumulative grant: frames up to this sequence number may be delivered. */
  onGrant(grant: number): void;
  /** The receiver went away (closed, failed) before consuming the channel's end. */
  onReceiverClosed(error: SluiceError): void;
}

/** One channel's receiving end, as the sender sees it (returned by {@link LocalReceiver.connectLocal}). */
export interface LocalEndpoint {
  /** Hands over the next frame (in sequence, within the grant). */
  deliver(frame: DecodedFrame): void;
}

/** An input gate's slot (one incoming edge) registered for local senders. */
export interface LocalReceiver {
  /**
   * Connects source subtask `sourceSubtask`: returns the initial grant and the endpoint to deliver to.
   * @throws SluiceError INVALID_MESSAGE for a source out of range, ILLEGAL_STATE when the gate is closed
   */
  connectLocal(sourceSubtask: number, sender: LocalSender): ConnectGrant & { endpoint: LocalEndpoint };
}

const receivers = new Map<string, LocalReceiver>();

/** Whether local channels are on in this process (`SLUICE_LOCAL_CHANNELS` is not `off`/`false`/`0`). */
export function localChannelsEnabled(): boolean {
  const v = process.env.SLUICE_LOCAL_CHANNELS?.trim().toLowerCase();
  return v !== 'off' && v !== 'false' && v !== '0';
}

/** @throws SluiceError ILLEGAL_STATE when a receiver is already registered for `subject` */
export function registerLocalReceiver(subject: string, receiver: LocalReceiver): void {
  if (receivers.has(subject)) {
    throw new SluiceError(
      ErrorCode.IllegalState,
      `a receiver for ${subject} is already registered in this process (the same subtask deployed twice?)`,
    );
  }
  receivers.set(subject, receiver);
}

/** Removes the registration, if it is still `receiver`'s. */
export function unregisterLocalReceiver(subject: string, receiver: LocalReceiver): void {
  if (receivers.get(subject) === receiver) receivers.delete(subject);
}

export function findLocalReceiver(subject: string): LocalReceiver | undefined {
  return receivers.get(subject);
}

/** Receivers registered in this thread (tests, diagnostics). */
export function localReceiverCount(): number {
  return receivers.size;
}
