/**
 * The shapes of async I/O (Flink's AsyncFunction, ResultFuture, AsyncRetryStrategy) and the retry
 * strategies. `AsyncDataStream` (async-data-stream.ts) adds the operator to a stream.
 *
 * Refuses: a retry strategy with maxAttempts below 1, a negative delay, a multiplier below 1.
 */
import type { RuntimeContext } from './functions.js';

/** Collects the result of one request: call exactly one of the two methods, once (later calls are ignored). */
export interface ResultFuture<OUT> {
  /** The request's results: zero, one or more records. */
  complete(results: Iterable<OUT>): void;
  /** The request failed: retried when the retry strategy says so, otherwise the job fails. */
  completeExceptionally(error: unknown): void;
  /** Aborted when this attempt no longer matters: it timed out, or the task was cancelled. */
  readonly signal: AbortSignal;
}

/**
 * What a request may return: a Promise of its results (the Node way), or nothing when it completes the
 * ResultFuture itself (the Flink way). A rejected Promise completes the request exceptionally.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a Flink-style function returns nothing.
export type AsyncResult<OUT> = void | undefined | Promise<Iterable<OUT> | undefined | void>;

/** Flink's AsyncFunction (RichAsyncFunction when it has `open`/`close`). */
export interface AsyncFunction<IN, OUT> {
  open?(context: RuntimeContext): void | Promise<void>;
  /** Starts the request for `input`; completes `resultFuture`, or returns a Promise of the results. */
  asyncInvoke(input: IN, resultFuture: ResultFuture<OUT>): AsyncResult<OUT>;
  /**
   * The request for `input` did not complete within the timeout: complete `resultFuture` (e.g. with a
   * default, or with no result). Without this hook a timeout fails the job, as in Flink.
   */
  timeout?(input: IN, resultFuture: ResultFuture<OUT>): AsyncResult<OUT>;
  close?(): void | Promise<void>;
}

/** A plain function works too: `async (input) => [result]`. */
export type AsyncFunctionLike<IN, OUT> =
  | AsyncFunction<IN, OUT>
  | ((input: IN, resultFuture: ResultFuture<OUT>) => AsyncResult<OUT>);

/** Flink's AsyncRetryStrategy: when and how soon a request is tried again. */
export interface AsyncRetryStrategy<OUT> {
  /** Whether another attempt may follow attempt number `currentAttempts` (1 for the first call). */
  canRetry(currentAttempts: number): boolean;
  /** Milliseconds before the next attempt, after attempt number `currentAttempts`. */
  getBackoffTimeMillis(currentAttempts: number): number;
  /** Retry when the results match (e.g. empty). */
  readonly resultPredicate?: (results: readonly OUT[]) => boolean;
  /** Retry when the request failed with a matching error. */
  readonly exceptionPredicate?: (error: unknown) => boolean;
}

/** Flink's RetryPredicates. */
export const RetryPredicates = {
  /** Retry when a request returned no result. */
  EMPTY_RESULT_PREDICATE: (results: readonly unknown[]): boolean => results.length === 0,
  /** Retry on any error. */
  HAS_EXCEPTION_PREDICATE: (_error: unknown): boolean => true,
} as const;

/** Builds a retry strategy; `ifResult` / `ifException` say which outcomes are retried (none by default). */
export class AsyncRetryStrategyBuilder<OUT> {
  #result: ((results: readonly OUT[]) => boolean) | undefined;
  #exception: ((error: unknown) => boolean) | undefined;

  constructor(
    readonly maxAttempts: number,
    readonly backoff: (currentAttempts: number) => number,
  ) {
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
      throw new RangeError(`retry strategy: maxAttempts must be an integer >= 1, got ${maxAttempts}`);
    }
  }

  ifResult(predicate: (results: readonly OUT[]) => boolean): this {
    this.#result = predicate;
    return this;
  }

  ifException(predicate: (error: unknown) => boolean): this {
    this.#exception = predicate;
    return this;
  }

  build(): AsyncRetryStrategy<OUT> {
    const { maxAttempts, backoff } = this;
    return {
      // As Flink: up to maxAttempts retries after the first call.
      canRetry: (currentAttempts) => currentAttempts <= maxAttempts,
      getBackoffTimeMillis: backoff,
      ...(this.#result ? { resultPredicate: this.#result } : {}),
      ...(this.#exception ? { exceptionPredicate: this.#exception } : {}),
    };
  }
}

function nonNegative(name: string, ms: number): number {
  if (!Number.isFinite(ms) || ms < 0)
    throw new RangeError(`retry strategy: ${name} must be >= 0 ms, got ${ms}`);
  return ms;
}

/** Flink's AsyncRetryStrategies. */
export const AsyncRetryStrategies = {
  /** Never retries (the default). */
  NO_RETRY_STRATEGY: {
    canRetry: () => false,
    getBackoffTimeMillis: () => -1,
  } as AsyncRetryStrategy<never>,
  /** Up to `maxAttempts` retries, `delayMs` apart. */
  fixedDelay<OUT>(maxAttempts: number, delayMs: number): AsyncRetryStrategyBuilder<OUT> {
    nonNegative('delay', delayMs);
    return new AsyncRetryStrategyBuilder<OUT>(maxAttempts, () => delayMs);
  },
  /** Up to `maxAttempts` retries; the delay starts at `initialDelayMs` and grows by `multiplier` up to `maxDelayMs`. */
  exponentialBackoff<OUT>(
    maxAttempts: number,
    initialDelayMs: number,
    maxDelayMs: number,
    multiplier = 2,
  ): AsyncRetryStrategyBuilder<OUT> {
    nonNegative('initial delay', initialDelayMs);
    nonNegative('max delay', maxDelayMs);
    if (!(multiplier >= 1))
      throw new RangeError(`retry strategy: multiplier must be >= 1, got ${multiplier}`);
    return new AsyncRetryStrategyBuilder<OUT>(maxAttempts, (attempts) =>
      Math.min(maxDelayMs, initialDelayMs * multiplier ** (attempts - 1)),
    );
  },
} as const;

export type AsyncOutputMode = 'ordered' | 'unordered';
