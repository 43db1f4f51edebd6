/**
 * The standalone provider: a session cluster as processes on this host. `sluice cluster start` spawns
 * one JobManager and N TaskManagers (detached, logs under the run directory) and records their pids in
 * `<run-dir>/<cluster-id>/cluster.json`; `sluice cluster stop` sends them SIGTERM and waits. With a range
 * (`--taskmanagers MIN..MAX`) the JobManager keeps a pool of TaskManagers instead
 * (`taskmanager-pool.ts`, recorded in `pool.json`): it starts MIN of them and grows and shrinks the pool.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterClient } from '../client/cluster-client.js';
import { ErrorCode, isSluiceError, SluiceError } from '../common/errors.js';
import type { SluiceConfig } from '../config/config.js';

export interface ClusterProcess {
  role: 'jobmanager' | 'taskmanager';
  pid: number;
  log: string;
}

export interface ClusterState {
  clusterId: string;
  nats: string[];
  startedAt: string;
  processes: ClusterProcess[];
}

export interface StartOptions {
  /** A number of TaskManagers, or a pool the JobManager keeps between min and max. */
  taskManagers: number | { min: number; max: number };
  /** JobManagers to start (default 1); more than 1 needs `high-availability.type: nats` in `childArgs`. */
  jobManagers?: number;
  /** argv giving children the caller's configuration sources (--nats, --config, -D …). */
  childArgs: string[];
  slots?: number;
  /** Extra arguments of the JobManager only (e.g. application mode's spec). */
  jobManagerArgs?: string[];
  /** Environment of the started processes (added to this process's). */
  env?: Record<string, string>;
  /** How long to wait for the processes to come up. */
  readyTimeoutMs?: number;
  onProgress?: (line: string) => void;
}

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export function clusterDir(config: SluiceConfig): string {
  return join(config.runDir, config.clusterId);
}

function stateFile(config: SluiceConfig): string {
  return join(clusterDir(config), 'cluster.json');
}

export function readClusterState(config: SluiceConfig): ClusterState | undefined {
  const file = stateFile(config);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  } catch (err) {
    throw new SluiceError(ErrorCode.ClusterState, `cannot read ${file}: ${(err as Error).message}`);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function startCluster(config: SluiceConfig, options: StartOptions): Promise<ClusterState> {
  const progress = options.onProgress ?? (() => undefined);
  const previous = readClusterState(config);
  if (previous) {
    const alive = previous.processes.filter((p) => isAlive(p.pid));
    if (alive.length > 0) {
      throw new SluiceError(
        ErrorCode.ClusterState,
        `cluster '${config.clusterId}' is already running (${alive.map((p) => `${p.role} pid ${p.pid}`).join(', ')}); stop it with 'sluice cluster stop --cluster-id ${config.clusterId}'`,
      );
    }
    rmSync(stateFile(config), { force: true });
  }

  const client = await ClusterClient.connect(config);
  try {
    const existing = await client.overview(1_000).catch((err: unknown) => {
      if (isSluiceError(err) && err.retryable) return undefined;
      throw err;
    });
    if (existing) {
      throw new SluiceError(
        ErrorCode.ClusterState,
        `a JobManager (${existing.jobManagerId}) already serves cluster '${config.clusterId}' on ${config.nats.servers.join(', ')}; choose another --cluster-id`,
      );
    }

    const dir = clusterDir(config);
    mkdirSync(dir, { recursive: true });
    const state: ClusterState = {
      clusterId: config.clusterId,
      nats: config.nats.servers,
      startedAt: new Date().toISOString(),
      processes: [],
    };
    const save = () => writeFileSync(stateFile(config), `${JSON.stringify(state, null, 2)}\n`);
    const readyBy = Date.now() + (options.readyTimeoutMs ?? 60_000);

    const pool = typeof options.taskManagers === 'number' ? undefined : options.taskManagers;
    const fixedTaskManagers = typeof options.taskManagers === 'number' ? options.taskManagers : 0;
    // A pool: every JobManager may lead and then keeps it, with the TaskManagers' slots.
    const poolArgs = pool
      ? [
          '--taskmanager-pool',
          `${pool.min}..${pool.max}`,
          ...(options.slots === undefined ? [] : ['-D', `taskmanager.numberOfTaskSlots=${options.slots}`]),
        ]
      : [];
    rmSync(poolFile(dir), { force: true });
    try {
      const jm = spawnDaemon(
        dir,
        'jobmanager',
        'jobmanager',
        [...options.childArgs, ...(options.jobManagerArgs ?? []), ...poolArgs],
        { ...options.env, ...heapLimit(config.jobmanager.memoryProcessBytes) },
      );
      state.processes.push(jm);
      save();
      progress(`Starting JobManager (pid ${jm.pid}, log ${jm.log})`);
      // TaskManagers start with the JobManager, not after it: they register as soon as its
      // ResourceManager answers, and a process start costs most of a second on a busy host.
      const slotArgs = options.slots === undefined ? [] : ['--slots', String(options.slots)];
      for (let i = 0; i < fixedTaskManagers; i++) {
        const tm = spawnDaemon(dir, 'taskmanager', `taskmanager-${i}`, [...options.childArgs, ...slotArgs], {
          ...options.env,
          ...heapLimit(config.taskmanager.memoryProcessBytes),
        });
        state.processes.push(tm);
        save();
        progress(`Starting TaskManager ${i} (pid ${tm.pid}, log ${tm.log})`);
      }
      await waitFor(
        readyBy,
        jm,
        async () => (await client.overview(1_000).catch(() => undefined)) !== undefined,
      );
      // Standbys (high availability): they wait for leadership, so there is nothing to wait for.
      for (let i = 1; i < (options.jobManagers ?? 1); i++) {
        const standby = spawnDaemon(
          dir,
          'jobmanager',
          `jobmanager-${i}`,
          [
            ...options.childArgs,
            ...(options.jobManagerArgs ?? []),
            ...poolArgs,
            // Each standby serves REST too (redirecting to the leader): on the next ports up.
            ...(config.rest.port === 0 ? [] : ['-D', `rest.port=${config.rest.port + i}`]),
          ],
          { ...options.env, ...heapLimit(config.jobmanager.memoryProcessBytes) },
        );
        state.processes.push(standby);
        save();
        progress(`Starting standby JobManager ${i} (pid ${standby.pid}, log ${standby.log})`);
      }

      await waitFor(readyBy, state.processes[0]!, async () => {
        const overview = await client.overview(1_000).catch(() => undefined);
        return (overview?.taskManagers.length ?? 0) >= (pool ? pool.min : fixedTaskManagers);
      });
      return state;
    } catch (err) {
      await stopProcesses(state.processes, dir);
      rmSync(stateFile(config), { force: true });
      throw err;
    }
  } finally {
    await client.close();
  }
}

export interface ClusterListing {
  clusterId: string;
  kind: 'session' | 'application' | 'per-job';
  running: boolean;
  startedAt: string;
  processes: number;
}

/** Clusters started from this host (under `cluster.run-dir`), with whether their processes still run. */
export function listClusters(config: SluiceConfig): ClusterListing[] {
  if (!existsSync(config.runDir)) return [];
  const out: ClusterListing[] = [];
  for (const clusterId of readdirSync(config.runDir).sort()) {
    const state = readClusterState({ ...config, clusterId });
    if (!state) continue;
    const kind = clusterId.startsWith('app-')
      ? 'application'
      : clusterId.startsWith('job-')
        ? 'per-job'
        : 'session';
    out.push({
      clusterId,
      kind,
      running: state.processes.some((p) => isAlive(p.pid)),
      startedAt: state.startedAt,
      processes: state.processes.length,
    });
  }
  return out;
}

/** Stops the cluster's processes (TaskManagers first). Returns undefined when none was recorded. */
export async function stopCluster(config: SluiceConfig): Promise<ClusterState | undefined> {
  const state = readClusterState(config);
  if (!state) return undefined;
  const pooled = await stopProcesses(state.processes, clusterDir(config));
  rmSync(stateFile(config), { force: true });
  return { ...state, processes: [...state.processes, ...pooled] };
}

/**
 * Stops a cluster's processes: TaskManagers first; with a TaskManager pool, the JobManagers first (they
 * would replace the pool's TaskManagers), then every TaskManager, the pool's included. Returns the pool's.
 */
async function stopProcesses(processes: ClusterProcess[], dir: string): Promise<ClusterProcess[]> {
  const tms = processes.filter((p) => p.role === 'taskmanager');
  const jms = processes.filter((p) => p.role === 'jobmanager');
  if (!existsSync(poolFile(dir))) {
    await Promise.all(tms.map((p) => terminate(p.pid)));
    await Promise.all(jms.map((p) => terminate(p.pid)));
    return [];
  }
  await Promise.all(jms.map((p) => terminate(p.pid)));
  const pooled = readPoolFile(poolFile(dir));
  await Promise.all([...tms, ...pooled].map((p) => terminate(p.pid)));
  rmSync(poolFile(dir), { force: true });
  return pooled;
}

/** Where a TaskManager pool records its processes. */
export function poolFile(dir: string): string {
  return join(dir, 'pool.json');
}

/** The processes a pool recorded (none when there is no file or it cannot be read). */
export function readPoolFile(file: string): ClusterProcess[] {
  if (!existsSync(file)) return [];
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { processes?: ClusterProcess[] };
    return (parsed.processes ?? []).filter((p) => Number.isInteger(p.pid) && p.pid > 0);
  } catch {
    return [];
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. */
export async function terminate(pid: number, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone in between
    }
  }
}

/** A process size becomes the Node heap limit: three quarters of it, the rest for code, buffers, stacks. */
function heapLimit(processBytes: number | undefined): Record<string, string> {
  if (processBytes === undefined) return {};
  const heapMiB = Math.max(32, Math.floor((processBytes * 0.75) / (1024 * 1024)));
  const inherited = process.env.NODE_OPTIONS ? `${process.env.NODE_OPTIONS} ` : '';
  return { NODE_OPTIONS: `${inherited}--max-old-space-size=${heapMiB}` };
}

export function spawnDaemon(
  dir: string,
  role: ClusterProcess['role'],
  name: string,
  args: string[],
  env: Record<string, string> = {},
): ClusterProcess {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  try {
    const child = spawn(process.execPath, [BIN, role, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, SLUICE_LOG_FORMAT: process.env.SLUICE_LOG_FORMAT ?? 'json', ...env },
    });
    if (child.pid === undefined) throw new SluiceError(ErrorCode.ClusterState, `could not start ${role}`);
    child.unref();
    return { role, pid: child.pid, log };
  } finally {
    closeSync(fd);
  }
}

async function waitFor(deadline: number, proc: ClusterProcess, ready: () => Promise<boolean>): Promise<void> {
  while (Date.now() < deadline) {
    if (!isAlive(proc.pid)) {
      throw new SluiceError(
        ErrorCode.ClusterState,
        `${proc.role} (pid ${proc.pid}) exited at start:\n${tail(proc.log)}`,
      );
    }
    if (await ready()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new SluiceError(
    ErrorCode.ClusterState,
    `cluster did not come up in time; see ${proc.log}:\n${tail(proc.log)}`,
  );
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
