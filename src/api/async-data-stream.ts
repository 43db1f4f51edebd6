/**
 * Async I/O, as Flink's `AsyncDataStream`: calls an external service (a database, an HTTP API) per record
 * without blocking the task, with at most `capacity` requests in flight per subtask.
 *
 * Promises:
 * - `orderedWait` emits results in input order; `unorderedWait` emits each result as soon as its request
 *   completes, but never across a watermark (records before a watermark are emitted before it, records
 *   after it after it).
 * - A result keeps its input's timestamp.
 * - When `capacity` requests are in flight the task takes no more input (backpressure).
 * - The inputs of pending requests are stored with each checkpoint and invoked again after a restore: no
 *   result is lost, and none is emitted twice by an exactly-once job.
 * - A request not completed within `timeout` ms (its retries included) calls the function's `timeout` hook;
 *   without one, the job fails, naming the operator.
 * - When the input ends, every pending request completes before the operator finishes.
 *
 * Refuses: a capacity or timeout that is not a positive integer, a function without `asyncInvoke`.
 */
import type {
  AsyncFunction,
  AsyncFunctionLike,
  AsyncOutputMode,
  AsyncRetryStrategy,
} from './async-functions.js';
import { DataStream } from './datastream.js';

export {
  type AsyncFunction,
  type AsyncFunctionLike,
  type AsyncOutputMode,
  type AsyncResult,
  AsyncRetryStrategies,
  type AsyncRetryStrategy,
  AsyncRetryStrategyBuilder,
  type ResultFuture,
  RetryPredicates,
} from './async-functions.js';

/** Flink's default capacity of an async operator. */
export const DEFAULT_ASYNC_CAPACITY = 100;

function toAsyncFunction<IN, OUT>(fn: AsyncFunctionLike<IN, OUT>): AsyncFunction<IN, OUT> {
  if (typeof fn === 'function') return { asyncInvoke: fn };
  if (typeof fn !== 'object' || fn === null || typeof fn.asyncInvoke !== 'function') {
    throw new TypeError(
      'AsyncDataStream: the async function must be a function or have an asyncInvoke method',
    );
  }
  return fn;
}

function add<IN, OUT>(
  mode: AsyncOutputMode,
  stream: DataStream<IN>,
  fn: AsyncFunctionLike<IN, OUT>,
  timeoutMs: number,
  capacity: number,
  retry: AsyncRetryStrategy<OUT> | undefined,
): DataStream<OUT> {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`AsyncDataStream: timeout must be a positive integer of ms, got ${timeoutMs}`);
  }
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new RangeError(`AsyncDataStream: capacity must be a positive integer, got ${capacity}`);
  }
  const t = stream.environment.addTransformation(
    'Async Wait Operator',
    {
      kind: 'async',
      fn: toAsyncFunction(fn) as AsyncFunction<unknown, unknown>,
      mode,
      timeoutMs,
      capacity,
      retry: retry as AsyncRetryStrategy<unknown> | undefined,
    },
    [stream.transformation],
  );
  return new DataStream<OUT>(stream.environment, t);
}

/** Flink's AsyncDataStream: adds an async I/O operator after a stream. */
export const AsyncDataStream = {
  /** Results in input order. */
  orderedWait<IN, OUT>(
    stream: DataStream<IN>,
    fn: AsyncFunctionLike<IN, OUT>,
    timeoutMs: number,
    capacity: number = DEFAULT_ASYNC_CAPACITY,
    retryStrategy?: AsyncRetryStrategy<OUT>,
  ): DataStream<OUT> {
    return add('ordered', stream, fn, timeoutMs, capacity, retryStrategy);
  },
  /** Results as requests complete, never across a watermark. */
  unorderedWait<IN, OUT>(
    stream: DataStream<IN>,
    fn: AsyncFunctionLike<IN, OUT>,
    timeoutMs: number,
    capacity: number = DEFAULT_ASYNC_CAPACITY,
    retryStrategy?: AsyncRetryStrategy<OUT>,
  ): DataStream<OUT> {
    return add('unordered', stream, fn, timeoutMs, capacity, retryStrategy);
  },
  orderedWaitWithRetry<IN, OUT>(
    stream: DataStream<IN>,
    fn: AsyncFunctionLike<IN, OUT>,
    timeoutMs: number,
    capacity: number,
    retryStrategy: AsyncRetryStrategy<OUT>,
  ): DataStream<OUT> {
    return add('ordered', stream, fn, timeoutMs, capacity, retryStrategy);
  },
  unorderedWaitWithRetry<IN, OUT>(
    stream: DataStream<IN>,
    fn: AsyncFunctionLike<IN, OUT>,
    timeoutMs: number,
    capacity: number,
    retryStrategy: AsyncRetryStrategy<OUT>,
  ): DataStream<OUT> {
    return add('unordered', stream, fn, timeoutMs, capacity, retryStrategy);
  },
} as const;
