/**
 * The HA chaos test: a checkpointing, exactly-once job keeps producing exact output while its JobManager
 * leader is SIGKILLed again and again, paused (SIGSTOP) past its lease and resumed, and NATS nodes are killed.
 *
 * Setup: a 3-node NATS cluster (JetStream, replicas 3 for the HA buckets, the state store and the output
 * stream), 3 JobManagers with `high-availability.type=nats`, 2 TaskManagers (2 slots each), and the job
 * test/fixtures/jobs/chaos-count.ts at parallelism 2: an unbounded rate-limited generator of numbered events →
 * keyBy → a keyed running count → the exactly-once JetStream sink into the stream CHAOS (duplicate window
 * 2 min), checkpointing every 400 ms.
 *
 * Chaos, in a seeded random order, each at a random moment once the job has recovered from the previous one:
 * - `kill`: SIGKILL the leader; a standby must take over, restore the job from a checkpoint no older than the
 *   last one the dead leader completed, and complete new checkpoints; the killed one comes back as a standby;
 * - `pause`: SIGSTOP the leader past its lease; a standby must take over; then SIGCONT it (right after the new
 *   grant, or once the new leader has committed a checkpoint): it must revoke itself before it does anything;
 * - `nats`: SIGKILL a random NATS node; the job must keep committing output on the two left; the node is then
 *   restarted on its port and store dir and catches up;
 * - `partition-jm` / `partition-tm` / `partition-nats`: cut the leader, a TaskManager running tasks or the NATS
 *   node leading the output stream off the network for 4–6 s (longer than the heartbeat timeout and the lease),
 *   then heal: the job must go on without it (a standby takes over; the job restarts on the other
 *   TaskManager; the other two nodes keep a quorum) and the healed one must come back (as a standby,
 *   re-registered, caught up).
 * Every process under test runs on a test host of its own, a network namespace (test/harness/netns.ts); where
 * namespaces cannot be created the run says so, uses loopback and leaves the partitions out (nothing else).
 * In the long run a CPU-contention phase (`stress-ng --cpu 2`) covers the middle third of the events.
 * Every event is timed and printed; liveness: after every fault new output must be committed within
 * `SLUICE_CHAOS_LIVENESS_MS` (default 15 s) of the fault — within `SLUICE_CHAOS_NATS_LIVENESS_MS` (default 35 s)
 * of a NATS node's kill or partition, which nats-server's own Raft timers bound (a stream whose leader went
 * silent elects a new one after 4–9 s, and a heal in mid-election can cost a second round) —, else the run
 * fails naming the fault. Then the job is cancelled and the output stream is read: per key the
 * counts 1..n, each exactly once, each with the event it counts. Leadership intervals (from the JobManagers'
 * `granted leadership` / `leadership revoked` lines, a SIGKILL or a SIGSTOP ending one) must not overlap, epochs
 * must increase, and every JobMaster write or deployment (`checkpoint N completed`, `job RUNNING`) must lie
 * inside its process's leadership; the checkpoints the pointer retains
 * stay restorable (checked after every event and right after a resumed leader stood down); no restore falls
 * back to an older checkpoint. A resumed leader that acts on its own before it revokes (a known bug, see the
 * "Chaos test" section of docs/high-availability.md) fails the run with `SLUICE_CHAOS_STRICT=1` (default in the
 * long run), else it is printed as a warning. Process logs go to `SLUICE_CHAOS_LOG_DIR` (default
 * /tmp/sluice-chaos-<pid>).
 *
 * Size: `npm test` runs the short version (3 kills, 1 pause, 1 partition of a seeded kind, no NATS kill, no
 * load). `npm run chaos` runs the long one (`SLUICE_CHAOS=long`: 20 kills, 2 pauses, 2 NATS node kills, 6
 * partitions — 2 of each kind —, the load phase). Overrides: `SLUICE_CHAOS_KILLS`, `SLUICE_CHAOS_PAUSES`,
 * `SLUICE_CHAOS_NATS_KILLS`, `SLUICE_CHAOS_PARTITIONS`, `SLUICE_CHAOS_LOAD` (1/0), `SLUICE_CHAOS_SEED` (the
 * seed is printed; a failing run can be replayed with it). The samples are also written to
 * `<log dir>/samples.json`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsCluster,
  type NatsServerHandle,
  startNatsCluster,
  startNatsServer,
} from '../../src/nats/launcher.js';
import { StateStore } from '../../src/runtime/checkpoint/state-store.js';
import { json, readStream } from '../connectors/jetstream-helpers.js';
import { type NetHost, netnsSupport, TestNetwork } from '../harness/netns.js';
import { startNatsClusterOnHosts } from '../harness/netns-nats.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const LONG = process.env.SLUICE_CHAOS === 'long';
const envInt = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
  return n;
};
const KILLS = envInt('SLUICE_CHAOS_KILLS', LONG ? 20 : 3);
const PAUSES = envInt('SLUICE_CHAOS_PAUSES', LONG ? 2 : 1);
const NATS_KILLS = envInt('SLUICE_CHAOS_NATS_KILLS', LONG ? 2 : 0);
/** Partitions, their kinds in turn (JobManager leader, TaskManager, NATS node), in a seeded order. */
const PARTITIONS = envInt('SLUICE_CHAOS_PARTITIONS', LONG ? 6 : 1);
/** CPU contention (stress-ng) over the middle third of the events. */
const LOAD = (process.env.SLUICE_CHAOS_LOAD ?? (LONG ? '1' : '0')) === '1';
/** After every fault, new output must be committed within this long of it. */
const LIVENESS_MS = envInt('SLUICE_CHAOS_LIVENESS_MS', 15_000);
/**
 * The same after a NATS node is killed or cut off: until the streams it led (the leader bucket, the state store,
 * the output) have elected new leaders, no JobManager can be granted leadership and no checkpoint can complete.
 * nats-server 2.9 starts such an election after 4–9 s without the leader's heartbeat (not configurable), and a
 * node that rejoins after a partition can stall a group for more rounds (it logs `has NO quorum, stalled`):
 * the bound is the longest partition (6 s) plus three election rounds at their longest (27 s), rounded up.
 * Measured: 20.3 s and 26.9 s (see docs/high-availability.md).
 */
const NATS_LIVENESS_MS = envInt('SLUICE_CHAOS_NATS_LIVENESS_MS', 35_000);
/** How long a partition lasts: above the heartbeat timeout (1.5 s) and the lease (3 s). */
const PARTITION_MIN_MS = 4_000;
const PARTITION_MAX_MS = 6_000;
/** Fail (not just warn) when a resumed leader acts before it revokes: the known bug, on in the long run. */
const STRICT = (process.env.SLUICE_CHAOS_STRICT ?? (LONG ? '1' : '0')) === '1';
/** What only a leader does: commit checkpoints, recover and deploy jobs. */
const LEADER_WORK =
  /^(checkpoint \d+ completed|restoring from checkpoint \d+|recovering job.*|job submitted|leadership active|job RUNNING)$/;
/** What a leader's timers and handlers do on their own: fail jobs, abort checkpoints (deleting their state). */
const STALE_LEADER_WORK =
  /^(job (FAILING|RESTARTING|CANCELLING)|checkpoint \d+ failed|TaskManager lost.*|restarting in .*|task failed; failing the job)$/;
const COMPLETED = /^checkpoint \d+ completed$/;
const SEED = envInt('SLUICE_CHAOS_SEED', Math.floor(Math.random() * 2 ** 31));

const JOB = fileURLToPath(new URL('../fixtures/jobs/chaos-count.ts', import.meta.url));
const CLUSTER = `chaos${process.pid}`;
const STREAM = 'CHAOS';
const SUBJECT = 'chaos.out';
const KEYS = 8;
const RATE_PER_SUBTASK = 50;
const CHECKPOINT_INTERVAL_MS = 400;
/** Each step of a recovery must fit in this. */
const EVENT_DEADLINE_MS = 45_000;
/**
 * After a NATS node is killed: nats-server 2.9 elects new stream leaders for each bucket one after the other
 * (4–9 s each), the leader loses its lease meanwhile, and the new one recovers its jobs through them.
 */
const NATS_EVENT_DEADLINE_MS = 90_000;
/** Every process's output is written here at the end (kept: it is what explains a failure). */
const LOG_DIR = process.env.SLUICE_CHAOS_LOG_DIR || join(tmpdir(), `sluice-chaos-${process.pid}`);

/** mulberry32: a small seeded PRNG, so a run's schedule can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);

const timeOf = (l: Record<string, unknown>) =>
  typeof l.time === 'number' ? l.time : Date.parse(String(l.time));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value; throws after `timeoutMs` naming `what`. */
async function until<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.catch(() => undefined),
    new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One JobManager process (a restarted JobManager is a new incarnation under the same id). */
interface Incarnation {
  id: string;
  proc: SluiceProcess;
  /** When the SIGKILL was sent (faults are timed from here). */
  killedAt?: number;
  /**
   * When its exit was seen: a leadership it held ends there. Not `killedAt`: the signal takes a moment to
   * land, and a line the process logged meanwhile was logged alive (seed 90 on 8082390: `checkpoint 150
   * completed` stamped 1 ms after the test had noted the kill).
   */
  exitedAt?: number;
  /** SIGSTOP / SIGCONT times; `linesAtCont`: how many of its lines had arrived when it was resumed. */
  pauses: Array<{
    stoppedAt: number;
    contAt?: number;
    linesAtCont?: number;
    epoch: number;
    /** The checkpoint the next leader restored from. */
    restoredFrom?: number;
  }>;
}

interface Grant {
  inc: Incarnation;
  epoch: number;
  at: number;
}

type PartitionTarget = 'jm' | 'tm' | 'nats';
type EventKind = 'kill' | 'pause' | 'nats' | `partition-${PartitionTarget}`;

interface Sample {
  kind: EventKind;
  /** Whether the CPU-contention phase was on. */
  load?: boolean;
  what: string;
  /** Event → `granted leadership` on the new leader (kill, pause). */
  leaderMs?: number;
  /** Event → `restoring from checkpoint n` on the new leader (kill, pause). */
  restoreMs?: number;
  /** Event → a checkpoint completed after the event and the output stream grew. */
  outputMs: number;
}

/** The NATS cluster under test, on loopback or on test hosts. */
interface NatsNodes {
  readonly urls: string[];
  /** The running handle of each node. */
  servers(): NatsServerHandle[];
  /** Starts killed node `i` again on its port and store dir. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** A 3-node cluster on loopback (`startNatsCluster`); a killed node restarts from its config file. */
async function loopbackNats(logDir: string): Promise<NatsNodes> {
  const cluster: NatsCluster = await startNatsCluster(3, { logDir });
  const servers = [...cluster.servers];
  return {
    urls: cluster.urls,
    servers: () => servers,
    async restart(i) {
      const victim = servers[i]!;
      // Its port, cluster port, routes and store dir, read back from its config file.
      const config = await readFile(join(dirname(victim.storeDir), 'nats-server.conf'), 'utf8');
      const clusterPort = Number(/cluster \{[^}]*listen: "[^"]*:(\d+)"/.exec(config)![1]);
      const routes = [.../routes: \[([^\]]*)\]/.exec(config)![1]!.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
      servers[i] = await startNatsServer({
        host: '127.0.0.1',
        port: victim.port,
        storeDir: victim.storeDir,
        serverName: victim.serverName,
        cluster: { name: 'sluice', port: clusterPort, routes },
        waitForJetStream: false,
        logFile: join(logDir, `${victim.serverName}.restarted.log`),
      });
    },
    async stop() {
      // The restarted nodes use the store dirs of the killed ones: stop them before the cluster removes those.
      await Promise.all(servers.filter((s) => !cluster.servers.includes(s)).map((s) => s.stop()));
      await cluster.stop();
    },
  };
}

describe(`HA chaos (${KILLS} leader kills, ${PAUSES} pauses, ${NATS_KILLS} NATS node kills, ${PARTITIONS} partitions${LOAD ? ', CPU load' : ''})`, () => {
  let nats: NatsNodes;
  /** The test hosts (namespaces), or undefined on loopback (no partitions then). */
  let network: TestNetwork | undefined;
  let partitions = PARTITIONS;
  let admin: NatsConnection;
  let jsm: JetStreamManager;
  /** One connection per NATS node, to read the output stream's progress whichever node is cut off. */
  const probes: JetStreamManager[] = [];
  const probeConnections: NatsConnection[] = [];
  let load: ChildProcess | undefined;
  let loadOn = false;
  let common: string[];
  const incarnations: Incarnation[] = [];
  const tms: SluiceProcess[] = [];
  let jobId: string;
  let stateStore: StateStore;
  /** Retained checkpoints found damaged (a state object or the metadata gone or changed while retained). */
  const damaged: string[] = [];

  /** How a process of test host `name` is spawned: inside its namespace, or as is on loopback. */
  const wrapFor = (name: string) => (network !== undefined ? network.host(name).wrap : undefined);

  const startJobManager = (id: string): Incarnation => {
    const inc: Incarnation = {
      id,
      proc: new SluiceProcess(
        [
          'jobmanager',
          ...common,
          '-D',
          `jobmanager.id=${id}`,
          '-D',
          'rest.enabled=false',
          '-D',
          'metrics.enabled=false',
          '-D',
          'restart-strategy.exponential-delay.initial-backoff=100 ms',
        ],
        {},
        undefined,
        wrapFor(id),
      ),
      pauses: [],
    };
    incarnations.push(inc);
    return inc;
  };

  const grants = (): Grant[] =>
    incarnations.flatMap((inc) =>
      inc.proc.lines
        .filter((l) => l.msg === 'granted leadership')
        .map((l) => ({ inc, epoch: Number(l.epoch), at: timeOf(l) })),
    );
  const revoked = (inc: Incarnation, epoch: number) =>
    inc.proc.lines.find((l) => l.msg === 'leadership revoked' && Number(l.epoch) === epoch);

  /** The holder of the newest grant that it still holds (not revoked, not killed, not paused). */
  const currentLeader = (): Grant | undefined => {
    const newest = grants().sort((a, b) => b.epoch - a.epoch)[0];
    if (newest === undefined) return undefined;
    const { inc, epoch } = newest;
    if (inc.killedAt !== undefined || revoked(inc, epoch) !== undefined) return undefined;
    if (inc.pauses.some((p) => p.contAt === undefined)) return undefined;
    return newest;
  };

  const linesOf = (re: RegExp) =>
    incarnations.flatMap((inc) =>
      inc.proc.lines
        .filter((l) => typeof l.msg === 'string' && re.test(l.msg))
        .map((l) => ({ inc, line: l, at: timeOf(l) })),
    );
  /** A checkpoint of the job completed after `t` (`triggered`: also triggered after `t`). */
  const completedAfter = (t: number, triggered = false) =>
    linesOf(/^checkpoint \d+ completed$/).find(
      (c) => c.at - (triggered ? Number(c.line.durationMs ?? 0) : 0) > t && c.line.job === jobId,
    );

  /** The output stream's last sequence, from whichever node answers first. */
  const lastSeq = async (): Promise<number | undefined> =>
    withTimeout(
      Promise.any(
        probes.map(async (p) => {
          const info = await p.streams.info(STREAM);
          return info.state.last_seq;
        }),
      ),
      2_000,
    );

  /**
   * A checkpoint completed after `since` (`triggered`: also triggered after it) and the output stream grew
   * past `seq`: the job commits again.
   */
  const progressed = async (since: number, seq: number, timeoutMs = EVENT_DEADLINE_MS, triggered = false) =>
    until(
      `a checkpoint ${triggered ? 'triggered and ' : ''}completed and new output (stream beyond ${seq})`,
      async () => {
        if (completedAfter(since, triggered) === undefined) return undefined;
        const now = await lastSeq();
        return now !== undefined && now > seq ? Date.now() : undefined;
      },
      timeoutMs,
      50,
    );

  const seqNow = async () => until('the output stream to answer', lastSeq, EVENT_DEADLINE_MS, 100);

  /**
   * Every checkpoint the job's pointer retains must be restorable: its metadata and state objects there,
   * unchanged. (A checkpoint that is no longer retained by the time a problem is seen was dropped normally.)
   */
  const checkRetained = async (where: string): Promise<void> => {
    let pointer: Awaited<ReturnType<StateStore['pointer']>>;
    try {
      pointer = await stateStore.pointer(jobId);
    } catch {
      return; // unreadable now (NATS trouble): inconclusive
    }
    for (const c of pointer.checkpoints) {
      let problem: string | undefined;
      try {
        const metadata = await stateStore.getMetadata(c.metadata);
        for (const h of metadata.handles) {
          if (h.object === null) continue;
          const status = await stateStore.check(h.object);
          if (status !== 'ok') problem = `${h.object.name} is ${status}`;
        }
      } catch (err) {
        problem = err instanceof Error ? err.message : String(err);
        if (!/does not exist|corrupted/.test(problem)) continue; // a read failure: inconclusive
      }
      if (problem === undefined) continue;
      const again = await stateStore.pointer(jobId).catch(() => undefined);
      const still = again?.checkpoints.some(
        (x) => x.checkpointId === c.checkpointId && x.metadata.sha256 === c.metadata.sha256,
      );
      if (still) damaged.push(`${where}: retained checkpoint ${c.checkpointId}: ${problem}`);
    }
  };

  beforeAll(async () => {
    console.log(
      `HA chaos: seed ${SEED} (SLUICE_CHAOS_SEED=${SEED} replays this schedule), ${KILLS} leader kills, ${PAUSES} pauses, ${NATS_KILLS} NATS node kills, ${PARTITIONS} partitions, CPU load ${LOAD ? 'on for the middle third' : 'off'}`,
    );
    await mkdir(LOG_DIR, { recursive: true });
    const support = await netnsSupport();
    if (support.ok) {
      network = await TestNetwork.create('chaos');
      const hosts: NetHost[] = [];
      for (const name of ['n1', 'n2', 'n3']) hosts.push(await network.addHost(name));
      for (const name of ['jm-0', 'jm-1', 'jm-2', 'tm-0', 'tm-1']) await network.addHost(name);
      const cluster = await startNatsClusterOnHosts(hosts, { logDir: LOG_DIR });
      nats = {
        urls: cluster.urls,
        servers: () => cluster.servers,
        restart: async (i) => {
          await cluster.restart(i);
        },
        stop: () => cluster.stop(),
      };
      console.log(
        `HA chaos: every process on a test host of its own (network namespaces, ${network.subnet})`,
      );
    } else {
      partitions = 0;
      console.log(
        `HA chaos: network namespaces unavailable, ${PARTITIONS} partition(s) SKIPPED, all on loopback: ${support.reason}`,
      );
      nats = await loopbackNats(LOG_DIR);
    }
    if (LOAD) findStressNg(); // fails now, not in the middle of the run
    // Short pings: a connection to a node that is cut off fails over within ~2 s.
    admin = await connect({
      servers: nats.urls,
      name: 'chaos-admin',
      reconnectTimeWait: 250,
      maxReconnectAttempts: -1,
      pingInterval: 1_000,
      maxPingOut: 2,
    });
    jsm = await jetstreamManager(admin);
    for (const url of nats.urls) {
      const nc = await connect({
        servers: url,
        name: 'chaos-probe',
        reconnectTimeWait: 250,
        maxReconnectAttempts: -1,
        pingInterval: 1_000,
        maxPingOut: 2,
      });
      probeConnections.push(nc);
      probes.push(await jetstreamManager(nc, { timeout: 2_000, checkAPI: false }));
    }
    await jsm.streams.add({
      name: STREAM,
      subjects: [SUBJECT],
      num_replicas: 3,
      duplicate_window: 120_000_000_000, // 2 min, in ns: far above any recovery here
    });
    common = [
      '--nats',
      nats.urls.join(','),
      '--cluster-id',
      CLUSTER,
      '-D',
      'high-availability.type=nats',
      '-D',
      'high-availability.replicas=3',
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      'heartbeat.timeout=1500 ms',
    ];
    for (let i = 0; i < 3; i++) startJobManager(`jm-${i}`);
    await Promise.all(incarnations.map((inc) => inc.proc.waitForMessage('JobManager started', 30_000)));
    const first = await until('a first leader', () => currentLeader(), 30_000);
    await first.inc.proc.waitForMessage('leadership active', 30_000);
    for (let i = 0; i < 2; i++) {
      tms.push(
        new SluiceProcess(
          [
            'taskmanager',
            ...common,
            '--slots',
            '2',
            '-D',
            `taskmanager.id=tm-${i}`,
            '-D',
            'metrics.enabled=false',
          ],
          {},
          undefined,
          wrapFor(`tm-${i}`),
        ),
      );
    }
    await Promise.all(tms.map((tm) => tm.waitForMessage('registered at ResourceManager', 30_000)));
  }, 120_000);

  afterAll(async () => {
    await stopLoad();
    // Heal what a failed run left cut off, so that everything can stop gracefully.
    for (const h of network?.hosts ?? [])
      if (network?.isCut(h.name)) await network.heal(h.name).catch(() => {});
    for (const inc of incarnations)
      if (inc.pauses.some((p) => p.contAt === undefined)) inc.proc.kill('SIGCONT');
    await Promise.all(tms.map((tm) => tm.stop(5_000)));
    await Promise.all(incarnations.map((inc) => inc.proc.stop(5_000)));
    const logs = [
      ...incarnations.map((inc, i) => [`${inc.id}.${i}.log`, inc.proc.output] as const),
      ...tms.map((tm, i) => [`tm-${i}.log`, tm.output] as const),
    ];
    await Promise.all(logs.map(([name, text]) => writeFile(join(LOG_DIR, name), text).catch(() => {})));
    console.log(`HA chaos: process logs in ${LOG_DIR}`);
    await admin?.close().catch(() => {});
    await Promise.all(probeConnections.map((nc) => nc.close().catch(() => {})));
    await nats?.stop();
    await network?.destroy();
  });

  /** stress-ng (Debian package `stress-ng`; .ci/run installs it). */
  function findStressNg(): string {
    for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
      const path = join(dir, 'stress-ng');
      if (dir !== '' && existsSync(path)) return path;
    }
    throw new Error('SLUICE_CHAOS_LOAD=1 needs stress-ng (apt-get install stress-ng)');
  }

  /** CPU contention: one busy stress-ng worker per core (of the 2), bounded by its own timeout too. */
  function startLoad(): void {
    if (load !== undefined) return;
    load = spawn(findStressNg(), ['--cpu', '2', '--timeout', '900s', '--quiet'], { stdio: 'ignore' });
    loadOn = true;
    console.log('  CPU load on: stress-ng --cpu 2');
  }

  async function stopLoad(): Promise<void> {
    const p = load;
    if (p === undefined) return;
    load = undefined;
    loadOn = false;
    if (p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    console.log('  CPU load off');
  }

  it(
    'keeps exactly-once output and one leader at a time through the chaos',
    async () => {
      const submitted = await sluice([
        'run',
        ...common,
        '-d',
        JOB,
        SUBJECT,
        String(KEYS),
        String(RATE_PER_SUBTASK),
        String(CHECKPOINT_INTERVAL_MS),
        '2',
      ]);
      expect(submitted.code, submitted.stderr).toBe(0);
      jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
      stateStore = await StateStore.open(admin, CLUSTER, { replicas: 3, timeoutMs: 2_000, retries: 2 });
      // Two checkpoints committed and their output visible before the first event.
      await until(
        'two completed checkpoints',
        () => (linesOf(/^checkpoint 2 completed$/).length > 0 ? true : undefined),
        30_000,
      );
      await progressed(0, 0);

      // Partition kinds in turn from a seeded start (the short run's one partition is of a seeded kind).
      const targets: PartitionTarget[] = ['jm', 'tm', 'nats'];
      const firstTarget = Math.floor(random() * targets.length);
      const schedule: EventKind[] = [
        ...Array<'kill'>(KILLS).fill('kill'),
        ...Array<'pause'>(PAUSES).fill('pause'),
        ...Array<'nats'>(NATS_KILLS).fill('nats'),
        ...Array.from(
          { length: partitions },
          (_, i) => `partition-${targets[(firstTarget + i) % targets.length]!}` as const,
        ),
      ];
      for (let i = schedule.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [schedule[i], schedule[j]] = [schedule[j]!, schedule[i]!];
      }
      const loadFrom = Math.floor(schedule.length / 3);
      const loadUntil = Math.floor((2 * schedule.length) / 3);
      const samples: Sample[] = [];
      /** Faults after which new output took longer than their bound (LIVENESS_MS, NATS_LIVENESS_MS). */
      const slow: string[] = [];
      let pauses = 0;
      for (const [n, kind] of schedule.entries()) {
        if (LOAD && n === loadFrom) startLoad();
        if (LOAD && n === loadUntil) await stopLoad();
        // A random moment: anywhere in the checkpoint cycle and the leader's renewal cycle.
        await sleep(200 + random() * 1_300);
        const name = `event ${n + 1}/${schedule.length} (${kind}${loadOn ? ', under CPU load' : ''})`;
        let sample: Sample;
        try {
          sample =
            kind === 'kill'
              ? await killLeader()
              : kind === 'pause'
                ? await pauseLeader(pauses++ % 2 === 0 ? 'early' : 'late')
                : kind === 'nats'
                  ? await killNatsNode()
                  : await partition(kind === 'partition-jm' ? 'jm' : kind === 'partition-tm' ? 'tm' : 'nats');
        } catch (err) {
          await writeFile(join(LOG_DIR, 'samples.json'), JSON.stringify({ seed: SEED, samples }, null, 1));
          const message = err instanceof Error ? err.message : String(err);
          throw new Error(`HA chaos ${name} failed: ${message}`, { cause: err });
        }
        sample.load = loadOn;
        samples.push(sample);
        const bound = kind === 'nats' || kind === 'partition-nats' ? NATS_LIVENESS_MS : LIVENESS_MS;
        if (sample.outputMs > bound)
          slow.push(
            `${name}: ${sample.what}: new output after ${(sample.outputMs / 1000).toFixed(2)} s (bound ${bound / 1000} s)`,
          );
        await checkRetained(`after event ${n + 1} (${kind})`);
        const f = (ms: number | undefined) => (ms === undefined ? '' : `${(ms / 1000).toFixed(2)} s`);
        console.log(
          `  chaos ${String(n + 1).padStart(2)}/${schedule.length} ${sample.kind.padEnd(14)} ${sample.what}${loadOn ? ' [load]' : ''}: ` +
            (sample.leaderMs !== undefined ? `leader ${f(sample.leaderMs)}, ` : '') +
            (sample.restoreMs !== undefined ? `restored ${f(sample.restoreMs)}, ` : '') +
            `output ${f(sample.outputMs)}`,
        );
      }

      await stopLoad();
      await writeFile(join(LOG_DIR, 'samples.json'), JSON.stringify({ seed: SEED, samples }, null, 1));

      // Enough output on every key, then stop: cancel the job and read what it committed.
      const finalSeq = await seqNow();
      await progressed(Date.now(), finalSeq);
      const cancelled = await sluice(['cancel', ...common, jobId]);
      expect(cancelled.code, cancelled.stderr).toBe(0);
      const leader = await until('a leader', () => currentLeader(), EVENT_DEADLINE_MS);
      await leader.inc.proc.waitForLog((l) => l.msg === 'job CANCELED' && l.job === jobId, 30_000);

      const messages = await readStream(admin, STREAM);
      const seen = new Map<number, Map<number, number>>(); // key → count → copies
      const wrong: string[] = [];
      for (const m of messages) {
        const { k, n, i } = json<{ k: number; n: number; i: number }>(m);
        if (i !== k + (n - 1) * KEYS) wrong.push(`seq ${m.seq}: ${JSON.stringify({ k, n, i })}`);
        const counts = seen.get(k) ?? new Map<number, number>();
        counts.set(n, (counts.get(n) ?? 0) + 1);
        seen.set(k, counts);
      }
      const duplicates: string[] = [];
      const gaps: string[] = [];
      const maxima: number[] = [];
      for (let k = 0; k < KEYS; k++) {
        const counts = seen.get(k) ?? new Map<number, number>();
        const max = Math.max(0, ...counts.keys());
        maxima.push(max);
        for (let n = 1; n <= max; n++) {
          const copies = counts.get(n) ?? 0;
          if (copies === 0) gaps.push(`key ${k} count ${n}`);
          if (copies > 1) duplicates.push(`key ${k} count ${n} ×${copies}`);
        }
      }
      console.log(
        `HA chaos output: ${messages.length} records, per key ${Math.min(...maxima)}–${Math.max(...maxima)}; ` +
          `${duplicates.length} duplicated, ${gaps.length} missing, ${wrong.length} inconsistent`,
      );
      expect(duplicates.slice(0, 20), 'records written more than once').toEqual([]);
      expect(gaps.slice(0, 20), 'records lost').toEqual([]);
      expect(
        wrong.slice(0, 20),
        'counts that do not match their event (state and positions diverged)',
      ).toEqual([]);
      expect(Math.min(...maxima)).toBeGreaterThan(0);
      expect(messages.length).toBe(maxima.reduce((a, b) => a + b, 0));

      const intervals = checkLeaderships();
      printSummary(samples);
      expect(damaged, 'retained checkpoints that cannot be restored').toEqual([]);
      const restoreProblems = linesOf(/falling back to checkpoint|cannot be restored|cannot restore/);
      const leading = (f: (typeof restoreProblems)[number]) =>
        intervals.some((iv) => iv.inc === f.inc && f.at >= iv.from && f.at <= iv.to);
      const describe = (f: (typeof restoreProblems)[number]) =>
        `${f.inc.id} at ${f.at}: ${String(f.line.msg)} ${JSON.stringify(f.line.skipped ?? f.line.problem ?? '')}`;
      expect(
        restoreProblems.filter(leading).map(describe),
        'restores that had to fall back to an older checkpoint',
      ).toEqual([]);
      // Known bug (see docs/high-availability.md, "Chaos test"): a JobMaster whose restart was reading the
      // checkpoints when its leadership was revoked (a partition) goes on after the heal and judges the
      // checkpoints the next leader has since subsumed as damaged. It writes nothing, but its warnings read
      // like lost state.
      const stale = restoreProblems.filter((f) => !leading(f)).map(describe);
      if (stale.length > 0) {
        if (STRICT) expect(stale, 'restores run by a JobMaster after its leadership ended').toEqual([]);
        else
          console.log(
            `  WARNING: restores run by a JobMaster after its leadership ended: ${stale.join('; ')}`,
          );
      }
      expect(slow, 'faults after which no new output was committed within their liveness bound').toEqual([]);
    },
    180_000 + (KILLS + PAUSES) * 60_000 + (NATS_KILLS + PARTITIONS) * 120_000,
  );

  /** SIGKILL the leader; a standby takes over and restores the job; the killed one restarts as a standby. */
  async function killLeader(): Promise<Sample> {
    const old = await until('a leader', () => currentLeader(), EVENT_DEADLINE_MS);
    const seq = await seqNow();
    const killedAt = Date.now();
    old.inc.proc.kill('SIGKILL');
    old.inc.killedAt = killedAt;
    await old.inc.proc.exited;
    old.inc.exitedAt = Date.now();
    // The latest checkpoint the dead leader committed (its log line follows the pointer write).
    const lastCompleted = Math.max(
      0,
      ...old.inc.proc.lines
        .filter((l) => typeof l.msg === 'string' && /^checkpoint \d+ completed$/.test(l.msg))
        .map((l) => Number(l.checkpointId)),
    );
    const next = await until(
      'a new leader',
      () => grants().find((g) => g.epoch > old.epoch),
      EVENT_DEADLINE_MS,
    );
    const restore = await restoreAfter(next);
    expect(
      restore.checkpointId,
      'restored from the latest checkpoint the dead leader completed',
    ).toBeGreaterThanOrEqual(lastCompleted);
    const outputAt = await progressed(next.at, seq);
    // Back as a standby.
    const again = startJobManager(old.inc.id);
    await again.proc.waitForMessage('waiting for leadership', EVENT_DEADLINE_MS);
    return {
      kind: 'kill',
      what: `${old.inc.id} (epoch ${old.epoch}) → ${next.inc.id} (epoch ${next.epoch}), checkpoint ${restore.checkpointId}`,
      leaderMs: next.at - killedAt,
      restoreMs: restore.at - killedAt,
      outputMs: outputAt - killedAt,
    };
  }

  /** The new leader's `restoring from checkpoint n` for the job, after its grant. */
  async function restoreAfter(g: Grant): Promise<{ checkpointId: number; at: number }> {
    const line = await g.inc.proc.waitForLog(
      (l) =>
        l.job === jobId &&
        typeof l.msg === 'string' &&
        /^restoring from checkpoint \d+$/.test(l.msg) &&
        timeOf(l) >= g.at,
      EVENT_DEADLINE_MS,
    );
    return { checkpointId: Number(line.checkpointId), at: timeOf(line) };
  }

  /**
   * SIGSTOP the leader until a standby took over; SIGCONT it right after the grant (`early`: the new leader
   * may not have written anything yet) or once the new leader committed a checkpoint (`late`). The resumed
   * process must revoke its leadership before it does anything else.
   */
  async function pauseLeader(when: 'early' | 'late'): Promise<Sample> {
    const old = await until('a leader', () => currentLeader(), EVENT_DEADLINE_MS);
    const seq = await seqNow();
    // Aim at a checkpoint in flight: a few ms after the next trigger (the last one's log time, minus its
    // duration, plus the interval), so that the stopped leader holds acks of a checkpoint it never completes.
    const last = linesOf(/^checkpoint \d+ completed$/)
      .filter((c) => c.inc === old.inc)
      .at(-1);
    if (last) {
      const nextTrigger = last.at - Number(last.line.durationMs ?? 0) + CHECKPOINT_INTERVAL_MS;
      let aim = nextTrigger + 5 + Number(last.line.durationMs ?? 0) / 2;
      while (aim < Date.now()) aim += CHECKPOINT_INTERVAL_MS;
      await sleep(aim - Date.now());
    }
    const stoppedAt = Date.now();
    const pause: Incarnation['pauses'][number] = { stoppedAt, epoch: old.epoch };
    old.inc.pauses.push(pause);
    old.inc.proc.kill('SIGSTOP');
    const next = await until(
      'a new leader while the old one is stopped',
      () => grants().find((g) => g.epoch > old.epoch),
      EVENT_DEADLINE_MS,
    );
    expect(next.inc).not.toBe(old.inc);
    const restore = await restoreAfter(next);
    pause.restoredFrom = restore.checkpointId;
    if (when === 'late') {
      // Resumed once the new leader committed its first checkpoint (the id the stopped one may still hold).
      await until(
        "the new leader's first checkpoint",
        () => linesOf(/^checkpoint \d+ completed$/).find((c) => c.inc === next.inc && c.at >= next.at),
        EVENT_DEADLINE_MS,
        10,
      );
    }
    pause.linesAtCont = old.inc.proc.lines.length;
    pause.contAt = Date.now();
    old.inc.proc.kill('SIGCONT');
    const revoke = await old.inc.proc.waitForLog(
      (l) => l.msg === 'leadership revoked' && Number(l.epoch) === old.epoch,
      EVENT_DEADLINE_MS,
    );
    await old.inc.proc.waitForLog(
      (l) => l.msg === 'waiting for leadership' && timeOf(l) >= timeOf(revoke),
      EVENT_DEADLINE_MS,
    );
    // The resumed one's JobMaster has ended (SUSPENDED): whatever it cleaned up, the new leader's
    // checkpoints must be intact.
    await old.inc.proc.waitForLog(
      (l) => l.msg === 'job ended' && l.job === jobId && timeOf(l) >= pause.contAt!,
      EVENT_DEADLINE_MS,
    );
    const stale = old.inc.proc.lines
      .slice(pause.linesAtCont)
      .filter((l) => typeof l.msg === 'string' && /^checkpoint \d+ failed$/.test(l.msg))
      .map((l) => `${String(l.msg)} (${String(l.reason)})`);
    if (stale.length > 0) console.log(`  the resumed ${old.inc.id} aborted: ${stale.join(', ')}`);
    await checkRetained(`right after ${old.inc.id} resumed`);
    const outputAt = await progressed(next.at, seq);
    return {
      kind: 'pause',
      what: `${old.inc.id} (epoch ${old.epoch}) stopped ${((pause.contAt - stoppedAt) / 1000).toFixed(1)} s, resumed ${when}, revoked (${String(revoke.reason)}) → ${next.inc.id} (epoch ${next.epoch}), checkpoint ${restore.checkpointId}`,
      leaderMs: next.at - stoppedAt,
      restoreMs: restore.at - stoppedAt,
      outputMs: outputAt - stoppedAt,
    };
  }

  /** SIGKILL a NATS node; the job commits on the other two; the node is restarted and catches up. */
  async function killNatsNode(): Promise<Sample> {
    await natsSettled('the NATS cluster to settle before the kill');
    const index = Math.floor(random() * nats.servers().length);
    const victim = nats.servers()[index]!;
    const seq = await seqNow();
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await victim.exited;
    const outputAt = await progressed(killedAt, seq, NATS_EVENT_DEADLINE_MS);
    await nats.restart(index);
    await natsSettled('the restarted node to catch up');
    return { kind: 'nats', what: `${victim.serverName} killed and restarted`, outputMs: outputAt - killedAt };
  }

  /**
   * Every replicated stream of the cluster (the output, the state store, the HA buckets) has a leader and
   * every other replica online, current and at most a few entries behind. A 3-node Raft group survives one
   * node's loss only while the other two are caught up: a NATS fault is injected only on a settled cluster
   * (seed 66 on bced7d8 cut the output stream's leader, healed it, and killed another node 17 s later while
   * the healed one still lagged: the output stream took no publish for 60 s). The wait is printed.
   */
  async function natsSettled(what: string): Promise<void> {
    const started = Date.now();
    await until(
      what,
      async () => {
        const streams = await withTimeout(jsm.streams.list().next(), 2_000);
        if (streams === undefined || streams.length === 0) return undefined;
        for (const info of streams) {
          if (info.config.num_replicas <= 1) continue;
          const replicas = info.cluster?.replicas ?? [];
          if (!info.cluster?.leader || replicas.length !== info.config.num_replicas - 1) return undefined;
          if (!replicas.every((r) => r.current && !r.offline && (r.lag ?? 0) <= 100)) return undefined;
        }
        return true;
      },
      NATS_EVENT_DEADLINE_MS,
      200,
    );
    const waited = Date.now() - started;
    if (waited > 1_000) console.log(`  (waited ${(waited / 1000).toFixed(1)} s for ${what})`);
  }

  /**
   * A TaskManager that runs tasks of the job now (from its `task running` / `task cancelled|failed|finished`
   * lines; an idle one would prove nothing): `tm-<pick>` if it does, else the first that does.
   */
  function busyTaskManager(pick: number): string {
    const busy = tms.map((tm) => {
      const running = new Set<string>();
      for (const l of tm.lines) {
        if (l.job !== jobId || typeof l.task !== 'string') continue;
        if (l.msg === 'task running') running.add(l.task);
        else if (/^task (cancelled|failed|finished)$/.test(String(l.msg))) running.delete(l.task);
      }
      return running.size > 0;
    });
    const index = busy[pick] ? pick : busy.indexOf(true);
    return `tm-${index >= 0 ? index : pick}`;
  }

  /**
   * Cuts the leader (`jm`), a random TaskManager (`tm`) or a random NATS node (`nats`) off the network for
   * 4–6 s, then heals it. The job must commit new output (measured from the cut), and the healed one come
   * back: the JobManager as a standby, the TaskManager registered again, the NATS node caught up.
   */
  async function partition(target: PartitionTarget): Promise<Sample> {
    const net = network!;
    const durationMs = PARTITION_MIN_MS + random() * (PARTITION_MAX_MS - PARTITION_MIN_MS);
    if (target === 'nats') await natsSettled('the NATS cluster to settle before the cut');
    const old =
      target === 'jm' ? await until('a leader', () => currentLeader(), EVENT_DEADLINE_MS) : undefined;
    // The NATS node cut off is the one leading the output stream (a node nobody depends on would prove
    // nothing): its stream must elect a new leader on the other two while clients wait.
    const randomNode = 1 + Math.floor(random() * nats.servers().length);
    const streamLeader = (await withTimeout(jsm.streams.info(STREAM), 2_000))?.cluster?.leader;
    const leaderNode = nats.servers().findIndex((s) => s.serverName === streamLeader) + 1;
    const host =
      target === 'jm'
        ? old!.inc.id
        : target === 'tm'
          ? busyTaskManager(Math.floor(random() * tms.length))
          : `n${leaderNode > 0 ? leaderNode : randomNode}`;
    const seq = await seqNow();
    const cutAt = Date.now();
    await net.partition(host);
    // The link is down once `ip` has returned (under load that can take 100 ms and more).
    const cutDone = Date.now();
    // Watched from the cut: the job may well commit again while the host is still cut off. A checkpoint
    // triggered before the link went down does not count; with the leader cut off, only one of the next
    // leader does.
    const progress =
      old === undefined
        ? progressed(cutDone, seq, EVENT_DEADLINE_MS, true)
        : until(
            'a new leader after the cut',
            () => grants().find((g) => g.epoch > old.epoch),
            EVENT_DEADLINE_MS,
          ).then((g) => progressed(g.at, seq));
    progress.catch(() => {}); // awaited below
    let what = `${host}${target === 'nats' && leaderNode > 0 ? ' (leading the output stream)' : ''} cut off`;
    let next: Grant | undefined;
    let restore: { checkpointId: number; at: number } | undefined;
    let healedAt: number;
    try {
      if (old !== undefined) {
        // A standby takes over while the leader is cut off; the cut one must have stood down by then.
        next = await until(
          'a new leader while the old one is cut off',
          () => grants().find((g) => g.epoch > old.epoch),
          EVENT_DEADLINE_MS,
        );
        restore = await restoreAfter(next);
      }
      await sleep(cutAt + durationMs - Date.now());
    } finally {
      await net.heal(host);
      healedAt = Date.now();
    }
    what += ` for ${((healedAt - cutAt) / 1000).toFixed(1)} s`;
    if (old !== undefined) {
      const revoke = await old.inc.proc.waitForLog(
        (l) => l.msg === 'leadership revoked' && Number(l.epoch) === old.epoch,
        EVENT_DEADLINE_MS,
      );
      await old.inc.proc.waitForLog(
        (l) => l.msg === 'waiting for leadership' && timeOf(l) >= timeOf(revoke),
        EVENT_DEADLINE_MS,
      );
      what += `, revoked (${String(revoke.reason)}) → ${next!.inc.id} (epoch ${next!.epoch}), checkpoint ${restore!.checkpointId}`;
    }
    const outputAt = await progress;
    if (target === 'tm') {
      // Back in the ResourceManager of the leader of the moment (a heartbeat re-registers it), after it was
      // declared lost (the heal's `ip` command itself may return after the first heartbeat went through).
      const lost = linesOf(/^TaskManager lost/).find((l) => l.line.taskManager === host && l.at >= cutAt);
      await until(
        `${host} to register again after the heal`,
        () =>
          linesOf(/^TaskManager (re-)?registered/).find(
            (l) => l.line.taskManager === host && l.at > (lost?.at ?? cutAt),
          ),
        EVENT_DEADLINE_MS,
      );
    }
    if (target === 'nats') await natsSettled(`${host} to catch up after the heal`);
    return {
      kind: `partition-${target}`,
      what,
      ...(next !== undefined ? { leaderMs: next.at - cutAt, restoreMs: restore!.at - cutAt } : {}),
      outputMs: outputAt - cutAt,
    };
  }

  /**
   * No two leaderships overlap in time, epochs increase with time, and every JobMaster action happened
   * inside its process's leadership.
   */
  function checkLeaderships(): Array<{
    who: string;
    inc: Incarnation;
    epoch: number;
    from: number;
    to: number;
  }> {
    const intervals = grants().map((g) => {
      const { inc, epoch, at } = g;
      const revoke = revoked(inc, epoch);
      const died = inc.exitedAt ?? inc.killedAt;
      let to = revoke !== undefined ? timeOf(revoke) : (died ?? Number.POSITIVE_INFINITY);
      if (died !== undefined) to = Math.min(to, died);
      const pause = inc.pauses.find((p) => p.epoch === epoch);
      if (pause !== undefined && revoke !== undefined) {
        // Stopped, it could not act; resumed, it must revoke before anything else: nothing of a leader may be
        // logged between the SIGCONT and the revocation.
        const after = inc.proc.lines.slice(pause.linesAtCont, inc.proc.lines.indexOf(revoke));
        // A `checkpoint N completed` may still show up: a commit whose pointer write had landed before the
        // SIGSTOP, which the next leader then restored from (N ≤ its restore). A later one would be a commit
        // the next leader did not see: a zombie commit.
        const acted = after.filter(
          (l) =>
            typeof l.msg === 'string' &&
            LEADER_WORK.test(l.msg) &&
            !(COMPLETED.test(l.msg) && Number(l.checkpointId) <= pause.restoredFrom!),
        );
        expect(
          acted.map((l) => l.msg),
          `${inc.id} acted as leader after SIGCONT`,
        ).toEqual([]);
        // Known bug (see docs/high-availability.md, "Chaos test"): overdue timers and queued messages of the
        // resumed process run before the election's deadline timer revokes it.
        const early = after.filter((l) => typeof l.msg === 'string' && STALE_LEADER_WORK.test(l.msg));
        if (early.length > 0) {
          const what = early.map((l) => String(l.msg));
          if (STRICT) expect(what, `${inc.id} acted on its own before revoking after SIGCONT`).toEqual([]);
          else console.log(`  WARNING: ${inc.id} acted before revoking after SIGCONT: ${what.join('; ')}`);
        }
        to = Math.min(to, pause.stoppedAt);
      }
      return { who: inc.id, inc, epoch, from: at, to };
    });
    intervals.sort((a, b) => a.from - b.from);
    for (let i = 1; i < intervals.length; i++) {
      const [prev, cur] = [intervals[i - 1]!, intervals[i]!];
      expect(
        cur.from >= prev.to,
        `two leaders at once: ${prev.who} epoch ${prev.epoch} [${prev.from}, ${prev.to}] and ${cur.who} epoch ${cur.epoch} from ${cur.from}`,
      ).toBe(true);
      expect(cur.epoch, 'epochs increase').toBeGreaterThan(prev.epoch);
    }
    expect(intervals.filter((iv) => iv.to === Number.POSITIVE_INFINITY).length, 'one leader at the end').toBe(
      1,
    );
    // Every JobMaster action that writes or deploys lies inside a leadership of the process that logged it:
    // a checkpoint's commit (its pointer write) and a deployment (`job RUNNING`).
    const actions = linesOf(/^(checkpoint \d+ completed|job RUNNING)$/).filter((a) => a.line.job === jobId);
    const outside = actions.filter(
      (a) =>
        !intervals.some((iv) => iv.inc === a.inc && a.at >= iv.from && a.at <= iv.to) &&
        // checked above: a commit of before the SIGSTOP, logged once resumed
        !a.inc.pauses.some(
          (p) =>
            p.contAt !== undefined &&
            a.at >= p.contAt &&
            COMPLETED.test(String(a.line.msg)) &&
            Number(a.line.checkpointId) <= p.restoredFrom!,
        ),
    );
    expect(
      outside.map((a) => `${a.inc.id} at ${a.at}: ${String(a.line.msg)}`),
      'JobMaster actions outside a leadership',
    ).toEqual([]);
    console.log(
      `HA chaos leaderships: ${intervals.length}, epochs ${intervals.map((iv) => `${iv.who}:${iv.epoch}`).join(' ')}`,
    );
    return intervals;
  }

  function printSummary(samples: Sample[]): void {
    const line = (name: string, values: number[]) => {
      if (values.length === 0) return;
      const s = [...values].sort((a, b) => a - b);
      const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
      const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      console.log(
        `  ${name.padEnd(34)} n ${String(s.length).padStart(2)}   p50 ${f(q(0.5))}   max ${f(s.at(-1)!)}   min ${f(s[0]!)}`,
      );
    };
    console.log(`HA chaos summary (seed ${SEED}), from the event:`);
    const of = (kind: Sample['kind'], key: 'leaderMs' | 'restoreMs' | 'outputMs') =>
      samples.filter((s) => s.kind === kind && s[key] !== undefined).map((s) => s[key]!);
    line('leader SIGKILL → new leader', of('kill', 'leaderMs'));
    line('leader SIGKILL → restoring', of('kill', 'restoreMs'));
    line('leader SIGKILL → new output', of('kill', 'outputMs'));
    line('leader SIGSTOP → new leader', of('pause', 'leaderMs'));
    line('leader SIGSTOP → new output', of('pause', 'outputMs'));
    line('NATS node SIGKILL → new output', of('nats', 'outputMs'));
    line('leader cut off → new leader', of('partition-jm', 'leaderMs'));
    line('leader cut off → new output', of('partition-jm', 'outputMs'));
    line('TaskManager cut off → new output', of('partition-tm', 'outputMs'));
    line('NATS node cut off → new output', of('partition-nats', 'outputMs'));
    const loaded = samples.filter((s) => s.load).map((s) => s.outputMs);
    line('any fault under CPU load → output', loaded);
  }
});
