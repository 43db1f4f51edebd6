/**
 * A rescale survives a JobManager failover: with `high-availability.type: nats`, two JobManagers and two
 * TaskManagers (2 slots each), the chaos job (generator → keyBy → keyed count → exactly-once JetStream
 * sink) runs at parallelism 2 and is rescaled to 3; the leader is then SIGKILLed. The standby recovers the
 * job at 3 — the rescaled graph is what the HA job store holds, not the submitted one — from its latest
 * checkpoint, and after a cancel every output record is there exactly once.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { parallelismOf, startTestCluster, type TestCluster } from '../harness/cluster.js';
import { exactlyOnceProblems } from '../harness/exactly-once.js';
import { type SluiceProcess, sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/chaos-count.ts', import.meta.url));
const KEYS = 8;

describe('a rescaled job after a JobManager failover', () => {
  let cluster: TestCluster;
  let common: string[];
  let jms: SluiceProcess[];

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'rescale-ha',
      settings: ['high-availability.type=nats', 'heartbeat.interval=200 ms', 'heartbeat.timeout=2 s'],
      jobManagers: 2,
      jobManagerSettings: ['rest.enabled=false', 'metrics.enabled=false'],
      taskManagers: { count: 2, slots: 2, settings: ['metrics.enabled=false'] },
      outputStreams: [{ name: 'RESCALEDHA', subject: 'rescale-ha.out' }],
    });
    common = cluster.common;
    jms = cluster.jms;
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  const status = (jobId: string) => cluster.status(jobId);
  const parallelism = parallelismOf;
  const leading = () => cluster.leader();

  it('is recovered by the new leader at its rescaled parallelism, exactly once', async () => {
    const leader = leading();
    const submitted = await sluice([
      'run',
      ...common,
      '-d',
      JOB,
      'rescale-ha.out',
      String(KEYS),
      '150',
      '300',
      '2',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    await leader.waitForMessage('checkpoint 2 completed', 30_000);

    const up = await sluice(['rescale', ...common, jobId, '-p', '3']);
    expect(up.code, up.stderr).toBe(0);
    expect(parallelism(await status(jobId))).toEqual({ v0: 3, v1: 3 });
    const seen = leader.lines.length;
    await leader.waitForLog(
      (l) =>
        leader.lines.indexOf(l) >= seen &&
        typeof l.msg === 'string' &&
        /^checkpoint \d+ completed$/.test(l.msg),
      20_000,
    );

    leader.kill('SIGKILL');
    const standby = jms.find((jm) => jm !== leader)!;
    await standby.waitForMessage('leadership active', 20_000);
    let recovered: JobDetails | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const d = await status(jobId).catch(() => undefined);
      if (
        d?.status === 'RUNNING' &&
        d.vertices.flatMap((v) => v.subtasks).every((t) => t.state === 'RUNNING')
      ) {
        recovered = d;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(recovered, 'the job RUNNING again on the new leader').toBeDefined();
    expect(parallelism(recovered!)).toEqual({ v0: 3, v1: 3 });
    const seenAfter = standby.lines.length;
    await standby.waitForLog(
      (l) =>
        standby.lines.indexOf(l) >= seenAfter &&
        typeof l.msg === 'string' &&
        /^checkpoint \d+ completed$/.test(l.msg),
      20_000,
    );

    const cancelled = await sluice(['cancel', ...common, jobId]);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    const { records, problems } = await exactlyOnceProblems(cluster.nc, 'RESCALEDHA', KEYS);
    expect(problems).toEqual([]);
    expect(records).toBeGreaterThan(0);
  });
});
