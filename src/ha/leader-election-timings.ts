/**
 * The timings of a leader election (see `docs/high-availability.md`): the lease of the leader key and what
 * follows from it (renewal interval, safety margin, poll interval, request timeout). Promises one validated
 * set in which a renewal sent on time can always finish before the leader's own deadline; refuses (with
 * `INVALID_CONFIG`, naming every problem at once) any set where it could not.
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
/** Lease of the leader key (the TTL of the leader bucket), ms. */
export const DEFAULT_LEASE_MS = 3_000;
/** Defaults of the other timings for {@link DEFAULT_LEASE_MS}; with another lease they scale with it. */
export const DEFAULT_RENEW_INTERVAL_MS = DEFAULT_LEASE_MS / 3;
export const DEFAULT_SAFETY_MARGIN_MS = DEFAULT_LEASE_MS / 6;
export const DEFAULT_POLL_INTERVAL_MS = DEFAULT_LEASE_MS / 6;
export const DEFAULT_REQUEST_TIMEOUT_MS = DEFAULT_LEASE_MS / 3;
/** Below this the store's expiry and the network are too coarse for a lease. */
export const MIN_LEASE_MS = 100;

/** The timings of an election, validated (see {@link parseLeaderElectionTimings}). */
export interface LeaderElectionTimings {
  /** How long the leader key lives after its last write: the bucket TTL. */
  leaseMs: number;
  /** The leader renews its key this often (measured from the start of the previous renewal). */
  renewIntervalMs: number;
  /**
   * The leader considers itself deposed once `leaseMs − safetyMarginMs` have passed since the start of
   * its last successful renewal: that much before the key can expire in the store.
   */
  safetyMarginMs: number;
  /** Standbys try to create the key this often. */
  pollIntervalMs: number;
  /** Timeout of one store request (a renewal's is further capped by the leader's deadline). */
  requestTimeoutMs: number;
}

const TIMING_KEYS = [
  'leaseMs',
  'renewIntervalMs',
  'safetyMarginMs',
  'pollIntervalMs',
  'requestTimeoutMs',
] as const satisfies readonly (keyof LeaderElectionTimings)[];

/** The defaults for a lease: renew every lease/3, margin lease/6, poll every lease/6, requests lease/3. */
export function defaultLeaderElectionTimings(leaseMs: number = DEFAULT_LEASE_MS): LeaderElectionTimings {
  return {
    leaseMs,
    renewIntervalMs: Math.round(leaseMs / 3),
    safetyMarginMs: Math.round(leaseMs / 6),
    pollIntervalMs: Math.round(leaseMs / 6),
    requestTimeoutMs: Math.round(leaseMs / 3),
  };
}

/**
 * Merges `input` over the defaults for its lease and validates the result; throws `INVALID_CONFIG` naming
 * every problem at once.
 */
export function parseLeaderElectionTimings(
  input: Partial<LeaderElectionTimings> = {},
): LeaderElectionTimings {
  const lease = input.leaseMs;
  const usableLease = typeof lease === 'number' && Number.isFinite(lease) && lease > 0;
  const t = defaultLeaderElectionTimings(usableLease ? lease : DEFAULT_LEASE_MS);
  for (const key of TIMING_KEYS) {
    if (input[key] !== undefined) t[key] = input[key];
  }
  const problems: string[] = [];
  for (const key of TIMING_KEYS) {
    const value: unknown = t[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      problems.push(`${key} must be a positive number of milliseconds, got ${String(value)}`);
    }
  }
  if (problems.length === 0) {
    if (!Number.isInteger(t.leaseMs) || t.leaseMs < MIN_LEASE_MS) {
      problems.push(`leaseMs must be a whole number of milliseconds ≥ ${MIN_LEASE_MS}, got ${t.leaseMs}`);
    }
    if (t.leaseMs <= 2 * t.renewIntervalMs) {
      problems.push(
        `leaseMs (${t.leaseMs}) must be more than twice renewIntervalMs (${t.renewIntervalMs}) so that ` +
          `renewals come well before the lease runs out`,
      );
    }
    if (t.safetyMarginMs >= t.leaseMs - t.renewIntervalMs) {
      problems.push(
        `safetyMarginMs (${t.safetyMarginMs}) must be less than leaseMs − renewIntervalMs ` +
          `(${t.leaseMs - t.renewIntervalMs}), or the leader steps down before its first renewal is due`,
      );
    } else if (t.renewIntervalMs + t.requestTimeoutMs > t.leaseMs - t.safetyMarginMs) {
      problems.push(
        `renewIntervalMs + requestTimeoutMs (${t.renewIntervalMs + t.requestTimeoutMs}) must not exceed ` +
          `leaseMs − safetyMarginMs (${t.leaseMs - t.safetyMarginMs}): a renewal sent on time must be ` +
          `able to finish before the leader's deadline`,
      );
    }
    if (t.pollIntervalMs > t.leaseMs) {
      problems.push(`pollIntervalMs (${t.pollIntervalMs}) must not exceed leaseMs (${t.leaseMs})`);
    }
  }
  if (problems.length > 0) {
    throw new SluiceError(ErrorCode.InvalidConfig, `invalid leader election timings: ${problems.join('; ')}`);
  }
  return t;
}
