/**
 * The REST API's contract, against a cluster of real processes: nats-server (with a password, so the
 * runs of uploaded job files must get the JobManager's credentials), `sluice jobmanager -D rest.port=0`
 * (the URL is read from its log) and one `sluice taskmanager --slots 2`. Every endpoint, every error status,
 * and the JobManager still answering after each bad request.
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/common/version.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const UPLOAD_LIMIT = 1024 * 1024;
const PASSWORD = 'rest-s3cret';

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON of many shapes, checked field by field
  body: any;
}

type Body = Record<string, unknown>;

describe('REST API', () => {
  let nats: NatsServerHandle;
  let common: string[];
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let url: string;

  async function api(path: string, init: RequestInit = {}): Promise<Answer> {
    const res = await fetch(url + path, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
  }

  const post = (path: string, body?: unknown) =>
    api(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body ?? {}) });

  async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await fn();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const jobState = async (jobId: string, state: string) =>
    waitFor(`job ${jobId} ${state}`, async () => {
      const { body } = await api(`/jobs/${jobId}`);
      return body.state === state ? (body as Body) : undefined;
    });

  async function overview(): Promise<Body> {
    const { status, body } = await api('/overview');
    expect(status).toBe(200);
    return body;
  }

  async function upload(name: string, source: string | Buffer): Promise<Answer> {
    const form = new FormData();
    form.append('jarfile', new Blob([source]), name);
    return api('/jars/upload', { method: 'POST', body: form });
  }

  /** After a bad request: the JobManager process lives and answers. */
  async function stillServing(): Promise<void> {
    expect(jm.child.exitCode).toBeNull();
    expect((await api('/overview')).status).toBe(200);
  }

  beforeAll(async () => {
    // (JetStream readiness cannot be probed through the password; the artifact store retries.)
    nats = await startNatsServer({
      extraConfig: `authorization { user: rest, password: ${PASSWORD} }\n`,
      waitForJetStream: false,
    });
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'rest',
      '-D',
      'nats.user=rest',
      '-D',
      `nats.password=${PASSWORD}`,
    ];
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'rest.port=0',
      '-D',
      `rest.max-upload-size=${UPLOAD_LIMIT}`,
    ]);
    url = String((await jm.waitForMessage('REST API listening')).url);
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '2']);
    await tm.waitForMessage('registered at ResourceManager');
  });

  afterAll(async () => {
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
  });

  describe('cluster', () => {
    it('logs the URL it serves on the loopback address with a free port', () => {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(url).not.toMatch(/:8081$/);
    });

    it('GET /overview counts TaskManagers, slots and jobs', async () => {
      const body = await overview();
      expect(body).toMatchObject({
        taskmanagers: 1,
        'slots-total': 2,
        'slots-available': 2,
        'jobs-running': 0,
        'sluice-version': VERSION,
      });
      for (const key of ['jobs-finished', 'jobs-cancelled', 'jobs-failed'])
        expect(typeof body[key], key).toBe('number');
    });

    it('GET /config is the effective configuration with secrets masked', async () => {
      const { status, body } = await api('/config');
      expect(status).toBe(200);
      expect(body).toMatchObject({
        'cluster.id': 'rest',
        'nats.user': 'rest',
        'nats.password': '******',
        'rest.port': '0',
        'rest.max-upload-size': '1 mb',
        'heartbeat.timeout': '5 s',
      });
      expect(JSON.stringify(body)).not.toContain(PASSWORD);
      const flink = await api('/jobmanager/config');
      expect(flink.body).toContainEqual({ key: 'cluster.id', value: 'rest' });
      expect(JSON.stringify(flink.body)).not.toContain(PASSWORD);
    });

    it('GET /taskmanagers lists the TaskManager with its slots', async () => {
      const { status, body } = await api('/taskmanagers');
      expect(status).toBe(200);
      expect(body.taskmanagers).toHaveLength(1);
      const [entry] = body.taskmanagers;
      const registered = await tm.waitForMessage('registered at ResourceManager');
      expect(entry).toMatchObject({ id: registered.taskManager, pid: tm.pid, slotsNumber: 2, freeSlots: 2 });
      expect(Math.abs(Date.now() - entry.timeSinceLastHeartbeat)).toBeLessThan(5_000);
    });
  });

  describe('jobs', () => {
    it('counts a finished job in /overview and shows it in /jobs, /jobs/overview and /jobs/:id', async () => {
      const before = await overview();
      const run = await sluice(['run', ...common, '-p', '2', 'builtin:count', '1000']);
      expect(run.code, run.stderr).toBe(0);
      const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;

      const after = await overview();
      expect(after['jobs-finished']).toBe(Number(before['jobs-finished']) + 1);
      expect(after['jobs-running']).toBe(0);

      const jobs = await api('/jobs');
      expect(jobs.status).toBe(200);
      expect(jobs.body.jobs).toContainEqual({ id: jobId, status: 'FINISHED' });

      const summaries = await api('/jobs/overview');
      const summary = summaries.body.jobs.find((j: Body) => j.jid === jobId);
      expect(summary).toMatchObject({ name: 'count 1000', state: 'FINISHED', parallelism: 2 });
      expect(summary['end-time']).toBeGreaterThanOrEqual(summary['start-time']);
      expect(summary.duration).toBe(summary['end-time'] - summary['start-time']);

      const { status, body } = await api(`/jobs/${jobId}`);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        jid: jobId,
        name: 'count 1000',
        state: 'FINISHED',
        isStoppable: false,
        parallelism: 2,
        restarts: 0,
        'status-counts': { FINISHED: 1, RUNNING: 0 },
        metrics: { records: 1000, sum: 999_000 },
      });
      expect(body.timestamps).toEqual({ CREATED: body['start-time'], FINISHED: body['end-time'] });
      expect(body.now).toBeGreaterThanOrEqual(body['end-time']);
      expect(body.vertices).toHaveLength(1);
      const [vertex] = body.vertices;
      expect(vertex).toMatchObject({
        name: 'Source: Counter -> Map: Double -> Sink: Sum',
        parallelism: 2,
        status: 'FINISHED',
        tasks: { FINISHED: 2, RUNNING: 0, FAILED: 0 },
      });
      expect(vertex.subtasks).toEqual([
        { subtask: 0, status: 'FINISHED', attempt: 0, 'taskmanager-id': expect.any(String) },
        { subtask: 1, status: 'FINISHED', attempt: 0, 'taskmanager-id': expect.any(String) },
      ]);

      // Flink's /v1 prefix, an upper-case id and a trailing slash name the same job.
      const v1 = await api(`/v1/jobs/${jobId.toUpperCase()}/`);
      expect(v1.status).toBe(200);
      expect(v1.body.jid).toBe(jobId);

      const accumulators = await api(`/jobs/${jobId}/accumulators`);
      expect(accumulators.body['user-task-accumulators']).toContainEqual({
        name: 'sum',
        type: 'Long',
        value: '999000',
      });
    });

    it('cancels a running job with PATCH, which ends CANCELED; a second cancel is 409', async () => {
      const before = await overview();
      const run = await sluice(['run', ...common, '-d', 'builtin:endless', '100']);
      expect(run.code, run.stderr).toBe(0);
      const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
      const running = await jobState(jobId, 'RUNNING');
      expect(running.vertices).toMatchObject([{ status: 'RUNNING', tasks: { RUNNING: 1 } }]);
      expect((await overview())['jobs-running']).toBe(1);

      const cancel = await api(`/jobs/${jobId}?mode=cancel`, { method: 'PATCH' });
      expect(cancel.status).toBe(202);
      expect(cancel.body.jobid).toBe(jobId);
      const canceled = await jobState(jobId, 'CANCELED');
      expect(canceled.vertices).toMatchObject([{ status: 'CANCELED' }]);
      const after = await overview();
      expect(after['jobs-cancelled']).toBe(Number(before['jobs-cancelled']) + 1);
      expect(after['jobs-running']).toBe(0);

      const again = await api(`/jobs/${jobId}`, { method: 'PATCH' });
      expect(again.status).toBe(409);
      expect(again.body.errors[0]).toContain('has already ended (CANCELED)');
    });

    it('refuses termination modes other than cancel with 400', async () => {
      const { body } = await api('/jobs');
      const jobId = body.jobs[0].id;
      const stop = await api(`/jobs/${jobId}?mode=stop`, { method: 'PATCH' });
      expect(stop.status).toBe(400);
      expect(stop.body.errors[0]).toContain("'stop' has been removed");
      const bogus = await api(`/jobs/${jobId}?mode=bogus`, { method: 'PATCH' });
      expect(bogus.status).toBe(400);
      expect(bogus.body).toEqual({ errors: ["mode: 'bogus' is not a termination mode (expected cancel)"] });
    });

    it('shows the root exception of a failed job with its stack and location', async () => {
      const before = await overview();
      const run = await sluice(['run', ...common, 'builtin:fail', '10']);
      expect(run.code).toBe(1);
      const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
      expect((await overview())['jobs-failed']).toBe(Number(before['jobs-failed']) + 1);

      const detail = await api(`/jobs/${jobId}`);
      expect(detail.body.state).toBe('FAILED');
      expect(detail.body.vertices[0].status).toBe('FAILED');

      const { status, body } = await api(`/jobs/${jobId}/exceptions`);
      expect(status).toBe(200);
      expect(body['root-exception']).toContain('record 10');
      expect(body['root-exception']).toMatch(/\n\s+at /); // the stack
      expect(body.timestamp).toBe(detail.body['end-time']);
      const tmId = String((await tm.waitForMessage('registered at ResourceManager')).taskManager);
      expect(body.location).toMatch(/^Source: Counter -> Map: Explode -> Sink: Sum \(1\/1\)#0 on /);
      expect(body.location).toMatch(new RegExp(` on ${tmId}$`));
      expect(body.exceptionHistory.entries).toHaveLength(1);
      expect(body.exceptionHistory.entries[0]).toMatchObject({
        exceptionName: 'Error',
        taskName: 'Source: Counter -> Map: Explode -> Sink: Sum (1/1)#0',
        taskManagerId: tmId,
        timestamp: detail.body['end-time'],
        stacktrace: body['root-exception'],
      });
    });

    it('has no exceptions for a job that did not fail', async () => {
      const { body } = await api('/jobs/overview');
      const finished = body.jobs.find((j: Body) => j.state === 'FINISHED');
      const exceptions = await api(`/jobs/${finished.jid}/exceptions`);
      expect(exceptions.body).toMatchObject({
        'root-exception': null,
        timestamp: null,
        exceptionHistory: { entries: [], truncated: false },
      });
    });

    it("answers /checkpoints with Flink's shape; savepoints and stop of an ended job are 409", async () => {
      const { body } = await api('/jobs/overview');
      const jobId = body.jobs.find((j: Body) => j.state === 'FINISHED').jid;
      const checkpoints = await api(`/jobs/${jobId}/checkpoints`);
      expect(checkpoints.status).toBe(200);
      expect(checkpoints.body.counts).toEqual({
        restored: 0,
        total: 0,
        in_progress: 0,
        completed: 0,
        failed: 0,
      });
      expect(checkpoints.body.history).toEqual([]);
      expect(checkpoints.body.latest).toEqual({
        completed: null,
        savepoint: null,
        failed: null,
        restored: null,
      });
      expect(checkpoints.body.summary.end_to_end_duration.max).toBe(0);

      for (const path of ['savepoints', 'stop']) {
        const answer = await post(`/jobs/${jobId}/${path}`, {});
        expect(answer.status, path).toBe(409);
        expect(answer.body.errors[0], path).toContain('has already ended (FINISHED)');
      }
      const badDir = await post(`/jobs/${jobId}/savepoints`, { 'target-directory': 'not a dir!' });
      expect(badDir.status).toBe(400);
      expect((await api(`/jobs/${jobId}/savepoints/nope`)).status).toBe(404);
    });

    it('answers 404 for unknown jobs, malformed ids and unknown paths', async () => {
      const unknown = '0123456789abcdef0123456789abcdef';
      for (const path of [
        `/jobs/${unknown}`,
        `/jobs/${unknown}/exceptions`,
        `/jobs/${unknown}/checkpoints`,
        `/jobs/${unknown}/accumulators`,
      ]) {
        const answer = await api(path);
        expect(answer.status, path).toBe(404);
        expect(answer.body, path).toEqual({ errors: [`job ${unknown} not found`] });
      }
      expect((await api(`/jobs/${unknown}`, { method: 'PATCH' })).body).toEqual({
        errors: [`job ${unknown} not found`],
      });
      expect((await post(`/jobs/${unknown}/savepoints`)).status).toBe(404);

      for (const id of ['abc', 'not-a-job', 'z'.repeat(32), `${unknown}0`]) {
        const answer = await api(`/jobs/${id}`);
        expect(answer.status, id).toBe(404);
        expect(answer.body, id).toEqual({ errors: [`job ${id} not found`] });
      }
      const nowhere = await api('/nowhere/at/all');
      expect(nowhere.status).toBe(404);
      expect(nowhere.body).toEqual({ errors: ['Not found: /nowhere/at/all'] });
      expect((await api(`/jobs/${unknown}/vertices`)).status).toBe(404);
      expect((await api('/jobs/%E0%A4%A/exceptions')).status).toBe(400);
      await stillServing();
    });

    it('answers 405 with Allow for a method a path does not take', async () => {
      const del = await api('/overview', { method: 'DELETE' });
      expect(del.status).toBe(405);
      expect(del.headers.get('allow')).toBe('GET, HEAD');
      expect(del.body.errors[0]).toBe('method DELETE is not allowed on /overview (allowed: GET, HEAD)');
      expect((await post('/jobs')).status).toBe(405);
      expect((await api('/jobs/overview', { method: 'PATCH' })).status).toBe(405);
      expect((await api('/jars/upload')).status).toBe(405);
      const head = await fetch(`${url}/overview`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      await stillServing();
    });
  });

  describe('job files', () => {
    let jarId: string;

    it('uploads a job file as multipart/form-data and lists it', async () => {
      const source = await readFile(`${FIXTURES}rest/words.ts`);
      const { status, body } = await upload('words.ts', source);
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({ status: 'success', name: 'words.ts' });
      expect(body.filename).toMatch(/^[0-9a-f]{16}$/);
      expect(body.sha256.startsWith(body.filename)).toBe(true);
      jarId = body.filename;

      const jars = await api('/jars');
      expect(jars.body.address).toBe(url);
      expect(jars.body.files).toContainEqual({
        id: jarId,
        name: 'words.ts',
        uploaded: expect.any(Number),
        sha256: body.sha256,
        size: expect.any(Number),
      });

      // The same file as a raw body: the same bundle, the same id.
      const raw = await api('/jars/upload?filename=words.ts', {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: source,
      });
      expect(raw.status).toBe(200);
      expect(raw.body.filename).toBe(jarId);
    });

    it('runs an uploaded job file with arguments and parallelism; the job finishes', async () => {
      const before = await overview();
      const { status, body } = await post(`/jars/${jarId}/run`, {
        parallelism: 2,
        programArgsList: ['stream', 'Batch', 'stream'],
        entryClass: 'ignored.Main',
      });
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body.jobid).toMatch(/^[0-9a-f]{32}$/);
      expect(body.jobids).toEqual([body.jobid]);
      const job = await jobState(body.jobid, 'FINISHED');
      expect(job.name).toBe('rest words (3 args)');
      expect(job.parallelism).toBe(2);
      const vertices = job.vertices as Array<Body>;
      expect(vertices.map((v) => v.parallelism)).toEqual([1, 2, 2]);
      expect(vertices[0]!.metrics).toMatchObject({ 'write-records': 3 });
      expect(vertices[2]!.metrics).toMatchObject({ 'read-records': expect.any(Number) });
      expect((await overview())['jobs-finished']).toBe(Number(before['jobs-finished']) + 1);

      // programArgs as one string, split like a shell (quotes keep words together); default parallelism.
      const quoted = await post(`/jars/${jarId}/run`, { programArgs: 'a "b c" d' });
      expect(quoted.status, JSON.stringify(quoted.body)).toBe(200);
      const second = await jobState(quoted.body.jobid, 'FINISHED');
      expect(second.name).toBe('rest words (3 args)');
      expect(second.parallelism).toBe(1);
    });

    it('takes per-job keys in flinkConfiguration (FLIP-256) and refuses others before the main runs', async () => {
      const { status, body } = await post(`/jars/${jarId}/run`, {
        programArgsList: ['x'],
        flinkConfiguration: {
          'job.autoscaler.enabled': true,
          'job.autoscaler.scaling.enabled': 'false',
          'job.autoscaler.target.utilization': 0.5,
        },
      });
      expect(status, JSON.stringify(body)).toBe(200);
      await jobState(body.jobid, 'FINISHED');
      const autoscaler = await api(`/jobs/${body.jobid}/autoscaler`);
      expect(autoscaler.status).toBe(200);
      expect(autoscaler.body.jobSettings).toEqual({
        'job.autoscaler.enabled': 'true',
        'job.autoscaler.scaling.enabled': 'false',
        'job.autoscaler.target.utilization': '0.5',
      });
      expect(autoscaler.body.settings['job.autoscaler.target.utilization']).toBe('0.5');

      const before = await overview();
      const refused = await post(`/jars/${jarId}/run`, {
        flinkConfiguration: { 'scheduler-mode': 'reactive', 'job.autoscaler.target.utilization': '3' },
      });
      expect(refused.status).toBe(400);
      const errors = JSON.stringify(refused.body.errors);
      expect(errors).toContain('scheduler-mode: cannot be set per job');
      expect(errors).toContain(
        "job.autoscaler.target.utilization: '3' (from the job's configuration) is out of range",
      );
      const after = await overview();
      expect(Number(after['jobs-finished']) + Number(after['jobs-running'])).toBe(
        Number(before['jobs-finished']) + Number(before['jobs-running']),
      );
    });

    it('answers 400 to malformed JSON and to bodies the schema refuses, naming the field', async () => {
      const malformed = await post(`/jars/${jarId}/run`, '{"parallelism": 2,');
      expect(malformed.status).toBe(400);
      expect(malformed.body.errors[0]).toMatch(/^request body is not valid JSON: /);

      const zero = await post(`/jars/${jarId}/run`, { parallelism: 0 });
      expect(zero.status).toBe(400);
      expect(zero.body.errors[0]).toMatch(/^invalid request body: parallelism: /);

      const text = await post(`/jars/${jarId}/run`, { programArgsList: ['a', 3] });
      expect(text.status).toBe(400);
      expect(text.body.errors[0]).toMatch(/^invalid request body: programArgsList\.1: /);

      const typo = await post(`/jars/${jarId}/run`, { paralelism: 2 });
      expect(typo.status).toBe(400);
      expect(typo.body.errors[0]).toContain('paralelism');

      const both = await post(`/jars/${jarId}/run`, { programArgs: 'a', programArgsList: ['a'] });
      expect(both.status).toBe(400);
      expect(both.body.errors[0]).toContain('programArgs and programArgsList are specified');

      const array = await post(`/jars/${jarId}/run`, '[1, 2]');
      expect(array.status).toBe(400);

      const savepoint = await post(`/jars/${jarId}/run`, { savepointPath: 'not a path!' });
      expect(savepoint.status).toBe(400);
      expect(savepoint.body.errors[0]).toContain('savepointPath');
      await stillServing();
    });

    it('answers 400 to uploads that are not job files', async () => {
      const syntax = await upload(
        'broken.ts',
        "import { StreamExecutionEnvironment } from 'sluice';\nconst env = StreamExecutionEnvironment.getExecutionEnvironment(;\n",
      );
      expect(syntax.status).toBe(400);
      expect(syntax.body.errors[0]).toMatch(/^broken\.ts:2:\d+: /);

      const missing = await upload('needs-helper.ts', "import { x } from './helper.js';\nconsole.log(x);\n");
      expect(missing.status).toBe(400);
      expect(missing.body.errors[0]).toContain("cannot resolve './helper.js'");

      const jar = await upload('job.jar', 'PK\u0003\u0004');
      expect(jar.status).toBe(400);
      expect(jar.body.errors[0]).toContain("'job.jar' is not a job file");

      const empty = await upload('empty.ts', '');
      expect(empty.status).toBe(400);

      const form = new FormData();
      form.append('file', new Blob(['x']), 'job.ts');
      const noField = await api('/jars/upload', { method: 'POST', body: form });
      expect(noField.status).toBe(400);
      expect(noField.body.errors[0]).toBe("the multipart upload has no 'jarfile' field (fields: 'file')");

      const noName = await api('/jars/upload', {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain' },
        body: 'x',
      });
      expect(noName.status).toBe(400);
      expect(noName.body.errors[0]).toContain('?filename= is required');

      const json = await api('/jars/upload?filename=a.ts', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect(json.status).toBe(415);

      const badMultipart = await api('/jars/upload', {
        method: 'POST',
        headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' },
        body: '--xyz\r\nContent-Disposition: form-data; name="jarfile"; filename="a.ts"\r\n\r\nno end',
      });
      expect(badMultipart.status).toBe(400);
      expect(badMultipart.body.errors[0]).toBe('malformed multipart body: no closing boundary');
      await stillServing();
    });

    it('answers 400 with the message of sluice run to a file whose main submits no job or throws', async () => {
      const never = await upload('never-executes.ts', await readFile(`${FIXTURES}jobs/never-executes.ts`));
      expect(never.status).toBe(200);
      const run = await post(`/jars/${never.body.filename}/run`);
      expect(run.status).toBe(400);
      expect(run.body.errors).toEqual([
        'never-executes.ts ended without calling execute(): no job was submitted',
      ]);

      const throws = await upload('throws.ts', "throw new Error('no configuration given');\n");
      expect(throws.status).toBe(200);
      const failed = await post(`/jars/${throws.body.filename}/run`);
      expect(failed.status).toBe(400);
      expect(failed.body.errors[0]).toMatch(/^The job's main failed: Error: no configuration given/);
      await stillServing();
    });

    it('answers 413 to an upload over rest.max-upload-size, declared or streamed', async () => {
      const declared = await api('/jars/upload?filename=huge.ts', {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: Buffer.alloc(4 * UPLOAD_LIMIT, 0x20),
      });
      expect(declared.status).toBe(413);
      expect(declared.body.errors[0]).toBe(
        `request body is larger than ${UPLOAD_LIMIT} bytes (rest.max-upload-size)`,
      );

      // No Content-Length: chunks keep coming (64 MiB in all); the server stops at the first one over.
      const chunk = new Uint8Array(256 * 1024).fill(0x20);
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 64 * 1024 * 1024) return controller.close();
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      const streamed = await api('/jars/upload?filename=huge.ts', {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expect(streamed.status).toBe(413);
      expect(sent).toBeLessThan(64 * 1024 * 1024);

      const form = new FormData();
      form.append('jarfile', new Blob([Buffer.alloc(2 * UPLOAD_LIMIT, 0x20)]), 'huge.ts');
      expect((await api('/jars/upload', { method: 'POST', body: form })).status).toBe(413);
      await stillServing();
    });

    it('deletes an uploaded file; then it is 404', async () => {
      const removed = await api(`/jars/${jarId}`, { method: 'DELETE' });
      expect(removed.status).toBe(200);
      expect((await api('/jars')).body.files.map((f: Body) => f.id)).not.toContain(jarId);
      const again = await api(`/jars/${jarId}`, { method: 'DELETE' });
      expect(again.status).toBe(404);
      expect(again.body).toEqual({ errors: [`jar ${jarId} not found`] });
      expect((await post(`/jars/${jarId}/run`)).status).toBe(404);
    });
  });

  it('keeps serving after a request that is not HTTP', async () => {
    const port = Number(new URL(url).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.setEncoding('utf8').on('data', (d: string) => {
        data += d;
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    await stillServing();
  });

  it('answers GET /overview quickly', async () => {
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      const res = await fetch(`${url}/overview`);
      await res.json();
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const p50 = times[100]!;
    const p99 = times[198]!;
    console.info(`GET /overview: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms over 200 requests`);
    expect(p50).toBeLessThan(50);
  });

  it('finishes a request in flight when the JobManager stops, then stops serving', async () => {
    const source = await readFile(`${FIXTURES}rest/words.ts`);
    const { body } = await upload('words.ts', source);
    const posted = Date.now();
    const running = post(`/jars/${body.filename}/run`, { programArgsList: ['last'] });
    // In flight means the JobManager has started this run (not merely that the client sent it). Earlier
    // tests ran the same file (same jar id) on this JobManager: only a line logged after the post counts.
    await jm.waitForLog(
      (l) =>
        l.msg === 'job file run started' && l.jar === body.filename && Date.parse(String(l.time)) >= posted,
    );
    jm.kill('SIGTERM');
    const answer = await running;
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(await jm.exited).toBe(0);
    await jm.waitForMessage('JobManager stopped');
    await expect(fetch(`${url}/overview`)).rejects.toThrow();
  });
});

describe('REST API settings', () => {
  let nats: NatsServerHandle;
  const processes: SluiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await nats?.stop();
  });

  const jobManager = (cluster: string, ...defines: string[]) => {
    const p = new SluiceProcess([
      'jobmanager',
      '--nats',
      nats.url,
      '--cluster-id',
      cluster,
      ...defines.flatMap((d) => ['-D', d]),
    ]);
    processes.push(p);
    return p;
  };

  it('serves no REST API with rest.enabled=false', async () => {
    const jm = jobManager('rest-off', 'rest.enabled=false', 'rest.port=0');
    await jm.waitForMessage('JobManager started');
    await new Promise((r) => setTimeout(r, 300));
    expect(jm.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('REST API'))).toBe(false);
    expect(await jm.stop()).toBe(0);
  });

  it('runs on without the REST API when its port is taken, and says so', async () => {
    const first = jobManager('rest-a', 'rest.port=0');
    const { url } = await first.waitForMessage('REST API listening');
    const port = new URL(String(url)).port;
    const second = jobManager('rest-b', `rest.port=${port}`);
    const failed = await second.waitForMessage('REST API not started');
    expect(String(failed.err)).toContain(`cannot serve the REST API on 127.0.0.1:${port}: EADDRINUSE`);
    await second.waitForMessage('JobManager started');
    const { stdout, code } = await sluice(['list', '--nats', nats.url, '--cluster-id', 'rest-b']);
    expect(code).toBe(0);
    expect(stdout).toBeDefined();
    expect(await second.stop()).toBe(0);
    expect(await first.stop()).toBe(0);
  });
});
