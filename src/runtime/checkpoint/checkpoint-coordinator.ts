/**
 * The checkpoint coordinator of one job (in its JobMaster's mailbox; design §6).
 *
 * Trigger: every `intervalMs` (after `minPauseMs` since the last one ended, at most `maxConcurrent` in
 * flight, only while every task runs) it tells each source subtask to inject barrier n. Each subtask stores
 * its state and acks with a handle. When every subtask has acked: the metadata object is written, then
 * the `checkpoints` KV pointer (the commit point), then the TaskExecutors are told it completed (sinks
 * commit). A decline or the timeout aborts a checkpoint and deletes what it stored; late acks of an
 * aborted one are deleted as they come. A checkpoint never hangs on a lost message: one that has had no
 * ack for the ack timeout (`execution.checkpointing.ack-timeout`, by default `max(2 × interval, 10 s)`)
 * since its trigger or its last ack is aborted, and the next periodic one follows within an interval.
 * Every timer and duration runs on the host's {@link Clock} (a `ManualClock` in unit tests). Checkpoints beyond `retained` are deleted after the commit.
 * Savepoints go the same way to a user-chosen path, without the pointer.
 *
 * Size: one concept, the checkpoint lifecycle of one job (trigger, acks, timeouts, commit, notify, choice
 * of the checkpoint to restore); storage is in state-store.ts.
 */

import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { ExecutionAttemptId as TaskId } from '../../common/ids.js';
import type { Logger } from '../../common/log.js';
import { ackTimeoutMs, type CheckpointingConfig } from '../../config/checkpointing-config.js';
import { type Clock, systemClock, type TimerHandle } from '../../ha/clock.js';
import {
  type CheckpointAck,
  type CheckpointComplete,
  type CheckpointDecline,
  type CheckpointKind,
  type CheckpointMetadata,
  type CheckpointPointer,
  checkpointTarget,
  type RestoreSpec,
  type RetainedCheckpoint,
  type SubtaskStateHandle,
  type TriggerCheckpoint,
} from './protocol.js';

/** What the coordinator tells TaskExecutors. */
export type TaskExecutorCheckpointMessage = ['trigger', TriggerCheckpoint] | ['complete', CheckpointComplete];

import type { JobId } from '../../common/ids.js';
import type { StateStore } from './state-store.js';

export interface CoordinatorHost {
  jobId: JobId;
  jobName: string;
  /** The leader epoch (fences the pointer writes); 1 without HA. */
  epoch: number;
  log: Logger;
  store: StateStore;
  config: CheckpointingConfig;
  /** The job's current attempt and its subtasks, or undefined unless every one of them runs. */
  runningTasks():
    | { attempt: number; all: Array<{ task: TaskId; taskManagerId: string; source: boolean }> }
    | undefined;
  /** Tells a TaskExecutor (`tm.<id>.<type>`), with the epoch. */
  tellTaskExecutor(taskManagerId: string, ...message: TaskExecutorCheckpointMessage): void;
  /** Runs in the JobMaster's mailbox. */
  runInMailbox<T>(fn: () => T | Promise<T>): Promise<T>;
  /**
   * How long a restore waits out a state store that is temporarily unavailable (a retryable error: a
   * JetStream stream electing its leader takes 4–12 s on nats-server 2.9) before it gives up with that
   * error. Default {@link RESTORE_UNAVAILABLE_WAIT_MS}.
   */
  restoreUnavailableWaitMs?: number;
  /** Monotonic clock of every timer and duration. Default: `performance.now()` and the runtime's timers. */
  clock?: Clock;
}

/** See {@link CoordinatorHost.restoreUnavailableWaitMs}. */
export const RESTORE_UNAVAILABLE_WAIT_MS = 30_000;
const RESTORE_UNAVAILABLE_RETRY_MS = 500;

export type CheckpointStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';

/** One entry of the checkpoint history (REST, CLI, dashboard). */
export interface CheckpointStats {
  id: number;
  kind: CheckpointKind;
  status: CheckpointStatus;
  triggerTimestamp: number;
  durationMs: number;
  sizeBytes: number;
  acknowledged: number;
  total: number;
  target: string;
  failure?: string;
}

interface Pending {
  id: number;
  kind: CheckpointKind;
  target: string;
  stop: boolean;
  attempt: number;
  started: number;
  triggerTimestamp: number;
  total: number;
  acks: Map<string, SubtaskStateHandle>;
  timer: TimerHandle;
  /** Fires when no ack has come for the ack timeout; re-armed by every ack. */
  ackTimer: TimerHandle | undefined;
  stats: CheckpointStats;
  /** Set once every subtask acked: the commit is under way (a stopping job waits for it). */
  completing?: Promise<void>;
  resolve?: (m: CheckpointMetadata) => void;
  reject?: (err: Error) => void;
}

const HISTORY = 30;

export class CheckpointCoordinator {
  readonly #host: CoordinatorHost;
  readonly #pending = new Map<number, Pending>();
  /** Ids aborted or superseded: their late acks' objects are deleted. */
  readonly #aborted = new Set<number>();
  readonly #history: CheckpointStats[] = [];
  #nextId = 1;
  #retained: RetainedCheckpoint[] = [];
  #maxNotified = 0;
  #timer: TimerHandle | undefined;
  #periodic = false;
  #lastEnded = 0;
  #counts = { completed: 0, failed: 0, restored: 0 };
  #restoredFrom: { id: number; kind: CheckpointKind; path: string } | undefined;
  #stopped = false;
  #stoppedReason = '';
  /** The latest checkpoint this coordinator completed, with its handles (a rescale restores from it). */
  #latestCompleted: RestoreSpec | undefined;

  readonly #clock: Clock;

  constructor(host: CoordinatorHost) {
    this.#host = host;
    this.#clock = host.clock ?? systemClock;
  }

  get config(): CheckpointingConfig {
    return this.#host.config;
  }

  /** Counts and history for the REST API and `sluice checkpoints`. */
  stats(): {
    counts: { completed: number; failed: number; inProgress: number; restored: number };
    history: CheckpointStats[];
    restored: { id: number; kind: CheckpointKind; path: string } | undefined;
    retained: RetainedCheckpoint[];
  } {
    return {
      counts: { ...this.#counts, inProgress: this.#pending.size },
      history: [...this.#history].reverse(),
      restored: this.#restoredFrom,
      retained: [...this.#retained],
    };
  }

  /**
   * Reads the job's retained checkpoints and returns what to restore from: the latest whose metadata and
   * objects are intact, falling back (with a warning naming the problem) to older ones. A store that is
   * only unavailable (a retryable error) is waited out, never taken for damage: falling back then would
   * restore older state than the latest completed checkpoint.
   * The job may end meanwhile (suspended: the leadership was lost while the store was unavailable); the
   * restore is then abandoned at its next step, judging no checkpoint — by then a new leader may have
   * subsumed and deleted the checkpoints this read started from.
   * @throws SluiceError CORRUPTED_STATE when checkpoints exist but none is usable; the retryable error when
   *   the store stays unavailable longer than `restoreUnavailableWaitMs`; ILLEGAL_STATE when the job ended
   *   during the restore
   */
  async latestRestore(): Promise<RestoreSpec | undefined> {
    const { store, jobId, log } = this.#host;
    const deadline = Date.now() + (this.#host.restoreUnavailableWaitMs ?? RESTORE_UNAVAILABLE_WAIT_MS);
    const abandoned = () =>
      new SluiceError(
        ErrorCode.IllegalState,
        `the restore of job ${jobId} was abandoned: the job ended here meanwhile (${this.#stoppedReason})`,
      );
    const waitingOut = async <T>(what: string, read: () => Promise<T>): Promise<T> => {
      for (let waited = false; ; waited = true) {
        if (this.#stopped) throw abandoned();
        try {
          const value = await read();
          if (this.#stopped) throw abandoned();
          if (waited) log.info(`${what}: the state store answers again`);
          return value;
        } catch (err) {
          if (this.#stopped) throw abandoned();
          if (!(err instanceof SluiceError && err.retryable) || Date.now() >= deadline) throw err;
          if (!waited) log.warn({ err: err.message }, `${what}: the state store is unavailable; waiting`);
          await new Promise((r) => setTimeout(r, RESTORE_UNAVAILABLE_RETRY_MS));
        }
      }
    };
    // Fence first: a former leader (paused, then resumed) must not commit a checkpoint after this restore
    // chose one (found by the chaos test: a commit in flight across a SIGSTOP landed after the new
    // leader had restored from the previous checkpoint).
    await waitingOut('fencing the checkpoint pointers', () => store.fencePointers(this.#host.epoch));
    const stored = await waitingOut('reading the checkpoint pointer', () => store.pointer(jobId));
    const pointer = stored.checkpoints;
    this.#retained = pointer;
    this.#maxNotified = Math.max(this.#maxNotified, stored.maxCheckpointId);
    const maxKnown = Math.max(0, ...pointer.map((c) => c.checkpointId));
    this.#nextId = Math.max(this.#nextId, maxKnown + 1, this.#maxNotified + 1);
    if (pointer.length === 0) return undefined;
    const problems: string[] = [];
    for (let i = pointer.length - 1; i >= 0; i--) {
      const c = pointer[i]!;
      let metadata: CheckpointMetadata | undefined;
      let problem: string | undefined;
      try {
        ({ metadata, problem } = await waitingOut(`reading checkpoint ${c.checkpointId}`, async () => {
          const m = await store.getMetadata(c.metadata);
          return { metadata: m, problem: await this.#damagedObject(m) };
        }));
      } catch (err) {
        if (this.#stopped) throw abandoned();
        if (err instanceof SluiceError && err.retryable) throw err; // unavailable, not damaged
        problem = (err as Error).message;
      }
      if (metadata !== undefined && problem === undefined) {
        if (problems.length > 0) {
          log.warn(
            { checkpointId: c.checkpointId, skipped: problems },
            `falling back to checkpoint ${c.checkpointId}: newer checkpoints are damaged`,
          );
        }
        this.#counts.restored++;
        this.#restoredFrom = { id: c.checkpointId, kind: 'checkpoint', path: metadata.target };
        return { checkpointId: c.checkpointId, handles: metadata.handles };
      }
      problems.push(`checkpoint ${c.checkpointId}: ${problem}`);
      log.warn({ checkpointId: c.checkpointId, problem }, `checkpoint ${c.checkpointId} cannot be restored`);
    }
    throw new SluiceError(
      ErrorCode.CorruptedState,
      `no retained checkpoint of job ${jobId} can be restored (${problems.join('; ')})`,
    );
  }

  /** A savepoint to start from (`sluice run -s`): its metadata, checked as a checkpoint is. */
  async savepointRestore(path: string): Promise<{ restore: RestoreSpec; metadata: CheckpointMetadata }> {
    const metadata = await this.#host.store.getMetadata(path).catch((err: unknown) => {
      if (err instanceof SluiceError && err.code === ErrorCode.StateNotFound) {
        throw new SluiceError(
          ErrorCode.StateNotFound,
          `savepoint '${path}' does not exist (no ${path}/_metadata in the state store)`,
        );
      }
      throw err;
    });
    const damaged = await this.#damagedObject(metadata);
    if (damaged !== undefined) {
      throw new SluiceError(ErrorCode.CorruptedState, `savepoint '${path}' is damaged: ${damaged}`);
    }
    this.#restoredFrom = { id: metadata.checkpointId, kind: metadata.kind, path };
    this.#counts.restored++;
    return { restore: { checkpointId: metadata.checkpointId, handles: metadata.handles }, metadata };
  }

  /** The latest checkpoint completed by this coordinator (since the JobMaster started), if any. */
  latestCompleted(): RestoreSpec | undefined {
    return this.#latestCompleted;
  }

  /** Every task runs (again): periodic checkpoints start. */
  startPeriodic(): void {
    if (this.#host.config.intervalMs <= 0 || this.#stopped) return;
    this.#periodic = true;
    this.#schedule(this.#host.config.intervalMs);
  }

  /** The job left RUNNING (failure, restart, cancel, end): stop triggering and abort what is in flight. */
  pause(reason: string): void {
    this.#periodic = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const p of [...this.#pending.values()]) if (p.completing === undefined) this.#abort(p, reason);
  }

  /** Waits for the commits under way (a stop-with-savepoint whose tasks have already finished). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#pending.values()].map((p) => p.completing));
  }

  /** The job ended for good. */
  shutdown(reason: string): void {
    this.pause(reason);
    this.#stopped = true;
    this.#stoppedReason = reason;
  }

  /** Deletes every retained checkpoint of the job (it finished or was cancelled). */
  async discardAll(): Promise<void> {
    const { store, jobId, epoch, log } = this.#host;
    try {
      const retained = await store.retained(jobId);
      for (const c of retained) await this.#deleteCheckpoint(c);
      if (retained.length > 0 || this.#maxNotified > 0) await store.removePointer(epoch, jobId);
    } catch (err) {
      log.warn({ err }, "could not delete the job's checkpoints");
    }
  }

  /**
   * Triggers a checkpoint now (a rescale takes one to restore from); resolves when it is committed (the
   * sinks have been told), rejects with CHECKPOINT_FAILED when it cannot start or fails.
   */
  triggerCheckpoint(): Promise<CheckpointMetadata> {
    return new Promise((resolve, reject) => {
      const p = this.#trigger('checkpoint', undefined, false);
      if (typeof p === 'string') {
        reject(new SluiceError(ErrorCode.CheckpointFailed, `checkpoint not started: ${p}`));
        return;
      }
      p.resolve = resolve;
      p.reject = reject;
    });
  }

  /** Triggers a savepoint now; resolves when it is complete. */
  triggerSavepoint(target: string, stop: boolean): Promise<CheckpointMetadata> {
    return new Promise((resolve, reject) => {
      const p = this.#trigger('savepoint', target, stop);
      if (typeof p === 'string') {
        reject(new SluiceError(ErrorCode.CheckpointFailed, `savepoint not started: ${p}`));
        return;
      }
      p.resolve = resolve;
      p.reject = reject;
    });
  }

  onAck(ack: CheckpointAck): void {
    const p = this.#pending.get(ack.checkpointId);
    if (p === undefined || ack.task.attempt !== p.attempt) {
      // Late ack of an aborted (or unknown) checkpoint: its object is garbage.
      if (ack.handle.object !== null && (this.#aborted.has(ack.checkpointId) || p === undefined)) {
        void this.#host.store.delete(ack.handle.object.name).catch(() => undefined);
      }
      return;
    }
    p.acks.set(`${ack.task.vertexId}/${ack.task.subtaskIndex}`, ack.handle);
    p.stats.acknowledged = p.acks.size;
    p.stats.sizeBytes += ack.handle.object?.sizeBytes ?? 0;
    if (p.acks.size === p.total) p.completing = this.#complete(p);
    else this.#armAckTimer(p);
  }

  onDecline(decline: CheckpointDecline): void {
    const p = this.#pending.get(decline.checkpointId);
    if (p === undefined || decline.task.attempt !== p.attempt) return;
    this.#abort(p, `declined by ${decline.task.vertexId}/${decline.task.subtaskIndex}: ${decline.reason}`);
  }

  // -------------------------------------------------------------------------------------------------------

  #schedule(delayMs: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        void this.#host.runInMailbox(() => this.#periodicTrigger()).catch(() => undefined);
      },
      Math.max(0, delayMs),
    );
  }

  #periodicTrigger(): void {
    if (!this.#periodic) return;
    const { intervalMs, minPauseMs, maxConcurrent } = this.#host.config;
    const pauseLeft = this.#lastEnded + minPauseMs - this.#clock.now();
    if (this.#pending.size >= maxConcurrent || pauseLeft > 0) {
      this.#schedule(Math.max(pauseLeft, Math.min(intervalMs, 100)));
      return;
    }
    const result = this.#trigger('checkpoint', undefined, false);
    if (typeof result === 'string') this.#host.log.debug({ reason: result }, 'checkpoint not triggered');
    this.#schedule(intervalMs);
  }

  /** Starts a checkpoint or savepoint; a string says why it could not start. */
  #trigger(kind: CheckpointKind, savepointTarget: string | undefined, stop: boolean): Pending | string {
    if (this.#stopped) return 'the job has ended';
    const running = this.#host.runningTasks();
    if (running === undefined) return 'not every task of the job is running';
    const id = this.#nextId++;
    const target = savepointTarget ?? checkpointTarget(this.#host.jobId, id, this.#host.epoch);
    const now = Date.now();
    const stats: CheckpointStats = {
      id,
      kind,
      status: 'IN_PROGRESS',
      triggerTimestamp: now,
      durationMs: 0,
      sizeBytes: 0,
      acknowledged: 0,
      total: running.all.length,
      target,
    };
    const p: Pending = {
      id,
      kind,
      target,
      stop,
      attempt: running.attempt,
      started: this.#clock.now(),
      triggerTimestamp: now,
      total: running.all.length,
      acks: new Map(),
      stats,
      ackTimer: undefined,
      timer: this.#clock.setTimeout(() => {
        void this.#host
          .runInMailbox(() => {
            if (this.#pending.get(id) === p)
              this.#abort(p, `timed out after ${this.#host.config.timeoutMs} ms`);
          })
          .catch(() => undefined);
      }, this.#host.config.timeoutMs),
    };
    this.#pending.set(id, p);
    this.#armAckTimer(p);
    this.#remember(stats);
    for (const t of running.all) {
      if (!t.source) continue;
      this.#host.tellTaskExecutor(t.taskManagerId, 'trigger', {
        task: t.task,
        checkpointId: id,
        target,
        stop,
      });
    }
    this.#host.log.debug({ checkpointId: id, kind, target }, `${kind} ${id} triggered`);
    return p;
  }

  /** (Re-)arms the pending checkpoint's ack timer: no ack for the ack timeout from now aborts it. */
  #armAckTimer(p: Pending): void {
    if (p.ackTimer !== undefined) this.#clock.clearTimeout(p.ackTimer);
    const timeoutMs = ackTimeoutMs(this.#host.config);
    p.ackTimer = this.#clock.setTimeout(() => {
      void this.#host
        .runInMailbox(() => {
          if (this.#pending.get(p.id) !== p || p.completing !== undefined) return;
          this.#abort(
            p,
            `no acknowledgement for ${timeoutMs} ms (${p.acks.size}/${p.total} acked): a trigger or an ack ` +
              'was lost (execution.checkpointing.ack-timeout)',
          );
          // The next one at once, not an interval later: this one already cost the ack timeout.
          if (this.#periodic && p.kind === 'checkpoint') this.#schedule(0);
        })
        .catch(() => undefined);
    }, timeoutMs);
  }

  #clearTimers(p: Pending): void {
    this.#clock.clearTimeout(p.timer);
    if (p.ackTimer !== undefined) this.#clock.clearTimeout(p.ackTimer);
    p.ackTimer = undefined;
  }

  async #complete(p: Pending): Promise<void> {
    this.#clearTimers(p);
    const { store, jobId, jobName, epoch, log } = this.#host;
    const handles = [...p.acks.values()];
    const durationMs = Math.round(this.#clock.now() - p.started);
    const metadata: CheckpointMetadata = {
      version: 1,
      jobId,
      jobName,
      checkpointId: p.id,
      kind: p.kind,
      target: p.target,
      timestamp: p.triggerTimestamp,
      durationMs,
      sizeBytes: p.stats.sizeBytes,
      handles,
    };
    let dropped: RetainedCheckpoint[] = [];
    try {
      const ref = await store.putMetadata(metadata);
      if (this.#pending.get(p.id) !== p) throw new Error('aborted while its metadata was written');
      const retained =
        p.kind === 'checkpoint'
          ? [
              ...this.#retained,
              {
                checkpointId: p.id,
                metadata: ref,
                timestamp: p.triggerTimestamp,
                durationMs,
                sizeBytes: p.stats.sizeBytes,
              },
            ]
          : this.#retained;
      const keep = Math.max(1, this.#host.config.retained);
      dropped = retained.slice(0, Math.max(0, retained.length - keep));
      const pointer: CheckpointPointer = {
        checkpoints: retained.slice(-keep),
        maxCheckpointId: Math.max(this.#maxNotified, p.id),
      };
      // The commit point.
      await store.writePointer(epoch, jobId, pointer);
      this.#retained = pointer.checkpoints;
      this.#maxNotified = pointer.maxCheckpointId;
    } catch (err) {
      await this.#host.runInMailbox(() => {
        if (this.#pending.get(p.id) === p) this.#abort(p, `committing failed: ${(err as Error).message}`);
      });
      return;
    }
    const landedAfterEnd = await this.#host.runInMailbox(() => {
      this.#pending.delete(p.id);
      this.#lastEnded = this.#clock.now();
      p.stats.status = 'COMPLETED';
      p.stats.durationMs = durationMs;
      if (this.#stopped) {
        // The job ended here (suspended: the leadership was lost) while this commit was under way, and it
        // landed: the checkpoint is in the pointer and whoever restores the job next starts from it. This
        // JobMaster no longer acts: it tells no task and announces nothing.
        log.info(
          { checkpointId: p.id, kind: p.kind, durationMs, target: p.target },
          `${p.kind} ${p.id} committed after the job ended here: the next restore starts from it`,
        );
        p.resolve?.(metadata);
        return true;
      }
      if (p.kind === 'checkpoint' && (this.#latestCompleted?.checkpointId ?? 0) < p.id) {
        this.#latestCompleted = { checkpointId: p.id, handles };
      }
      this.#counts.completed++;
      // Older pending checkpoints can no longer complete in order: this one covers them.
      for (const older of [...this.#pending.values()])
        if (older.id < p.id && older.kind === 'checkpoint') this.#abort(older, `superseded by ${p.id}`);
      const notified = new Set<string>();
      for (const t of this.#host.runningTasks()?.all ?? []) {
        if (notified.has(t.taskManagerId)) continue;
        notified.add(t.taskManagerId);
        this.#host.tellTaskExecutor(t.taskManagerId, 'complete', { jobId, checkpointId: p.id });
      }
      log.info(
        { checkpointId: p.id, kind: p.kind, durationMs, sizeBytes: p.stats.sizeBytes, target: p.target },
        `${p.kind} ${p.id} completed`,
      );
      p.resolve?.(metadata);
      return false;
    });
    if (landedAfterEnd) return;
    for (const c of dropped) await this.#deleteCheckpoint(c);
  }

  #abort(p: Pending, reason: string): void {
    this.#clearTimers(p);
    this.#pending.delete(p.id);
    this.#aborted.add(p.id);
    this.#lastEnded = this.#clock.now();
    p.stats.status = 'FAILED';
    p.stats.failure = reason;
    p.stats.durationMs = Math.round(this.#clock.now() - p.started);
    this.#counts.failed++;
    this.#host.log.warn({ checkpointId: p.id, kind: p.kind, reason }, `${p.kind} ${p.id} failed`);
    for (const h of p.acks.values()) {
      if (h.object) void this.#host.store.delete(h.object.name).catch(() => undefined);
    }
    p.reject?.(new SluiceError(ErrorCode.CheckpointFailed, `${p.kind} ${p.id} failed: ${reason}`));
  }

  #remember(stats: CheckpointStats): void {
    this.#history.push(stats);
    if (this.#history.length > HISTORY) this.#history.shift();
  }

  /** The first state object of a checkpoint that is missing or damaged (size and digest), if any. */
  async #damagedObject(metadata: CheckpointMetadata): Promise<string | undefined> {
    for (const h of metadata.handles) {
      if (h.object === null) continue;
      const status = await this.#host.store.check(h.object);
      if (status !== 'ok') return `state object ${h.object.name} is ${status}`;
    }
    return undefined;
  }

  async #deleteCheckpoint(c: RetainedCheckpoint): Promise<void> {
    const { store, log } = this.#host;
    try {
      const metadata = await store.getMetadata(c.metadata).catch(() => undefined);
      for (const h of metadata?.handles ?? []) if (h.object) await store.delete(h.object.name);
      await store.delete(c.metadata.name);
    } catch (err) {
      log.warn({ err, checkpointId: c.checkpointId }, 'could not delete an old checkpoint');
    }
  }
}
