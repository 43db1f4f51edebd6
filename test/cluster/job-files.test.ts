/**
 * Job files on a cluster of separate processes: bundled and uploaded by `sluice run`, planned and run by
 * two TaskManager processes, records crossing between them over NATS. Bad job files give one clear error
 * each and leave the cluster serving.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOBS = fileURLToPath(new URL('../fixtures/jobs/', import.meta.url));
const WORDS = ['stream', 'batch', 'window', 'state', 'key', 'event', 'time'];

describe('job files on a cluster', () => {
  let nats: NatsServerHandle;
  let dir: string;
  let common: string[];
  let jm: SluiceProcess;
  const tms: SluiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-jobs-'));
    common = ['--nats', nats.url, '--cluster-id', 'jobfiles'];
    jm = new SluiceProcess(['jobmanager', ...common]);
    await jm.waitForMessage('JobManager started');
    for (let i = 0; i < 2; i++) tms.push(new SluiceProcess(['taskmanager', ...common, '--slots', '2']));
    await Promise.all(tms.map((tm) => tm.waitForMessage('registered at ResourceManager')));
  });

  afterAll(async () => {
    await Promise.all(tms.map((tm) => tm.stop()));
    await jm?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a word count at parallelism 4 across both TaskManagers with the right counts', async () => {
    const lines: string[] = [];
    const expected = new Map<string, number>();
    for (let i = 0; i < 3_000; i++) {
      const words = [WORDS[i % 7]!, WORDS[(i * 3) % 7]!, WORDS[(i * 5) % 7]!];
      lines.push(words.join(' '));
      for (const w of words) expected.set(w, (expected.get(w) ?? 0) + 1);
    }
    const input = join(dir, 'input.txt');
    const output = join(dir, 'counts');
    await writeFile(input, `${lines.join('\n')}\n`);

    const run = await sluice([
      'run',
      ...common,
      '-p',
      '4',
      join(JOBS, 'wordcount-to-file.ts'),
      input,
      output,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/Uploaded job bundle [0-9a-f]{12}/);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    expect(run.stdout).toContain(`Job ${jobId} FINISHED`);

    // Rolling counts: the last (largest) count per word is the total.
    const finals = new Map<string, number>();
    const parts = await readdir(output);
    expect(parts.sort()).toEqual(['part-0', 'part-1', 'part-2', 'part-3']);
    for (const part of parts) {
      for (const line of (await readFile(join(output, part), 'utf8')).trim().split('\n')) {
        if (!line) continue;
        const [word, n] = line.split(' ');
        finals.set(word!, Math.max(finals.get(word!) ?? 0, Number(n)));
      }
    }
    expect(finals).toEqual(expected);

    const status = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    const tmsUsed = new Set(status.vertices.flatMap((v) => v.subtasks.map((s) => s.taskManagerId)));
    expect(tmsUsed.size).toBe(2);
    expect(status.vertices.length).toBe(2);

    // The same bundle again: nothing is uploaded.
    const again = await sluice([
      'run',
      ...common,
      '-p',
      '4',
      join(JOBS, 'wordcount-to-file.ts'),
      input,
      join(dir, 'again'),
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Job bundle [0-9a-f]{12} is already in the cluster/);
  });

  it('fails a job whose function throws; sluice status shows the error and its stack', async () => {
    const run = await sluice(['run', ...common, '-p', '2', join(JOBS, 'fails-at-runtime.ts')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('RangeError: record 4242 is out of range');
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const status = await sluice(['status', ...common, jobId]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('status:      FAILED');
    expect(status.stdout).toContain('Failure cause: RangeError: record 4242 is out of range');
    expect(status.stdout).toMatch(/at (MapOperator\.)?checkRecord .*fails-at-runtime\.ts:\d+:\d+/);
  });

  it('reports a main that throws, a main that never executes, a missing file and a syntax error', async () => {
    const building = await sluice(['run', ...common, join(JOBS, 'fails-while-building.ts')]);
    expect(building.code).toBe(1);
    expect(building.stderr).toContain("The job's main failed: Error: cannot read the job configuration");
    // One line: the stack only with SLUICE_DEBUG=1 (README).
    expect(building.stderr).not.toContain('at readSettings');

    const never = await sluice(['run', ...common, join(JOBS, 'never-executes.ts')]);
    expect(never.code).toBe(1);
    expect(never.stderr).toContain('ended without calling execute(): no job was submitted');

    const missing = await sluice(['run', ...common, join(dir, 'nope.ts')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(`sluice: job file not found: ${join(dir, 'nope.ts')}`);

    const broken = join(dir, 'broken.ts');
    await writeFile(
      broken,
      "import { StreamExecutionEnvironment } from 'sluice';\nconst env = StreamExecutionEnvironment.getExecutionEnvironment(;\n",
    );
    const syntax = await sluice(['run', ...common, broken]);
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toMatch(/broken\.ts:2:\d+/);
    expect(syntax.stderr.trim().split('\n')).toHaveLength(1);

    // Nothing above hurt the cluster.
    expect(jm.child.exitCode).toBeNull();
    for (const tm of tms) expect(tm.child.exitCode).toBeNull();
    const ok = await sluice(['run', ...common, '-p', '2', 'builtin:count', '1000']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('runs a program that submits itself with createRemoteEnvironment', async () => {
    const output = join(dir, 'remote');
    const program = new SluiceProcess([nats.url, 'jobfiles', output], {}, [
      '--import',
      'tsx',
      join(JOBS, 'remote-environment.ts'),
    ]);
    expect(await program.exited, program.output).toBe(0);
    expect(program.output).toMatch(/remote job [0-9a-f]{32} FINISHED/);
    // The sink runs at the environment's default parallelism 1: one file.
    const values = (await readFile(output, 'utf8')).trim().split('\n').map(Number);
    expect(values.sort((a, b) => a - b)).toEqual(
      [...Array(100).keys()].map((i) => i * i + 1).sort((a, b) => a - b),
    );
  });

  it('prints the job graph of a job file with sluice info, and runs the examples', async () => {
    const info = await sluice(['info', '-p', '2', join(JOBS, '../../../examples/wordcount.ts')]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain("Job graph 'WordCount'");
    expect(info.stdout).toMatch(
      /v0\s+2\s+128\s+Source: generated text \[source-0-[0-9a-f]{8}\] -> Tokenizer \[flatMap-1-[0-9a-f]{8}\]/,
    );
    expect(info.stdout).toMatch(
      /v1\s+2\s+128\s+Count \[reduce-3-[0-9a-f]{8}\] -> Sink: Print to Std\. Out \[sink-4-[0-9a-f]{8}\]/,
    );
    expect(info.stdout).toMatch(/e1\s+v0\s+v1\s+hash/);

    const hello = await sluice(['run', ...common, join(JOBS, '../../../examples/hello.ts')]);
    expect(hello.code, hello.stderr).toBe(0);
    expect(hello.stdout).toMatch(/Job [0-9a-f]{32} FINISHED/);
    const words = await sluice(['run', ...common, '-p', '2', join(JOBS, '../../../examples/wordcount.ts')]);
    expect(words.code, words.stderr).toBe(0);
    // print() writes on the TaskManagers: both hold some of the counts.
    for (const tm of tms) await tm.waitForLog((l) => /^\d> \["\w+",\d+\]$/.test(String(l.msg)));
  });
});
