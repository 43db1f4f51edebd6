/**
 * Submission latency (npm run bench:submit):
 *  - session cluster, warm: submit → every task RUNNING, p50/p99 over 50 submissions of a 4-vertex job
 *    at parallelism 2 (the job's bundle is already uploaded; each job is planned on the TaskManagers);
 *  - application mode: from the `sluice run-application` command to the first record processed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterClient } from '../src/client/cluster-client.js';
import { loadConfig } from '../src/config/config.js';
import { bundleJobFile, localBundleFile, uploadBundle } from '../src/execution/job-program.js';
import { planProgram } from '../src/execution/planner.js';
import { toJobGraph } from '../src/jobgraph/chaining.js';
import { newJobId } from '../src/jobgraph/job-id.js';
import { startNatsServer } from '../src/nats/launcher.js';
import { ALL_TASKS_RUNNING } from '../src/runtime/jobmaster/job-master.js';
import { SluiceProcess, sluice } from '../test/harness/processes.js';

const SUBMISSIONS = Number(process.env.BENCH_SUBMISSIONS ?? 50);
const JOB = fileURLToPath(new URL('./jobs/four-vertices.ts', import.meta.url));

function percentile(sortedValues: number[], q: number): number {
  return sortedValues[Math.min(sortedValues.length - 1, Math.floor(q * sortedValues.length))]!;
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const runDir = await mkdtemp(join(tmpdir(), 'sluice-bench-submit-'));
  const common = ['--nats', nats.url, '--cluster-id', 'submit', '-D', 'rest.enabled=false'];
  const env = { SLUICE_LOG_LEVEL: 'warn' };
  const jm = new SluiceProcess(['jobmanager', ...common], env);
  const tms = [0, 1].map(() => new SluiceProcess(['taskmanager', ...common, '--slots', '2'], env));
  const config = loadConfig({ overrides: { 'nats.servers': nats.url, 'cluster.id': 'submit' } });
  const client = await ClusterClient.connect(config);
  try {
    for (
      let tries = 0;
      (await client.overview().catch(() => undefined))?.taskManagers.length !== 2;
      tries++
    ) {
      if (tries > 100) throw new Error('cluster did not come up');
      await new Promise((r) => setTimeout(r, 100));
    }
    const bundle = await bundleJobFile(JOB);
    const { ref } = await uploadBundle(client.nc, config.clusterId, bundle, config.highAvailability.replicas);
    const file = await localBundleFile(bundle);
    const program = { artifact: ref, args: [], executionIndex: 0, entry: JOB, parallelism: 2 };
    const { graph, jobName } = await planProgram(file, program, 'bench');
    const vertices = toJobGraph(graph, { jobId: newJobId(), name: jobName }).vertices.length;

    const samples: number[] = [];
    for (let i = 0; i < SUBMISSIONS + 5; i++) {
      const jobGraph = toJobGraph(graph, { jobId: newJobId(), name: jobName, program });
      let running!: () => void;
      const allRunning = new Promise<void>((resolve) => {
        running = resolve;
      });
      const start = performance.now();
      const follower = client.follow(jobGraph.jobId, {
        onEvent: (e) => {
          if (e.message === ALL_TASKS_RUNNING) running();
        },
      });
      await client.submit(jobGraph);
      await allRunning;
      if (i >= 5) samples.push(performance.now() - start);
      await client.cancel(jobGraph.jobId);
      await follower.done;
    }
    samples.sort((a, b) => a - b);
    console.log(`Sluice submit bench — Node ${process.version}`);
    console.log(
      `\nsession cluster (warm), ${vertices}-vertex job at parallelism 2, ${SUBMISSIONS} submissions`,
    );
    console.log(
      `    submit → all tasks RUNNING: p50 ${percentile(samples, 0.5).toFixed(1)} ms, p99 ${percentile(samples, 0.99).toFixed(1)} ms, max ${samples[samples.length - 1]!.toFixed(1)} ms   (goal p50 < 150 ms, p99 < 500 ms)`,
    );
  } finally {
    await client.close();
    await Promise.all(tms.map((tm) => tm.stop()));
    await jm.stop();
  }

  const marker = join(runDir, 'first-record');
  const start = Date.now();
  const app = await sluice([
    'run-application',
    '-d',
    '-p',
    '2',
    '--nats',
    nats.url,
    '-D',
    `cluster.run-dir=${runDir}`,
    '-D',
    'rest.enabled=false',
    JOB,
    marker,
  ]);
  if (app.code !== 0) throw new Error(`run-application failed: ${app.stderr}`);
  const appId = /Application (app-[0-9a-f]{8})/.exec(app.stdout)![1]!;
  while (!existsSync(marker) && Date.now() - start < 30_000) await new Promise((r) => setTimeout(r, 5));
  const first = Number(readFileSync(marker, 'utf8')) - start;
  console.log('\napplication mode, 4-vertex job at parallelism 2 (2 TaskManagers started)');
  console.log(`    command → first record processed: ${first} ms   (goal < 2000 ms)`);
  await sluice([
    'cluster',
    'stop',
    '--cluster-id',
    appId,
    '--nats',
    nats.url,
    '-D',
    `cluster.run-dir=${runDir}`,
  ]);
  await nats.stop();
  await rm(runDir, { recursive: true, force: true });
}

await main();
