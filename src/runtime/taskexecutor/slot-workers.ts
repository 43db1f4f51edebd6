/**
 * The worker threads of a TaskManager's slots (`taskmanager.slot-isolation: thread`), seen from the
 * TaskExecutor on the main thread: one worker per slot, started with the TaskManager and started again
 * when it dies.
 *
 * It promises: `run()` settles exactly once per task, as the in-thread runner does (resolves when the
 * task finished, rejects with its failure — or with the abort reason once cancelled); a worker that dies
 * (user code threw outside a task, called process.exit, ran out of memory) fails only the tasks of its
 * slot; a task still running `task.cancellation.timeout` after its cancel (user code blocking the
 * worker's thread) gets its worker terminated and replaced. The TaskExecutor's registration, heartbeats,
 * execution table and JobMaster messages never leave the main thread, so none of this can stop them.
 * It refuses (ILLEGAL_STATE) a task for a slot it has no worker for (being restarted, or stopped).
 *
 * Local recovery: a copy of stored state one worker kept (its bytes in a SharedArrayBuffer) is handed to
 * every other worker, so that a subtask deployed into any slot of this TaskManager finds it.
 *
 * Every two workers get a MessageChannel between them (again for a worker started anew): their thread
 * channels (`network/thread-channels.ts`) carry the frames between subtasks of different slots of this
 * TaskManager without NATS. A worker that dies closes its ports: the channels through them fail.
 */
import { randomUUID } from 'node:crypto';
import { MessageChannel, Worker } from 'node:worker_threads';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { SluiceConfig } from '../../config/config.js';
import type { TaskCountersSink } from '../../metrics/task-metrics.js';
import type { LocalStateCopy } from '../checkpoint/local-state.js';
import {
  type CountersSnapshot,
  type FromSlotWorker,
  fromThreadError,
  type SlotWorkerData,
  type ToSlotWorker,
} from './slot-protocol.js';
import type { TaskLaunch } from './task-runner.js';

export interface SlotWorkerPoolOptions {
  config: SluiceConfig;
  taskManagerId: string;
  slots: number;
  log: Logger;
  /** Where the tasks' operator counters are shown (the TaskManager's metrics endpoint). */
  metrics?: TaskCountersSink;
  /** A cancelled task still running after this long has its worker terminated. */
  cancellationTimeoutMs: number;
  /** How often workers report accumulators and counters (default 200 ms). */
  progressIntervalMs?: number;
  /**
   * The worker's module (`src/entrypoint/slot-worker.ts`): it assembles what a slot needs (planning
   * included), which this layer must not import.
   */
  workerUrl: URL;
}

/** A worker that died sooner than this after its start is started again only after a pause. */
const QUICK_DEATH_MS = 5_000;
const RESPAWN_PAUSE_MS = 1_000;
const STOP_TIMEOUT_MS = 5_000;

interface PendingTask {
  launch: TaskLaunch;
  resolve: () => void;
  reject: (err: unknown) => void;
  counters: CountersSnapshot | undefined;
  unregister: (() => void) | undefined;
  cancelTimer: NodeJS.Timeout | undefined;
}

class SlotThread {
  readonly #index: number;
  readonly #options: SlotWorkerPoolOptions;
  readonly #processToken: string;
  /** Called with each new worker, to connect it with the other slots' workers. */
  readonly #onSpawn: (index: number, worker: Worker) => void;
  /** Called with each copy of stored state a task of this slot kept (local recovery). */
  readonly #onLocalState: (index: number, copy: LocalStateCopy) => void;
  readonly #log: Logger;
  readonly #tasks = new Map<number, PendingTask>();
  #worker: Worker | undefined;
  #startedAt = 0;
  #respawn: NodeJS.Timeout | undefined;
  #stopping = false;
  #nextId = 0;

  constructor(
    index: number,
    options: SlotWorkerPoolOptions,
    processToken: string,
    onSpawn: (index: number, worker: Worker) => void,
    onLocalState: (index: number, copy: LocalStateCopy) => void,
  ) {
    this.#index = index;
    this.#options = options;
    this.#processToken = processToken;
    this.#onSpawn = onSpawn;
    this.#onLocalState = onLocalState;
    this.#log = options.log.child({ slot: index });
  }

  /** The live worker (undefined while it is being replaced, or stopped). */
  get worker(): Worker | undefined {
    return this.#worker;
  }

  /** The worker's thread id (for tests and logs); undefined while it is being replaced. */
  get threadId(): number | undefined {
    return this.#worker?.threadId;
  }

  run(launch: TaskLaunch): Promise<void> {
    // A worker waiting out its respawn pause is started at once when work comes.
    if (!this.#worker && !this.#stopping && this.#respawn !== undefined) {
      clearTimeout(this.#respawn);
      this.#respawn = undefined;
      this.#spawn();
    }
    const worker = this.#worker;
    if (!worker) {
      return Promise.reject(
        new SluiceError(
          ErrorCode.IllegalState,
          `slot ${this.#index} has no worker thread right now (it is being restarted)`,
        ),
      );
    }
    const id = ++this.#nextId;
    return new Promise<void>((resolve, reject) => {
      const task: PendingTask = {
        launch,
        resolve,
        reject,
        counters: undefined,
        unregister: undefined,
        cancelTimer: undefined,
      };
      this.#tasks.set(id, task);
      launch.controls.trigger = (checkpointId, target, stop) =>
        this.#post({ type: 'trigger', id, checkpointId, target, stop });
      launch.controls.complete = (checkpointId) => this.#post({ type: 'complete', id, checkpointId });
      this.#post({ type: 'deploy', id, request: launch.request, epoch: launch.epoch });
      const signal = launch.ctx.signal;
      const onAbort = () => {
        if (!this.#tasks.has(id)) return;
        const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
        this.#post({ type: 'cancel', id, reason });
        task.cancelTimer = setTimeout(() => this.#cancelTimedOut(id), this.#options.cancellationTimeoutMs);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Starts the first worker. */
  start(): void {
    this.#spawn();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#respawn);
    const worker = this.#worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'stop' } satisfies ToSlotWorker);
    const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Hands another slot's copy of stored state to this slot's worker (local recovery). */
  shareLocalState(copy: LocalStateCopy): void {
    this.#post({ type: 'local-state', copy });
  }

  #post(message: ToSlotWorker): void {
    this.#worker?.postMessage(message);
  }

  #spawn(): void {
    const data: SlotWorkerData = {
      config: this.#options.config,
      taskManagerId: this.#options.taskManagerId,
      slotIndex: this.#index,
      processToken: this.#processToken,
      progressIntervalMs: this.#options.progressIntervalMs ?? 200,
      sourceMaps: process.sourceMapsEnabled,
    };
    const worker = new Worker(this.#options.workerUrl, {
      workerData: data,
      name: `sluice slot ${this.#index}`,
    });
    this.#worker = worker;
    this.#startedAt = Date.now();
    this.#onSpawn(this.#index, worker);
    let death: unknown;
    worker.on('message', (message: FromSlotWorker) => this.#onMessage(message));
    worker.on('error', (err) => {
      death = err;
    });
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      if (this.#stopping && death === undefined && code === 0) {
        this.#failAll(new Error('TaskManager shutting down'));
        return;
      }
      const why =
        death instanceof Error
          ? `${death.name}: ${death.message}`
          : death !== undefined
            ? String(death)
            : `it exited with code ${code}`;
      const error = new Error(`the worker thread of slot ${this.#index} died (${why})`, { cause: death });
      if (death instanceof Error && death.stack) error.stack = `${error.stack}\ncaused by ${death.stack}`;
      this.#log.error({ err: error.message, tasks: this.#tasks.size }, 'slot worker thread died');
      this.#failAll(error);
      this.#scheduleRespawn();
    });
  }

  #scheduleRespawn(): void {
    if (this.#stopping) return;
    const pause = Date.now() - this.#startedAt < QUICK_DEATH_MS ? RESPAWN_PAUSE_MS : 0;
    this.#respawn = setTimeout(() => {
      this.#respawn = undefined;
      if (!this.#stopping && !this.#worker) this.#spawn();
    }, pause);
  }

  /** A cancelled task did not end: its user code blocks the thread. Only terminating the worker stops it. */
  #cancelTimedOut(id: number): void {
    const worker = this.#worker;
    if (!this.#tasks.has(id) || !worker) return;
    this.#log.warn(
      { cancellationTimeoutMs: this.#options.cancellationTimeoutMs, tasks: this.#tasks.size },
      'a cancelled task did not end within task.cancellation.timeout: terminating the slot worker thread',
    );
    this.#worker = undefined;
    this.#failAll(
      new Error(
        `the worker thread of slot ${this.#index} was terminated: a cancelled task in it did not end within ${this.#options.cancellationTimeoutMs} ms`,
      ),
    );
    void worker.terminate();
    if (!this.#stopping) this.#spawn();
  }

  #failAll(error: Error): void {
    const tasks = [...this.#tasks.values()];
    this.#tasks.clear();
    for (const task of tasks) this.#settle(task, error);
  }

  #settle(task: PendingTask, error?: unknown): void {
    clearTimeout(task.cancelTimer);
    task.unregister?.();
    task.launch.controls.trigger = undefined;
    task.launch.controls.complete = undefined;
    if (error === undefined) task.resolve();
    else task.reject(error);
  }

  #onMessage(message: FromSlotWorker): void {
    if (message.type === 'progress') {
      for (const p of message.tasks) {
        const task = this.#tasks.get(p.id);
        if (!task) continue;
        Object.assign(task.launch.ctx.accumulators, p.accumulators);
        if (p.counters) this.#showCounters(task, p.counters);
      }
      return;
    }
    if (message.type === 'local-state') {
      this.#onLocalState(this.#index, message.copy);
      return;
    }
    const task = this.#tasks.get(message.id);
    if (!task) return;
    switch (message.type) {
      case 'running':
        task.launch.ctx.running();
        break;
      case 'ack':
        task.launch.ack(message.checkpointId, message.handle, message.syncMs);
        break;
      case 'decline':
        task.launch.decline(message.checkpointId, message.reason);
        break;
      case 'ended':
        this.#tasks.delete(message.id);
        Object.assign(task.launch.ctx.accumulators, message.accumulators);
        this.#settle(task, message.error === undefined ? undefined : fromThreadError(message.error));
        break;
    }
  }

  #showCounters(task: PendingTask, counters: CountersSnapshot): void {
    task.counters = counters;
    if (task.unregister || !this.#options.metrics) return;
    const latest = () => task.counters ?? counters;
    task.unregister = this.#options.metrics.add({
      jobId: counters.jobId,
      vertex: counters.vertex,
      subtask: counters.subtask,
      backpressuredMs: () => latest().backpressuredMs,
      busyMs: () => latest().busyMs ?? 0,
      pendingRecords: () => latest().pendingRecords,
      operators: counters.operators.map((o, i) => ({
        name: o.name,
        uid: o.uid,
        recordsIn: () => latest().operators[i]?.recordsIn ?? 0,
        recordsOut: () => latest().operators[i]?.recordsOut ?? 0,
      })),
    });
  }
}

/** One worker thread per slot; see the module comment. */
export class SlotWorkerPool {
  readonly #threads: SlotThread[];

  constructor(options: SlotWorkerPoolOptions) {
    const token = randomUUID();
    this.#threads = Array.from(
      { length: options.slots },
      (_, i) =>
        new SlotThread(
          i,
          options,
          token,
          (index, worker) => this.#connectPeers(index, worker),
          (index, copy) => {
            for (const [other, thread] of this.#threads.entries())
              if (other !== index) thread.shareLocalState(copy);
          },
        ),
    );
    for (const thread of this.#threads) thread.start();
  }

  /** Gives a new worker a port to every other live worker, and them one to it. */
  #connectPeers(index: number, worker: Worker): void {
    for (let other = 0; other < this.#threads.length; other++) {
      const peer = other === index ? undefined : this.#threads[other]?.worker;
      if (peer === undefined) continue;
      const { port1, port2 } = new MessageChannel();
      worker.postMessage({ type: 'peer', slot: other, port: port1 } satisfies ToSlotWorker, [port1]);
      peer.postMessage({ type: 'peer', slot: index, port: port2 } satisfies ToSlotWorker, [port2]);
    }
  }

  /** Runs a task in its slot's worker; settles as the in-thread runner would. */
  run(slotIndex: number, launch: TaskLaunch): Promise<void> {
    const thread = this.#threads[slotIndex];
    if (!thread) {
      return Promise.reject(
        new SluiceError(ErrorCode.IllegalState, `no worker thread for slot ${slotIndex}`),
      );
    }
    return thread.run(launch);
  }

  /** Thread id of each slot's worker (undefined while one is replaced). */
  threadIds(): Array<number | undefined> {
    return this.#threads.map((t) => t.threadId);
  }

  /** Stops every worker (after the TaskExecutor cancelled their tasks): drains their NATS connections. */
  async stop(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.stop()));
  }
}
