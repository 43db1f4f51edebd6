/**
 * Slots that add cores (`taskmanager.slot-isolation: thread`, the default of a TaskManager process): one
 * TaskManager with 2 slots runs the two subtasks of a job on two threads at once, and user code that loops
 * forever, calls process.exit or throws outside its task in one slot leaves the other slot's job and the
 * TaskManager's heartbeats alive. The keyBy exchange between its two slots goes over thread channels:
 * not one frame on the NATS data subjects.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterClient } from '../../src/client/cluster-client.js';
import { loadConfig } from '../../src/config/config.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { localChannelsEnabled } from '../../src/runtime/network/local-channels.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/slot-behaviour.ts', import.meta.url));
const HEARTBEAT_TIMEOUT_MS = 1_500;

interface BusySpan {
  threadId: number;
  pid: number;
  start: number;
  end: number;
}

describe('a TaskManager with a worker thread per slot', () => {
  let nats: NatsServerHandle;
  let common: string[];
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let dir: string;
  let client: ClusterClient;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-slot-threads-'));
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'slots',
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      `heartbeat.timeout=${HEARTBEAT_TIMEOUT_MS} ms`,
    ];
    jm = new SluiceProcess(['jobmanager', ...common, '-D', 'rest.enabled=false']);
    await jm.waitForMessage('JobManager started');
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '2', '-D', 'task.cancellation.timeout=1 s']);
    await tm.waitForMessage('registered at ResourceManager');
    client = await ClusterClient.connect(
      loadConfig({ overrides: { 'nats.servers': nats.url, 'cluster.id': 'slots' } }),
    );
  });

  afterAll(async () => {
    await client?.close();
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const status = (jobId: string): Promise<JobDetails> => client.status(jobId);
  const waitForStatus = async (jobId: string, wanted: string, timeoutMs = 20_000): Promise<JobDetails> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const details = await status(jobId);
      if (details.status === wanted) return details;
      if (Date.now() > deadline) throw new Error(`job ${jobId} is ${details.status}, not ${wanted}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Records the job's vertices have emitted so far (the largest "records out" accumulator). */
  const recordsOut = (details: JobDetails): number =>
    Math.max(
      0,
      ...Object.entries(details.accumulators ?? {})
        .filter(([key]) => key.endsWith('records out'))
        .map(([, value]) => Number(value)),
    );
  const submitDetached = async (mode: string): Promise<string> => {
    const run = await sluice(['run', ...common, '-d', '-p', '1', JOB, mode]);
    expect(run.code, run.stderr).toBe(0);
    return /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
  };
  const taskManagerLost = () =>
    jm.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('TaskManager lost'));

  it('runs two CPU-bound subtasks on two threads at the same time', async () => {
    const run = await sluice(['run', ...common, '-p', '2', JOB, 'busy', dir]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('FINISHED');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(['0.json', '1.json']);
    const spans = await Promise.all(
      files.map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8')) as BusySpan),
    );
    const [a, b] = spans as [BusySpan, BusySpan];
    // One TaskManager process, two threads.
    expect(a.pid).toBe(b.pid);
    expect(a.threadId).not.toBe(b.threadId);
    // Each span kept its thread busy without yielding: on one thread they could not overlap.
    const overlap = Math.min(a.end, b.end) - Math.max(a.start, b.start);
    expect(overlap).toBeGreaterThan(0);
  });

  it('sends the keyBy exchange between its two slots over thread channels: every sum right, no frame on NATS', async () => {
    const watcher = await connect({ servers: nats.url });
    let frames = 0;
    let connects = 0;
    watcher.subscribe('sluice.slots.data.>', {
      callback: (_err, msg) => {
        if (msg.reply) connects++;
        else frames++;
      },
    });
    await watcher.flush();
    try {
      const run = await sluice(['run', ...common, '-p', '2', JOB, 'keyed', dir]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('FINISHED');
      await watcher.flush();
    } finally {
      await watcher.close();
    }
    const sums: Record<string, number> = {};
    for (const subtask of [0, 1]) {
      Object.assign(sums, JSON.parse(await readFile(join(dir, `keyed-${subtask}.json`), 'utf8')));
    }
    // Numbers 0..199 999, key i % 100: key k sums k + (k + 100) + … over 2 000 numbers.
    const expected = Object.fromEntries(
      Array.from({ length: 100 }, (_, k) => [String(k), 2_000 * k + 100 * ((1_999 * 2_000) / 2)]),
    );
    expect(sums).toEqual(expected);
    // Source → sum: 2 × 2 channels, each connected over NATS (the request), its frames over a port or
    // in memory — or all over NATS when the suite runs with SLUICE_LOCAL_CHANNELS=off.
    expect(connects).toBeGreaterThanOrEqual(4);
    if (localChannelsEnabled()) expect(frames).toBe(0);
    else expect(frames).toBeGreaterThanOrEqual(4);
  });

  it('keeps the other slot producing and the heartbeats alive while one slot loops forever, then cancels it', async () => {
    const steady = await submitDetached('steady');
    await waitForStatus(steady, 'RUNNING');
    const looping = await submitDetached('loop');
    const loopDetails = await waitForStatus(looping, 'RUNNING');
    expect(loopDetails.vertices.flatMap((v) => v.subtasks).every((s) => s.state !== 'FAILED')).toBe(true);

    // Longer than the heartbeat timeout: a TaskManager whose heartbeats stopped would be declared lost.
    const before = recordsOut(await status(steady));
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_TIMEOUT_MS));
    const after = await status(steady);
    expect(after.status).toBe('RUNNING');
    expect(recordsOut(after)).toBeGreaterThan(before);
    expect((await status(looping)).status).toBe('RUNNING');
    expect(taskManagerLost()).toBe(false);

    // The loop never reads its cancel: after task.cancellation.timeout its worker is terminated.
    await client.cancel(looping);
    await waitForStatus(looping, 'CANCELED', 10_000);
    await tm.waitForMessage(
      'a cancelled task did not end within task.cancellation.timeout: terminating the slot worker thread',
    );
    expect((await status(steady)).status).toBe('RUNNING');

    // The slot works again: a new job runs in the replaced worker.
    const count = await sluice(['run', ...common, '-p', '1', 'builtin:count', '1000']);
    expect(count.code, count.stderr).toBe(0);
    expect(count.stdout).toContain('FINISHED');

    await client.cancel(steady);
    await waitForStatus(steady, 'CANCELED');
  });

  it.each([
    ['exit', 'exited with code 3'],
    ['escape', 'escaped from the task'],
  ])('fails only the job whose code ends its worker thread (%s)', async (mode, cause) => {
    const steady = await submitDetached('steady');
    await waitForStatus(steady, 'RUNNING');
    const before = recordsOut(await status(steady));

    const run = await sluice(['run', ...common, '-p', '1', JOB, mode]);
    expect(run.code).not.toBe(0);
    expect(run.stdout + run.stderr).toContain('FAILED');
    expect(run.stdout + run.stderr).toContain(cause);

    await new Promise((r) => setTimeout(r, HEARTBEAT_TIMEOUT_MS));
    const after = await status(steady);
    expect(after.status).toBe('RUNNING');
    expect(recordsOut(after)).toBeGreaterThan(before);
    expect(taskManagerLost()).toBe(false);

    await client.cancel(steady);
    await waitForStatus(steady, 'CANCELED');
  });
});
