/**
 * Restart strategies (Flink's names and semantics): after a task failure, how long to wait before all of
 * the job's tasks restart — or that the job fails.
 */
import type { RestartStrategyConfig } from '../../config/restart-strategy-config.js';

export type { RestartStrategyConfig };

export interface RestartStrategy {
  /** A failure happened at `now` (ms); the wait before restarting, or undefined to fail the job. */
  onFailure(now: number): number | undefined;
  /** For messages: e.g. `fixed-delay (2 of 3 restarts used)`. */
  describe(): string;
}

class NoRestart implements RestartStrategy {
  onFailure(): undefined {
    return undefined;
  }
  describe(): string {
    return 'none';
  }
}

class FixedDelay implements RestartStrategy {
  #used = 0;
  constructor(readonly config: RestartStrategyConfig['fixedDelay']) {}
  onFailure(): number | undefined {
    if (this.#used >= this.config.attempts) return undefined;
    this.#used++;
    return this.config.delayMs;
  }
  describe(): string {
    return `fixed-delay (${this.#used} of ${this.config.attempts} restarts used)`;
  }
}

class ExponentialDelay implements RestartStrategy {
  #backoff: number | undefined;
  #lastFailure: number | undefined;
  #attempts = 0;
  constructor(
    readonly config: RestartStrategyConfig['exponentialDelay'],
    readonly random: () => number,
  ) {}
  onFailure(now: number): number | undefined {
    const c = this.config;
    if (this.#lastFailure !== undefined && now - this.#lastFailure >= c.resetBackoffThresholdMs) {
      this.#backoff = undefined;
      this.#attempts = 0;
    }
    this.#lastFailure = now;
    if (this.#attempts >= c.attemptsBeforeReset) return undefined;
    this.#attempts++;
    this.#backoff =
      this.#backoff === undefined
        ? c.initialBackoffMs
        : Math.min(this.#backoff * c.multiplier, c.maxBackoffMs);
    const jitter = this.#backoff * c.jitterFactor * (this.random() * 2 - 1);
    return Math.max(0, Math.round(this.#backoff + jitter));
  }
  describe(): string {
    return `exponential-delay (${this.#attempts} restarts since the last reset)`;
  }
}

class FailureRate implements RestartStrategy {
  readonly #failures: number[] = [];
  constructor(readonly config: RestartStrategyConfig['failureRate']) {}
  onFailure(now: number): number | undefined {
    this.#failures.push(now);
    while (this.#failures.length > 0 && now - this.#failures[0]! > this.config.intervalMs)
      this.#failures.shift();
    if (this.#failures.length > this.config.maxFailuresPerInterval) return undefined;
    return this.config.delayMs;
  }
  describe(): string {
    return `failure-rate (${this.#failures.length} failures in the last ${this.config.intervalMs} ms, at most ${this.config.maxFailuresPerInterval})`;
  }
}

export function createRestartStrategy(
  config: RestartStrategyConfig,
  random: () => number = Math.random,
  checkpointing = false,
): RestartStrategy {
  switch (config.type ?? (checkpointing ? 'exponential-delay' : 'none')) {
    case 'none':
      return new NoRestart();
    case 'fixed-delay':
      return new FixedDelay(config.fixedDelay);
    case 'exponential-delay':
      return new ExponentialDelay(config.exponentialDelay, random);
    case 'failure-rate':
      return new FailureRate(config.failureRate);
  }
}
