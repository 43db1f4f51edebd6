/**
 * Reconciliation on a real cluster (a JobManager and a TaskManager as processes, heartbeat 200 ms): an
 * execution the JobMaster does not know — deployed to the TaskExecutor behind its back, as a deploy whose
 * answer was lost or a task of an old attempt — is reported with the next heartbeat and cancelled on the
 * JobMaster's word, while the job's own task keeps running; bad execution reports (garbage, oversized,
 * naming another job's attempts) are counted drops in the JobMaster's stats that change nothing.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ActorStats, STATS_TYPE } from '../../src/actors/actor.js';
import { Rpc } from '../../src/actors/rpc.js';
import { Subjects } from '../../src/actors/subjects.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { MAX_REPORTED_EXECUTIONS } from '../../src/runtime/jobmaster/execution-reconciler.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const CLUSTER = `rec${process.pid}`;
const OTHER_JOB = '0000000000000000000000000000ffff';

describe('reconciliation between a JobMaster and a TaskExecutor', () => {
  let nats: NatsServerHandle;
  let common: string[];
  let jm: SluiceProcess;
  let tm: SluiceProcess;

  beforeAll(async () => {
    nats = await startNatsServer();
    common = ['--nats', nats.url, '--cluster-id', CLUSTER, '-D', 'heartbeat.interval=200 ms'];
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'rest.enabled=false',
      '-D',
      'metrics.enabled=false',
    ]);
    await jm.waitForMessage('JobManager started');
    tm = new SluiceProcess([
      'taskmanager',
      ...common,
      '--slots',
      '2',
      '-D',
      'taskmanager.id=tm-r',
      '-D',
      'metrics.enabled=false',
    ]);
    await tm.waitForMessage('registered at ResourceManager');
  }, 60_000);

  afterAll(async () => {
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
  });

  it('cancels an execution its JobMaster does not know; the job runs on', async () => {
    const run = await sluice(['run', ...common, '-d', 'builtin:endless']);
    expect(run.code, run.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    await jm.waitForMessage('job RUNNING', 15_000);

    const nc: NatsConnection = await connect({ servers: nats.url });
    try {
      const rpc = new Rpc(nc, {
        maxMessageBytes: 512 * 1024,
        askTimeoutMs: 5_000,
        askRetries: 0,
        from: 'test',
      });
      const subjects = new Subjects(CLUSTER);
      // Bad execution reports where a TaskExecutor's go — garbage, oversized, naming another job's
      // attempts (as FAILED): each a counted drop in the JobMaster's stats, the job unharmed.
      const jmSubject = subjects.jobMaster(jobId);
      const own = { jobId, vertexId: 'endless-chain', subtaskIndex: 0, attempt: 0 };
      const foreign = { ...own, jobId: OTHER_JOB };
      const bad: unknown[] = [
        { executions: 'everything' },
        'garbage',
        {
          taskManagerId: 'tm-r',
          jobId,
          executions: Array.from({ length: MAX_REPORTED_EXECUTIONS + 1 }, () => ({
            task: own,
            state: 'FAILED',
          })),
        },
        { taskManagerId: 'tm-r', jobId, executions: [{ task: foreign, state: 'FAILED' }] },
        { taskManagerId: 'tm-r', jobId: OTHER_JOB, executions: [{ task: own, state: 'FAILED' }] },
      ];
      for (const body of bad) rpc.tell(`${jmSubject}.executions`, 'executions', body);
      await jm.waitForMessage('execution report dropped', 5_000);
      // Stats are answered at once (not through the mailbox): wait until the mailbox has handled all five.
      const dropped = async () =>
        ((await rpc.ask(`${jmSubject}.${STATS_TYPE}`, STATS_TYPE, {})) as ActorStats).dropped.INVALID_MESSAGE;
      const deadline = Date.now() + 5_000;
      while ((await dropped()) !== bad.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(await dropped()).toBe(bad.length);
      const afterBad = JSON.parse(
        (await sluice(['status', ...common, '--json', jobId])).stdout,
      ) as JobDetails;
      expect(afterBad.status).toBe('RUNNING');
      expect(afterBad.restarts).toBe(0);
      expect(afterBad.vertices[0]!.subtasks.map((s) => s.state)).toEqual(['RUNNING']);

      // Attempt 7 of the job's subtask, unknown to its JobMaster (it runs attempt 0), into the free slot.
      const deployedAt = performance.now();
      await rpc.ask(`${subjects.taskExecutor('tm-r')}.deploy`, 'deploy', {
        task: { jobId, vertexId: 'v', subtaskIndex: 0, attempt: 7 },
        vertexName: 'stray',
        parallelism: 1,
        slotIndex: 1,
        operator: { kind: 'builtin', name: 'endless', args: {} },
      });
      await tm.waitForMessage('cancelling a task its JobMaster does not know', 5_000);
      // At the next heartbeat (200 ms) or the one after, not later.
      expect(performance.now() - deployedAt).toBeLessThan(2_000);
      await jm.waitForMessage(
        'a TaskExecutor runs executions this JobMaster does not know: cancelling them',
        1_000,
      );
    } finally {
      await nc.close();
    }
    const details = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    expect(details.status).toBe('RUNNING');
    expect(jm.lines.some((l) => l.msg === 'task failed; failing the job')).toBe(false);
    await sluice(['cancel', ...common, jobId]);
  }, 60_000);
});
