/**
 * Errors of the REST API: every failure becomes an HTTP status and Flink's body `{ "errors": ["message"] }`.
 * Handlers throw a {@link RestError} for HTTP-level problems (bad JSON, unknown path, body too large) and
 * let SluiceErrors from the Dispatcher through; {@link toRestError} maps the latter with one table.
 */
import { ErrorCode, isSluiceError } from '../common/errors.js';

export class RestError extends Error {
  override readonly name = 'RestError';
  readonly status: number;
  /** Extra response headers, e.g. `Allow` on 405. */
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/** The HTTP status of each SluiceError code. */
export const HTTP_STATUS_OF: Readonly<Record<ErrorCode, number>> = {
  // A request the Dispatcher refused as malformed (e.g. a job id it cannot parse).
  [ErrorCode.InvalidMessage]: 400,
  [ErrorCode.InvalidJob]: 400,
  [ErrorCode.UserCode]: 400,
  [ErrorCode.InvalidConfig]: 400,
  [ErrorCode.InvalidRescale]: 400,
  [ErrorCode.UnknownJob]: 404,
  [ErrorCode.StateNotFound]: 404,
  [ErrorCode.CheckpointFailed]: 409,
  [ErrorCode.JobAlreadyExists]: 409,
  [ErrorCode.IllegalState]: 409,
  [ErrorCode.ClusterState]: 409,
  [ErrorCode.RescaleInProgress]: 409,
  [ErrorCode.NoResourceAvailable]: 503,
  [ErrorCode.NoResponders]: 503,
  [ErrorCode.ConnectionFailed]: 503,
  [ErrorCode.JetStreamUnavailable]: 503,
  // This JobManager is no longer the leader: ask again (at the leader's address, once HA redirects).
  [ErrorCode.LeadershipLost]: 503,
  [ErrorCode.Timeout]: 504,
  // Problems between actors, never caused by the HTTP request itself.
  [ErrorCode.BadEnvelope]: 500,
  [ErrorCode.UnsupportedVersion]: 500,
  [ErrorCode.UnknownMessageType]: 500,
  [ErrorCode.MessageTooLarge]: 500,
  [ErrorCode.CorruptedHaData]: 500,
  [ErrorCode.CorruptedState]: 500,
  [ErrorCode.Internal]: 500,
};

/** Anything thrown by a handler, as a RestError (500 for what is neither a RestError nor a SluiceError). */
export function toRestError(err: unknown): RestError {
  if (err instanceof RestError) return err;
  if (isSluiceError(err)) return new RestError(HTTP_STATUS_OF[err.code], err.message);
  return new RestError(500, `internal server error: ${err instanceof Error ? err.message : String(err)}`);
}

export const notFound = (message: string): RestError => new RestError(404, message);
export const badRequest = (message: string): RestError => new RestError(400, message);
