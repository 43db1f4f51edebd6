/**
 * JobManager failover (npm run bench:failover [-- --kills N] [-- --rate R] [-- -D key=value …]):
 *
 * a private nats-server (JetStream), 3 `sluice jobmanager -D high-availability.type=nats` processes and 2
 * `sluice taskmanager --slots 2` processes, all with default settings unless `-D` says otherwise; an
 * unbounded job (bench/jobs/failover-ticker.ts: a rate-limited generator → JetStream sink, parallelism 2)
 * whose output the bench watches with a plain subscription. Then N times (default 20): SIGKILL the leader,
 * measure, start the killed JobManager again (as a standby), wait until the job runs and writes again.
 *
 * Per kill, from the SIGKILL (wall clock; the processes log epoch-ms times on the same host):
 *   key gone  — the leader key no longer holds the dead leader's record (read every 20 ms; NATS side:
 *               the key expires `lease` after the last renewal, nats-server 2.9 has no per-key TTL)
 *   leader    — a standby logs `granted leadership` with a newer epoch
 *   running   — the job's status (asked every 50 ms over NATS, no retries) is RUNNING with every subtask
 *               RUNNING, from the new leader
 *   output    — the first record written by a task deployed after the kill: a record with a new `run`
 *               token, or whose index went back (the old leader's tasks keep writing until the new leader's
 *               epoch cancels them, so "any record" would be meaningless)
 *
 * Bounded: each kill has its own deadline (60 s), the whole run one of 90 s × kills + 2 min. Everything it
 * started (nats-server, JobManagers, TaskManagers, its temp dir) is stopped on success, on error and on
 * Ctrl-C / SIGTERM.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ClusterClient } from '../src/client/cluster-client.js';
import { loadConfig } from '../src/config/config.js';
import { parseLeaderElectionTimings } from '../src/ha/leader-election-timings.js';
import { LEADER_KEY, leaderBucketName } from '../src/ha/nats-kv-leader-election-driver.js';
import { type NatsServerHandle, startNatsServer } from '../src/nats/launcher.js';
import { SluiceProcess, sluice } from '../test/harness/processes.js';
import { Resources } from './resources.js';

const JOB = fileURLToPath(new URL('./jobs/failover-ticker.ts', import.meta.url));
const CLUSTER = 'failover';
const SUBJECT = 'failover.out';
const PER_KILL_TIMEOUT_MS = 60_000;

interface Options {
  kills: number;
  rate: number;
  defines: string[];
}

function parseArgs(argv: string[]): Options {
  const options: Options = { kills: 20, rate: 200, defines: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--kills') options.kills = Number(value());
    else if (arg === '--rate') options.rate = Number(value());
    else if (arg === '-D' || arg === '--define') options.defines.push(value());
    else if (arg === '--') continue;
    else throw new Error(`unknown argument '${arg}' (--kills N, --rate R, -D key=value)`);
  }
  if (!Number.isInteger(options.kills) || options.kills < 1 || options.kills > 1_000) {
    throw new Error(`--kills must be an integer from 1 to 1000, got ${options.kills}`);
  }
  if (!(options.rate > 0)) throw new Error(`--rate must be a positive number, got ${options.rate}`);
  return options;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `intervalMs` until it returns a value; throws after `timeoutMs`. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function summary(name: string, values: number[], goal = ''): string {
  const s = [...values].sort((a, b) => a - b);
  const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return `  ${name.padEnd(30)} p50 ${f(percentile(s, 0.5))}   p99 ${f(percentile(s, 0.99))}   max ${f(s.at(-1)!)}   min ${f(s[0]!)}${goal}`;
}

const timeOf = (l: Record<string, unknown>) =>
  typeof l.time === 'number' ? l.time : Date.parse(String(l.time));

interface Sample {
  keyGoneMs: number;
  leaderMs: number;
  runningMs: number;
  outputMs: number;
  recoveredAfterGrantMs: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const resources = new Resources();
  const totalDeadline = setTimeout(
    () => {
      console.error('bench:failover: the whole run took too long; stopping everything');
      void resources.stopAll().finally(() => process.exit(2));
    },
    90_000 * options.kills + 120_000,
  );
  totalDeadline.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench:failover: ${signal}; stopping everything it started`);
      void resources.stopAll().finally(() => process.exit(130));
    });
  }
  try {
    await run(options, resources);
  } finally {
    clearTimeout(totalDeadline);
    await resources.stopAll();
  }
}

async function run(options: Options, resources: Resources): Promise<void> {
  const nats: NatsServerHandle = await startNatsServer();
  resources.add(() => nats.stop());
  const runDir = await mkdtemp(join(tmpdir(), 'sluice-bench-failover-'));
  resources.add(() => rm(runDir, { recursive: true, force: true }));
  const defines = options.defines.flatMap((d) => ['-D', d]);
  const common = [
    '--nats',
    nats.url,
    '--cluster-id',
    CLUSTER,
    '-D',
    'high-availability.type=nats',
    '-D',
    `cluster.run-dir=${runDir}`,
    ...defines,
  ];
  const quiet = ['-D', 'rest.enabled=false', '-D', 'metrics.enabled=false'];
  const overrides = Object.fromEntries(
    options.defines.map((d) => [d.slice(0, d.indexOf('=')).trim(), d.slice(d.indexOf('=') + 1).trim()]),
  );
  const lease = loadConfig({
    overrides: { ...overrides, 'high-availability.type': 'nats' },
  }).highAvailability;

  const processes = new Set<SluiceProcess>();
  resources.add(() => Promise.all([...processes].map((p) => p.stop(5_000))));
  const startJobManager = (id: string) => {
    const jm = new SluiceProcess(['jobmanager', ...common, ...quiet, '-D', `jobmanager.id=${id}`]);
    processes.add(jm);
    return jm;
  };
  const jms = new Map<string, SluiceProcess>();
  for (const id of ['jm-0', 'jm-1', 'jm-2']) jms.set(id, startJobManager(id));
  const grants = () =>
    [...jms.entries()].flatMap(([id, jm]) =>
      jm.lines
        .filter((l) => l.msg === 'granted leadership')
        .map((l) => ({ id, epoch: Number(l.epoch), at: timeOf(l) })),
    );
  const first = await until('a first leader', async () => grants()[0], 30_000);
  await jms.get(first.id)!.waitForMessage('leadership active');
  for (let i = 0; i < 2; i++) {
    const tm = new SluiceProcess([
      'taskmanager',
      ...common,
      ...quiet,
      '--slots',
      '2',
      '-D',
      `taskmanager.id=tm-${i}`,
    ]);
    processes.add(tm);
    await tm.waitForMessage('registered at ResourceManager', 30_000);
  }

  // The output stream, and a plain subscription that sees every record as it is published.
  const nc: NatsConnection = await connect({ servers: nats.url, name: 'bench-failover' });
  resources.add(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: 'FAILOVER',
    subjects: [SUBJECT],
    max_age: 60_000_000_000,
    max_msgs: 200_000,
  });
  // Per `run` token (a module instance of the job), the last index seen per subtask (index mod 2). A
  // TaskManager that still has the job's plan cached reuses its module instance (same token) for the
  // recovered job's tasks, which then start again from index 0 (or from a checkpoint): a new incarnation is
  // told by its indexes going back.
  const seen = new Map<string, number[]>();
  let outputWatch:
    | { since: number; before: Map<string, number[]>; resolve: (at: number) => void }
    | undefined;
  let records = 0;
  const decoder = new TextDecoder();
  const sub = nc.subscribe(SUBJECT);
  void (async () => {
    for await (const m of sub) {
      const at = Date.now();
      records++;
      let rec: { run: string; i: number };
      try {
        rec = JSON.parse(decoder.decode(m.data)) as { run: string; i: number };
      } catch {
        continue;
      }
      const subtask = rec.i % 2;
      const last = seen.get(rec.run) ?? [-1, -1];
      last[subtask] = rec.i;
      seen.set(rec.run, last);
      const watch = outputWatch;
      if (watch === undefined || at < watch.since) continue;
      // A task of the former leader only writes higher indexes than the last one seen before the kill; a
      // task deployed after it writes a new token, or (same module instance) starts again from its first
      // index or from a checkpoint: not above the last one seen before the kill.
      const before = watch.before.get(rec.run);
      if (before === undefined || rec.i <= before[subtask]!) {
        watch.resolve(at);
        outputWatch = undefined;
      }
    }
  })();

  const submitted = await sluice(['run', ...common, '-d', '-p', '2', JOB, SUBJECT, String(options.rate)]);
  if (submitted.code !== 0) throw new Error(`sluice run failed: ${submitted.stderr}`);
  const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;

  // Status over NATS without the client's HA retries: every ask answers or fails within 500 ms.
  const client = await ClusterClient.connect(
    loadConfig({
      overrides: {
        'nats.servers': nats.url,
        'cluster.id': CLUSTER,
        'rpc.ask.timeout': '500 ms',
        'rpc.ask.retries': '0',
      },
    }),
  );
  resources.add(() => client.close());
  const running = async () => {
    const details = await client.status(jobId).catch(() => undefined);
    const subtasks = details?.vertices.flatMap((v) => v.subtasks) ?? [];
    return details?.status === 'RUNNING' &&
      subtasks.length > 0 &&
      subtasks.every((t) => t.state === 'RUNNING')
      ? true
      : undefined;
  };
  await until('the job to run', running, 30_000, 50);
  await until('output', async () => (records > 0 ? true : undefined), 30_000);

  const kv = await new Kvm(nc).open(leaderBucketName(CLUSTER));
  const samples: Sample[] = [];
  let leader = first;
  console.log(
    `Sluice failover bench — Node ${process.version}, nats-server at ${nats.url}, ${options.kills} kills, ` +
      `job ${jobId} at ${options.rate} records/s per subtask${options.defines.length ? `, -D ${options.defines.join(' -D ')}` : ''}`,
  );
  for (let k = 1; k <= options.kills; k++) {
    // Kill at a random point of the renewal cycle.
    await sleep(500 + Math.random() * 1_000);
    const deadline = Date.now() + PER_KILL_TIMEOUT_MS;
    const left = () => Math.max(1, deadline - Date.now());
    const victim = jms.get(leader.id)!;
    const killedAt = Date.now();
    const output = new Promise<number>((resolve) => {
      outputWatch = {
        since: killedAt,
        before: new Map([...seen].map(([run, last]) => [run, [...last]])),
        resolve,
      };
    });
    victim.kill('SIGKILL');

    const keyGone = until(
      'the leader key to expire',
      async () => {
        const e = await kv.get(LEADER_KEY).catch(() => undefined);
        if (e === undefined) return undefined; // the read failed: ask again
        if (e === null || e.operation !== 'PUT') return Date.now();
        const holder = (() => {
          try {
            return (e.json() as { leaderId?: unknown }).leaderId;
          } catch {
            return undefined;
          }
        })();
        return holder !== leader.id ? Date.now() : undefined;
      },
      left(),
    );
    const granted = until('a new leader', async () => grants().find((g) => g.epoch > leader.epoch), left());
    const [keyGoneAt, grant] = await Promise.all([keyGone, granted]);
    const runningAt = await until(
      'the job RUNNING again',
      async () => ((await running()) ? Date.now() : undefined),
      left(),
      50,
    );
    const outputAt = await Promise.race([
      output,
      sleep(left()).then(() => {
        throw new Error('timed out waiting for new output');
      }),
    ]);
    const active = await jms
      .get(grant.id)!
      .waitForLog((l) => l.msg === 'leadership active' && Number(l.epoch) === grant.epoch, left());
    const sample: Sample = {
      keyGoneMs: keyGoneAt - killedAt,
      leaderMs: grant.at - killedAt,
      runningMs: runningAt - killedAt,
      outputMs: outputAt - killedAt,
      recoveredAfterGrantMs: timeOf(active) - grant.at,
    };
    samples.push(sample);
    console.log(
      `  kill ${String(k).padStart(2)}: ${leader.id} (epoch ${leader.epoch}) → ${grant.id} (epoch ${grant.epoch})   key gone ${sample.keyGoneMs} ms, leader ${sample.leaderMs} ms, RUNNING ${sample.runningMs} ms, output ${sample.outputMs} ms`,
    );

    // The killed JobManager comes back as a standby.
    await victim.exited;
    processes.delete(victim);
    const restarted = startJobManager(leader.id);
    jms.set(leader.id, restarted);
    await restarted.waitForMessage('waiting for leadership', left());
    leader = grant;
  }

  console.log(`\n${samples.length} failovers (SIGKILL of the leader), from the kill:`);
  console.log(
    summary(
      'leader key gone (NATS side)',
      samples.map((s) => s.keyGoneMs),
    ),
  );
  console.log(
    summary(
      '(a) new leader granted',
      samples.map((s) => s.leaderMs),
    ),
  );
  console.log(
    summary(
      '(b) job RUNNING again',
      samples.map((s) => s.runningMs),
      '   (goal p50 < 2 s, p99 < 4 s)',
    ),
  );
  console.log(
    summary(
      '(c) first new output record',
      samples.map((s) => s.outputMs),
    ),
  );
  console.log(
    summary(
      'grant → jobs recovered',
      samples.map((s) => s.recoveredAfterGrantMs),
    ),
  );
  const { leaseMs, renewIntervalMs, pollIntervalMs } = parseLeaderElectionTimings({
    leaseMs: lease.leaseMs,
    ...(lease.renewIntervalMs !== undefined ? { renewIntervalMs: lease.renewIntervalMs } : {}),
    ...(lease.pollIntervalMs !== undefined ? { pollIntervalMs: lease.pollIntervalMs } : {}),
  });
  const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  console.log(
    `\nHow: standbys poll the leader key every ${sec(pollIntervalMs)}; when it is held, they probe the holder's\n` +
      `liveness subject. A SIGKILLed leader's connection (and subscription) is gone at once, so the probe gets\n` +
      `"no responders"; after a renew interval (${sec(renewIntervalMs)}) of that, a standby deletes the key\n` +
      `(compare-and-set) and creates it. Expected time to a new leader: renew interval … renew interval + 2 polls\n` +
      `= ${sec(renewIntervalMs)} … ${sec(renewIntervalMs + 2 * pollIntervalMs)}. Without the probe (a leader that is alive but\n` +
      `stalled) the key expires a lease (${sec(leaseMs)}) after its last renewal: nats-server 2.9 has no per-key TTL.`,
  );
}

await main().catch((err: unknown) => {
  console.error(`bench:failover failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
