/**
 * What a standby JobManager's REST API answers, per leader record (the decision alone; the same against real
 * processes is in test/ha/standby-rest.test.ts): a redirect when the leader's REST URL is known, else 503
 * saying what it waits for; `/leader` and (with no leader to send it to) the dashboard are served.
 */
import { describe, expect, it } from 'vitest';
import type { LeaderLookup, Leadership } from '../../src/ha/leadership.js';
import { standbyAnswer } from '../../src/rest/handlers/leader.js';

const OWN = 'http://127.0.0.1:9001';
const LEADER = { leaderId: 'jm-0', rpcAddress: 'sluice.x', epoch: 7, renewedAt: 0, revision: 9 };

function standby(found: LeaderLookup, leading = false): Leadership {
  return {
    jobManagerId: 'jm-1',
    highAvailability: true,
    isLeader: () => leading,
    epoch: () => (leading ? 7 : undefined),
    lookup: async () => found,
    knownEpoch: async () => undefined,
  };
}

const held = (restUrl: string | undefined, leaderId = 'jm-0'): LeaderLookup => ({
  state: 'held',
  leader: { ...LEADER, leaderId, restUrl },
});

describe('standbyAnswer', () => {
  it('redirects with 307 to the same path and query on the leader', async () => {
    const answer = await standbyAnswer(
      standby(held('http://jm-0:8081')),
      'DELETE',
      '/v1/jars/abc?x=%20',
      OWN,
    );
    expect(answer).toMatchObject({
      status: 307,
      headers: { Location: 'http://jm-0:8081/v1/jars/abc?x=%20' },
      body: { leader: { id: 'jm-0', 'rest-url': 'http://jm-0:8081', epoch: 7 } },
    });
    expect((await standbyAnswer(standby(held('http://jm-0:8081')), 'GET', '/', OWN))?.status).toBe(307);
  });

  it('answers 503 with what it waits for when there is nowhere to redirect', async () => {
    const cases: Array<[LeaderLookup, RegExp, unknown]> = [
      [{ state: 'none' }, /no leader is elected yet/, null],
      [{ state: 'unreadable', revision: 3, reason: 'not UTF-8 JSON' }, /unreadable \(not UTF-8 JSON\)/, null],
      [{ state: 'error', message: 'timed out' }, /could not be read: timed out/, null],
      [held(undefined), /the leader jm-0 \(epoch 7\) serves no REST API/, { id: 'jm-0', 'rest-url': null }],
      // Its own record outlives its leadership for a lease: no redirect to itself.
      [held(OWN, 'jm-1'), /is not the leader any more/, null],
      [
        held(OWN, 'jm-9'),
        /the leader jm-9 \(epoch 7\) advertises this JobManager's REST URL/,
        { id: 'jm-9' },
      ],
    ];
    for (const [found, message, leader] of cases) {
      const answer = await standbyAnswer(standby(found), 'GET', '/jobs/overview', OWN);
      expect(answer?.status, JSON.stringify(found)).toBe(503);
      expect(answer?.headers['Retry-After']).toBe('1');
      const body = answer?.body as { errors: string[]; leader: unknown };
      expect(body.errors[0]).toMatch(message);
      if (leader === null) expect(body.leader).toBeNull();
      else expect(body.leader).toMatchObject(leader as object);
    }
  });

  it('serves /leader itself, the dashboard while no leader is known, and everything when leading', async () => {
    expect(await standbyAnswer(standby(held('http://jm-0:8081')), 'GET', '/leader', OWN)).toBeUndefined();
    expect(await standbyAnswer(standby(held('http://jm-0:8081')), 'GET', '/v1/leader/', OWN)).toBeUndefined();
    expect(await standbyAnswer(standby({ state: 'none' }), 'GET', '/', OWN)).toBeUndefined();
    expect(await standbyAnswer(standby({ state: 'none' }), 'GET', '/web/app.js', OWN)).toBeUndefined();
    expect((await standbyAnswer(standby({ state: 'none' }), 'POST', '/', OWN))?.status).toBe(503);
    expect(await standbyAnswer(standby({ state: 'none' }, true), 'GET', '/jobs', OWN)).toBeUndefined();
  });
});
