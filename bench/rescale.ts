/**
 * Rescale downtime (npm run bench:rescale [-- options]): a private nats-server (JetStream), one
 * `sluice jobmanager` and two `sluice taskmanager --slots 2` processes (REST and metrics off, 127.0.0.1),
 * then per state size the job bench/jobs/rescale-keyed.ts (a source updating keys at `--rate` records/s in
 * all → keyBy → a keyed process function holding a `--value-bytes` string per key → a probe publishing, per
 * record, the execution attempt that processed it on a core NATS subject the bench subscribes to),
 * started at parallelism 2 and rescaled `--rescales` times between 2 and 4 (2 → 4 → 2 …) through the
 * ClusterClient (what `sluice rescale -p N` does), one rescale every `--pause` ms.
 *
 * Per rescale:
 *   output gap — the last record of the old attempt → the first record of the new one, as the bench
 *                receives them (0 when they overlap);
 *   running    — the JobMaster's downtime: from telling the old tasks to stop until every new task runs
 *                (`downtimeMs` of the reply);
 *   call       — the whole rescale as the caller waits for it (reserving slots, the checkpoint taken for
 *                it, the switch; the job runs on during the checkpoint).
 * Two cases: small state (`--small-keys`, default 1 000 keys × 100 B) and large state (`--keys` ×
 * `--value-bytes`, default 200 000 × 500 B ≈ 100 MB); the large one starts rescaling once a checkpoint of
 * at least 90 % of that size has completed. Nearest-rank percentiles (with 20 samples p99 is the maximum).
 *
 * Options: --rescales N (default 20), --rate N (default 1 000), --keys N, --value-bytes N, --small-keys N,
 * --pause MS (default 2 000), --only small|large, --quick (--rescales 6 --keys 20 000), --cpu-prof DIR (the
 * TaskManagers write V8 CPU profiles there when they exit; summarise them with bench/profile-summary.ts).
 * Each rescale line also shows where the new subtasks' restore went, from their `state restored` logs
 * (the slowest subtask's read, SHA-256, decode and fill, and how many read from the object store).
 * Bounded: each rescale has a deadline (60 s), the whole run one of 15 minutes; everything it started is
 * stopped on success, on error and on Ctrl-C / SIGTERM.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { ClusterClient } from '../src/client/cluster-client.js';
import { loadConfig } from '../src/config/config.js';
import { startNatsServer } from '../src/nats/launcher.js';
import { SLUICE_BIN, SluiceProcess } from '../test/harness/processes.js';
import { Resources } from './resources.js';

const CLUSTER = 'bench-rescale';
const SUBJECT = 'bench.rescale.probe';
const TOTAL_DEADLINE_MS = 15 * 60_000;
const PER_RESCALE_MS = 60_000;
const JOB = fileURLToPath(new URL('./jobs/rescale-keyed.ts', import.meta.url));

interface Options {
  rescales: number;
  rate: number;
  keys: number;
  valueBytes: number;
  smallKeys: number;
  pauseMs: number;
  only: 'small' | 'large' | undefined;
  /** The TaskManagers write V8 CPU profiles into this directory when they exit. */
  cpuProfDir: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rescales: 20,
    rate: 1_000,
    keys: 200_000,
    valueBytes: 500,
    smallKeys: 1_000,
    pauseMs: 2_000,
    only: undefined,
    cpuProfDir: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${arg} needs a non-negative integer`);
      return v;
    };
    if (arg === '--') continue;
    else if (arg === '--rescales') o.rescales = Math.max(1, num());
    else if (arg === '--rate') o.rate = Math.max(1, num());
    else if (arg === '--keys') o.keys = Math.max(1, num());
    else if (arg === '--value-bytes') o.valueBytes = Math.max(1, num());
    else if (arg === '--small-keys') o.smallKeys = Math.max(1, num());
    else if (arg === '--pause') o.pauseMs = num();
    else if (arg === '--only') {
      const v = argv[++i];
      if (v !== 'small' && v !== 'large') throw new Error('--only takes small or large');
      o.only = v;
    } else if (arg === '--cpu-prof') {
      o.cpuProfDir = argv[++i];
      if (!o.cpuProfDir) throw new Error('--cpu-prof needs a directory');
    } else if (arg === '--quick') {
      o.rescales = 6;
      o.keys = 20_000;
    } else throw new Error(`unknown argument '${arg}' (see the comment at the top of bench/rescale.ts)`);
  }
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const ms = (v: number) => `${Math.round(v)} ms`;

/** A new subtask's `state restored` log line (the fields the bench reads). */
interface Restore {
  bytes?: number;
  localBytes?: number;
  readMs?: number;
  hashMs?: number;
  decodeMs?: number;
  fillMs?: number;
}

/** The slowest restoring subtask's steps, and how many subtasks read from the object store. */
function describeRestores(restores: Restore[]): string {
  if (restores.length === 0) return '';
  const max = (f: (r: Restore) => number | undefined) => Math.max(...restores.map((r) => f(r) ?? 0));
  const remote = restores.filter((r) => (r.bytes ?? 0) > 0).length;
  return `restore max: read ${max((r) => r.readMs)}, sha ${max((r) => r.hashMs)}, decode ${max((r) => r.decodeMs)}, fill ${max((r) => r.fillMs)} ms; ${remote}/${restores.length} read the store`;
}

interface Sample {
  from: number;
  to: number;
  gapMs: number;
  runningMs: number;
  callMs: number;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  console.log(
    `Sluice rescale bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const resources = new Resources();
  const deadline = setTimeout(() => {
    console.error('bench:rescale: the whole run took too long; stopping everything');
    void resources.stopAll().finally(() => process.exit(2));
  }, TOTAL_DEADLINE_MS);
  deadline.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench:rescale: ${signal}; stopping everything it started`);
      void resources.stopAll().finally(() => process.exit(130));
    });
  }
  try {
    const nats = await startNatsServer();
    resources.add(() => nats.stop());
    const runDir = await mkdtemp(join(tmpdir(), 'sluice-bench-rescale-'));
    resources.add(() => rm(runDir, { recursive: true, force: true }));
    const common = ['--nats', nats.url, '--cluster-id', CLUSTER, '-D', `cluster.run-dir=${runDir}`];
    const quiet = ['-D', 'rest.enabled=false', '-D', 'metrics.enabled=false'];
    const env = { SLUICE_LOG_LEVEL: 'info' };
    const processes = new Set<SluiceProcess>();
    resources.add(() => Promise.all([...processes].map((p) => p.stop(5_000))));
    const jm = new SluiceProcess(['jobmanager', ...common, ...quiet], env);
    processes.add(jm);
    const nodeArgs = o.cpuProfDir
      ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`, SLUICE_BIN]
      : [SLUICE_BIN];
    const taskManagers: SluiceProcess[] = [];
    for (let i = 0; i < 2; i++) {
      const tm = new SluiceProcess(
        ['taskmanager', ...common, ...quiet, '--slots', '2', '-D', `taskmanager.id=tm-${i}`],
        env,
        nodeArgs,
      );
      taskManagers.push(tm);
      processes.add(tm);
    }
    /** The `state restored` logs the TaskManagers wrote after `marks` (their output lengths then). */
    const restoresSince = (marks: number[]): Restore[] =>
      taskManagers.flatMap((tm, i) =>
        tm.output
          .slice(marks[i])
          .split('\n')
          .filter((line) => line.includes('"state restored"'))
          .flatMap((line) => {
            try {
              return [JSON.parse(line) as Restore];
            } catch {
              return [];
            }
          }),
      );
    const client = await ClusterClient.connect(
      loadConfig({ overrides: { 'nats.servers': nats.url, 'cluster.id': CLUSTER } }),
    );
    resources.add(() => client.close());
    const upBy = Date.now() + 30_000;
    while ((await client.overview(1_000).catch(() => undefined))?.taskManagers.length !== 2) {
      if (Date.now() > upBy)
        throw new Error(`the cluster did not come up within 30 s:\n${jm.output.slice(-2_000)}`);
      await sleep(200);
    }
    const nc = await connect({ servers: nats.url });
    resources.add(() => nc.close());

    const cases: Array<{ name: string; keys: number; bytes: number }> = [];
    if (o.only !== 'large') cases.push({ name: 'small state', keys: o.smallKeys, bytes: 100 });
    if (o.only !== 'small') cases.push({ name: 'large state', keys: o.keys, bytes: o.valueBytes });
    const results: Array<{ name: string; stateBytes: number; samples: Sample[] }> = [];
    for (const c of cases) {
      const stateBytes = c.keys * c.bytes;
      console.log(
        `\n${c.name}: ${c.keys} keys × ${c.bytes} B ≈ ${(stateBytes / 2 ** 20).toFixed(1)} MiB, ${o.rate} records/s`,
      );
      // The probe: arrival time of the last record of each attempt, and of the first.
      const first = new Map<number, number>();
      const last = new Map<number, number>();
      const sub = nc.subscribe(SUBJECT, {
        callback: (_err, msg) => {
          const attempt = Number(msg.string());
          const now = performance.now();
          if (!first.has(attempt)) first.set(attempt, now);
          last.set(attempt, now);
        },
      });
      const run = new SluiceProcess(
        [
          'run',
          ...common,
          '-d',
          '-p',
          '2',
          JOB,
          String(c.keys),
          String(c.bytes),
          String(o.rate),
          '5000',
          SUBJECT,
        ],
        env,
      );
      processes.add(run);
      if ((await run.exited) !== 0) throw new Error(`submission failed:\n${run.output.slice(-2_000)}`);
      const jobId = /JobID ([0-9a-f]{32})/.exec(run.output)?.[1];
      if (!jobId) throw new Error(`no job id in:\n${run.output.slice(-1_000)}`);
      // Built: a checkpoint holding (nearly) all the state completed.
      const builtBy = Date.now() + 180_000;
      for (;;) {
        const cps = await client.checkpoints(jobId);
        if (cps.history.some((h) => h.status === 'COMPLETED' && h.sizeBytes >= 0.9 * stateBytes)) break;
        if (Date.now() > builtBy) throw new Error('the state was not built (checkpointed) within 3 minutes');
        await sleep(250);
      }
      const samples: Sample[] = [];
      let parallelism = 2;
      for (let i = 0; i < o.rescales; i++) {
        await sleep(o.pauseMs);
        const oldAttempt = Math.max(...first.keys());
        const marks = taskManagers.map((tm) => tm.output.length);
        const to = parallelism === 2 ? 4 : 2;
        const t0 = performance.now();
        const reply = await client.rescale(jobId, {
          parallelism: to,
          timeoutMs: PER_RESCALE_MS,
          reason: 'bench:rescale',
        });
        const callMs = performance.now() - t0;
        const waitBy = performance.now() + PER_RESCALE_MS;
        const newerAttempt = () => [...first.keys()].find((a) => a > oldAttempt);
        while (newerAttempt() === undefined) {
          if (performance.now() > waitBy)
            throw new Error(`no output from the new tasks within ${PER_RESCALE_MS} ms`);
          await sleep(5);
        }
        const newAttempt = newerAttempt()!;
        await sleep(200); // late records of the old attempt still on their way
        const gapMs = Math.max(0, first.get(newAttempt)! - last.get(oldAttempt)!);
        const sample = { from: parallelism, to, gapMs, runningMs: reply.downtimeMs ?? 0, callMs };
        samples.push(sample);
        console.log(
          `  rescale ${String(i + 1).padStart(2)}: ${parallelism} → ${to}  output gap ${ms(gapMs).padStart(8)}  running ${ms(sample.runningMs).padStart(8)}  call ${ms(callMs).padStart(8)}  ${describeRestores(restoresSince(marks))}`,
        );
        parallelism = to;
      }
      sub.unsubscribe();
      await client.cancel(jobId);
      results.push({ name: c.name, stateBytes, samples });
    }
    console.log(
      '\ncase          state        rescales  output gap p50 / p99   running p50 / p99   call p50 / p99',
    );
    for (const r of results) {
      const col = (f: (s: Sample) => number) =>
        `${ms(percentile(r.samples.map(f), 50))} / ${ms(percentile(r.samples.map(f), 99))}`;
      console.log(
        `${r.name.padEnd(13)} ${`${(r.stateBytes / 2 ** 20).toFixed(1)} MiB`.padEnd(12)} ${String(r.samples.length).padEnd(9)} ${col((s) => s.gapMs).padEnd(22)} ${col((s) => s.runningMs).padEnd(19)} ${col((s) => s.callMs)}`,
      );
    }
    console.log(
      `load average at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    clearTimeout(deadline);
    await resources.stopAll();
  }
}

await main();
