/** `execution.checkpointing.*` and `state.*` (see docs/configuration.md). */
export interface CheckpointingConfig {
  /** 0: no checkpoints. */
  intervalMs: number;
  mode: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE';
  timeoutMs: number;
  /**
   * A pending checkpoint that has received no acknowledgement for this long (since its trigger or its
   * last ack) is aborted, and the next one is triggered: its trigger or an ack was lost (core NATS, a
   * TaskManager gone mid-reconnect). Undefined: {@link ackTimeoutMs} derives it from the interval.
   */
  ackTimeoutMs?: number | undefined;
  minPauseMs: number;
  maxConcurrent: number;
  /** Completed checkpoints kept per job. */
  retained: number;
  /** Default savepoint location in the `state` object store. */
  savepointsDir: string;
}

/** The least ack timeout when derived from the interval: room for alignment under backpressure and GC. */
export const MIN_DERIVED_ACK_TIMEOUT_MS = 10_000;

/**
 * `execution.checkpointing.ack-timeout`, or, when unset, `max(2 × interval, 10 s)`; never above
 * `execution.checkpointing.timeout`. Two intervals without a single ack means one whole checkpoint was
 * missed while waiting: far past a slow one, which keeps acking subtask by subtask.
 */
export function ackTimeoutMs(config: CheckpointingConfig): number {
  const derived = Math.max(2 * config.intervalMs, MIN_DERIVED_ACK_TIMEOUT_MS);
  return Math.min(config.ackTimeoutMs ?? derived, config.timeoutMs);
}

export const DEFAULT_CHECKPOINTING: CheckpointingConfig = {
  intervalMs: 0,
  mode: 'EXACTLY_ONCE',
  timeoutMs: 600_000,
  minPauseMs: 0,
  maxConcurrent: 1,
  retained: 2,
  savepointsDir: 'savepoints',
};
