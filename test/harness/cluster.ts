/**
 * Test harness: a cluster of real processes on a nats-server of its own (random loopback port), for the
 * rescale and autoscaler tests. `startTestCluster` starts NATS, a run directory, the JobManager(s) (waiting
 * until one leads, and for its REST URL when REST is on), the TaskManagers asked for (waiting until they
 * registered) and the output streams; `stop` ends every process it started (the pool's TaskManagers
 * included, which outlive their JobManager), NATS, and removes the run directory.
 *
 * The CLI's configuration sources are in `common` (NATS, cluster id, run dir, `settings`); JobManagers and
 * TaskManagers get `common` plus their own settings.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ClusterClient } from '../../src/client/cluster-client.js';
import { loadConfig } from '../../src/config/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { terminate } from '../../src/providers/standalone.js';
import type { JobDetails } from '../../src/runtime/dispatcher/protocol.js';
import { createOutputStream } from './exactly-once.js';
import { type CliResult, SluiceProcess, sluice } from './processes.js';

export interface TestClusterOptions {
  clusterId: string;
  /** `-D key=value` for every process and CLI command (heartbeats, …). */
  settings?: string[];
  /** `-D` for the JobManagers only (`rest.port=0`, `scheduler-mode=reactive`, the autoscaler, …). */
  jobManagerSettings?: string[];
  /** Further JobManager arguments (e.g. `--taskmanager-pool 1..3`). */
  jobManagerArgs?: string[];
  /** JobManagers to start (default 1); more than one needs `high-availability.type=nats` in `settings`. */
  jobManagers?: number;
  /** TaskManagers started up front, each with `slots` slots (default none). */
  taskManagers?: { count: number; slots: number; settings?: string[] };
  /** JetStream streams capturing a subject each (a duplicate window as long as the test). */
  outputStreams?: Array<{ name: string; subject: string }>;
}

export interface TestCluster {
  nats: NatsServerHandle;
  nc: NatsConnection;
  /** The run directory (`cluster.run-dir`): pool.json and the pool's logs are under `<dir>/<clusterId>`. */
  dir: string;
  /** Configuration sources for CLI commands: `--nats`, `--cluster-id`, `cluster.run-dir`, `settings`. */
  common: string[];
  jms: SluiceProcess[];
  tms: SluiceProcess[];
  /** A client on the test's own NATS connection (overview, status, …). */
  client: ClusterClient;
  /** The leading JobManager (the first one without HA). */
  leader(): SluiceProcess;
  /** The leader's REST URL (when REST is on: `rest.port=0` in `jobManagerSettings`). */
  rest: string | undefined;
  /** Starts a TaskManager with `slots` slots and waits until it registered. */
  startTaskManager(slots: number, settings?: string[]): Promise<SluiceProcess>;
  /** `sluice <command> <common> <args>`. */
  cli(command: string, args?: string[], timeoutMs?: number): Promise<CliResult>;
  /** `sluice run -d`: the job id, or an error with the command's output. */
  submit(args: string[]): Promise<string>;
  status(jobId: string): Promise<JobDetails>;
  /** Waits for a `checkpoint N completed` logged by the leader after now. */
  nextCheckpoint(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Every vertex's parallelism. */
export function parallelismOf(details: JobDetails): Record<string, number> {
  return Object.fromEntries(details.vertices.map((v) => [v.id, v.parallelism]));
}

export async function startTestCluster(options: TestClusterOptions): Promise<TestCluster> {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const dir = await mkdtemp(join(tmpdir(), `sluice-${options.clusterId}-`));
  const defines = (settings: string[] | undefined) => (settings ?? []).flatMap((s) => ['-D', s]);
  const common = [
    '--nats',
    nats.url,
    '--cluster-id',
    options.clusterId,
    '-D',
    `cluster.run-dir=${dir}`,
    ...defines(options.settings),
  ];
  const jms: SluiceProcess[] = [];
  const tms: SluiceProcess[] = [];
  const ha = (options.jobManagers ?? 1) > 1;
  for (let i = 0; i < (options.jobManagers ?? 1); i++) {
    jms.push(
      new SluiceProcess([
        'jobmanager',
        ...common,
        ...defines(options.jobManagerSettings),
        ...(options.jobManagerArgs ?? []),
      ]),
    );
  }
  const leads = (jm: SluiceProcess) => jm.waitForMessage(ha ? 'leadership active' : 'JobManager started');
  const first = await Promise.any(jms.map((jm) => leads(jm).then(() => jm)));
  const listening = first.lines.find((l) => l.msg === 'REST API listening');
  const restOn = (options.jobManagerSettings ?? []).some((s) => s.startsWith('rest.port='));
  const rest = restOn
    ? String((listening ?? (await first.waitForMessage('REST API listening'))).url)
    : undefined;

  const startTaskManager = async (slots: number, settings?: string[]) => {
    const tm = new SluiceProcess(['taskmanager', ...common, '--slots', String(slots), ...defines(settings)]);
    tms.push(tm);
    await tm.waitForMessage('registered at ResourceManager');
    return tm;
  };
  const upFront = options.taskManagers;
  if (upFront) {
    await Promise.all(
      Array.from({ length: upFront.count }, () => startTaskManager(upFront.slots, upFront.settings)),
    );
  }
  for (const s of options.outputStreams ?? []) await createOutputStream(nc, s.name, s.subject);

  const leader = () => jms.find((jm) => jm.lines.some((l) => l.msg === 'leadership active')) ?? first;
  const cli = (command: string, args: string[] = [], timeoutMs?: number) =>
    sluice([command, ...common, ...args], {}, timeoutMs);
  const client = ClusterClient.on(
    nc,
    loadConfig({ overrides: { 'nats.servers': nats.url, 'cluster.id': options.clusterId } }),
  );
  return {
    nats,
    nc,
    dir,
    common,
    jms,
    tms,
    client,
    leader,
    rest,
    startTaskManager,
    cli,
    submit: async (args) => {
      const r = await cli('run', ['-d', ...args]);
      const jobId = /JobID ([0-9a-f]{32})/.exec(r.stdout)?.[1];
      if (r.code !== 0 || jobId === undefined) {
        throw new Error(`sluice run exited ${r.code}: ${r.stderr}${r.stdout}`);
      }
      return jobId;
    },
    status: async (jobId) => {
      const r = await cli('status', ['--json', jobId]);
      if (r.code !== 0) throw new Error(`sluice status exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout) as JobDetails;
    },
    nextCheckpoint: async (timeoutMs = 20_000) => {
      const jm = leader();
      const seen = jm.lines.length;
      await jm.waitForLog(
        (l) =>
          jm.lines.indexOf(l) >= seen &&
          typeof l.msg === 'string' &&
          /^checkpoint \d+ completed$/.test(l.msg),
        timeoutMs,
      );
    },
    stop: async () => {
      await nc.close();
      await Promise.all(tms.map((tm) => tm.stop()));
      await Promise.all(jms.map((jm) => jm.stop()));
      // A pool's TaskManagers outlive a stopped JobManager (the next leader would adopt them).
      const pool = await readFile(join(dir, options.clusterId, 'pool.json'), 'utf8').catch(() => undefined);
      if (pool !== undefined) {
        const recorded = JSON.parse(pool) as { processes: Array<{ pid: number }> };
        await Promise.all(recorded.processes.map((p) => terminate(p.pid)));
      }
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
