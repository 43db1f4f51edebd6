/**
 * The contracts of sources and sinks. Built-in ones live in `src/api/sources/` and `src/api/sinks/`;
 * users may write their own against these interfaces.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../common/log.js';

export interface ConnectorContext {
  readonly jobId: string;
  readonly clusterId: string;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  readonly log: Logger;
  /** Aborted when the task is cancelled. */
  readonly signal: AbortSignal;
  /** The TaskManager's NATS connection (for JetStream connectors and result collection). */
  readonly nats: NatsConnection;
  /**
   * Whether the job takes checkpoints (`execution.checkpointing.interval` > 0). Exactly-once sinks then
   * hold their output back until the checkpoint that covers it completes.
   */
  readonly checkpointing: boolean;
  /**
   * After a restore from a checkpoint or savepoint: the state that every subtask of this connector stored
   * in it, indexed by the old subtask index (the parallelism may have changed since: a rescaled job).
   * Undefined on a fresh start, or when the checkpoint had no state for this connector.
   */
  readonly restoredState: readonly unknown[] | undefined;
  /**
   * Fails the task with `error`: for work a connector does in the background (a sink's asynchronous
   * flush). Absent outside a task (tests driving a connector directly).
   */
  readonly fail?: (error: unknown) => void;
  /**
   * Which run of the job this is: the leader epoch (0 without high availability) and the job's attempt
   * (one more after every restart). Later runs compare greater, epoch first. Undefined outside a task.
   */
  readonly executionAttempt?: { readonly epoch: number; readonly attempt: number };
}

export interface SourceContext<T> extends ConnectorContext {
  /** Emits a record; `timestamp` is its event time, when the source knows one. */
  collect(value: T, timestamp?: number): void;
  /** False while downstream is backpressured; `await ready()` then. */
  readonly writable: boolean;
  ready(): Promise<void>;
  /**
   * Registers how to read this subtask's position for a checkpoint. The task calls `snapshot` between two
   * `collect` calls (never during one); it returns the position just after the last record collected, as
   * plain data (msgpack: numbers, strings, arrays, objects). A replayable source restarts from it (see
   * `restoredState`). A source that registers nothing restarts from its beginning after a failure.
   */
  onCheckpoint(snapshot: () => unknown): void;
  /**
   * Reports this subtask's backlog: records it has not read yet (Flink's `pendingRecords` gauge; a
   * JetStream source reports its consumer's `num_pending`, its share of it). The autoscaler sizes the job to
   * catch up with it. Call it as often as is convenient; a source that never calls it has no backlog metric.
   */
  setPendingRecords(records: number): void;
}

export interface Source<T> {
  readonly name: string;
  /** 1 for sources that cannot run in parallel (collections); undefined when any parallelism works. */
  readonly maxParallelism?: number;
  /** Produces this subtask's share of the records; returns when that share is exhausted (bounded). */
  run(ctx: SourceContext<T>): Promise<void>;
}

export interface SinkWriter<T> {
  write(value: T, timestamp: number | undefined): void;
  /** False while the writer holds too much unflushed output; the task then awaits `ready()`. */
  readonly writable?: boolean;
  ready?(): Promise<void>;
  /** The input has ended: flush everything, resolve when it is durable. */
  finish?(): Promise<void>;
  /** The task ends (after finish, or on cancel/failure). */
  close?(): Promise<void> | void;
  /**
   * Checkpoint `checkpointId`'s barrier reached this writer (called between writes): return the state to
   * store with the checkpoint, as plain data — for a two-phase-commit sink, the transaction it pre-commits
   * (the output written since the previous checkpoint), to be made visible once the checkpoint completes.
   */
  snapshotState?(checkpointId: number): unknown;
  /**
   * Checkpoint `checkpointId` is committed (its pointer is stored): make the output it covers visible.
   * Notifications may be skipped (a later one covers the earlier checkpoints too) and may come again
   * after a restore: committing must be idempotent.
   */
  notifyCheckpointComplete?(checkpointId: number): Promise<void> | void;
}

export interface Sink<T> {
  readonly name: string;
  createWriter(ctx: ConnectorContext): SinkWriter<T> | Promise<SinkWriter<T>>;
}
