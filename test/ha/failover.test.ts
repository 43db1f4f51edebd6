/**
 * High availability with real processes: three JobManagers with `high-availability.type=nats` on one
 * nats-server and two TaskManagers. Exactly one JobManager leads; a finished job and a running one are
 * submitted; the leader is SIGKILLed; a standby takes over (the time is measured and printed), recovers the
 * running job (same id, RUNNING again) and not the finished one; the TaskManagers re-register with it; and
 * a deploy carrying the former leader's epoch is refused by a TaskExecutor with LEADERSHIP_LOST.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rpc } from '../../src/actors/rpc.js';
import { Subjects } from '../../src/actors/subjects.js';
import { ErrorCode, isSluiceError } from '../../src/common/errors.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const CLUSTER = `ha${process.pid}`;
const timeOf = (l: Record<string, unknown>) =>
  typeof l.time === 'number' ? l.time : Date.parse(String(l.time));
const isMsg = (msg: string) => (l: Record<string, unknown>) => l.msg === msg;

describe('JobManager failover (high-availability.type=nats)', () => {
  let nats: NatsServerHandle;
  let common: string[];
  const jms: SluiceProcess[] = [];
  const tms: SluiceProcess[] = [];
  let leader: SluiceProcess;
  let finishedJob: string;
  let runningJob: string;
  let firstEpoch: number;

  beforeAll(async () => {
    nats = await startNatsServer();
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      CLUSTER,
      '-D',
      'high-availability.type=nats',
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      'heartbeat.timeout=1500 ms',
    ];
    for (let i = 0; i < 3; i++) {
      jms.push(
        new SluiceProcess([
          'jobmanager',
          ...common,
          '-D',
          `jobmanager.id=jm-${i}`,
          '-D',
          'rest.enabled=false',
          '-D',
          'metrics.enabled=false',
        ]),
      );
    }
    await Promise.all(jms.map((jm) => jm.waitForMessage('JobManager started')));
    const granted = await Promise.any(
      jms.map((jm) => jm.waitForMessage('granted leadership').then(() => jm)),
    );
    leader = granted;
    await leader.waitForMessage('leadership active');
    for (let i = 0; i < 2; i++) {
      tms.push(
        new SluiceProcess([
          'taskmanager',
          ...common,
          '--slots',
          '2',
          '-D',
          `taskmanager.id=tm-${i}`,
          '-D',
          'metrics.enabled=false',
        ]),
      );
    }
    await Promise.all(tms.map((tm) => tm.waitForMessage('registered at ResourceManager')));
  });

  afterAll(async () => {
    await Promise.all(tms.map((tm) => tm.stop()));
    await Promise.all(jms.map((jm) => jm.stop()));
    await nats?.stop();
  });

  it('has exactly one leader; the others stand by', async () => {
    // Give a would-be second leader time to show up.
    await new Promise((r) => setTimeout(r, 1_000));
    const leaders = jms.filter((jm) => jm.lines.some(isMsg('granted leadership')));
    expect(leaders).toEqual([leader]);
    const grant = await leader.waitForMessage('granted leadership');
    firstEpoch = Number(grant.epoch);
    expect(firstEpoch).toBeGreaterThan(0);
    for (const jm of jms.filter((j) => j !== leader)) {
      expect(jm.lines.some(isMsg('waiting for leadership'))).toBe(true);
    }
  });

  it('runs a job to FINISHED and keeps an endless one RUNNING on the leader', async () => {
    const run = await sluice(['run', ...common, 'builtin:count', '1000']);
    expect(run.code, run.stderr).toBe(0);
    finishedJob = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    expect(run.stdout).toContain(`Job ${finishedJob} FINISHED`);

    const detached = await sluice(['run', ...common, '-d', 'builtin:endless']);
    expect(detached.code, detached.stderr).toBe(0);
    runningJob = /JobID ([0-9a-f]{32})/.exec(detached.stdout)![1]!;
    await expect
      .poll(async () => {
        const s = await sluice(['status', ...common, '--json', runningJob]);
        const details = JSON.parse(s.stdout) as JobDetails;
        return details.vertices.flatMap((v) => v.subtasks).every((t) => t.state === 'RUNNING');
      })
      .toBe(true);
    // The finished job's result is written asynchronously after it ended.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(leader.lines.some(isMsg('job result not stored'))).toBe(false);
  });

  it('fails over to a standby when the leader is SIGKILLed and recovers the running job only', async () => {
    const standbys = jms.filter((jm) => jm !== leader);
    const killedAt = Date.now();
    leader.kill('SIGKILL');
    // A client asking during the failover gets "no responders" and retries until the new leader answers.
    const statusDuringFailover = sluice(['status', ...common, '--json', runningJob]);

    const next = await Promise.any(
      standbys.map((jm) => jm.waitForMessage('granted leadership', 20_000).then(() => jm)),
    );
    const grant = await next.waitForMessage('granted leadership');
    const active = await next.waitForMessage('leadership active', 20_000);
    const grantedAfterMs = timeOf(grant) - killedAt;
    const activeAfterMs = timeOf(active) - killedAt;
    console.log(
      `HA failover: new leader ${String(next.lines.find(isMsg('granted leadership'))?.jobManager)} granted ${grantedAfterMs} ms after SIGKILL, jobs recovered after ${activeAfterMs} ms`,
    );
    expect(Number(grant.epoch)).toBeGreaterThan(firstEpoch);
    expect(grantedAfterMs).toBeLessThan(8_000);
    expect(active.jobs).toEqual([runningJob]);
    // Only one new leader.
    expect(standbys.filter((jm) => jm.lines.some(isMsg('granted leadership')))).toEqual([next]);

    const during = await statusDuringFailover;
    expect(during.code, during.stderr).toBe(0);
    expect((JSON.parse(during.stdout) as JobDetails).jobId).toBe(runningJob);

    // Both TaskManagers re-register with the new leader through their heartbeats.
    for (const tmId of ['tm-0', 'tm-1']) {
      await next.waitForLog(
        (l) => typeof l.msg === 'string' && l.msg.startsWith('TaskManager ') && l.taskManager === tmId,
        10_000,
      );
    }

    // The same job runs again on the new leader.
    await expect
      .poll(
        async () => {
          const s = await sluice(['status', ...common, '--json', runningJob]);
          if (s.code !== 0) return s.stderr;
          const details = JSON.parse(s.stdout) as JobDetails;
          const subtasks = details.vertices.flatMap((v) => v.subtasks);
          return `${details.status} ${subtasks.every((t) => t.state === 'RUNNING')}`;
        },
        { timeout: 20_000, interval: 300 },
      )
      .toBe('RUNNING true');

    // The finished job is not run again: unknown to the new leader (or FINISHED), never RUNNING.
    const finished = await sluice(['status', ...common, '--json', finishedJob]);
    if (finished.code === 0) expect((JSON.parse(finished.stdout) as JobDetails).status).toBe('FINISHED');
    else expect(finished.stderr).toContain('is not known');
    const list = await sluice(['list', ...common, '--all', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const jobs = JSON.parse(list.stdout) as Array<{ jobId: string; status: string }>;
    expect(jobs.filter((j) => j.jobId === finishedJob && j.status !== 'FINISHED')).toEqual([]);
    expect(next.lines.some((l) => l.job === finishedJob && l.msg === 'job submitted')).toBe(false);
    leader = next;
  });

  it('has the TaskExecutor refuse a deploy with a stale epoch (LEADERSHIP_LOST)', async () => {
    const details = JSON.parse(
      (await sluice(['status', ...common, '--json', runningJob])).stdout,
    ) as JobDetails;
    const tmId = details.vertices[0]!.subtasks[0]!.taskManagerId!;
    // The TaskExecutor that runs the recovered job has seen the new epoch and cancelled the old tasks.
    const tm = tms[Number(tmId.slice('tm-'.length))]!;
    await tm.waitForMessage(
      'a newer JobManager leader took over; cancelling the tasks of older epochs',
      5_000,
    );

    const nc: NatsConnection = await connect({ servers: nats.url });
    try {
      const rpc = new Rpc(nc, {
        maxMessageBytes: 512 * 1024,
        askTimeoutMs: 5_000,
        askRetries: 0,
        from: 'test',
      });
      const subject = `${new Subjects(CLUSTER).taskExecutor(tmId)}.deploy`;
      const request = {
        task: { jobId: 'ab'.repeat(16), vertexId: 'v', subtaskIndex: 0, attempt: 0 },
        vertexName: 'stale',
        parallelism: 1,
        slotIndex: 0,
        operator: { kind: 'builtin', name: 'endless', args: {} },
      };
      const err = await rpc.ask(subject, 'deploy', request, { epoch: firstEpoch }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isSluiceError(err, ErrorCode.LeadershipLost), String(err)).toBe(true);
    } finally {
      await nc.close();
    }
  });
});

describe('sluice cluster start --jobmanagers', () => {
  it('refuses several JobManagers with high-availability.type=none, clearly', async () => {
    const run = await sluice([
      'cluster',
      'start',
      '--nats',
      'nats://127.0.0.1:1',
      '--jobmanagers',
      '2',
      '-D',
      'high-availability.type=none',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "--jobmanagers 2 needs high availability, but high-availability.type is set to 'none'",
    );
  });
});
