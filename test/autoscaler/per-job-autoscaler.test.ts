/**
 * Autoscaler settings per job, on real processes (a JobManager, one TaskManager of 4 slots).
 *
 * The JobManager's autoscaler is off; its test-sized windows (loop 1 s, window 5 s, stabilisation 3 s, at
 * most parallelism 2) are every job's defaults. Two jobs read a JetStream stream each at 20 events/s
 * through a keyed count that costs 10 ms of CPU per event (busy about 0.2 at parallelism 1):
 * - job A is submitted with `-D job.autoscaler.enabled=true -D job.autoscaler.target.utilization=0.1
 *   -D job.autoscaler.target.utilization.boundary=0.05`: its autoscaler runs with the JobManager's windows
 *   and its own target, and scales the count up to 2 (utilisation 0.2 is outside 0.05..0.15);
 * - job B is submitted without: it has no autoscaler and stays at 1, however long A takes.
 * `GET /jobs/:jobid/autoscaler` shows each job's effective settings and the keys it set itself. Bad job
 * settings are refused at submission, by the client (`-D` checked as any) and by the Dispatcher (a JobGraph
 * sent over the protocol), each naming the problem; the refused job does not exist afterwards.
 *
 * Then reactive mode (a second JobManager, `scheduler-mode: reactive`, autoscaler on by its settings): a
 * job that turns the autoscaler on itself is refused at submission; one that inherits it runs with its
 * autoscaler standing down to advice (REST `adviceOnly`, a log line); one asking for advice mode runs as
 * asked.
 */
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError } from '../../src/common/errors.js';
import { builtinJobGraph } from '../../src/jobgraph/builtin-jobs.js';
import { newJobId } from '../../src/jobgraph/job-id.js';
import type { AutoscalerReply } from '../../src/runtime/autoscaler/protocol.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/autoscaled-count.ts', import.meta.url));
const RATE = 20;
const SETTINGS = ['heartbeat.interval=250 ms', 'heartbeat.timeout=3 s', 'metrics.enabled=false'];
const enc = new TextEncoder();

async function getJson<T>(rest: string, path: string): Promise<T> {
  const res = await fetch(`${rest}${path}`);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

describe('autoscaler settings per job', () => {
  let cluster: TestCluster;
  let rest: string;

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'perjob',
      settings: SETTINGS,
      jobManagerSettings: [
        'rest.port=0',
        'job.autoscaler.control-loop.interval=1 s',
        'job.autoscaler.metrics.window=5 s',
        'job.autoscaler.stabilization.interval=3 s',
        'job.autoscaler.catch-up.duration=10 s',
        'job.autoscaler.vertex.max-parallelism=2',
      ],
      taskManagers: { count: 1, slots: 4 },
      outputStreams: [
        { name: 'COUNTS_A', subject: 'perjob.a.out' },
        { name: 'COUNTS_B', subject: 'perjob.b.out' },
      ],
    });
    rest = cluster.rest!;
    const jsm = await jetstreamManager(cluster.nc);
    await jsm.streams.add({ name: 'EVENTS_A', subjects: ['perjob.a.in'] });
    await jsm.streams.add({ name: 'EVENTS_B', subjects: ['perjob.b.in'] });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('a job with its own settings is autoscaled by them; one without keeps the JobManager’s (off)', async () => {
    const a = await cluster.submit([
      '-D',
      'job.autoscaler.enabled=true',
      '-D',
      'job.autoscaler.target.utilization=0.1',
      '-D',
      'job.autoscaler.target.utilization.boundary=0.05',
      // Shorter than two of the client's default loop intervals (10 s), fine with the JobManager's (1 s).
      '-D',
      'job.autoscaler.metrics.window=4 s',
      JOB,
      'EVENTS_A',
      'perjob.a.out',
      '8',
      '10',
    ]);
    const b = await cluster.submit([JOB, 'EVENTS_B', 'perjob.b.out', '8', '10']);
    const countParallelism = async (jobId: string) =>
      (await cluster.status(jobId)).vertices.find((v) => v.name.includes('Keyed Reduce'))!.parallelism;
    for (const jobId of [a, b]) {
      await expect
        .poll(
          async () =>
            (await cluster.status(jobId)).vertices.every((v) =>
              v.subtasks.every((t) => t.state === 'RUNNING'),
            ),
          {
            timeout: 30_000,
          },
        )
        .toBe(true);
    }

    // The effective settings of each job: the JobManager's, with the job's own keys over them.
    const autoscalerOf = (jobId: string) => getJson<AutoscalerReply>(rest, `/jobs/${jobId}/autoscaler`);
    const atStart = await autoscalerOf(a);
    expect(atStart.enabled).toBe(true);
    expect(atStart.scalingEnabled).toBe(true);
    expect(atStart.jobSettings).toEqual({
      'job.autoscaler.enabled': 'true',
      'job.autoscaler.target.utilization': '0.1',
      'job.autoscaler.target.utilization.boundary': '0.05',
      'job.autoscaler.metrics.window': '4 s',
    });
    expect(atStart.settings).toMatchObject({
      'job.autoscaler.enabled': 'true',
      'job.autoscaler.target.utilization': '0.1',
      'job.autoscaler.metrics.window': '4 s',
      'job.autoscaler.control-loop.interval': '1 s',
      'job.autoscaler.stabilization.interval': '3 s',
      'job.autoscaler.vertex.max-parallelism': '2',
    });
    const off = await autoscalerOf(b);
    expect(off.enabled).toBe(false);
    expect(off.reason).toBe("job.autoscaler.enabled is false for this job (the JobManager's setting)");
    expect(off.jobSettings).toEqual({});
    expect(off.settings).toMatchObject({
      'job.autoscaler.enabled': 'false',
      'job.autoscaler.target.utilization': '0.7',
      'job.autoscaler.metrics.window': '5 s',
    });

    // Both get the same input.
    const js = jetstream(cluster.nc);
    let publishing = true;
    let published = 0;
    const publisher = (async () => {
      while (publishing) {
        await Promise.all(
          ['perjob.a.in', 'perjob.b.in'].map((s) =>
            js.publish(s, enc.encode(JSON.stringify({ i: published }))),
          ),
        );
        published++;
        await new Promise((r) => setTimeout(r, 1_000 / RATE));
      }
    })();
    try {
      // A: utilisation ~0.2 against its own 0.1 ± 0.05 → the count goes to 2 (the JobManager's bound).
      await expect.poll(() => countParallelism(a), { timeout: 60_000, interval: 500 }).toBe(2);
      // The autoscaler's rescale call returns once every new task runs: then its decision has the result.
      await expect
        .poll(async () => (await autoscalerOf(a)).rescales, { timeout: 30_000 })
        .toBeGreaterThanOrEqual(1);
      const scaled = await autoscalerOf(a);
      const up = scaled.decisions.find((d) => d.rescale !== undefined)!;
      expect(up.reason).toMatch(/Keyed Reduce.* 1 → 2 \(utilisation [\d.]+ outside 0\.05\.\.0\.15/);
      // B: no autoscaler, the same load, still at 1.
      expect(await countParallelism(b)).toBe(1);
      expect((await autoscalerOf(b)).decisions).toEqual([]);
      const history = await getJson<{ rescales: unknown[] }>(rest, `/jobs/${b}/rescales`);
      expect(history.rescales).toEqual([]);
    } finally {
      publishing = false;
      await publisher;
    }
    expect(published).toBeGreaterThan(50);
    for (const jobId of [a, b]) expect((await cluster.cli('cancel', [jobId])).code).toBe(0);
  }, 150_000);

  it('refuses bad job settings at submission: by the client, and by the Dispatcher', async () => {
    const bad = await cluster.cli('run', [
      '-d',
      '-D',
      'job.autoscaler.target.utilization=2',
      'builtin:endless',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/job\.autoscaler\.target\.utilization: '2' \(from -D\) is out of range/);
    // A window the client cannot judge (it is checked against the JobManager's loop): the Dispatcher refuses.
    const short = await cluster.cli('run', [
      '-d',
      '-D',
      'job.autoscaler.metrics.window=1500 ms',
      'builtin:endless',
    ]);
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain(
      "job.autoscaler.metrics.window: '1500 ms' (from the job's configuration) must be at least twice job.autoscaler.control-loop.interval 1 s (the JobManager's)",
    );

    // A JobGraph over the protocol, as any client could send it: checked by the Dispatcher.
    const graph = {
      ...builtinJobGraph('builtin:endless', [], 1, newJobId()),
      configuration: { 'scheduler-mode': 'reactive', 'job.autoscaler.metrics.window': '1 s' },
    };
    const refused = await cluster.client.submit(graph).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isSluiceError(refused, ErrorCode.InvalidConfig)).toBe(true);
    expect((refused as Error).message).toContain(
      "scheduler-mode: cannot be set per job (from the job's configuration)",
    );
    expect((refused as Error).message).toContain(
      "job.autoscaler.metrics.window: '1 s' (from the job's configuration) must be at least twice job.autoscaler.control-loop.interval 1 s (the JobManager's)",
    );
    const unknown = await cluster.client.status(graph.jobId).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isSluiceError(unknown, ErrorCode.UnknownJob)).toBe(true);
  }, 60_000);
});

describe('the autoscaler and reactive mode on one job', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'perjob-reactive',
      settings: SETTINGS,
      jobManagerSettings: [
        'rest.port=0',
        'scheduler-mode=reactive',
        'jobmanager.adaptive-scheduler.resource-stabilization-timeout=200 ms',
        'job.autoscaler.enabled=true',
        'job.autoscaler.control-loop.interval=1 s',
        'job.autoscaler.metrics.window=5 s',
      ],
      taskManagers: { count: 1, slots: 1 },
    });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('refuses a job asking for both, stands down for one inheriting the autoscaler, allows advice', async () => {
    const both = await cluster.cli('run', [
      '-d',
      '-D',
      'job.autoscaler.enabled=true',
      'builtin:endless',
      '10',
    ]);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(
      /its configuration turns the autoscaler on .* this JobManager runs scheduler-mode: reactive.* Set job\.autoscaler\.scaling\.enabled=false for advice only/,
    );
    expect(await cluster.client.list(true)).toEqual([]);

    const rest = cluster.rest!;
    const inherited = await cluster.submit(['builtin:endless', '10']);
    const standing = await getJson<AutoscalerReply>(rest, `/jobs/${inherited}/autoscaler`);
    expect(standing.enabled).toBe(true);
    expect(standing.scalingEnabled).toBe(false);
    expect(standing.adviceOnly).toMatch(/^scheduler-mode is reactive: reactive mode sizes the job/);
    expect(standing.settings?.['job.autoscaler.scaling.enabled']).toBe('true');
    const logged = await cluster
      .leader()
      .waitForMessage(/^autoscaler stands down to advice for this job: scheduler-mode is reactive/);
    expect(logged.job).toBe(inherited);
    expect((await cluster.cli('cancel', [inherited])).code).toBe(0);

    const advice = await cluster.submit([
      '-D',
      'job.autoscaler.enabled=true',
      '-D',
      'job.autoscaler.scaling.enabled=false',
      'builtin:endless',
      '10',
    ]);
    const advising = await getJson<AutoscalerReply>(rest, `/jobs/${advice}/autoscaler`);
    expect(advising.enabled).toBe(true);
    expect(advising.scalingEnabled).toBe(false);
    expect(advising.adviceOnly).toBeUndefined();
    expect(advising.jobSettings).toEqual({
      'job.autoscaler.enabled': 'true',
      'job.autoscaler.scaling.enabled': 'false',
    });
    expect((await cluster.cli('cancel', [advice])).code).toBe(0);
  }, 90_000);
});
