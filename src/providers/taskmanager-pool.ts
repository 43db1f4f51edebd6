/**
 * A pool of TaskManager processes on this host, between a minimum and a maximum, kept by the leading
 * JobManager (`sluice cluster start --taskmanagers MIN..MAX`): Flink's active ResourceManager, with the
 * standalone provider as its driver.
 *
 * Promises: while active, at least `min` of its TaskManagers run (one that exits is replaced); when the
 * ResourceManager cannot serve a slot request (a job submitted or rescaled beyond the free slots) it starts
 * as many as the missing slots need, up to `max`; a TaskManager of the pool whose slots have all been free
 * for `resourcemanager.taskmanager-timeout` is stopped (SIGTERM: it unregisters and exits) while more than
 * `min` run and no slot request waits. Its processes are recorded in `<run-dir>/<cluster-id>/pool.json`, which `sluice cluster stop`
 * reads, and which the next leader adopts (HA). Refuses a range that is not 0 ≤ MIN ≤ MAX ≤ 64, MAX ≥ 1.
 * Never stops a TaskManager it did not start.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { WorkerPool, WorkerPoolCluster } from '../runtime/resourcemanager/worker-pool.js';
import {
  type ClusterProcess,
  isAlive,
  poolFile,
  readPoolFile,
  spawnDaemon,
  terminate,
} from './standalone.js';

export interface PoolRange {
  min: number;
  max: number;
}

/** `MIN..MAX` (a range) or `N` (a fixed number: no pool); anything else is an error naming the flag. */
export function parseTaskManagers(text: string): PoolRange | number {
  const fixed = /^\s*(\d+)\s*$/.exec(text);
  if (fixed) {
    const n = Number(fixed[1]);
    if (n > 64) throw badCount(text);
    return n;
  }
  const range = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(text);
  if (!range) throw badCount(text);
  const min = Number(range[1]);
  const max = Number(range[2]);
  if (max < 1 || max > 64 || min > max) throw badCount(text);
  return { min, max };
}

function badCount(text: string): SluiceError {
  return new SluiceError(
    ErrorCode.InvalidConfig,
    `--taskmanagers must be a number from 0 to 64, or a range MIN..MAX with 0 ≤ MIN ≤ MAX ≤ 64 and MAX ≥ 1 (a pool the JobManager grows and shrinks), got '${text}'`,
  );
}

export interface TaskManagerPoolOptions extends PoolRange {
  slotsPerTaskManager: number;
  /** Stop an idle pool TaskManager after this long (`resourcemanager.taskmanager-timeout`). */
  idleTimeoutMs: number;
  /** The cluster's directory under the run dir: logs and pool.json. */
  dir: string;
  /** Arguments of `sluice taskmanager` (configuration sources, --slots). */
  taskManagerArgs: string[];
  env?: Record<string, string>;
  log: Logger;
  /** How often the pool looks at the ResourceManager's TaskManagers (default 1 s). */
  checkIntervalMs?: number;
}

interface Member extends ClusterProcess {
  startedAt: number;
  /** Since when all its slots are free (undefined: busy, or not registered yet). */
  idleSince?: number | undefined;
  registered: boolean;
}

export class TaskManagerPool implements WorkerPool {
  readonly #o: TaskManagerPoolOptions;
  readonly #members = new Map<number, Member>();
  #cluster: WorkerPoolCluster | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  #nextIndex = 0;

  constructor(options: TaskManagerPoolOptions) {
    this.#o = options;
  }

  get file(): string {
    return poolFile(this.#o.dir);
  }

  /** The pool's processes now (alive or not yet found dead). */
  get size(): number {
    return this.#members.size;
  }

  activate(cluster: WorkerPoolCluster): void {
    if (this.#cluster) return;
    this.#cluster = cluster;
    mkdirSync(this.#o.dir, { recursive: true });
    for (const p of readPoolFile(this.file)) {
      if (isAlive(p.pid)) this.#members.set(p.pid, { ...p, startedAt: Date.now(), registered: false });
    }
    this.#nextIndex = Math.max(0, ...[...this.#members.values()].map((m) => indexOf(m.log) + 1));
    this.#o.log.info(
      { min: this.#o.min, max: this.#o.max, adopted: this.#members.size, slots: this.#o.slotsPerTaskManager },
      'TaskManager pool active',
    );
    this.#fillToMinimum();
    this.#timer = setInterval(() => void this.#check(), this.#o.checkIntervalMs ?? 1_000);
    this.#timer.unref();
  }

  deactivate(): void {
    if (!this.#cluster) return;
    clearInterval(this.#timer);
    this.#cluster = undefined;
    this.#o.log.info(
      { taskManagers: this.#members.size },
      'TaskManager pool inactive (its TaskManagers keep running)',
    );
  }

  requestSlots(missing: number): void {
    if (!this.#cluster || missing <= 0) return;
    const starting = [...this.#members.values()].filter((m) => !m.registered).length;
    const wanted = Math.ceil(missing / this.#o.slotsPerTaskManager) - starting;
    const room = this.#o.max - this.#members.size;
    const count = Math.min(wanted, room);
    if (count <= 0) {
      if (room <= 0 && wanted > 0) {
        this.#o.log.info(
          { missing, max: this.#o.max },
          'TaskManager pool at its maximum: no TaskManager started',
        );
      }
      return;
    }
    this.#o.log.info(
      { missing, starting: count, size: this.#members.size + count },
      'TaskManager pool grows',
    );
    for (let i = 0; i < count; i++) this.#spawn();
  }

  headroomSlots(): number {
    if (!this.#cluster) return 0;
    // Those it may still start, and those starting (not registered yet, so not among the cluster's slots).
    const registered = [...this.#members.values()].filter((m) => m.registered).length;
    return Math.max(0, this.#o.max - registered) * this.#o.slotsPerTaskManager;
  }

  #spawn(): void {
    const name = `taskmanager-pool-${this.#nextIndex++}`;
    const p = spawnDaemon(this.#o.dir, 'taskmanager', name, this.#o.taskManagerArgs, this.#o.env ?? {});
    this.#members.set(p.pid, { ...p, startedAt: Date.now(), registered: false });
    this.#save();
    this.#o.log.info({ pid: p.pid, log: p.log }, 'TaskManager started by the pool');
  }

  #fillToMinimum(): void {
    while (this.#cluster && this.#members.size < this.#o.min) this.#spawn();
  }

  async #check(): Promise<void> {
    const cluster = this.#cluster;
    if (!cluster || this.#checking) return;
    this.#checking = true;
    try {
      for (const [pid, m] of this.#members) {
        if (isAlive(pid)) continue;
        this.#members.delete(pid);
        this.#o.log.warn({ pid, log: m.log }, 'a TaskManager of the pool exited');
      }
      const [tms, pending] = await Promise.all([cluster.taskManagers(), cluster.pendingSlots()]);
      if (this.#cluster !== cluster) return;
      const now = Date.now();
      for (const m of this.#members.values()) {
        const tm = tms.find((t) => t.pid === m.pid);
        m.registered = tm !== undefined;
        m.idleSince = tm && tm.slotsFree === tm.slotsTotal ? (m.idleSince ?? now) : undefined;
      }
      // Requests wait: their TaskManagers are idle only until the last one needed registers. Keep them,
      // and start what is still missing (a TaskManager that died meanwhile).
      const free = tms.reduce((n, tm) => n + tm.slotsFree, 0);
      if (pending > 0) {
        this.requestSlots(pending - free);
        this.#save();
        return;
      }
      const idle = [...this.#members.values()]
        .filter((m) => m.idleSince !== undefined && now - m.idleSince >= this.#o.idleTimeoutMs)
        .sort((a, b) => b.startedAt - a.startedAt);
      for (const m of idle) {
        if (this.#members.size <= this.#o.min) break;
        this.#members.delete(m.pid);
        this.#o.log.info(
          { pid: m.pid, idleMs: now - m.idleSince!, size: this.#members.size },
          'TaskManager pool shrinks: stopping an idle TaskManager',
        );
        void terminate(m.pid);
      }
      this.#fillToMinimum();
      this.#save();
    } catch (err) {
      this.#o.log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'TaskManager pool check failed',
      );
    } finally {
      this.#checking = false;
    }
  }

  #save(): void {
    const processes: ClusterProcess[] = [...this.#members.values()].map(({ role, pid, log }) => ({
      role,
      pid,
      log,
    }));
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ processes }, null, 2)}\n`);
    renameSync(tmp, this.file);
  }
}

function indexOf(log: string): number {
  const m = /taskmanager-pool-(\d+)\.log$/.exec(log);
  return m ? Number(m[1]) : -1;
}
