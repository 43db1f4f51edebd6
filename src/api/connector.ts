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
}

export interface SourceContext<T> extends ConnectorContext {
  /** Emits a record; `timestamp` is its event time, when the source knows one. */
  collect(value: T, timestamp?: number): void;
  /** False while downstream is backpressured; `await ready()` then. */
  readonly writable: boolean;
  ready(): Promise<void>;
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
}

export interface Sink<T> {
  readonly name: string;
  createWriter(ctx: ConnectorContext): SinkWriter<T> | Promise<SinkWriter<T>>;
}
