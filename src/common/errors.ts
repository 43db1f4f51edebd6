/**
 * Typed errors with stable codes. Callers branch on `code` (or the `is…` predicates), never on message
 * text. An error's `retryable` flag says whether trying the same thing again can help.
 */

export const ErrorCode = {
  /** Bytes that are not a msgpack-encoded Sluice envelope. */
  BadEnvelope: 'BAD_ENVELOPE',
  /** An envelope whose version this process does not speak. */
  UnsupportedVersion: 'UNSUPPORTED_VERSION',
  /** An envelope whose type the receiving actor has no handler for. */
  UnknownMessageType: 'UNKNOWN_MESSAGE_TYPE',
  /** A well-formed envelope whose body fails the handler's schema. */
  InvalidMessage: 'INVALID_MESSAGE',
  /** A message over `rpc.max-message-size`. */
  MessageTooLarge: 'MESSAGE_TOO_LARGE',
  /** A request naming a job id that the Dispatcher does not know. */
  UnknownJob: 'UNKNOWN_JOB',
  /** A submission reusing a job id for a different job. */
  JobAlreadyExists: 'JOB_ALREADY_EXISTS',
  /** A request that is not allowed in the job's current state (e.g. cancelling a finished job). */
  IllegalState: 'ILLEGAL_STATE',
  /** An invalid job graph or job reference. */
  InvalidJob: 'INVALID_JOB',
  /** Not enough slots could be had within `slot.request.timeout`. */
  NoResourceAvailable: 'NO_RESOURCE_AVAILABLE',
  /** Nobody is subscribed to the subject (e.g. no JobManager is up, or a leader change is under way). */
  NoResponders: 'NO_RESPONDERS',
  /** An ask that got no answer within its deadline. */
  Timeout: 'TIMEOUT',
  /** The NATS server could not be reached. */
  ConnectionFailed: 'CONNECTION_FAILED',
  /** Invalid configuration (file, environment, -D, flags). */
  InvalidConfig: 'INVALID_CONFIG',
  /** A handler threw something it did not mean to: a bug, reported with its message. */
  Internal: 'INTERNAL',
  /** A user function threw. */
  UserCode: 'USER_CODE',
  /** The standalone cluster is already running, or not running. */
  ClusterState: 'CLUSTER_STATE',
  /**
   * High availability: an action under a leader epoch that is no longer held (this JobManager stepped
   * down), or a write carrying an epoch older than one the store has already seen (a newer leader exists).
   */
  LeadershipLost: 'LEADERSHIP_LOST',
  /**
   * JetStream did not answer: a stream without a leader while NATS fails over (nats-server 2.9 answers
   * "no responders", which the client reports as "jetstream is not enabled"), or JetStream is off.
   */
  JetStreamUnavailable: 'JETSTREAM_UNAVAILABLE',
  /** High availability: a record in a JetStream KV store that is not what Sluice writes. */
  CorruptedHaData: 'CORRUPTED_HA_DATA',
  /** A checkpoint or savepoint object that is not there (deleted, or a wrong savepoint path). */
  StateNotFound: 'STATE_NOT_FOUND',
  /** A checkpoint or savepoint object whose bytes do not match what was stored. */
  CorruptedState: 'CORRUPTED_STATE',
  /** A checkpoint could not complete (declined, timed out, or the job is not running). */
  CheckpointFailed: 'CHECKPOINT_FAILED',
  /**
   * A rescale to a parallelism the job cannot have: below 1, above a vertex's max parallelism, an unknown
   * vertex, or the two ends of a forward edge at different parallelisms.
   */
  InvalidRescale: 'INVALID_RESCALE',
  /** Another rescale of the same job has not finished yet. */
  RescaleInProgress: 'RESCALE_IN_PROGRESS',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const RETRYABLE: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.NoResponders,
  ErrorCode.Timeout,
  ErrorCode.ConnectionFailed,
  ErrorCode.JetStreamUnavailable,
]);

export interface SluiceErrorOptions {
  cause?: unknown;
  /** Overrides the code's default retryability. */
  retryable?: boolean;
  /** Extra context that travels with the error (e.g. the remote stack of a user-code error). */
  details?: Record<string, unknown>;
}

export class SluiceError extends Error {
  override readonly name = 'SluiceError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE.has(code);
    this.details = options.details;
  }

  /** The form an error takes in a reply envelope. */
  toWire(): WireError {
    return { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }

  static fromWire(wire: WireError): SluiceError {
    const code = isErrorCode(wire.code) ? wire.code : ErrorCode.Internal;
    return new SluiceError(code, wire.message, { retryable: wire.retryable, details: wire.details });
  }
}

export interface WireError {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown> | undefined;
}

const ALL_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

export function isErrorCode(value: string): value is ErrorCode {
  return ALL_CODES.has(value);
}

export function isSluiceError(err: unknown, code?: ErrorCode): err is SluiceError {
  return err instanceof SluiceError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a SluiceError, keeping SluiceErrors as they are. */
export function toSluiceError(err: unknown, code: ErrorCode = ErrorCode.Internal): SluiceError {
  if (err instanceof SluiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(code, message, { cause: err });
}
