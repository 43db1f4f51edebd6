/**
 * The ResourceManager: which TaskManagers are alive and which of their slots are free.
 *
 * TaskExecutors register (ask) and then heartbeat (tell) with their slot report. One that stays silent
 * for `heartbeat.timeout` is declared lost: its slots leave the table and the jobs that held them are
 * told. The check runs every min(interval, timeout/4) and before every allocation or reservation, so a
 * slot of a TaskManager past its timeout is never handed out. JobMasters in the same process request and
 * release slots through the methods below, which run in the ResourceManager's mailbox like its messages.
 * Slot listeners (reactive mode) hear of every change of the cluster's slots: TaskManagers registering,
 * leaving or lost, slots released.
 */
import { performance } from 'node:perf_hooks';
import { Actor, type ActorContext } from '../../actors/actor.js';
import { fencedGateway, gateway } from '../../actors/protocol.js';
import type { Subjects } from '../../actors/subjects.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { TaskManagerInfo } from '../dispatcher/protocol.js';
import { TaskExecutorProtocol } from '../taskexecutor/protocol.js';
import { ResourceManagerProtocol, type TaskManagerReport } from './protocol.js';
import {
  allocateSlots,
  freeSlots,
  heldSlots,
  reserveUpTo,
  type SlotAssignment,
  totalSlots,
} from './slot-table.js';

export type { SlotAssignment };

export interface ResourceManagerOptions {
  id: string;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
  /**
   * The leader epoch (HA). Every TaskManager that registers is told it (tell `epoch`), so one that still
   * runs tasks of a former leader cancels them even if the new leader deploys nothing there.
   */
  epoch?: number | undefined;
  /**
   * HA: whether this process still leads (its lease deadline checked on the monotonic clock). A leader
   * resumed after a pause (SIGSTOP, a long GC) runs its overdue timers before its election notices the
   * missed deadline: it must not declare TaskManagers lost (and fail jobs) meanwhile.
   */
  stillLeading?: () => boolean;
  /**
   * A slot request cannot be served: `missing` more slots are wanted than are free (a TaskManager pool
   * starts TaskManagers for them; see worker-pool.ts).
   */
  onSlotShortage?: ((missing: number) => void) | undefined;
  /**
   * Slots a TaskManager pool can still add to the registered ones (those it is starting included): a
   * rescale short of slots that the pool can cover waits for them instead of being refused.
   */
  growableSlots?: (() => number) | undefined;
  /** How long such a rescale waits for the pool's TaskManagers (`slot.request.timeout`; default 60 s). */
  slotRequestTimeoutMs?: number | undefined;
}

export type TaskManagerLostListener = (taskManagerId: string, jobIds: string[], reason: string) => void;
/** The cluster's slots changed: a TaskManager registered, left or was lost, or a job released slots. */
export type SlotsChangedListener = () => void;
export type SlotWaitListener = (jobId: string, message: string) => void;

interface TaskManagerRecord {
  id: string;
  host: string;
  pid: number;
  /** slots[i] = the job holding slot i, or null when free. */
  slots: Array<string | null>;
  lastHeartbeat: number;
}

interface PendingRequest {
  jobId: string;
  count: number;
  resolve: (slots: SlotAssignment[]) => void;
  reject: (err: SluiceError) => void;
  timer: NodeJS.Timeout;
  /**
   * `allocate`: slots for the job's tasks; `replace`: the same, freeing the job's slots that the allocation
   * does not use (a rescale to fewer slots); `reserve`: a rescale's slots taken for the job before anything
   * stops (resolves with no assignments).
   */
  kind: 'allocate' | 'replace' | 'reserve';
}

export class ResourceManager extends Actor {
  readonly #options: ResourceManagerOptions & { now: () => number };
  readonly #subjects: Subjects;
  readonly #taskManagers = new Map<string, TaskManagerRecord>();
  #pending: PendingRequest[] = [];
  readonly #lostListeners: TaskManagerLostListener[] = [];
  readonly #slotsListeners: SlotsChangedListener[] = [];
  #checker: NodeJS.Timeout | undefined;

  constructor(ctx: ActorContext, subjects: Subjects, options: ResourceManagerOptions) {
    super(ctx, 'ResourceManager', subjects.resourceManager);
    this.#subjects = subjects;
    this.#options = { now: () => performance.now(), ...options };
    this.serve(ResourceManagerProtocol, {
      register: (report) => {
        this.#upsert(report, 'registered');
        return {
          resourceManagerId: this.#options.id,
          heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
        };
      },
      heartbeat: (report) => this.#heartbeat(report),
      unregister: ({ taskManagerId, reason }) =>
        this.#remove(taskManagerId, `unregistered: ${reason}`, 'info'),
    });
  }

  override start(): void {
    super.start();
    const every = Math.max(
      50,
      Math.min(this.#options.heartbeatIntervalMs, this.#options.heartbeatTimeoutMs / 4),
    );
    this.#checker = setInterval(() => void this.runInMailbox(() => this.#checkHeartbeats()), every);
    this.#checker.unref();
    // A new leader (HA): every TaskManager heartbeats at once, so recovered jobs find their slots now.
    if (this.#options.epoch !== undefined) {
      try {
        this.ctx.nc.publish(this.#subjects.heartbeatRequest);
      } catch (err) {
        this.log.warn({ err }, 'could not ask the TaskManagers for a heartbeat');
      }
    }
  }

  protected override async onStop(): Promise<void> {
    clearInterval(this.#checker);
    for (const request of this.#pending) {
      clearTimeout(request.timer);
      request.reject(new SluiceError(ErrorCode.IllegalState, 'ResourceManager stopped'));
    }
    this.#pending = [];
  }

  onTaskManagerLost(listener: TaskManagerLostListener): void {
    this.#lostListeners.push(listener);
  }

  /** Called (outside the ResourceManager's mailbox) whenever the cluster's slots change. */
  onSlotsChanged(listener: SlotsChangedListener): () => void {
    this.#slotsListeners.push(listener);
    return () => {
      const i = this.#slotsListeners.indexOf(listener);
      if (i >= 0) this.#slotsListeners.splice(i, 1);
    };
  }

  /** Slots a job could hold right now: the free ones and those it holds (reactive mode sizes jobs by it). */
  availableSlotsFor(jobId: string): Promise<number> {
    return this.runInMailbox(() => this.#available(jobId));
  }

  /**
   * Rescaling: makes sure `count` slots can be had by the job without waiting, by taking free slots for it
   * now (it keeps the ones it holds). When the free slots and the job's own are fewer than `count`:
   * - a TaskManager pool that can add the missing slots is asked for them, and the reservation waits for
   *   them, at most `slotRequestTimeoutMs`; then NO_RESOURCE_AVAILABLE names the slots still missing;
   * - otherwise it is refused at once with NO_RESOURCE_AVAILABLE, changing nothing.
   * A reservation that waits is withdrawn by {@link releaseSlots} (the job failed or was cancelled).
   */
  reserveSlots(jobId: string, count: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.runInMailbox(() => {
        if (this.#tryReserve(jobId, count)) {
          resolve();
          return;
        }
        const available = this.#available(jobId);
        const missing = count - available;
        const growable = this.#options.growableSlots?.();
        const where = `${this.#freeSlots()} free of ${this.#totalSlots()} in ${this.#taskManagers.size} TaskManagers`;
        if (growable === undefined || growable < missing) {
          const pool =
            growable === undefined
              ? ''
              : `; the TaskManager pool can add ${growable} more before its maximum`;
          reject(
            new SluiceError(
              ErrorCode.NoResourceAvailable,
              `job ${jobId} needs ${count} slots and could have ${available} (${where})${pool}`,
            ),
          );
          return;
        }
        const timeoutMs = this.#options.slotRequestTimeoutMs ?? 60_000;
        this.log.info(
          { job: jobId, needed: count, missing, timeoutMs },
          `rescale waits for the TaskManager pool: ${missing} more slots (at most ${timeoutMs} ms, slot.request.timeout)`,
        );
        this.#options.onSlotShortage?.(missing);
        const timer = setTimeout(() => {
          void this.runInMailbox(() => {
            const index = this.#pending.findIndex((p) => p.timer === timer);
            if (index < 0) return;
            this.#pending.splice(index, 1);
            const still = count - this.#available(jobId);
            reject(
              new SluiceError(
                ErrorCode.NoResourceAvailable,
                `job ${jobId} needs ${count} slots: ${still} still missing after waiting ${timeoutMs} ms (slot.request.timeout) for the TaskManager pool to start TaskManagers (${this.#freeSlots()} free of ${this.#totalSlots()} in ${this.#taskManagers.size} TaskManagers)`,
              ),
            );
          });
        }, timeoutMs);
        this.#pending.push({ jobId, count, resolve: () => resolve(), reject, timer, kind: 'reserve' });
      }).catch(reject);
    });
  }

  /** Frees the job's slots other than `keep` (a rescale that did not happen gives back what it reserved). */
  releaseSlotsExcept(jobId: string, keep: readonly SlotAssignment[]): Promise<void> {
    return this.runInMailbox(() => {
      const kept = new Set(keep.map((k) => `${k.taskManagerId}/${k.slotIndex}`));
      let released = 0;
      for (const tm of this.#taskManagers.values()) {
        tm.slots = tm.slots.map((holder, i) => {
          if (holder !== jobId || kept.has(`${tm.id}/${i}`)) return holder;
          released++;
          return null;
        });
      }
      if (released === 0) return;
      this.#servePending();
      this.#slotsChanged();
    });
  }

  /**
   * Rescaling, once the job's old tasks are down: `count` slots for its new tasks, its own slots first
   * (counted as free, so a job that reserved enough gets them at once), the slots it holds beyond them
   * freed. Waits like {@link requestSlots} when the job has too few.
   */
  reassignSlots(
    jobId: string,
    count: number,
    timeoutMs: number,
    onWait?: SlotWaitListener,
  ): Promise<SlotAssignment[]> {
    return this.requestSlots(jobId, count, timeoutMs, onWait, 'replace');
  }

  /**
   * Allocates `count` slots for a job, spread over TaskManagers (most free slots first). Waits for
   * TaskManagers to register when there are too few free slots, at most `timeoutMs`.
   */
  requestSlots(
    jobId: string,
    count: number,
    timeoutMs: number,
    onWait?: SlotWaitListener,
    kind: 'allocate' | 'replace' = 'allocate',
  ): Promise<SlotAssignment[]> {
    // The mailbox item only records the request; the promise settles later, so the mailbox never waits.
    return new Promise<SlotAssignment[]>((resolve, reject) => {
      this.runInMailbox(() => {
        const slots = this.#tryAllocate(jobId, count, kind === 'replace');
        if (slots) {
          resolve(slots);
          return;
        }
        const free = this.#freeSlots();
        const message = `waiting for ${count} free slots (${free} free in ${this.#taskManagers.size} TaskManagers), at most ${timeoutMs} ms (slot.request.timeout)`;
        this.log.info({ job: jobId, needed: count, free }, message);
        onWait?.(jobId, message);
        this.#options.onSlotShortage?.(count - free);
        const timer = setTimeout(() => {
          void this.runInMailbox(() => {
            const index = this.#pending.findIndex((p) => p.timer === timer);
            if (index < 0) return;
            this.#pending.splice(index, 1);
            reject(
              new SluiceError(
                ErrorCode.NoResourceAvailable,
                `could not get ${count} slots within ${timeoutMs} ms (slot.request.timeout): the cluster has ${this.#freeSlots()} free of ${this.#totalSlots()} slots in ${this.#taskManagers.size} TaskManagers`,
              ),
            );
          });
        }, timeoutMs);
        this.#pending.push({ jobId, count, resolve, reject, timer, kind });
      }).catch(reject);
    });
  }

  /** Frees every slot a job holds and withdraws its pending requests. */
  releaseSlots(jobId: string): Promise<void> {
    return this.runInMailbox(() => {
      let released = 0;
      for (const tm of this.#taskManagers.values()) {
        tm.slots = tm.slots.map((holder) => {
          if (holder !== jobId) return holder;
          released++;
          return null;
        });
      }
      this.#pending = this.#pending.filter((p) => {
        if (p.jobId !== jobId) return true;
        clearTimeout(p.timer);
        p.reject(new SluiceError(ErrorCode.IllegalState, `slot request of job ${jobId} withdrawn`));
        return false;
      });
      if (released > 0) this.log.debug({ job: jobId, released }, 'released slots');
      this.#servePending();
      if (released > 0) this.#slotsChanged();
    });
  }

  /** Asks every registered TaskManager to shut down (the end of an application or per-job cluster). */
  shutdownTaskManagers(reason: string): Promise<number> {
    return this.runInMailbox(() => {
      for (const tm of this.#taskManagers.values()) {
        gateway(this.ctx.rpc, this.#subjects, TaskExecutorProtocol, tm.id).tell('shutdown', { reason });
      }
      return this.#taskManagers.size;
    });
  }

  /**
   * Slots wanted by requests that wait (a TaskManager pool keeps its idle TaskManagers while any wait); a
   * rescale's reservation wants those beyond the job's own.
   */
  pendingSlots(): Promise<number> {
    return this.runInMailbox(() =>
      this.#pending.reduce((n, p) => n + (p.kind === 'reserve' ? p.count - this.#held(p.jobId) : p.count), 0),
    );
  }

  /** Registered TaskManagers right now. */
  registeredCount(): Promise<number> {
    return this.runInMailbox(() => this.#taskManagers.size);
  }

  taskManagers(): Promise<TaskManagerInfo[]> {
    return this.runInMailbox(() => {
      const now = this.#options.now();
      return [...this.#taskManagers.values()].map((tm) => ({
        id: tm.id,
        host: tm.host,
        pid: tm.pid,
        slotsTotal: tm.slots.length,
        slotsFree: tm.slots.filter((s) => s === null).length,
        lastHeartbeatMs: Math.round(now - tm.lastHeartbeat),
      }));
    });
  }

  #heartbeat(report: TaskManagerReport): void {
    const tm = this.#taskManagers.get(report.taskManagerId);
    if (!tm) {
      this.#upsert(report, 're-registered by heartbeat');
      return;
    }
    tm.lastHeartbeat = this.#options.now();
  }

  #upsert(report: TaskManagerReport, how: string): void {
    const slots: Array<string | null> = Array.from({ length: report.slots }, () => null);
    for (const s of report.slotReport) if (s.index < slots.length) slots[s.index] = s.jobId;
    const existing = this.#taskManagers.get(report.taskManagerId);
    if (existing) {
      // A TaskManager that registers again has restarted or reconnected: its own report is the truth.
      existing.host = report.host;
      existing.pid = report.pid;
      existing.slots = slots;
      existing.lastHeartbeat = this.#options.now();
    } else {
      this.#taskManagers.set(report.taskManagerId, {
        id: report.taskManagerId,
        host: report.host,
        pid: report.pid,
        slots,
        lastHeartbeat: this.#options.now(),
      });
    }
    this.log.info(
      {
        taskManager: report.taskManagerId,
        host: report.host,
        slots: report.slots,
        total: this.#totalSlots(),
      },
      `TaskManager ${how}`,
    );
    this.#slotsChanged();
    const epoch = this.#options.epoch;
    if (epoch !== undefined) {
      try {
        fencedGateway(this.ctx.rpc, this.#subjects, epoch, TaskExecutorProtocol, report.taskManagerId).tell(
          'epoch',
          {},
        );
      } catch (err) {
        this.log.warn({ err, taskManager: report.taskManagerId }, 'epoch not sent');
      }
    }
    this.#servePending();
  }

  #checkHeartbeats(): void {
    if (this.#options.stillLeading && !this.#options.stillLeading()) return;
    const now = this.#options.now();
    for (const tm of [...this.#taskManagers.values()]) {
      const silentMs = now - tm.lastHeartbeat;
      if (silentMs > this.#options.heartbeatTimeoutMs) {
        this.#remove(
          tm.id,
          `no heartbeat for ${Math.round(silentMs)} ms (heartbeat.timeout ${this.#options.heartbeatTimeoutMs} ms)`,
        );
      }
    }
  }

  #remove(taskManagerId: string, reason: string, level: 'info' | 'warn' = 'warn'): void {
    const tm = this.#taskManagers.get(taskManagerId);
    if (!tm) return;
    this.#taskManagers.delete(taskManagerId);
    const jobIds = [...new Set(tm.slots.filter((s): s is string => s !== null))];
    this.log[level](
      { taskManager: taskManagerId, releasedSlots: tm.slots.length, jobs: jobIds, total: this.#totalSlots() },
      `TaskManager ${level === 'warn' ? 'lost' : 'left'}: ${reason}; released its ${tm.slots.length} slots`,
    );
    for (const listener of this.#lostListeners) {
      try {
        listener(taskManagerId, jobIds, reason);
      } catch (err) {
        this.log.error({ err }, 'TaskManager-lost listener failed');
      }
    }
    this.#slotsChanged();
  }

  #servePending(): void {
    const still: PendingRequest[] = [];
    for (const request of this.#pending) {
      const slots =
        request.kind === 'reserve'
          ? this.#tryReserve(request.jobId, request.count)
            ? []
            : undefined
          : this.#tryAllocate(request.jobId, request.count, request.kind === 'replace');
      if (slots) {
        clearTimeout(request.timer);
        request.resolve(slots);
      } else {
        still.push(request);
      }
    }
    this.#pending = still;
  }

  #tryAllocate(jobId: string, count: number, replace = false): SlotAssignment[] | undefined {
    // A TaskManager already past its heartbeat timeout is lost even if the periodic check has not run
    // yet: its slots must not be handed out (a JobMaster that noticed the loss first and restarted
    // would deploy there, fail again and restart once more).
    this.#checkHeartbeats();
    const assignments = allocateSlots(this.#taskManagers.values(), jobId, count, replace);
    if (assignments && replace) this.#slotsChanged();
    return assignments;
  }

  #tryReserve(jobId: string, count: number): boolean {
    this.#checkHeartbeats();
    return reserveUpTo([...this.#taskManagers.values()], jobId, count);
  }

  #held(jobId: string): number {
    return heldSlots(this.#taskManagers.values(), jobId);
  }

  #available(jobId: string): number {
    return this.#freeSlots() + this.#held(jobId);
  }

  /** Tells the slot listeners, after the current mailbox item (they may call back into this actor). */
  #slotsChanged(): void {
    if (this.#slotsListeners.length === 0) return;
    queueMicrotask(() => {
      for (const listener of this.#slotsListeners) {
        try {
          listener();
        } catch (err) {
          this.log.error({ err }, 'slots-changed listener failed');
        }
      }
    });
  }

  #freeSlots(): number {
    return freeSlots(this.#taskManagers.values());
  }

  #totalSlots(): number {
    return totalSlots(this.#taskManagers.values());
  }
}
