/**
 * The REST API and metrics of standby JobManagers, with real processes: two `sluice jobmanager -D
 * high-availability.type=nats` on one nats-server, each with its REST API (`rest.port=0`) and Prometheus
 * endpoint (`metrics.port=0`).
 *
 * - `GET /leader` on either says who leads; the standby redirects API requests (307, same path and query)
 *   and the dashboard page to the leader; the leader gauge is 1 / 0 and both show the epoch.
 * - Bad input in the leader key (garbage bytes, then a forged record: another leaderId, a huge epoch): the
 *   leader steps down when its renewal's compare-and-set misses, nobody leads (both answer 503 naming what
 *   they wait for) until the key expires, then one of them wins with a real epoch; no process crashes and
 *   no two leaderships overlap.
 * - The leader is SIGKILLed: the former standby takes over and serves 200 itself.
 */
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_MS } from '../../src/ha/leader-election-timings.js';
import { LEADER_KEY, leaderBucketName } from '../../src/ha/nats-kv-leader-election-driver.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess } from '../harness/processes.js';
import { waitFor } from './helpers.js';

const CLUSTER = `harest${process.pid}`;
const FORGED_EPOCH = 1e15;

interface Jm {
  id: string;
  proc: SluiceProcess;
  rest: string;
  metrics: string;
}

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON of many shapes, checked field by field
  body: any;
}

async function get(url: string, redirect: 'manual' | 'follow' = 'manual'): Promise<Answer> {
  const res = await fetch(url, { redirect });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON (the dashboard page)
  }
  return { status: res.status, headers: res.headers, body };
}

/** The value of a sample without labels other than the process's defaults. */
async function gauge(metricsUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

const grants = (jm: Jm) => jm.proc.lines.filter((l) => l.msg === 'granted leadership');
const revokes = (jm: Jm) => jm.proc.lines.filter((l) => l.msg === 'leadership revoked');
const timeOf = (l: Record<string, unknown>) =>
  typeof l.time === 'number' ? l.time : Date.parse(String(l.time));

/** Leadership intervals of all JobManagers (log times): none overlap, epochs increase. */
function assertOneLeaderAtATime(jms: Jm[]): void {
  const intervals = jms.flatMap((jm) =>
    grants(jm).map((g) => {
      const epoch = Number(g.epoch);
      const end = revokes(jm).find((r) => Number(r.epoch) === epoch);
      return { who: jm.id, epoch, from: timeOf(g), to: end ? timeOf(end) : Number.POSITIVE_INFINITY };
    }),
  );
  intervals.sort((a, b) => a.epoch - b.epoch);
  for (let i = 1; i < intervals.length; i++) {
    const prev = intervals[i - 1]!;
    const cur = intervals[i]!;
    expect(cur.from, `${JSON.stringify(prev)} overlaps ${JSON.stringify(cur)}`).toBeGreaterThanOrEqual(
      prev.to,
    );
  }
}

describe('REST and metrics of standby JobManagers (high-availability.type=nats)', () => {
  let nats: NatsServerHandle;
  let admin: NatsConnection;
  const jms: Jm[] = [];
  let leader: Jm;
  let standby: Jm;
  let epoch: number;

  const leaderOf = async (): Promise<Jm | undefined> => {
    for (const jm of jms) {
      const { body } = await get(`${jm.rest}/leader`);
      if (body?.leading === true) return jm;
    }
    return undefined;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    admin = await connect({ servers: nats.url, name: 'standby-rest-test' });
    const common = [
      '--nats',
      nats.url,
      '--cluster-id',
      CLUSTER,
      '-D',
      'high-availability.type=nats',
      '-D',
      'rest.port=0',
      '-D',
      'metrics.port=0',
    ];
    for (const id of ['jm-a', 'jm-b']) {
      const proc = new SluiceProcess(['jobmanager', ...common, '-D', `jobmanager.id=${id}`]);
      const [rest, metrics] = await Promise.all([
        proc.waitForMessage('REST API listening'),
        proc.waitForMessage('metrics endpoint listening'),
      ]);
      jms.push({ id, proc, rest: String(rest.url), metrics: String(metrics.url) });
    }
    const first = await Promise.any(
      jms.map((jm) => jm.proc.waitForMessage('granted leadership').then(() => jm)),
    );
    leader = first;
    standby = jms.find((jm) => jm !== first)!;
    epoch = Number((await leader.proc.waitForMessage('granted leadership')).epoch);
    await leader.proc.waitForMessage('leadership active');
    await standby.proc.waitForMessage('waiting for leadership');
  });

  afterAll(async () => {
    await Promise.all(jms.map((jm) => jm.proc.stop()));
    await admin?.close();
    await nats?.stop();
  });

  it('GET /leader on either JobManager says who leads, with its REST URL and epoch', async () => {
    const onLeader = await get(`${leader.rest}/leader`);
    expect(onLeader.status).toBe(200);
    expect(onLeader.body).toMatchObject({
      'jobmanager-id': leader.id,
      'high-availability': 'nats',
      leading: true,
      epoch,
      leader: { id: leader.id, 'rest-url': leader.rest, epoch },
    });
    const onStandby = await get(`${standby.rest}/v1/leader`);
    expect(onStandby.status).toBe(200);
    expect(onStandby.body).toMatchObject({
      'jobmanager-id': standby.id,
      leading: false,
      epoch: null,
      leader: { id: leader.id, 'rest-url': leader.rest, 'rpc-address': `sluice.${CLUSTER}`, epoch },
      'leader-record': 'held',
    });
  });

  it('a standby redirects API requests and the dashboard to the leader (307, same path and query)', async () => {
    const redirected = await get(`${standby.rest}/jobs/overview?x=1&y=%2F`);
    expect(redirected.status).toBe(307);
    expect(redirected.headers.get('location')).toBe(`${leader.rest}/jobs/overview?x=1&y=%2F`);
    expect(redirected.body.leader).toMatchObject({ id: leader.id, epoch });

    const v1 = await get(`${standby.rest}/v1/overview`);
    expect(v1.status).toBe(307);
    expect(v1.headers.get('location')).toBe(`${leader.rest}/v1/overview`);
    const page = await get(`${standby.rest}/`);
    expect(page.status).toBe(307);
    expect(page.headers.get('location')).toBe(`${leader.rest}/`);
    // Methods with bodies too: 307 keeps the method and body.
    const post = await fetch(`${standby.rest}/jars/upload`, {
      method: 'POST',
      body: 'x',
      redirect: 'manual',
    });
    expect(post.status).toBe(307);
    expect(post.headers.get('location')).toBe(`${leader.rest}/jars/upload`);

    // Followed, the answer is the leader's.
    const followed = await get(`${standby.rest}/overview`, 'follow');
    expect(followed.status).toBe(200);
    expect(followed.body['jobmanager-id']).toBe(leader.id);
    const jobs = await get(`${standby.rest}/jobs/overview`, 'follow');
    expect(jobs.status).toBe(200);
    expect(jobs.body).toEqual({ jobs: [] });
    // The leader serves itself.
    expect((await get(`${leader.rest}/jobs/overview`)).status).toBe(200);
  });

  it('shows sluice_jobmanager_leader 1 / 0 and the epoch on both Prometheus endpoints', async () => {
    expect(await gauge(leader.metrics, 'sluice_jobmanager_leader')).toBe(1);
    expect(await gauge(standby.metrics, 'sluice_jobmanager_leader')).toBe(0);
    expect(await gauge(leader.metrics, 'sluice_jobmanager_leader_epoch')).toBe(epoch);
    expect(await gauge(standby.metrics, 'sluice_jobmanager_leader_epoch')).toBe(epoch);
  });

  it.each([
    ['garbage bytes', new Uint8Array([0xff, 0x00, 0xc3, 0x28, 0x7b])],
    [
      'a forged record (another leaderId, a huge epoch)',
      new TextEncoder().encode(
        JSON.stringify({
          v: 1,
          leaderId: 'mallory',
          rpcAddress: 'sluice.evil',
          restUrl: 'http://127.0.0.1:1',
          epoch: FORGED_EPOCH,
          renewedAt: Date.now(),
        }),
      ),
    ],
  ])(
    '%s in the leader key: the leader steps down, nobody leads until it expires, no crash',
    async (_, bytes) => {
      const before = await leaderOf();
      expect(before).toBeDefined();
      const epochBefore = Number((await get(`${before!.rest}/leader`)).body.epoch);
      const grantsBefore = jms.map((jm) => grants(jm).length);
      const kv = await new Kvm(admin).open(leaderBucketName(CLUSTER));
      const putAt = performance.now();
      await kv.put(LEADER_KEY, bytes);

      // The leader's next renewal (compare-and-set on its own revision) misses: it steps down at once.
      const revoked = await before!.proc.waitForLog(
        (l) => l.msg === 'leadership revoked' && Number(l.epoch) === epochBefore,
        5_000,
      );
      expect(revoked.reason).toBe('renewal-rejected');
      const steppedDownAfterMs = performance.now() - putAt;

      // While the junk lives, both stand by and say so: 503 with `leader: null`, no redirect to the forged
      // URL (once a read of the record from before the write, reused for up to 250 ms, has been replaced).
      for (const jm of jms) {
        let last: Answer | undefined;
        await waitFor(
          async () => {
            last = await get(`${jm.rest}/jobs/overview`);
            return last.status === 503 && last.body.leader === null;
          },
          1_000,
          `${jm.id} to answer 503 without a leader`,
        );
        const answer = last!;
        expect(performance.now() - putAt).toBeLessThan(DEFAULT_LEASE_MS); // all while the junk lived
        expect(answer.headers.get('retry-after')).toBe('1');
        expect(answer.body.leader).toBeNull();
        expect(answer.body.errors[0]).toContain(`this JobManager (${jm.id}) is a standby`);
        expect(answer.body.errors[0]).toContain('unreadable');
        const who = await get(`${jm.rest}/leader`);
        expect(who.body).toMatchObject({ leading: false, leader: null, 'leader-record': 'unreadable' });
        expect(await gauge(jm.metrics, 'sluice_jobmanager_leader')).toBe(0);
        expect(await gauge(jm.metrics, 'sluice_jobmanager_leader_epoch')).toBe(0);
      }
      expect(jms.map((jm) => grants(jm).length)).toEqual(grantsBefore);

      // Once the key expires (bucket TTL = lease), a real contender wins with a real epoch.
      let next: Jm | undefined;
      await waitFor(
        async () => {
          next = jms.find((jm) => grants(jm).length > grantsBefore[jms.indexOf(jm)]!);
          return next !== undefined;
        },
        DEFAULT_LEASE_MS + 5_000,
        'a new leader once the junk expired',
      );
      const wonAfterMs = performance.now() - putAt;
      const grant = grants(next!).at(-1)!;
      console.log(
        `bad leader record: leader stepped down ${Math.round(steppedDownAfterMs)} ms after the write, ` +
          `${next!.id} won ${Math.round(wonAfterMs)} ms after it (epoch ${String(grant.epoch)})`,
      );
      expect(wonAfterMs).toBeGreaterThanOrEqual(DEFAULT_LEASE_MS - 100); // not while the junk lived
      expect(Number(grant.epoch)).toBeGreaterThan(epochBefore);
      expect(Number(grant.epoch)).toBeLessThan(FORGED_EPOCH);
      await next!.proc.waitForLog((l) => l.msg === 'leadership active' && l.epoch === grant.epoch, 10_000);
      await waitFor(
        async () => (await get(`${next!.rest}/jobs/overview`)).status === 200,
        5_000,
        'the new leader to serve',
      );
      expect(await gauge(next!.metrics, 'sluice_jobmanager_leader_epoch')).toBe(Number(grant.epoch));
      // Exactly one of them won; nobody crashed; leaderships never overlapped.
      expect(jms.reduce((n, jm, i) => n + grants(jm).length - grantsBefore[i]!, 0)).toBe(1);
      for (const jm of jms) expect(jm.proc.child.exitCode).toBeNull();
      assertOneLeaderAtATime(jms);
      leader = next!;
      standby = jms.find((jm) => jm !== next)!;
      epoch = Number(grant.epoch);
    },
  );

  it('after the leader is SIGKILLed the former standby takes over and serves 200 itself', async () => {
    await standby.proc.waitForMessage('waiting for leadership');
    await waitFor(
      async () => (await get(`${standby.rest}/jobs/overview`)).status === 307,
      1_000,
      'the standby to redirect to the new leader',
    );
    leader.proc.kill('SIGKILL');
    await leader.proc.exited;
    const grant = await standby.proc.waitForLog(
      (l) => l.msg === 'granted leadership' && Number(l.epoch) > epoch,
      DEFAULT_LEASE_MS + 5_000,
    );
    await standby.proc.waitForLog((l) => l.msg === 'leadership active' && l.epoch === grant.epoch);
    let answer: Answer | undefined;
    await waitFor(
      async () => {
        answer = await get(`${standby.rest}/jobs/overview`);
        return answer.status === 200;
      },
      5_000,
      'the new leader to serve /jobs/overview',
    );
    expect(answer!.body).toEqual({ jobs: [] });
    expect((await get(`${standby.rest}/leader`)).body).toMatchObject({
      'jobmanager-id': standby.id,
      leading: true,
      epoch: Number(grant.epoch),
      leader: { id: standby.id, 'rest-url': standby.rest },
    });
    expect(await gauge(standby.metrics, 'sluice_jobmanager_leader')).toBe(1);
  });
});
