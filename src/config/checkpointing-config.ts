/** `execution.checkpointing.*` and `state.*` (see docs/configuration.md). */
export interface CheckpointingConfig {
  /** 0: no checkpoints. */
  intervalMs: number;
  mode: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE';
  timeoutMs: number;
  minPauseMs: number;
  maxConcurrent: number;
  /** Completed checkpoints kept per job. */
  retained: number;
  /** Default savepoint location in the `state` object store. */
  savepointsDir: string;
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
