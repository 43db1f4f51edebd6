/**
 * What crosses the boundary between a TaskExecutor (main thread) and the worker thread of one of its
 * slots (`taskmanager.slot-isolation: thread`). Plain structured-clone data only: requests as the
 * JobMaster sent them, counters as numbers, errors as name/message/stack. No function, no connection and
 * no plan crosses: the worker has its own NATS connection and plans the job's bundle itself. The
 * exceptions: a MessagePort (transferred) to each other slot's worker, for thread channels, and local
 * recovery's copies of stored state, whose bytes are in a SharedArrayBuffer (shared between the threads).
 *
 * Both ends are this code base (the worker is started from the same installation), so messages are typed
 * but not schema-checked; anything from outside (the JobMaster) was validated before it got here.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SluiceConfig } from '../../config/config.js';
import type { LocalStateCopy } from '../checkpoint/local-state.js';
import type { SubtaskStateHandle } from '../checkpoint/protocol.js';
import type { DeployRequest } from './protocol.js';

/** Given to the worker when it starts. */
export interface SlotWorkerData {
  config: SluiceConfig;
  taskManagerId: string;
  slotIndex: number;
  /** This TaskManager process (a random token per start): thread channels connect only within it. */
  processToken: string;
  /** How often the worker reports its tasks' accumulators and counters. */
  progressIntervalMs: number;
  /** The TaskManager applies inline source maps to stack traces: so does the worker. */
  sourceMaps: boolean;
}

/** Main thread → worker. `id` numbers a task within its slot's pool. */
export type ToSlotWorker =
  | { type: 'deploy'; id: number; request: DeployRequest; epoch: number | undefined }
  | { type: 'cancel'; id: number; reason: string }
  | { type: 'trigger'; id: number; checkpointId: number; target: string; stop: boolean }
  | { type: 'complete'; id: number; checkpointId: number }
  /** Local recovery: a copy another slot's task kept (its bytes in shared memory: shared, not copied). */
  | { type: 'local-state'; copy: LocalStateCopy }
  /** A port to the worker of slot `slot` (its thread channels); replaces an earlier one. Transferred. */
  | { type: 'peer'; slot: number; port: MessagePort }
  | { type: 'stop' };

/** A task's operator counters, as numbers (the main thread shows them on the metrics endpoint). */
export interface CountersSnapshot {
  jobId: string;
  vertex: string;
  subtask: number;
  backpressuredMs: number;
  busyMs?: number;
  pendingRecords?: number;
  operators: Array<{ name: string; uid: string; recordsIn: number; recordsOut: number }>;
}

export interface TaskProgressSnapshot {
  id: number;
  accumulators: Record<string, number>;
  counters?: CountersSnapshot;
}

/** An error as it crossed the thread boundary. */
export interface ThreadError {
  name: string;
  message: string;
  stack?: string;
  /** The thrown value was not an Error: `message` is its String(). */
  plain?: boolean;
}

/** Worker → main thread. */
export type FromSlotWorker =
  | { type: 'running'; id: number }
  | { type: 'progress'; tasks: TaskProgressSnapshot[] }
  | { type: 'ack'; id: number; checkpointId: number; handle: SubtaskStateHandle; syncMs: number }
  | { type: 'decline'; id: number; checkpointId: number; reason: string }
  /** Local recovery: a task kept a copy of its stored state; the main thread hands it to the other slots. */
  | { type: 'local-state'; copy: LocalStateCopy }
  | { type: 'ended'; id: number; accumulators: Record<string, number>; error?: ThreadError };

export function toThreadError(err: unknown): ThreadError {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, ...(err.stack !== undefined ? { stack: err.stack } : {}) };
  }
  return { name: 'Error', message: String(err), plain: true };
}

/** The error on the main thread side: same name, message and stack as in the worker. */
export function fromThreadError(error: ThreadError): unknown {
  if (error.plain) return error.message;
  const err = new Error(error.message);
  err.name = error.name;
  if (error.stack !== undefined) err.stack = error.stack;
  return err;
}
