/**
 * What a JobManager knows about leadership, for its front ends (the REST API, the dashboard, metrics):
 * whether it leads, under which epoch, and who leads according to the leader record. Without high
 * availability a JobManager always leads and there is no record.
 *
 * Lookups of the record are shared: concurrent callers wait for one read, and a read is reused for
 * {@link LEADER_LOOKUP_CACHE_MS} (a standby answering many requests reads the key a few times a second at
 * most) unless this JobManager's own leadership changed since (a read taken while it led is not reused
 * after its revocation).
 */
import type { LeaderElectionService } from './leader-election.js';
import type { LeaderInfo, LeaderRead } from './leader-election-driver.js';

/** How long one read of the leader record is reused. */
export const LEADER_LOOKUP_CACHE_MS = 250;

/** A read of the leader record, or why it could not be read. */
export type LeaderLookup = LeaderRead | { state: 'error'; message: string };

export interface Leadership {
  /** This JobManager's id. */
  readonly jobManagerId: string;
  /** `high-availability.type` is not `none`. */
  readonly highAvailability: boolean;
  /** Whether this JobManager serves the cluster now (always true without HA). */
  isLeader(): boolean;
  /** The epoch this JobManager leads under; undefined when standing by (and always without HA). */
  epoch(): number | undefined;
  /** The leader record (HA only; `none` without HA or before the election is open). Never throws. */
  lookup(): Promise<LeaderLookup>;
  /**
   * The epoch of the current leadership as this JobManager knows it: its own when it leads, the leader
   * record's when it stands by; undefined when no leader is known (and without HA).
   */
  knownEpoch(): Promise<number | undefined>;
}

export interface LeadershipOptions {
  jobManagerId: string;
  highAvailability: boolean;
  isLeader: () => boolean;
  /** The election, once it exists (it is created after the REST API, which must know its URL first). */
  election: () => LeaderElectionService | undefined;
}

export function createLeadership(options: LeadershipOptions): Leadership {
  const { jobManagerId, highAvailability, election } = options;
  let cached: { at: number; own: string; lookup: Promise<LeaderLookup> } | undefined;

  const read = async (): Promise<LeaderLookup> => {
    const e = election();
    if (e === undefined) return { state: 'none' };
    try {
      return await e.readCurrentLeader();
    } catch (err) {
      return { state: 'error', message: err instanceof Error ? err.message : String(err) };
    }
  };

  const leadership: Leadership = {
    jobManagerId,
    highAvailability,
    isLeader: () => (highAvailability ? options.isLeader() : true),
    epoch: () => (highAvailability ? election()?.currentEpoch() : undefined),
    lookup: () => {
      if (!highAvailability) return Promise.resolve({ state: 'none' });
      const now = performance.now();
      const own = `${options.isLeader()}:${election()?.currentEpoch()}`;
      if (cached === undefined || now - cached.at > LEADER_LOOKUP_CACHE_MS || cached.own !== own) {
        cached = { at: now, own, lookup: read() };
      }
      return cached.lookup;
    },
    knownEpoch: async () => {
      if (!highAvailability) return undefined;
      const own = leadership.epoch();
      if (own !== undefined) return own;
      const found = await leadership.lookup();
      return found.state === 'held' ? found.leader.epoch : undefined;
    },
  };
  return leadership;
}

/** The leader as the REST API shows it (Flink-style hyphenated keys). */
export interface LeaderView {
  id: string;
  'rest-url': string | null;
  'rpc-address': string;
  epoch: number;
  /** The leader's wall clock at its last renewal (ms since the epoch; informational). */
  'renewed-at': number;
}

export function leaderView(leader: LeaderInfo): LeaderView {
  return {
    id: leader.leaderId,
    'rest-url': leader.restUrl ?? null,
    'rpc-address': leader.rpcAddress,
    epoch: leader.epoch,
    'renewed-at': leader.renewedAt,
  };
}
