/**
 * A client with nothing but a NATS connection and JSON (the `@nats-io` client directly, no Sluice client
 * code) drives a real session cluster (a JobManager and a TaskManager process): lists jobs, submits the
 * built-in `count` job and follows it to FINISHED, submits `endless` and cancels it, submits a program
 * whose bundle `sluice info --json --upload` stored in the artifact store and follows it to FINISHED (its
 * output checked), and gets coded JSON errors for bad JSON, wrong shapes, oversized payloads and unknown
 * jobs — after which the JobManager still serves.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const CLUSTER = 'jsonclient';
const DISPATCHER = `sluice.${CLUSTER}.dispatcher`;
const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));

interface Reply {
  v: number;
  type: 'ok' | 'error';
  body?: Record<string, unknown> & { status?: string; jobs?: Array<{ jobId: string; status: string }> };
  error?: { code: string; message: string; retryable: boolean };
}

describe('a bare NATS client speaking JSON to the Dispatcher', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let dir: string;
  let common: string[];

  beforeAll(async () => {
    nats = await startNatsServer();
    common = ['--nats', nats.url, '--cluster-id', CLUSTER];
    jm = new SluiceProcess(['jobmanager', ...common]);
    await jm.waitForMessage('JobManager started');
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '2']);
    await tm.waitForMessage('registered at ResourceManager');
    nc = await connect({ servers: nats.url });
    dir = await mkdtemp(join(tmpdir(), 'sluice-json-'));
  });

  afterAll(async () => {
    await nc?.close();
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** `nats request -H Content-Type:application/json <subject> <payload>`. */
  async function request(type: string, payload: string | Uint8Array): Promise<Reply> {
    const h = headers();
    h.set('Content-Type', 'application/json');
    const msg = await nc.request(`${DISPATCHER}.${type}`, payload, { timeout: 10_000, headers: h });
    expect(msg.headers?.get('Content-Type')).toBe('application/json');
    return JSON.parse(new TextDecoder().decode(msg.data)) as Reply;
  }

  const ok = async (type: string, body: unknown) => {
    const reply = await request(type, JSON.stringify(body));
    expect(reply.type, JSON.stringify(reply.error)).toBe('ok');
    return reply.body!;
  };

  /** Polls `status` until the job's status is one of `statuses`. */
  async function follow(jobId: string, statuses: string[], timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const details = await ok('status', { jobId });
      if (statuses.includes(details.status!)) return details;
      if (Date.now() > deadline)
        throw new Error(`job ${jobId} still ${details.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const newJobId = () => randomBytes(16).toString('hex');

  it('lists, submits a built-in job and follows it to FINISHED', async () => {
    expect(await ok('list', {})).toEqual({ jobs: [] });
    // An empty payload is {}: the defaults apply.
    expect((await request('list', '')).body).toEqual({ jobs: [] });
    const jobId = newJobId();
    const submission = {
      jobGraph: {
        jobId,
        name: 'count 20000',
        vertices: [
          {
            id: 'count-chain',
            name: 'Source: Counter -> Map: Double -> Sink: Sum',
            parallelism: 2,
            operator: { kind: 'builtin', name: 'count', args: { records: 20_000 } },
          },
        ],
      },
    };
    expect(await ok('submit', submission)).toEqual({ jobId });
    const details = await follow(jobId, ['FINISHED', 'FAILED', 'CANCELED']);
    expect(details.status).toBe('FINISHED');
    expect(details.error).toBeNull();
    // Submitting the same graph again is idempotent: same answer, the job does not run twice.
    expect(await ok('submit', submission)).toEqual({ jobId });
    const list = await ok('list', { all: true });
    expect(list.jobs!.filter((j) => j.jobId === jobId)).toEqual([
      expect.objectContaining({ status: 'FINISHED' }),
    ]);
  });

  it('submits an endless job and cancels it', async () => {
    const jobId = newJobId();
    await ok('submit', {
      jobGraph: {
        jobId,
        name: 'endless',
        vertices: [
          {
            id: 'endless-chain',
            name: 'Source: Ticker -> Sink: Discard',
            parallelism: 1,
            operator: { kind: 'builtin', name: 'endless', args: { rate: 100 } },
          },
        ],
      },
    });
    await follow(jobId, ['RUNNING']);
    expect((await ok('list', {})).jobs!.map((j) => j.jobId)).toContain(jobId);
    const cancelled = await ok('cancel', { jobId });
    expect(cancelled.jobId).toBe(jobId);
    expect(['CANCELLING', 'CANCELED']).toContain(cancelled.status);
    expect((await follow(jobId, ['CANCELED', 'FAILED', 'FINISHED'])).status).toBe('CANCELED');
    // Cancelling an ended job is a coded error, in JSON.
    const again = await request('cancel', JSON.stringify({ jobId }));
    expect(again.error?.code).toBe('ILLEGAL_STATE');
  });

  it('submits a program whose bundle is already in the artifact store, and follows it to FINISHED', async () => {
    const input = join(dir, 'words.txt');
    const output = join(dir, 'out');
    await writeFile(input, 'to be or not to be\nthat is the question\n');
    const info = await sluice([
      'info',
      '--json',
      '--upload',
      ...common,
      '-p',
      '2',
      join(JOBS, 'wordcount-to-file.ts'),
      input,
      output,
    ]);
    expect(info.code, info.stderr).toBe(0);
    const graph = JSON.parse(info.stdout) as { jobId: string; program: { artifact: { sha256: string } } };
    expect(graph.program.artifact.sha256).toMatch(/^[0-9a-f]{64}$/);
    const jobId = newJobId();
    await ok('submit', { jobGraph: { ...graph, jobId } });
    const details = await follow(jobId, ['FINISHED', 'FAILED', 'CANCELED']);
    expect(details.status, JSON.stringify(details.error)).toBe('FINISHED');
    const files = await readdir(output);
    const lines = (await Promise.all(files.map((f) => readFile(join(output, f), 'utf8'))))
      .join('')
      .split('\n')
      .filter(Boolean);
    // The running sum per word: its last value is the count.
    const counts = new Map<string, number>();
    for (const line of lines) {
      const [word, n] = line.split(' ');
      counts.set(word!, Math.max(counts.get(word!) ?? 0, Number(n)));
    }
    expect(Object.fromEntries(counts)).toEqual({
      to: 2,
      be: 2,
      or: 1,
      not: 1,
      that: 1,
      is: 1,
      the: 1,
      question: 1,
    });
  });

  it('answers bad JSON, wrong shapes, oversized payloads and unknown jobs with coded JSON errors, and keeps serving', async () => {
    const cases: Array<[string, string | Uint8Array, string]> = [
      ['list', '{"all": tru', 'BAD_ENVELOPE'],
      ['submit', 'not json at all', 'BAD_ENVELOPE'],
      ['status', new Uint8Array([0xc3, 0x28]), 'BAD_ENVELOPE'],
      ['status', '{"jobId": 42}', 'INVALID_MESSAGE'],
      ['status', '{"jobId": "../../etc"}', 'INVALID_MESSAGE'],
      ['list', '{"all": "yes"}', 'INVALID_MESSAGE'],
      ['submit', '{"jobGraph": 7}', 'INVALID_MESSAGE'],
      [
        'submit',
        '{"jobGraph": {"jobId": "00000000000000000000000000000001", "name": "x", "vertices": []}}',
        'INVALID_JOB',
      ],
      ['cancel', '[]', 'INVALID_MESSAGE'],
      ['submit', `{"jobGraph": {"pad": "${'x'.repeat(600 * 1024)}"}}`, 'MESSAGE_TOO_LARGE'],
      ['status', '{"jobId": "0123456789abcdef0123456789abcdef"}', 'UNKNOWN_JOB'],
      ['frobnicate', '{}', 'UNKNOWN_MESSAGE_TYPE'],
    ];
    for (const [type, payload, code] of cases) {
      const reply = await request(type, payload);
      expect(reply.type, `${type} ${String(payload).slice(0, 40)}`).toBe('error');
      expect(reply.error?.code, reply.error?.message).toBe(code);
      expect(reply.error?.message.length).toBeGreaterThan(0);
    }
    // The wrong shape names the field.
    expect((await request('status', '{"jobId": 42}')).error?.message).toMatch(/jobId/);
    // Still serving, and still alive.
    expect((await ok('overview', {})).taskManagers).toHaveLength(1);
    expect(jm.child.exitCode).toBeNull();
  });
});
