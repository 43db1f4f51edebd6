/**
 * The autoscaler, end to end on real processes: a JobManager keeping a TaskManager pool (1..4 TaskManagers
 * of 1 slot), a job reading a JetStream stream through a keyed running count that costs 10 ms of CPU per
 * event into the exactly-once JetStream sink, and the autoscaler with test-sized windows (control loop 1 s,
 * window 5 s, stabilisation 5 s, target utilisation 0.3 ± 0.15, catch-up 10 s).
 *
 * The input runs at 15 events/s, steps up 4× to 60/s, and back down to 15/s (the count's CPU work is 0.6 of
 * a core at 60/s; the sink's writes and the machine's load add to its busy time, which is why the work per
 * event dominates). Stated bounds:
 * - no rescale during the first low phase (the count's utilisation, about 0.17 to 0.3 depending on the
 *   machine's load, is within the boundary);
 * - within 35 s of the step up the count runs at parallelism ≥ 2, and the pool grew to give it the slots;
 * - within 60 s of the step down it is back at 1, and the idle TaskManagers leave the pool;
 * - at most 4 rescales in all;
 * - the output holds every event exactly once (per key the counts 1..n once each, each counting another
 *   event of that key, and as many records as events published).
 */
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AutoscalerReply } from '../../src/runtime/autoscaler/protocol.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { exactlyOnceProblems } from '../harness/exactly-once.js';
import { sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/autoscaled-count.ts', import.meta.url));
const KEYS = 16;
const LOW = 15;
const HIGH = 60;
const enc = new TextEncoder();

describe('the autoscaler follows a 4× step of a JetStream input and back, exactly once', () => {
  let cluster: TestCluster;
  let nc: NatsConnection;
  let common: string[];
  let rest: string;

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'autoscaled',
      settings: ['heartbeat.interval=250 ms', 'heartbeat.timeout=3 s', 'metrics.enabled=false'],
      jobManagerSettings: [
        'rest.port=0',
        'taskmanager.numberOfTaskSlots=1',
        'resourcemanager.taskmanager-timeout=3 s',
        'job.autoscaler.enabled=true',
        'job.autoscaler.control-loop.interval=1 s',
        'job.autoscaler.metrics.window=5 s',
        'job.autoscaler.stabilization.interval=5 s',
        'job.autoscaler.target.utilization=0.3',
        'job.autoscaler.target.utilization.boundary=0.15',
        'job.autoscaler.catch-up.duration=10 s',
        'job.autoscaler.scale-down.interval=10 s',
        'job.autoscaler.scale-down.max-factor=1',
        'job.autoscaler.vertex.max-parallelism=4',
      ],
      jobManagerArgs: ['--taskmanager-pool', '1..4'],
      outputStreams: [{ name: 'COUNTS', subject: 'counts.out' }],
    });
    nc = cluster.nc;
    common = cluster.common;
    rest = cluster.rest!;
    for (const deadline = Date.now() + 30_000; (await taskManagers()) < 1; ) {
      if (Date.now() > deadline) throw new Error('the pool started no TaskManager');
      await new Promise((r) => setTimeout(r, 200));
    }
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'EVENTS', subjects: ['events.in'] });
  });

  afterAll(async () => {
    // The pool's TaskManagers outlive the JobManager: the harness stops them too.
    await cluster?.stop();
  });

  async function get<T>(path: string): Promise<T> {
    const res = await fetch(`${rest}${path}`);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }
  async function taskManagers(): Promise<number> {
    return (await get<{ taskmanagers: number }>('/overview')).taskmanagers;
  }

  it('scales up within 35 s of the step, back down within 60 s of the drop, at most 4 rescales', async () => {
    const run = await sluice(['run', ...common, '-d', JOB, 'EVENTS', 'counts.out', String(KEYS), '10']);
    expect(run.code, run.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const details = () => get<{ vertices: Array<{ name: string; parallelism: number }> }>(`/jobs/${jobId}`);
    const countParallelism = async () =>
      (await details()).vertices.find((v) => v.name.includes('Keyed Reduce'))!.parallelism;
    const autoscaler = () => get<AutoscalerReply>(`/jobs/${jobId}/autoscaler`);
    /** A poll that prints the autoscaler's state when it fails (what it waited for, what it decided). */
    const explained = async (poll: () => Promise<void>) => {
      try {
        await poll();
      } catch (err) {
        const state = await autoscaler().catch(() => undefined);
        process.stderr.write(
          `autoscaler state: ${JSON.stringify({ latest: state?.latest, decisions: state?.decisions.slice(0, 6) }, null, 1)}\n`,
        );
        throw err;
      }
    };

    // Publishing starts once every task runs: no backlog from the start (which the autoscaler would rightly
    // scale up to work off).
    await expect
      .poll(
        async () =>
          (await get<{ vertices: Array<{ status: string }> }>(`/jobs/${jobId}`)).vertices.every(
            (v) => v.status === 'RUNNING',
          ),
        { timeout: 30_000 },
      )
      .toBe(true);

    // The publisher: `rate` events/s in 50 ms steps, until told to stop.
    const js = jetstream(nc);
    let rate = LOW;
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      let next = performance.now();
      let credit = 0;
      while (publishing) {
        const batch: Promise<unknown>[] = [];
        for (credit += rate / 20; credit >= 1; credit--) {
          batch.push(js.publish('events.in', enc.encode(JSON.stringify({ i: published }))));
          published++;
        }
        await Promise.all(batch);
        next += 50;
        await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
      }
    })();

    try {
      // Low: the job runs at 1 and the autoscaler keeps it there.
      await new Promise((r) => setTimeout(r, 20_000));
      await explained(async () => expect(await countParallelism()).toBe(1));
      const settled = await autoscaler();
      expect(settled.enabled).toBe(true);
      expect(settled.rescales).toBe(0);
      expect(settled.decisions.some((d) => d.outcome === 'no-change')).toBe(true);

      // 4×: scaled up within 35 s; the pool grows to give it slots.
      rate = HIGH;
      const stepUp = performance.now();
      let maxTaskManagers = 1;
      await explained(() =>
        expect
          .poll(
            async () => {
              maxTaskManagers = Math.max(maxTaskManagers, await taskManagers());
              return countParallelism();
            },
            { timeout: 35_000, interval: 500 },
          )
          .toBeGreaterThanOrEqual(2),
      );
      const upAfterS = (performance.now() - stepUp) / 1_000;
      maxTaskManagers = Math.max(maxTaskManagers, await taskManagers());
      expect(maxTaskManagers).toBeGreaterThanOrEqual(2);
      // The rescale call returns once every new task runs: then the decision carries its result.
      await expect
        .poll(async () => (await autoscaler()).rescales, { timeout: 30_000 })
        .toBeGreaterThanOrEqual(1);
      const up = (await autoscaler()).decisions.findLast((d) => d.rescale !== undefined);
      expect(up?.outcome).toBe('rescale');
      expect(up?.reason).toMatch(
        /Keyed Reduce.* 1 → \d \(utilisation [\d.]+ outside 0\.15\.\.0\.45: needs \d/,
      );
      const upVertex = up!.vertices.find((v) => v.name.includes('Keyed Reduce'))!;
      expect(upVertex.busyTimeMsPerSecond).toBeGreaterThan(0);
      expect(upVertex.trueProcessingRate).toBeGreaterThan(0);
      // Some time at the high rate after the scale-up.
      await new Promise((r) => setTimeout(r, 15_000));

      // Back to the low rate: down to 1 within 60 s, and the idle TaskManagers leave the pool.
      rate = LOW;
      const stepDown = performance.now();
      await explained(() => expect.poll(countParallelism, { timeout: 60_000, interval: 500 }).toBe(1));
      const downAfterS = (performance.now() - stepDown) / 1_000;
      await expect.poll(taskManagers, { timeout: 20_000 }).toBe(1);

      const final = await autoscaler();
      expect(final.rescales).toBeLessThanOrEqual(4);
      expect(final.counts.rescale).toBe(final.rescales);
      expect(final.counts['rescale-failed'] ?? 0).toBe(0);
      process.stdout.write(
        `autoscaler show: scaled up after ${upAfterS.toFixed(1)} s (to ${up?.rescale?.target ? Math.max(...Object.values(up.rescale.target)) : '?'}, downtime ${up?.rescale?.downtimeMs} ms), back down after ${downAfterS.toFixed(1)} s, ${final.rescales} rescales, pool up to ${maxTaskManagers} TaskManagers\n`,
      );
    } finally {
      publishing = false;
      await publisher;
    }

    // Every event reaches the output once the job has caught up; then it is cancelled and checked.
    const jsm = await jetstreamManager(nc);
    await expect
      .poll(async () => (await jsm.streams.info('COUNTS')).state.messages, { timeout: 60_000, interval: 500 })
      .toBe(published);
    const cancel = await sluice(['cancel', ...common, jobId]);
    expect(cancel.code, cancel.stderr).toBe(0);
    const { records, problems } = await exactlyOnceProblems(nc, 'COUNTS', KEYS);
    expect(problems).toEqual([]);
    expect(records).toBe(published);
    const status = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    expect(status.restarts).toBe(0);
  }, 300_000);
});
