/**
 * Throughput and latency of Sluice against baselines run in this same process (npm run bench:throughput).
 *
 * (a) word count, parallelism 2 over two TaskManager processes, vs the same word count as a plain
 *     single-process JS loop;
 * (b) pass-through (source → network → discarding sink) vs raw NATS publish/subscribe of the same
 *     frames (pre-encoded: pure transport);
 * (c) end-to-end latency p50/p99 at 10 000 records/s with buffer timeout 0 (local environment: the job
 *     runs in this process), once over a local channel (in memory) and once with local channels off
 *     (records cross NATS between the two vertices);
 * (d) slots that add cores: word count on 1 TaskManager × 2 slots at parallelism 2 vs the same on
 *     1 TaskManager × 1 slot at parallelism 1 (slot worker threads, `taskmanager.slot-isolation: thread`),
 *     the 2-slot run once over thread channels and once with them off (NATS between the slots).
 *
 * Local channels: on unless `SLUICE_LOCAL_CHANNELS=off` is set for the bench (the TaskManagers inherit it).
 * With them on, (b) at parallelism 1 never touches NATS (source and sink share a slot) and (a) sends the
 * half of the words whose key belongs to the same TaskManager in memory; run the bench once each way to
 * see both paths.
 *
 * Sizes: BENCH_LINES (default 250 000 lines = 2 000 000 words), BENCH_RECORDS (default 1 000 000).
 * BENCH_ONLY=d runs only (d).
 * `-- --cpu-prof DIR`: the TaskManagers write V8 CPU profiles (one file per thread) into DIR/ab for (a) and
 * (b), DIR/slots1, DIR/slots2 and DIR/slots2-nats for (d) (summarise them with
 * `npx tsx bench/profile-summary.ts DIR/*.cpuprofile`).
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { closeLocalCluster } from '../src/execution/local-bridge.js';
import { GeneratorSource, type Sink, StreamExecutionEnvironment } from '../src/index.js';
import { startNatsServer } from '../src/nats/launcher.js';
import type { JobDetails } from '../src/runtime/dispatcher/protocol.js';
import { record } from '../src/runtime/network/elements.js';
import { appendElement, FrameBuilder } from '../src/runtime/network/frame.js';
import { localChannelsEnabled } from '../src/runtime/network/local-channels.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../src/runtime/network/output-gate.js';
import { SLUICE_BIN, SluiceProcess, sluice } from '../test/harness/processes.js';
import { cpuSeconds } from './cpu.js';
import { benchLine } from './jobs/shared.js';

const LINES = Number(process.env.BENCH_LINES ?? 250_000);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const ONLY_SLOTS = process.env.BENCH_ONLY === 'd';
const RECORD_BYTES = 100;
const cpuProfAt = process.argv.indexOf('--cpu-prof');
const CPU_PROF_DIR = cpuProfAt >= 0 ? process.argv[cpuProfAt + 1] : undefined;
if (cpuProfAt >= 0 && !CPU_PROF_DIR) throw new Error('--cpu-prof needs a directory');
const jobs = (name: string) => fileURLToPath(new URL(`./jobs/${name}`, import.meta.url));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function baselineWordCount(lines: number): { words: number; ms: number } {
  const start = performance.now();
  const counts = new Map<string, number>();
  let words = 0;
  let last = 0;
  for (let i = 0; i < lines; i++) {
    for (const word of benchLine(i).split(' ')) {
      const n = (counts.get(word) ?? 0) + 1;
      counts.set(word, n);
      last = n; // the rolling result a keyed sum emits
      words++;
    }
  }
  if (last < 0) throw new Error('unreachable');
  return { words, ms: performance.now() - start };
}

async function rawNats(url: string, records: number): Promise<{ ms: number; frames: number }> {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const payload = 'x'.repeat(RECORD_BYTES - 16);
  const frames: Uint8Array[] = [];
  const builder = new FrameBuilder(DEFAULT_MAX_FRAME_BYTES);
  let seq = 1;
  for (let i = 0; i < records; i++) {
    appendElement(builder, record({ i, payload }));
    if (builder.size >= DEFAULT_MAX_FRAME_BYTES - 200) frames.push(builder.build(0, seq++));
  }
  if (!builder.isEmpty) frames.push(builder.build(0, seq++));
  let got = 0;
  const done = new Promise<void>((resolve) => {
    sub.subscribe('bench.raw', {
      callback: () => {
        if (++got === frames.length) resolve();
      },
    });
  });
  await sub.flush();
  const start = performance.now();
  for (let f = 0; f < frames.length; f++) {
    pub.publish('bench.raw', frames[f]!);
    if (f % 64 === 63) await pub.flush();
  }
  await done;
  const ms = performance.now() - start;
  await pub.close();
  await sub.close();
  return { ms, frames: frames.length };
}

async function latency(url: string): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const samples: number[] = [];
  const sink: Sink<{ sentAt: number }> = {
    name: 'Latency',
    createWriter: () => ({
      write: (r) => {
        samples.push(performance.now() - r.sentAt);
      },
    }),
  };
  const env = StreamExecutionEnvironment.createLocalEnvironment(1, url).setBufferTimeout(0);
  env
    .fromSource(new GeneratorSource(30_000, () => ({ sentAt: performance.now() }), { ratePerSecond: 10_000 }))
    .rebalance()
    .sinkTo(sink);
  await env.execute('bench latency');
  await closeLocalCluster();
  const steady = samples.slice(1_000).sort((a, b) => a - b);
  const at = (q: number) => steady[Math.min(steady.length - 1, Math.floor(q * steady.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: steady[steady.length - 1]!, n: steady.length };
}

/** Runs until a tiny job at `parallelism` runs: that many slots are registered. */
async function waitForSlots(common: string[], parallelism: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const r = await sluice(['run', ...common, '-p', String(parallelism), 'builtin:count', '10']);
    if (r.code === 0) return;
    if (tries > 50) throw new Error(`cluster did not come up: ${r.stderr}`);
    await new Promise((r2) => setTimeout(r2, 200));
  }
}

/**
 * Word count of LINES lines at `parallelism`; words/s over the job's duration (deploy included), and the
 * CPU seconds the processes in `pids` used from submission to the end (read from /proc).
 */
async function wordCountRate(
  common: string[],
  parallelism: number,
  pids: number[] = [],
): Promise<{ rate: number; ms: number; cpu: number }> {
  const cpuBefore = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const run = await sluice(
    ['run', ...common, '-p', String(parallelism), jobs('wordcount.ts'), String(LINES)],
    {},
    600_000,
  );
  if (run.code !== 0) throw new Error(`word count failed: ${run.stderr}`);
  const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
  const details = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
  const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpuBefore;
  return { rate: (LINES * 8) / (details.durationMs / 1_000), ms: details.durationMs, cpu };
}

/** Node flags for a TaskManager that writes CPU profiles (one per thread: main and each slot worker). */
function cpuProfArgs(name: string): string[] {
  return CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}/${name}`] : [];
}

/**
 * (d): the same word count on one TaskManager with 1 slot (p=1), then with 2 slots (p=2) — the keyBy
 * exchange between the two slot threads over thread channels (a MessagePort), and once more with
 * `SLUICE_THREAD_CHANNELS=off` (over NATS), the path before thread channels. Each with the CPU seconds of
 * the TaskManager, JobManager and nats-server from submission to the job's end (less sensitive to other
 * load on the machine than the rate).
 */
async function slotScaling(url: string, natsPid: number): Promise<void> {
  const common = ['--nats', url, '--cluster-id', 'bench-slots'];
  const env = { SLUICE_LOG_LEVEL: 'warn' };
  const jm = new SluiceProcess(['jobmanager', ...common, '-D', 'rest.enabled=false'], env);
  const cases = [
    { slots: 1, name: 'slots1', env },
    { slots: 2, name: 'slots2', env },
    { slots: 2, name: 'slots2-nats', env: { ...env, SLUICE_THREAD_CHANNELS: 'off' } },
  ];
  try {
    const rates: Array<{ rate: number; ms: number; cpu: number }> = [];
    for (const c of cases) {
      const tm = new SluiceProcess(['taskmanager', ...common, '--slots', String(c.slots)], c.env, [
        ...cpuProfArgs(c.name),
        SLUICE_BIN,
      ]);
      try {
        await waitForSlots(common, c.slots);
        rates.push(await wordCountRate(common, c.slots, [tm.pid, jm.pid, natsPid]));
      } finally {
        await tm.stop();
      }
    }
    type Rate = { rate: number; ms: number; cpu: number };
    const [one, two, twoNats] = rates as [Rate, Rate, Rate];
    const perCpu = (r: Rate) => `${fmt((LINES * 8) / r.cpu)} words per CPU-s (${r.cpu.toFixed(2)} CPU-s)`;
    console.log(`\n(d) word count on 1 TaskManager, slot worker threads (${cpus().length} cores)`);
    console.log(
      `    1 slot,  parallelism 1                       : ${fmt(one.rate)} words/s (${fmt(one.ms)} ms), ${perCpu(one)}`,
    );
    console.log(
      `    2 slots, parallelism 2, thread channels      : ${fmt(two.rate)} words/s (${fmt(two.ms)} ms), ${perCpu(two)}`,
    );
    console.log(
      `    2 slots, parallelism 2, between slots by NATS : ${fmt(twoNats.rate)} words/s (${fmt(twoNats.ms)} ms), ${perCpu(twoNats)}`,
    );
    console.log(
      `    ratio                                        : ${(two.rate / one.rate).toFixed(2)}   (goal ≥ 1.7 on 2 cores, moonshot 2.0); by NATS ${(twoNats.rate / one.rate).toFixed(2)}`,
    );
  } finally {
    await jm.stop();
  }
}

async function main(): Promise<void> {
  console.log(
    `Sluice throughput bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, local channels ${localChannelsEnabled() ? 'on' : 'off (SLUICE_LOCAL_CHANNELS)'}`,
  );
  const nats = await startNatsServer();
  if (ONLY_SLOTS) {
    await slotScaling(nats.url, nats.pid);
    await nats.stop();
    return;
  }
  const common = ['--nats', nats.url, '--cluster-id', 'bench'];
  const env = { SLUICE_LOG_LEVEL: 'warn' };
  const jm = new SluiceProcess(['jobmanager', ...common], env);
  const tms = [0, 1].map(
    () =>
      new SluiceProcess(['taskmanager', ...common, '--slots', '1'], env, [...cpuProfArgs('ab'), SLUICE_BIN]),
  );
  try {
    // Wait until both TaskManagers registered: a tiny job at parallelism 2 must run.
    await waitForSlots(common, 2);

    // (a)
    const base = baselineWordCount(LINES);
    const run = await sluice(['run', ...common, '-p', '2', jobs('wordcount.ts'), String(LINES)], {}, 600_000);
    if (run.code !== 0) throw new Error(`word count failed: ${run.stderr}`);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const details = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as JobDetails;
    const words = LINES * 8;
    const sluiceRate = words / (details.durationMs / 1_000);
    const baseRate = base.words / (base.ms / 1_000);
    console.log('\n(a) word count, parallelism 2 over 2 TaskManager processes');
    console.log(`    plain JS loop, 1 process : ${fmt(baseRate)} words/s (${fmt(base.ms)} ms)`);
    console.log(
      `    sluice                   : ${fmt(sluiceRate)} words/s (${fmt(details.durationMs)} ms, deploy included)`,
    );
    console.log(
      `    ratio                    : ${(sluiceRate / baseRate).toFixed(2)}   (goal ≥ 0.5, moonshot ≥ 1.0)`,
    );

    // (b)
    const raw = await rawNats(nats.url, RECORDS);
    const pass = await sluice(
      ['run', ...common, '-p', '1', jobs('passthrough.ts'), String(RECORDS), String(RECORD_BYTES)],
      {},
      600_000,
    );
    if (pass.code !== 0) throw new Error(`pass-through failed: ${pass.stderr}`);
    const passId = /JobID ([0-9a-f]{32})/.exec(pass.stdout)![1]!;
    const passDetails = JSON.parse(
      (await sluice(['status', ...common, '--json', passId])).stdout,
    ) as JobDetails;
    const rawRate = RECORDS / (raw.ms / 1_000);
    const passRate = RECORDS / (passDetails.durationMs / 1_000);
    console.log(`\n(b) pass-through, ${RECORDS.toLocaleString('en-US')} records of ${RECORD_BYTES} bytes`);
    console.log(
      `    raw NATS pub/sub, same frames (pre-encoded) : ${fmt(rawRate)} records/s (${raw.frames} frames)`,
    );
    console.log(`    sluice source → network → sink              : ${fmt(passRate)} records/s`);
    console.log(
      `    ratio                                       : ${(passRate / rawRate).toFixed(2)}   (goal ≥ 0.5)`,
    );
  } finally {
    await Promise.all(tms.map((tm) => tm.stop()));
    await jm.stop();
  }

  // (c)
  console.log('\n(c) end-to-end latency at 10 000 records/s, buffer timeout 0 (source → sink)');
  const saved = process.env.SLUICE_LOCAL_CHANNELS;
  const modes = localChannelsEnabled() ? ['local channel', 'NATS'] : ['NATS'];
  for (const mode of modes) {
    // read by each gate when it opens: the local environment's tasks run in this process
    process.env.SLUICE_LOCAL_CHANNELS = mode === 'NATS' ? 'off' : 'on';
    const lat = await latency(nats.url);
    console.log(
      `    ${mode.padEnd(13)}: p50 ${lat.p50.toFixed(2)} ms, p99 ${lat.p99.toFixed(2)} ms, max ${lat.max.toFixed(2)} ms over ${lat.n} records   (goal p99 < 2 ms, moonshot < 1 ms)`,
    );
  }
  if (saved === undefined) delete process.env.SLUICE_LOCAL_CHANNELS;
  else process.env.SLUICE_LOCAL_CHANNELS = saved;
  // (d)
  await slotScaling(nats.url, nats.pid);
  await nats.stop();
}

await main();
