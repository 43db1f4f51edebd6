/** `restart-strategy.*` (see docs/configuration.md); the strategies themselves are in `src/runtime/jobmaster/restart-strategy.ts`. */
export interface RestartStrategyConfig {
  /** Unset: `exponential-delay` for a job that checkpoints, else `none` (as Flink). */
  type?: 'none' | 'fixed-delay' | 'exponential-delay' | 'failure-rate' | undefined;
  fixedDelay: { attempts: number; delayMs: number };
  exponentialDelay: {
    initialBackoffMs: number;
    maxBackoffMs: number;
    multiplier: number;
    resetBackoffThresholdMs: number;
    jitterFactor: number;
    attemptsBeforeReset: number;
  };
  failureRate: { maxFailuresPerInterval: number; intervalMs: number; delayMs: number };
}
