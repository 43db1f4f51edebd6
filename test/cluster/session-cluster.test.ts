/**
 * A session cluster of real processes: nats-server, one JobManager, two TaskManagers. Jobs are submitted
 * through the CLI; a TaskManager is SIGKILLed and the ResourceManager must drop its slots within the
 * heartbeat timeout, after which a new job still runs on the survivor.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const CLUSTER = 'itest';
const HEARTBEAT_TIMEOUT_MS = 1_500;

describe('session cluster of separate processes', () => {
  let nats: NatsServerHandle;
  let common: string[];
  let jm: SluiceProcess;
  const tms: SluiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      CLUSTER,
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      `heartbeat.timeout=${HEARTBEAT_TIMEOUT_MS} ms`,
    ];
    jm = new SluiceProcess(['jobmanager', ...common, '-D', 'slot.request.timeout=1500 ms']);
    await jm.waitForMessage('JobManager started');
    for (let i = 0; i < 2; i++) tms.push(new SluiceProcess(['taskmanager', ...common, '--slots', '2']));
    await Promise.all(tms.map((tm) => tm.waitForMessage('registered at ResourceManager')));
  });

  afterAll(async () => {
    await Promise.all(tms.map((tm) => tm.stop()));
    await jm?.stop();
    await nats?.stop();
  });

  it('runs a job with parallelism spread over both TaskManagers to FINISHED', async () => {
    const records = 200_000;
    const run = await sluice(['run', ...common, '-p', '4', 'builtin:count', String(records)]);
    expect(run.code, run.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)?.[1];
    expect(jobId).toBeDefined();
    expect(run.stdout).toContain(`Job ${jobId} FINISHED`);
    // Each record i becomes 2i: the sum over 0..N-1 is N(N-1).
    expect(run.stdout).toContain(`sum: ${records * (records - 1)}`);
    expect(run.stdout).toContain(`records: ${records}`);

    const status = await sluice(['status', ...common, '--json', jobId!]);
    expect(status.code, status.stderr).toBe(0);
    const details = JSON.parse(status.stdout) as JobDetails;
    expect(details.status).toBe('FINISHED');
    const subtasks = details.vertices.flatMap((v) => v.subtasks);
    expect(subtasks).toHaveLength(4);
    expect(subtasks.every((s) => s.state === 'FINISHED')).toBe(true);
    const used = new Set(subtasks.map((s) => s.taskManagerId));
    expect(used.size).toBe(2);
  });

  it('drops a SIGKILLed TaskManager within the heartbeat timeout and runs the next job on the survivor', async () => {
    const [victim, survivor] = tms as [SluiceProcess, SluiceProcess];
    const victimId = String((await victim.waitForMessage('registered at ResourceManager')).taskManager);
    const survivorId = String((await survivor.waitForMessage('registered at ResourceManager')).taskManager);

    const killedAt = Date.now();
    victim.kill('SIGKILL');
    const lost = await jm.waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('TaskManager lost') && l.taskManager === victimId,
    );
    const detectedAfter = Number(new Date(String(lost.time))) - killedAt;
    // Declared lost after the timeout, and not much later: the check runs every timeout/4.
    expect(detectedAfter).toBeLessThan(HEARTBEAT_TIMEOUT_MS + HEARTBEAT_TIMEOUT_MS / 4 + 1_000);
    expect(lost.releasedSlots).toBe(2);
    expect(lost.total).toBe(2);

    const run = await sluice(['run', ...common, '-p', '2', 'builtin:count', '50000']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`sum: ${50_000 * 49_999}`);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const details = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    const used = new Set(details.vertices.flatMap((v) => v.subtasks.map((s) => s.taskManagerId)));
    expect([...used]).toEqual([survivorId]);
    tms.splice(0, 1);
  });

  it('makes a job that needs more slots than exist wait, saying so, then fail clearly', async () => {
    const run = await sluice(['run', ...common, '-p', '9', 'builtin:count', '100']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/waiting for 9 free slots \(\d+ free in \d+ TaskManagers\)/);
    expect(run.stderr).toMatch(/could not get 9 slots within 1500 ms \(slot\.request\.timeout\)/);
  });

  it('lists every job with --all, and none without it once they ended', async () => {
    const all = await sluice(['list', ...common, '--all', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const jobs = JSON.parse(all.stdout) as Array<{ status: string }>;
    expect(jobs).toHaveLength(3);
    expect(jobs.map((j) => j.status).sort()).toEqual(['FAILED', 'FINISHED', 'FINISHED']);
    const running = await sluice(['list', ...common]);
    expect(running.stdout.trim()).toBe('No running jobs.');
  });

  it('fails a job whose function throws, with the error and where it happened', async () => {
    const run = await sluice(['run', ...common, '-p', '2', 'builtin:fail', '5000']);
    expect(run.code).toBe(1);
    // Both subtasks reach their failing record; whichever fails first is the cause.
    expect(run.stderr).toMatch(/Job FAILED: Error: boom: map function failed on record 500[01]/);
    expect(run.stderr).toMatch(/at task Source: Counter -> Map: Explode -> Sink: Sum \(\d\/2\)#0 on tm-/);
    expect(run.stderr).toContain('at explode');
  });

  it('cancels a running job, and a detached submission returns at once', async () => {
    const run = await sluice(['run', ...common, '-d', 'builtin:endless']);
    expect(run.code, run.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const listed = await sluice(['list', ...common, '--json']);
    expect((JSON.parse(listed.stdout) as Array<{ jobId: string }>).map((j) => j.jobId)).toContain(jobId);

    const cancel = await sluice(['cancel', ...common, jobId]);
    expect(cancel.code, cancel.stderr).toBe(0);
    await expect
      .poll(async () => {
        const s = await sluice(['status', ...common, '--json', jobId]);
        return (JSON.parse(s.stdout) as JobDetails).status;
      })
      .toBe('CANCELED');
    const again = await sluice(['cancel', ...common, jobId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('has already ended (CANCELED)');
  });

  it('stops JobManager and TaskManager gracefully on SIGTERM with exit status 0', async () => {
    const extra = new SluiceProcess(['taskmanager', ...common]);
    await extra.waitForMessage('registered at ResourceManager');
    const extraId = String((await extra.waitForMessage('registered at ResourceManager')).taskManager);
    expect(await extra.stop()).toBe(0);
    // It said goodbye: the ResourceManager drops it at once instead of waiting for the timeout.
    const gone = await jm.waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.includes('unregistered') && l.taskManager === extraId,
      5_000,
    );
    expect(gone.releasedSlots).toBe(1);
  });

  it('ends the JobManager with exit status 0 on SIGTERM, after an orderly stop', async () => {
    expect(await jm.stop()).toBe(0);
    expect(jm.lines.some((l) => l.msg === 'JobManager stopped')).toBe(true);
  });
});
