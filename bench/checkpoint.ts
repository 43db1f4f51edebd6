/**
 * Checkpoint cost (npm run bench:checkpoint [-- options]): a private nats-server (JetStream), one
 * `sluice jobmanager` and two `sluice taskmanager --slots 1` processes — bench/throughput.ts's cluster — then
 *
 * 1. word count overhead: bench/jobs/checkpointed-wordcount.ts (throughput.ts's word count: generated lines
 *    → tokenizer → keyBy(word) → rolling sum → discarding sink) at parallelism 2, the same lines with
 *    checkpoints every `--interval` ms and without, alternating (off, on, on, off, …) over `--rounds`
 *    rounds. Rate = words ÷ the job's duration as the JobMaster reports it (deployment included, as in
 *    throughput.ts); a round's overhead = 1 − rate(on) / rate(off) of its two back-to-back runs; printed:
 *    each round's, their mean and its 95 % confidence interval (Student's t), and whether the goal
 *    (≤ 10 %) is met (the whole interval below), not met (all above) or undecided.
 * 2. checkpoint duration with large keyed state: bench/jobs/keyed-state.ts at parallelism 2 (a source that
 *    first writes every key once, then updates them at `--rate` records/s per subtask; a keyed process
 *    function holding a `--value-bytes` string per key in a ValueState), checkpoints every `--interval` ms.
 *    The durations, sizes and statuses come from the JobMaster's checkpoint history (what
 *    `sluice checkpoints --json` and `GET /jobs/:id/checkpoints` show), polled every 250 ms. Checkpoints
 *    count once the state is built: after the first completed checkpoint whose size reaches
 *    keys × value-bytes. The job is cancelled after `--checkpoints` of them completed.
 * 3. where one subtask's checkpoint time goes, measured in this process on the same code (keyed-state
 *    backend snapshot, msgpack encoding, SHA-256, StateStore.put into the same nats-server) for one
 *    subtask's share of the state — with the object store's default (pure-JS) SHA-256 and with node:crypto.
 *
 * Options: --lines N (word count lines, 8 words each; default 500 000), --rounds N (default 6),
 * --keys N (default 200 000), --value-bytes N (default 500), --rate N (default 2 000), --checkpoints N
 * (default 25), --interval MS (default 1 000), --only wordcount|state, --no-breakdown,
 * --quick (--lines 200000 --rounds 2 --keys 20000 --checkpoints 5).
 *
 * Bounded: every job has its own deadline and the whole run one of 8 minutes. Everything it started
 * (nats-server, JobManager, TaskManagers, CLI clients, its temp dir) is stopped on success, on error and
 * on Ctrl-C / SIGTERM. Everything listens on 127.0.0.1 (REST and metrics endpoints are off).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getSha256Backend, setSha256Backend } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { ClusterClient } from '../src/client/cluster-client.js';
import { loadConfig } from '../src/config/config.js';
import { type NatsServerHandle, startNatsServer } from '../src/nats/launcher.js';
import { StateStore } from '../src/runtime/checkpoint/state-store.js';
import { encodeSubtaskState } from '../src/runtime/checkpoint/subtask-state.js';
import type { CheckpointsReply, JobDetails } from '../src/runtime/dispatcher/protocol.js';
import { KeyedStateBackend } from '../src/runtime/state/keyed-state-backend.js';
import { SLUICE_BIN, SluiceProcess } from '../test/harness/processes.js';
import { Resources } from './resources.js';

const CLUSTER = 'bench-checkpoint';
const TOTAL_DEADLINE_MS = 8 * 60_000;
const jobs = (name: string) => fileURLToPath(new URL(`./jobs/${name}`, import.meta.url));

interface Options {
  lines: number;
  rounds: number;
  keys: number;
  valueBytes: number;
  rate: number;
  checkpoints: number;
  intervalMs: number;
  only: 'wordcount' | 'state' | undefined;
  breakdown: boolean;
  /** Experiment: the TaskManagers use node:crypto for the object store's SHA-256 (a preload). */
  nativeSha256: boolean;
  /** The TaskManagers write V8 CPU profiles into this directory when they exit. */
  cpuProfDir: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    lines: 500_000,
    rounds: 6,
    keys: 200_000,
    valueBytes: 500,
    rate: 2_000,
    checkpoints: 25,
    intervalMs: 1_000,
    only: undefined,
    breakdown: true,
    nativeSha256: false,
    cpuProfDir: undefined,
  };
  const positive = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') continue;
    else if (arg === '--quick') Object.assign(o, { lines: 200_000, rounds: 2, keys: 20_000, checkpoints: 5 });
    else if (arg === '--no-breakdown') o.breakdown = false;
    else if (arg === '--native-sha256') o.nativeSha256 = true;
    else if (arg === '--cpu-prof') {
      o.cpuProfDir = argv[++i];
      if (!o.cpuProfDir) throw new Error('--cpu-prof needs a directory');
    } else if (arg === '--lines') o.lines = positive(arg, argv[++i]);
    else if (arg === '--rounds') o.rounds = positive(arg, argv[++i]);
    else if (arg === '--keys') o.keys = positive(arg, argv[++i]);
    else if (arg === '--value-bytes') o.valueBytes = Math.max(32, positive(arg, argv[++i]));
    else if (arg === '--rate') o.rate = positive(arg, argv[++i]);
    else if (arg === '--checkpoints') o.checkpoints = positive(arg, argv[++i]);
    else if (arg === '--interval') o.intervalMs = positive(arg, argv[++i]);
    else if (arg === '--only') {
      const v = argv[++i];
      if (v !== 'wordcount' && v !== 'state') throw new Error(`--only wordcount|state, got '${v}'`);
      o.only = v;
    } else {
      throw new Error(
        `unknown argument '${arg}' (--lines N, --rounds N, --keys N, --value-bytes N, --rate N, --checkpoints N, --interval MS, --only wordcount|state, --no-breakdown, --quick, --native-sha256, --cpu-prof DIR)`,
      );
    }
  }
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Cluster {
  nats: NatsServerHandle;
  common: string[];
  client: ClusterClient;
  /** Runs `sluice <args>` (tracked: killed on cleanup); rejects on a non-zero exit or after `timeoutMs`. */
  cli(args: string[], timeoutMs: number): Promise<string>;
}

async function startCluster(resources: Resources, o: Options): Promise<Cluster> {
  const nats = await startNatsServer();
  resources.add(() => nats.stop());
  const runDir = await mkdtemp(join(tmpdir(), 'sluice-bench-checkpoint-'));
  resources.add(() => rm(runDir, { recursive: true, force: true }));
  const common = ['--nats', nats.url, '--cluster-id', CLUSTER, '-D', `cluster.run-dir=${runDir}`];
  const quiet = ['-D', 'rest.enabled=false', '-D', 'metrics.enabled=false'];
  const env = { SLUICE_LOG_LEVEL: 'warn' };
  const processes = new Set<SluiceProcess>();
  resources.add(() => Promise.all([...processes].map((p) => p.stop(5_000))));
  processes.add(new SluiceProcess(['jobmanager', ...common, ...quiet], env));
  const tmNodeArgs: string[] = [];
  if (o.nativeSha256) {
    // The same module instance the TaskManager loads (one CommonJS file): select its node:crypto backend.
    const obj = pathToFileURL(createRequire(import.meta.url).resolve('@nats-io/obj')).href;
    const preload = `import { setSha256Backend } from ${JSON.stringify(obj)}; setSha256Backend('native');`;
    tmNodeArgs.push('--import', `data:text/javascript,${encodeURIComponent(preload)}`);
  }
  if (o.cpuProfDir) tmNodeArgs.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`);
  for (let i = 0; i < 2; i++) {
    processes.add(
      new SluiceProcess(
        ['taskmanager', ...common, ...quiet, '--slots', '1', '-D', `taskmanager.id=tm-${i}`],
        env,
        [...tmNodeArgs, SLUICE_BIN],
      ),
    );
  }
  const config = loadConfig({ overrides: { 'nats.servers': nats.url, 'cluster.id': CLUSTER } });
  const client = await ClusterClient.connect(config);
  resources.add(() => client.close());
  const cli = async (args: string[], timeoutMs: number): Promise<string> => {
    const p = new SluiceProcess([...args.slice(0, 1), ...common, ...args.slice(1)], env);
    processes.add(p);
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    processes.delete(p);
    if (code !== 0)
      throw new Error(`sluice ${args.join(' ')} exited with ${code}: ${p.output.slice(-2_000)}`);
    return p.output;
  };
  const upBy = Date.now() + 30_000;
  while ((await client.overview(1_000).catch(() => undefined))?.taskManagers.length !== 2) {
    if (Date.now() > upBy) {
      const logs = [...processes].map((p) => p.output.slice(-1_500)).join('\n---\n');
      throw new Error(`the cluster did not come up within 30 s; its output:\n${logs}`);
    }
    await sleep(200);
  }
  // Warm-up: a tiny job at parallelism 2 (both TaskManagers take part).
  await cli(['run', '-p', '2', 'builtin:count', '10'], 60_000);
  return { nats, common, client, cli };
}

const jobIdOf = (output: string) => {
  const m = /([0-9a-f]{32})/.exec(output);
  if (!m) throw new Error(`no job id in: ${output.slice(-500)}`);
  return m[1]!;
};

// ---------------------------------------------------------------------------------------------------------
// 1. word count with and without checkpoints

async function wordCount(cluster: Cluster, o: Options): Promise<void> {
  const words = o.lines * 8;
  console.log(
    `\n1. word count, parallelism 2 over 2 TaskManager processes, ${fmt(words)} words per run, checkpoints every ${o.intervalMs} ms vs off`,
  );
  const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
  const order: Array<'off' | 'on'> = [];
  for (let r = 0; r < o.rounds; r++)
    order.push(...(r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)));
  for (const mode of order) {
    const interval = mode === 'on' ? o.intervalMs : 0;
    const out = await cluster.cli(
      ['run', '-p', '2', jobs('checkpointed-wordcount.ts'), String(o.lines), String(interval)],
      180_000,
    );
    const jobId = jobIdOf(out);
    const details: JobDetails = await cluster.client.status(jobId);
    if (details.status !== 'FINISHED') throw new Error(`word count job ${jobId} ended ${details.status}`);
    const rate = words / (details.durationMs / 1_000);
    rates[mode].push(rate);
    let extra = '';
    if (mode === 'on') {
      const cps = await cluster.client.checkpoints(jobId);
      const done = cps.history.filter((c) => c.status === 'COMPLETED');
      const durations = done.map((c) => c.durationMs).sort((a, b) => a - b);
      extra = `   ${cps.counts.completed} checkpoints completed, ${cps.counts.failed} failed`;
      if (durations.length > 0) {
        extra += `, duration p50 ${durations[durations.length >> 1]} ms / max ${durations.at(-1)} ms, size ${(
          (done.at(-1)?.sizeBytes ?? 0) / 1024
        ).toFixed(1)} KiB`;
      }
    }
    console.log(
      `    checkpoints ${mode.padEnd(3)}: ${fmt(rate).padStart(10)} words/s (${fmt(details.durationMs)} ms)${extra}`,
    );
  }
  const off = median(rates.off);
  const on = median(rates.on);
  console.log(`    median off : ${fmt(off)} words/s`);
  console.log(`    median on  : ${fmt(on)} words/s`);
  // Each round ran one job of each kind back to back (off/on, then on/off: ABBA), so a round's ratio
  // compares runs under the same machine load; the rounds' overheads give a mean and a 95 % interval.
  const overheads = rates.on.map((rate, r) => (1 - rate / rates.off[r]!) * 100);
  const ci = confidenceInterval95(overheads);
  const verdict =
    ci === undefined
      ? 'needs --rounds 2 or more for an interval'
      : ci.high <= 10
        ? 'met'
        : ci.low > 10
          ? 'NOT met'
          : 'undecided at this many rounds';
  console.log(
    `    overhead per round: ${overheads.map((v) => `${v.toFixed(1)} %`).join(', ')}\n` +
      `    overhead mean ${mean(overheads).toFixed(1)} %` +
      (ci === undefined
        ? ''
        : `, 95 % confidence interval ${ci.low.toFixed(1)} % … ${ci.high.toFixed(1)} %`) +
      ` over ${overheads.length} rounds   (goal ≤ 10 %: ${verdict})`,
  );
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Student's t, two-sided 95 %, by degrees of freedom (1…30; beyond, the normal's 1.96 is close enough). */
const T_975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** The mean's 95 % confidence interval (t distribution); undefined for fewer than 2 values. */
function confidenceInterval95(values: number[]): { low: number; high: number } | undefined {
  const n = values.length;
  if (n < 2) return undefined;
  const m = mean(values);
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (n - 1));
  const half = (T_975[n - 2] ?? 1.96) * (sd / Math.sqrt(n));
  return { low: m - half, high: m + half };
}

// ---------------------------------------------------------------------------------------------------------
// 2. checkpoint duration with ~100 MB of keyed state

type Stats = CheckpointsReply['history'][number];

async function largeState(cluster: Cluster, o: Options): Promise<void> {
  const expected = o.keys * o.valueBytes;
  console.log(
    `\n2. keyed state: ${fmt(o.keys)} keys × ${o.valueBytes} B (≈ ${mib(expected)}) at parallelism 2, checkpoints every ${o.intervalMs} ms, ${fmt(o.rate)} updates/s per source subtask after the build`,
  );
  const submitted = Date.now();
  const out = await cluster.cli(
    [
      'run',
      '-d',
      '-p',
      '2',
      jobs('keyed-state.ts'),
      String(o.keys),
      String(o.valueBytes),
      String(o.rate),
      String(o.intervalMs),
    ],
    60_000,
  );
  const jobId = jobIdOf(out);
  const seen = new Map<number, Stats>();
  let firstFull: Stats | undefined;
  const deadline = Date.now() + 60_000 + o.checkpoints * Math.max(4_000, 3 * o.intervalMs);
  const steady = () => [...seen.values()].filter((c) => firstFull !== undefined && c.id > firstFull.id);
  const steadyDone = () => steady().filter((c) => c.status === 'COMPLETED');
  try {
    for (;;) {
      const reply = await cluster.client.checkpoints(jobId);
      for (const c of reply.history) if (c.kind === 'checkpoint') seen.set(c.id, c);
      firstFull ??= [...seen.values()]
        .sort((a, b) => a.id - b.id)
        .find((c) => c.status === 'COMPLETED' && c.sizeBytes >= expected);
      if (steadyDone().length >= o.checkpoints) break;
      const status = (await cluster.client.status(jobId)).status;
      if (status !== 'RUNNING' && status !== 'CREATED' && status !== 'RESTARTING') {
        throw new Error(`the keyed-state job is ${status}`);
      }
      if (Date.now() > deadline) {
        console.log(`    deadline reached with ${steadyDone().length} checkpoints after the build`);
        break;
      }
      await sleep(250);
    }
  } finally {
    await cluster.client.cancel(jobId).catch(() => undefined);
  }
  const all = [...seen.values()].sort((a, b) => a.id - b.id);
  console.log('    id   status      size        duration   (* = counted: after the state was built)');
  for (const c of all) {
    if (c.status === 'IN_PROGRESS') continue;
    const counted = firstFull !== undefined && c.id > firstFull.id;
    console.log(
      `    ${String(c.id).padEnd(4)} ${c.status.padEnd(11)} ${mib(c.sizeBytes).padStart(10)}  ${`${fmt(c.durationMs)} ms`.padStart(9)} ${counted ? '*' : ' '}${c.failure ? ` ${c.failure}` : ''}`,
    );
  }
  if (firstFull === undefined) {
    console.log('    the state never reached its full size in a completed checkpoint: no numbers');
    return;
  }
  const ended = steady().filter((c) => c.status !== 'IN_PROGRESS');
  const done = steadyDone();
  const durations = done.map((c) => c.durationMs).sort((a, b) => a - b);
  const sizes = done.map((c) => c.sizeBytes).sort((a, b) => a - b);
  const builtAfter = firstFull.triggerTimestamp - submitted;
  const spanMs = done.length > 1 ? done.at(-1)!.triggerTimestamp - done[0]!.triggerTimestamp : Number.NaN;
  console.log(
    `    state built: first full-size checkpoint (${firstFull.id}) triggered ${secs(builtAfter)} after submission`,
  );
  console.log(
    `    after the build: ${done.length} completed, ${ended.length - done.length} failed; one every ${
      done.length > 1 ? secs(spanMs / (done.length - 1)) : '–'
    } on average`,
  );
  if (durations.length === 0) return;
  const p99 = percentile(durations, 0.99);
  console.log(
    `    duration   p50 ${secs(percentile(durations, 0.5))}   p99 ${secs(p99)}   max ${secs(durations.at(-1)!)}   min ${secs(durations[0]!)}   (goal p99 < 2 s: ${p99 < 2_000 ? 'met' : 'NOT met'})`,
  );
  console.log(
    `    state size per checkpoint: ${mib(percentile(sizes, 0.5))} (min ${mib(sizes[0]!)}, max ${mib(sizes.at(-1)!)}) over 2 subtasks`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// 3. where one subtask's checkpoint time goes

async function breakdown(nats: NatsServerHandle, o: Options): Promise<void> {
  const share = Math.ceil(o.keys / 2);
  console.log(
    `\n3. one subtask's share (${fmt(share)} keys × ${o.valueBytes} B), the same code in this process, 3 tries each (ms, best / worst)`,
  );
  const backend = new KeyedStateBackend(128);
  const state = backend.valueState<string>('value');
  for (let k = 0; k < o.keys; k += 2) {
    backend.setCurrentKey(k);
    state.update(`${k}:${k}:`.padEnd(o.valueBytes, 'x'));
  }
  const nc = await connect({ servers: nats.url, name: 'bench-checkpoint-breakdown' });
  try {
    const store = await StateStore.open(nc, 'bench-breakdown');
    const rows = new Map<string, number[]>();
    const time = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
      const start = performance.now();
      const result = await fn();
      const list = rows.get(name) ?? [];
      list.push(performance.now() - start);
      rows.set(name, list);
      return result;
    };
    const initial = getSha256Backend();
    let size = 0;
    for (let t = 0; t < 3; t++) {
      const tables = await time('snapshot() (synchronous, task blocked)', () => backend.snapshot());
      const bytes = await time('msgpack encode + copy (synchronous, task blocked)', () =>
        encodeSubtaskState({ state: { keyed: tables } }),
      );
      size = bytes.byteLength;
      await time('SHA-256 node:crypto (StateStore.put, on the task thread)', () =>
        createHash('sha256').update(bytes).digest('hex'),
      );
      setSha256Backend(initial);
      await time(`StateStore.put, object store SHA-256 '${initial}' (default)`, () =>
        store.put(`bench/${t}-default`, bytes),
      );
      setSha256Backend('native');
      await time("StateStore.put, object store SHA-256 'native'", () =>
        store.put(`bench/${t}-native`, bytes),
      );
      setSha256Backend(initial);
      await store.delete(`bench/${t}-default`);
      await store.delete(`bench/${t}-native`);
    }
    console.log(`    state object: ${mib(size)}`);
    for (const [name, values] of rows) {
      const s = [...values].sort((a, b) => a - b);
      console.log(`    ${name.padEnd(58)} ${fmt(s[0]!).padStart(6)} / ${fmt(s.at(-1)!).padStart(6)}`);
    }
  } finally {
    await nc.close();
  }
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  console.log(
    `Sluice checkpoint bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}${
      o.nativeSha256 ? ' — experiment: TaskManagers with the object store SHA-256 on node:crypto' : ''
    }`,
  );
  const resources = new Resources();
  const deadline = setTimeout(() => {
    console.error('bench:checkpoint: the whole run took too long; stopping everything');
    void resources.stopAll().finally(() => process.exit(2));
  }, TOTAL_DEADLINE_MS);
  deadline.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench:checkpoint: ${signal}; stopping everything it started`);
      void resources.stopAll().finally(() => process.exit(130));
    });
  }
  const started = Date.now();
  try {
    const cluster = await startCluster(resources, o);
    if (o.only !== 'state') await wordCount(cluster, o);
    if (o.only !== 'wordcount') {
      await largeState(cluster, o);
      if (o.breakdown) await breakdown(cluster.nats, o);
    }
  } finally {
    clearTimeout(deadline);
    await resources.stopAll();
  }
  console.log(`\ntotal ${secs(Date.now() - started)}`);
}

await main();
