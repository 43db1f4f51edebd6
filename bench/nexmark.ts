/**
 * Nexmark on a Sluice cluster (npm run bench:nexmark [-- options]), next to Flink 1.13's published
 * throughput per core.
 *
 * Starts a private nats-server (JetStream), one `sluice jobmanager` and `--taskmanagers` (default 2)
 * `sluice taskmanager --slots 1` processes, then runs each query of bench/nexmark/queries.ts as
 * bench/jobs/nexmark.ts at `--parallelism` (default: one per TaskManager): the Nexmark generator inside the
 * job (a replayable source), the query, a discarding sink; exactly-once checkpoints every 3 minutes as in
 * the published setup (`--checkpoint-interval MS`, 0 = off); event time from the events' dateTime with a
 * 4 s bounded-out-of-orderness watermark; 10 M events per second of event time (`--event-rate`).
 *
 * Per query it prints:
 * - events/s: events ÷ the job's duration as the JobMaster reports it (scheduling and deployment included);
 * - events per CPU-second: events ÷ the CPU time (user + system, with reaped children) that the
 *   JobManager, every TaskManager and the nats-server used from just before the submission until the job
 *   finished, read from /proc/<pid>/stat. The `sluice run` client (bundling and submitting the job) is not
 *   counted, as Flink's figure does not count its SQL client;
 * - Flink 1.13's figure from the Nexmark README (Throughput/Cores: events ÷ (average cores used × time),
 *   8 single-slot TaskManagers, RocksDB, 100 M events) and the ratio of the two (goal ≥ 1 each).
 *
 * Options: --events N (default 2 000 000, env NEXMARK_EVENTS), --queries q0,q1,… (default all, env
 * NEXMARK_QUERIES), --taskmanagers N (default 2), --parallelism N, --event-rate N, --checkpoint-interval MS,
 * --quick (300 000 events). Linux only (reads /proc). The processes run with heartbeat.timeout 50 s
 * (Flink's default; Sluice's is 5 s), see startCluster.
 *
 * Bounded: each job has a deadline and the whole run one of 30 minutes. Everything it started is stopped on
 * success, on error and on Ctrl-C / SIGTERM. Everything listens on 127.0.0.1 (REST and metrics are off).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterClient } from '../src/client/cluster-client.js';
import { loadConfig } from '../src/config/config.js';
import { startNatsServer } from '../src/nats/launcher.js';
import type { JobDetails } from '../src/runtime/dispatcher/protocol.js';
import { SluiceProcess } from '../test/harness/processes.js';
import { cpuSeconds } from './cpu.js';
import { DEFAULT_EVENT_RATE } from './nexmark/generator.js';
import { FLINK_PER_CORE, isQueryName, QUERY_NAMES, type QueryName } from './nexmark/queries.js';
import { Resources } from './resources.js';

const CLUSTER = 'bench-nexmark';
const TOTAL_DEADLINE_MS = 30 * 60_000;
const HEARTBEAT_TIMEOUT_MS = 50_000;
const DEFAULT_EVENTS = 2_000_000;
const QUICK_EVENTS = 300_000;
const JOB = fileURLToPath(new URL('./jobs/nexmark.ts', import.meta.url));

interface Options {
  events: number;
  queries: QueryName[];
  taskManagers: number;
  parallelism: number | undefined;
  eventRate: number;
  checkpointIntervalMs: number;
}

function parseArgs(argv: string[]): Options {
  const positive = (name: string, v: string | undefined, zero = false): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < (zero ? 0 : 1)) {
      throw new Error(`${name} needs a ${zero ? 'non-negative' : 'positive'} integer, got '${v}'`);
    }
    return n;
  };
  const queries = (v: string | undefined): QueryName[] => {
    const names = (v ?? '').split(',').filter((s) => s !== '');
    for (const n of names) {
      if (!isQueryName(n)) {
        throw new Error(`unknown query '${n}'; runnable: ${QUERY_NAMES.join(',')}`);
      }
    }
    return names as QueryName[];
  };
  const o: Options = {
    events: process.env.NEXMARK_EVENTS
      ? positive('NEXMARK_EVENTS', process.env.NEXMARK_EVENTS)
      : DEFAULT_EVENTS,
    queries: process.env.NEXMARK_QUERIES ? queries(process.env.NEXMARK_QUERIES) : [...QUERY_NAMES],
    taskManagers: 2,
    parallelism: undefined,
    eventRate: DEFAULT_EVENT_RATE,
    checkpointIntervalMs: 180_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') continue;
    else if (arg === '--quick') o.events = QUICK_EVENTS;
    else if (arg === '--events') o.events = positive(arg, argv[++i]);
    else if (arg === '--queries') o.queries = queries(argv[++i]);
    else if (arg === '--taskmanagers') o.taskManagers = positive(arg, argv[++i]);
    else if (arg === '--parallelism') o.parallelism = positive(arg, argv[++i]);
    else if (arg === '--event-rate') o.eventRate = positive(arg, argv[++i]);
    else if (arg === '--checkpoint-interval') o.checkpointIntervalMs = positive(arg, argv[++i], true);
    else {
      throw new Error(
        `unknown argument '${arg}' (--events N, --queries q0,q1,…, --taskmanagers N, --parallelism N, --event-rate N, --checkpoint-interval MS, --quick)`,
      );
    }
  }
  if (o.queries.length === 0) throw new Error('no query to run');
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const kps = (n: number) => `${(n / 1000).toFixed(2)} K/s`;

interface Cluster {
  client: ClusterClient;
  /** The processes whose CPU time counts, by role. */
  measured: Array<{ role: string; pid: number }>;
  /** Runs `sluice <args>` (tracked: killed on cleanup); rejects on a non-zero exit or after `timeoutMs`. */
  cli(args: string[], timeoutMs: number): Promise<string>;
}

async function startCluster(resources: Resources, o: Options): Promise<Cluster> {
  const nats = await startNatsServer();
  resources.add(() => nats.stop());
  const runDir = await mkdtemp(join(tmpdir(), 'sluice-bench-nexmark-'));
  resources.add(() => rm(runDir, { recursive: true, force: true }));
  const common = ['--nats', nats.url, '--cluster-id', CLUSTER, '-D', `cluster.run-dir=${runDir}`];
  const quiet = ['-D', 'rest.enabled=false', '-D', 'metrics.enabled=false'];
  // Flink's default heartbeat timeout (Sluice's is 5 s): a window operator fires every window still held
  // at the end of the input in one synchronous pass, which blocks a TaskManager's event loop (and its
  // heartbeats) for seconds at these event counts — see docs/performance.md.
  const heartbeat = ['-D', `heartbeat.timeout=${HEARTBEAT_TIMEOUT_MS}`];
  const env = { SLUICE_LOG_LEVEL: 'warn' };
  const processes = new Set<SluiceProcess>();
  resources.add(() => Promise.all([...processes].map((p) => p.stop(5_000))));
  const jm = new SluiceProcess(['jobmanager', ...common, ...quiet, ...heartbeat], env);
  processes.add(jm);
  const measured = [
    { role: 'nats-server', pid: nats.pid },
    { role: 'JobManager', pid: jm.pid },
  ];
  for (let i = 0; i < o.taskManagers; i++) {
    const tm = new SluiceProcess(
      ['taskmanager', ...common, ...quiet, ...heartbeat, '--slots', '1', '-D', `taskmanager.id=tm-${i}`],
      env,
    );
    processes.add(tm);
    measured.push({ role: `TaskManager ${i}`, pid: tm.pid });
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
  while ((await client.overview(1_000).catch(() => undefined))?.taskManagers.length !== o.taskManagers) {
    if (Date.now() > upBy) {
      const logs = [...processes].map((p) => p.output.slice(-1_500)).join('\n---\n');
      throw new Error(`the cluster did not come up within 30 s; its output:\n${logs}`);
    }
    await sleep(200);
  }
  // Warm-up: a tiny job on every TaskManager.
  await cli(['run', '-p', String(o.taskManagers), 'builtin:count', '10'], 60_000);
  return { client, measured, cli };
}

interface QueryResult {
  query: QueryName;
  eventsPerSecond: number;
  eventsPerCpuSecond: number;
  cpu: number[];
  durationMs: number;
  checkpoints: { completed: number; failed: number };
}

async function runQuery(cluster: Cluster, o: Options, query: QueryName): Promise<QueryResult> {
  const parallelism = o.parallelism ?? o.taskManagers;
  const before = cluster.measured.map((p) => cpuSeconds(p.pid));
  const out = await cluster.cli(
    [
      'run',
      '-p',
      String(parallelism),
      JOB,
      query,
      String(o.events),
      String(o.eventRate),
      String(o.checkpointIntervalMs),
    ],
    // Generous: 5 000 events/s would be far below anything measured.
    60_000 + o.events / 5,
  );
  const after = cluster.measured.map((p) => cpuSeconds(p.pid));
  const m = /([0-9a-f]{32})/.exec(out);
  if (!m) throw new Error(`no job id in: ${out.slice(-500)}`);
  const details: JobDetails = await cluster.client.status(m[1]!);
  if (details.status !== 'FINISHED') throw new Error(`${query}: job ${m[1]} ended ${details.status}`);
  if (details.restarts > 0) {
    throw new Error(
      `${query}: job ${m[1]} restarted ${details.restarts} times; its numbers would count the restarts`,
    );
  }
  const cpu = after.map((a, i) => a - before[i]!);
  const { counts } = await cluster.client.checkpoints(m[1]!);
  const total = cpu.reduce((a, b) => a + b, 0);
  return {
    query,
    eventsPerSecond: o.events / (details.durationMs / 1_000),
    eventsPerCpuSecond: o.events / total,
    cpu,
    durationMs: details.durationMs,
    checkpoints: { completed: counts.completed, failed: counts.failed },
  };
}

/** Columns padded to their widest cell (the last one left as is). */
function printAligned(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `    ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`;
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

function printTable(results: QueryResult[], cluster: Cluster): void {
  const header = ['query', 'events/s', 'CPU s', 'events/CPU-s', 'Flink 1.13 per core', 'ratio', 'goal ≥ 1'];
  const rows: string[][] = results.map((r) => {
    const flink = FLINK_PER_CORE[r.query];
    const ratio = r.eventsPerCpuSecond / flink;
    return [
      r.query,
      fmt(r.eventsPerSecond),
      r.cpu.reduce((a, b) => a + b, 0).toFixed(2),
      fmt(r.eventsPerCpuSecond),
      kps(flink),
      ratio.toFixed(2),
      ratio >= 1 ? 'met' : 'NOT met',
    ];
  });
  printAligned(header, rows);
  console.log('\n    CPU seconds per process:');
  printAligned(
    ['query', ...cluster.measured.map((p) => p.role)],
    results.map((r) => [r.query, ...r.cpu.map((c) => c.toFixed(2))]),
  );
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const parallelism = o.parallelism ?? o.taskManagers;
  console.log(
    `Sluice Nexmark bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
  );
  console.log(
    `${fmt(o.events)} events per query (Flink's table: 100 000 000), ${fmt(o.eventRate)} events per second of event time, ` +
      `${o.taskManagers} TaskManagers × 1 slot, parallelism ${parallelism}, heartbeat.timeout ${HEARTBEAT_TIMEOUT_MS / 1000} s, ` +
      `${o.checkpointIntervalMs > 0 ? `exactly-once checkpoints every ${o.checkpointIntervalMs / 1000} s` : 'checkpoints off'}`,
  );
  const resources = new Resources();
  const deadline = setTimeout(() => {
    console.error('bench:nexmark: the whole run took too long; stopping everything');
    void resources.stopAll().finally(() => process.exit(2));
  }, TOTAL_DEADLINE_MS);
  deadline.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench:nexmark: ${signal}; stopping everything it started`);
      void resources.stopAll().finally(() => process.exit(130));
    });
  }
  try {
    const cluster = await startCluster(resources, o);
    const results: QueryResult[] = [];
    for (const query of o.queries) {
      const r = await runQuery(cluster, o, query);
      console.log(
        `  ${query}: ${fmt(r.eventsPerSecond)} events/s (${fmt(r.durationMs)} ms), ${fmt(r.eventsPerCpuSecond)} events per CPU-second, ${r.checkpoints.completed} checkpoints completed, ${r.checkpoints.failed} failed`,
      );
      results.push(r);
    }
    console.log('');
    printTable(results, cluster);
  } finally {
    clearTimeout(deadline);
    await resources.stopAll();
  }
}

await main();
