/**
 * A rescale survives a JobManager failover: with `high-availability.type: nats`, two JobManagers and two
 * TaskManagers (2 slots each), the chaos job (generator → keyBy → keyed count → exactly-once JetStream
 * sink) runs at parallelism 2 and is rescaled to 3; the leader is then SIGKILLed. The standby recovers the
 * job at 3 — the rescaled graph is what the HA job store holds, not the submitted one — from its latest
 * checkpoint, and after a cancel every output record is there exactly once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';
import { createOutputStream, exactlyOnceProblems } from './helpers.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/chaos-count.ts', import.meta.url));
const KEYS = 8;

describe('a rescaled job after a JobManager failover', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let dir: string;
  let common: string[];
  const jms: SluiceProcess[] = [];
  const tms: SluiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    dir = await mkdtemp(join(tmpdir(), 'sluice-rescale-ha-'));
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'rescale-ha',
      '-D',
      'high-availability.type=nats',
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      'heartbeat.timeout=2 s',
    ];
    for (let i = 0; i < 2; i++) {
      jms.push(
        new SluiceProcess([
          'jobmanager',
          ...common,
          '-D',
          'rest.enabled=false',
          '-D',
          'metrics.enabled=false',
        ]),
      );
    }
    await Promise.any(jms.map((jm) => jm.waitForMessage('leadership active')));
    for (let i = 0; i < 2; i++) {
      tms.push(new SluiceProcess(['taskmanager', ...common, '--slots', '2', '-D', 'metrics.enabled=false']));
    }
    await Promise.all(tms.map((tm) => tm.waitForMessage('registered at ResourceManager')));
    await createOutputStream(nc, 'RESCALEDHA', 'rescale-ha.out');
  });

  afterAll(async () => {
    await nc?.close();
    await Promise.all(tms.map((tm) => tm.stop()));
    await Promise.all(jms.map((jm) => jm.stop()));
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const status = async (jobId: string): Promise<JobDetails> =>
    JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
  const parallelism = (d: JobDetails) => Object.fromEntries(d.vertices.map((v) => [v.id, v.parallelism]));
  const leading = () => jms.find((jm) => jm.lines.some((l) => l.msg === 'leadership active'))!;

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
    const { records, problems } = await exactlyOnceProblems(nc, 'RESCALEDHA', KEYS);
    expect(problems).toEqual([]);
    expect(records).toBeGreaterThan(0);
  });
});
