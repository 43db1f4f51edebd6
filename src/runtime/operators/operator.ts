/**
 * The contract between a task and the operators chained inside it (as Flink's StreamOperator).
 *
 * A task calls `open` once, then `processElement` for each record and `processWatermark` for each
 * advance of its input watermark, `endInput` when every input has ended, and `close` at the end. Calls
 * are never concurrent. Records are processed synchronously (no Promise from processElement), so an
 * operator's work for one record finishes before the next one starts.
 */
import type { Logger } from '../../common/log.js';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import type { TimerService } from '../state/timer-service.js';

export interface Output<T> {
  /** Emits a record downstream; `timestamp` is its event time, when it has one. */
  collect(value: T, timestamp: number | undefined): void;
  /** Emits a watermark downstream (operators that hold back event time, like windows, emit their own). */
  emitWatermark(watermark: number): void;
  /**
   * Emits a record to the side output with this OutputTag id (absent, or dropping the record, when no
   * edge reads the tag).
   */
  sideOutput?(tag: string, value: unknown, timestamp: number | undefined): void;
}

export interface OperatorContext {
  readonly jobId: string;
  readonly operatorUid: string;
  readonly operatorName: string;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  readonly maxParallelism: number;
  readonly log: Logger;
  /** Aborted when the task is cancelled. */
  readonly signal: AbortSignal;
  /** Present when the operator runs after a keyBy: per-key state, the current key set by the task. */
  readonly keyedState: KeyedStateBackend | undefined;
  /** Event-time and processing-time timers (per key when keyed). */
  readonly timers: TimerService;
  /** Wall-clock milliseconds. */
  processingTime(): number;
  /** The operator's current input watermark (-Infinity before the first). */
  currentWatermark(): number;
  /**
   * Fails the task with `error`: for work that ends outside `processElement` (an async request's result,
   * a timer). The task stops as soon as it next waits.
   */
  fail?(error: unknown): void;
}

export interface StreamOperator<IN = unknown, OUT = unknown> {
  open?(ctx: OperatorContext, output: Output<OUT>): void | Promise<void>;
  /**
   * Every operator of the chain is open and its state restored; no input has come yet. Operators that emit
   * without input (an async operator's restored requests) begin here.
   */
  start?(): void;
  processElement(value: IN, timestamp: number | undefined): void;
  /** Default (when absent): the task forwards the watermark to the output unchanged. */
  processWatermark?(watermark: number): void;
  /** Every input has ended: emit what is still held (windows fire, buffers flush). */
  endInput?(): void | Promise<void>;
  close?(): void | Promise<void>;
  /**
   * A checkpoint's barrier reached the operator: its own state beyond keyed state and timers (a sink's
   * pending transaction), as plain data; undefined for none. Called between two records.
   */
  snapshotState?(checkpointId: number): unknown;
  /**
   * `snapshotState` returns broadcast state, the same in every subtask: a restored subtask is given one
   * old subtask's copy (or a few, when it reads their objects for keyed state) instead of all of them.
   */
  readonly broadcastState?: boolean;
  /** The checkpoint is committed: make the output it covers visible (sinks). */
  notifyCheckpointComplete?(checkpointId: number): void | Promise<void>;
  /** False while the operator holds too much unflushed output (sinks); the task then awaits `ready()`. */
  readonly writable?: boolean;
  ready?(): Promise<void>;
}

/** Largest watermark: sent when an input ends, so event-time operators fire everything they hold. */
export const MAX_WATERMARK = Number.MAX_SAFE_INTEGER;
