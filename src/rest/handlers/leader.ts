/**
 * High availability in the REST API: `GET /leader` (any JobManager says who leads), and what a standby
 * answers instead of serving a request — a 307 redirect to the leader's REST URL (same path and query),
 * or 503 with `{ errors, leader }` when the leader's REST URL is not known (as Flink's
 * `LeaderRetrievalHandler`).
 */
import type { LeaderLookup, Leadership, LeaderView } from '../../ha/leadership.js';
import { leaderView } from '../../ha/leadership.js';
import { ok, type Router } from '../router.js';
import { dashboardFile } from './web.js';

/** Paths every JobManager answers itself, leader or not (after the `/v1` prefix is removed). */
export const SERVED_BY_STANDBYS = new Set(['/leader']);

/** Seconds a client should wait before asking a standby again (`Retry-After` of its 503). */
const RETRY_AFTER_S = '1';

export function leaderRoutes(router: Router, leadership: Leadership, ownUrl: () => string): void {
  router.get('/leader', async () => {
    const self = leadership.jobManagerId;
    if (!leadership.highAvailability) {
      return ok({
        'jobmanager-id': self,
        'high-availability': 'none',
        leading: true,
        epoch: null,
        leader: { id: self, 'rest-url': ownUrl() },
        'leader-record': null,
      });
    }
    const leading = leadership.isLeader();
    const epoch = leadership.epoch() ?? null;
    const found = await leadership.lookup();
    let leader: LeaderView | null = found.state === 'held' ? leaderView(found.leader) : null;
    // Just granted: the record may still be the create's (no epoch yet) or unreadable to a slow read.
    if (leading && epoch !== null && (leader === null || leader.id !== self)) {
      leader = { id: self, 'rest-url': ownUrl(), 'rpc-address': '', epoch, 'renewed-at': Date.now() };
    }
    return ok({
      'jobmanager-id': self,
      'high-availability': 'nats',
      leading,
      epoch,
      leader,
      'leader-record': found.state,
      ...(found.state === 'unreadable' ? { detail: found.reason } : {}),
      ...(found.state === 'error' ? { detail: found.message } : {}),
    });
  });
}

export interface StandbyAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/**
 * What a JobManager that does not lead answers to a request, or undefined when it serves the request
 * itself: `GET /leader`, and the dashboard's page and files while no leader's REST URL is known (the page
 * then shows the standby's 503s and who it waits for).
 *
 * @param target the request's path and query as received (`req.url`)
 * @param ownUrl this JobManager's REST URL: never redirect to itself (a record it wrote before it stepped
 *   down can outlive its leadership for a lease)
 */
export async function standbyAnswer(
  leadership: Leadership,
  method: string,
  target: string,
  ownUrl: string,
): Promise<StandbyAnswer | undefined> {
  if (leadership.isLeader()) return undefined;
  const pathname = target.split('?')[0]!;
  const path = pathname.replace(/^\/v1(?=\/|$)/, '').replace(/\/+$/, '') || '/';
  if (SERVED_BY_STANDBYS.has(path)) return undefined;
  const found = await leadership.lookup();
  if (leadership.isLeader()) return undefined; // granted while the record was read
  const self = leadership.jobManagerId;
  const leader = found.state === 'held' ? found.leader : undefined;
  const restUrl = leader?.restUrl;
  if (leader !== undefined && restUrl !== undefined && leader.leaderId !== self && restUrl !== ownUrl) {
    const location = `${restUrl}${target.startsWith('/') ? target : `/${target}`}`;
    return {
      status: 307,
      body: { leader: leaderView(leader), location },
      headers: { Location: location, 'Cache-Control': 'no-store' },
    };
  }
  const isDashboard = (method === 'GET' || method === 'HEAD') && dashboardFile(pathname) !== undefined;
  if (isDashboard) return undefined;
  return {
    status: 503,
    body: {
      errors: [waitingFor(self, found, ownUrl)],
      leader: leader !== undefined && leader.leaderId !== self ? leaderView(leader) : null,
    },
    headers: { 'Retry-After': RETRY_AFTER_S, 'Cache-Control': 'no-store' },
  };
}

function waitingFor(self: string, found: LeaderLookup, ownUrl: string): string {
  const standby = `this JobManager (${self}) is a standby`;
  switch (found.state) {
    case 'none':
      return `${standby} and no leader is elected yet; ask again shortly`;
    case 'unreadable':
      return `${standby}; the leader record is unreadable (${found.reason}), a new leader is elected once it expires`;
    case 'error':
      return `${standby}; the leader record could not be read: ${found.message}`;
    case 'held': {
      const { leaderId, epoch, restUrl } = found.leader;
      if (leaderId === self) {
        return `this JobManager (${self}) is not the leader any more; waiting for the next leader`;
      }
      return restUrl === ownUrl
        ? `${standby}; the leader ${leaderId} (epoch ${epoch}) advertises this JobManager's REST URL ${ownUrl}`
        : `${standby}; the leader ${leaderId} (epoch ${epoch}) serves no REST API`;
    }
  }
}
