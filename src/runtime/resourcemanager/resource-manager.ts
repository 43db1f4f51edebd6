/**
 * The ResourceManager: which TaskManagers are alive and which of their slots are free.
 *
 * TaskExecutors register (ask) and then heartbeat (tell) with their slot report. One that stays silent
 * for `heartbeat.timeout` is declared lost: its slots leave the table and the jobs that held them are
 * told. JobMasters in the same process request and release slots through the methods below, which run
 * in the ResourceManager's mailbox like its messages. Slot listeners (reactive mode) hear of every change
 * of the cluster's slots: TaskManagers registering, leaving or lost, slots released.
 */
import { performance } from 'node:perf_hooks';
import { Actor, type ActorContext } from '../../actors/actor.js';
import { fencedGateway, gateway } from '../../actors/protocol.js';
import type { Subjects } from '../../actors/subjects.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { TaskManagerInfo } from '../dispatcher/protocol.js';
import { TaskExecutorProtocol } from '../taskexecutor/protocol.js';
import { ResourceManagerProtocol, type TaskManagerReport } from './protocol.js';

export interface SlotAssignment {
  taskManagerId: string;
  slotIndex: number;
}

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
  /** Frees the job's slots that the allocation does not use (a rescale to fewer slots). */
  replace: boolean;
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
   * now (it keeps the ones it holds). Refuses with NO_RESOURCE_AVAILABLE, changing nothing, when the free
   * slots and the job's own are fewer than `count`.
   */
  reserveSlots(jobId: string, count: number): Promise<void> {
    return this.runInMailbox(() => {
      const held = this.#held(jobId);
      if (held >= count) return;
      const available = this.#available(jobId);
      if (available < count) {
        throw new SluiceError(
          ErrorCode.NoResourceAvailable,
          `job ${jobId} needs ${count} slots and could have ${available} (${this.#freeSlots()} free of ${this.#totalSlots()} in ${this.#taskManagers.size} TaskManagers)`,
        );
      }
      let missing = count - held;
      for (const tm of this.#taskManagers.values()) {
        for (let i = 0; i < tm.slots.length && missing > 0; i++) {
          if (tm.slots[i] === null) {
            tm.slots[i] = jobId;
            missing--;
          }
        }
      }
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
    return this.requestSlots(jobId, count, timeoutMs, onWait, true);
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
    replace = false,
  ): Promise<SlotAssignment[]> {
    // The mailbox item only records the request; the promise settles later, so the mailbox never waits.
    return new Promise<SlotAssignment[]>((resolve, reject) => {
      this.runInMailbox(() => {
        const slots = this.#tryAllocate(jobId, count, replace);
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
        this.#pending.push({ jobId, count, resolve, reject, timer, replace });
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

  /** Slots wanted by requests that wait (a TaskManager pool keeps its idle TaskManagers while any wait). */
  pendingSlots(): Promise<number> {
    return this.runInMailbox(() => this.#pending.reduce((n, p) => n + p.count, 0));
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
      const slots = this.#tryAllocate(request.jobId, request.count, request.replace);
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
    // A job asking for slots holds none (a restart releases them first), so slots a TaskManager reports
    // as held by this very job are leftovers of its run under a former leader (HA recovery): usable.
    const free = new Map<TaskManagerRecord, number[]>();
    let available = 0;
    for (const tm of this.#taskManagers.values()) {
      const indexes = tm.slots.flatMap((holder, index) =>
        holder === null || holder === jobId ? [index] : [],
      );
      available += indexes.length;
      free.set(tm, indexes);
    }
    if (available < count) return undefined;
    const assignments: SlotAssignment[] = [];
    for (let i = 0; i < count; i++) {
      // Spread out: take from the TaskManager with the most free slots (ties: lowest id, stable).
      let best: TaskManagerRecord | undefined;
      for (const [tm, indexes] of free) {
        const bestFree = best ? free.get(best)!.length : 0;
        if (
          indexes.length > bestFree ||
          (indexes.length === bestFree && best && indexes.length > 0 && tm.id < best.id)
        ) {
          best = tm;
        }
      }
      const slotIndex = free.get(best!)!.shift()!;
      best!.slots[slotIndex] = jobId;
      assignments.push({ taskManagerId: best!.id, slotIndex });
    }
    if (replace) {
      // The job's slots the new assignment does not use are free again.
      for (const [tm, indexes] of free)
        for (const i of indexes) if (tm.slots[i] === jobId) tm.slots[i] = null;
      this.#slotsChanged();
    }
    return assignments;
  }

  #held(jobId: string): number {
    let n = 0;
    for (const tm of this.#taskManagers.values()) n += tm.slots.filter((s) => s === jobId).length;
    return n;
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
    let n = 0;
    for (const tm of this.#taskManagers.values()) n += tm.slots.filter((s) => s === null).length;
    return n;
  }

  #totalSlots(): number {
    let n = 0;
    for (const tm of this.#taskManagers.values()) n += tm.slots.length;
    return n;
  }
}
