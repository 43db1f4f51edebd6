/**
 * The operator behind `AsyncDataStream` (Flink's AsyncWaitOperator): invokes an AsyncFunction per record
 * and emits the results when they come back, without blocking the task.
 *
 * Promises:
 * - At most `capacity` records are held between their invocation and the emission of their results (in
 *   ordered mode a completed result waiting behind a slower one still counts). Records beyond that, which
 *   arrive within one input frame, wait uninvoked in arrival order; the operator is not `writable` while
 *   `capacity` or more records are held or waiting, so the task takes no more input.
 * - Ordered mode emits results in input order, each watermark after the results of the records before it.
 *   Unordered mode emits results as they complete, but a watermark is a barrier: results of records after it
 *   are emitted after it, and it is emitted once every record before it has been emitted.
 * - A result carries its input's timestamp.
 * - Timeout: measured from the first invocation, retries included. On timeout the function's `timeout`
 *   hook completes the record; without one the task fails with an error naming the operator.
 * - Retry: a result or error matching the strategy's predicate is retried after the strategy's backoff,
 *   while `canRetry` allows; a result then still matching is emitted; an error then still matching fails.
 *   A completion of an attempt that was superseded (timed out) is ignored.
 * - Checkpoints: `snapshotState` stores the input (and timestamp) of every record not yet emitted, in
 *   order. After a restore, `start` invokes them again before any new input: old subtask k's records go to
 *   new subtask k mod p, or, on a keyed stream, to the subtask owning their key. Watermarks held in the queue
 *   are not stored: after a restore the restored records come before any watermark.
 * - `endInput` resolves once every record's results are emitted (or rejects with the failure).
 *
 * Refuses: completing a request twice (the second completion is ignored, as in Flink).
 */
import type { AsyncFunction, AsyncResult, ResultFuture } from '../../api/async-functions.js';
import type { TransformationSpec } from '../../api/transformation.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import { ownsKey } from '../checkpoint/subtask-state.js';
import { keyGroupRange } from '../state/key-groups.js';
import type { OperatorContext, Output, StreamOperator } from './operator.js';
import { runtimeContext } from './runtime-context.js';

export type AsyncWaitOperatorSpec = Extract<TransformationSpec, { kind: 'async' }>;

/** What one subtask stores in a checkpoint: the records not yet emitted, as [input, timestamp | null]. */
export interface AsyncWaitState {
  v: 1;
  records: Array<[unknown, number | null]>;
}

interface RecordEntry {
  kind: 'record';
  input: unknown;
  timestamp: number | undefined;
  status: 'waiting' | 'running' | 'done';
  results: unknown[] | undefined;
  /** Calls of asyncInvoke so far. */
  attempts: number;
  /** Identifies the current attempt: completions of earlier ones are ignored. */
  attempt: number;
  controller: AbortController | undefined;
  timeoutTimer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
}

type Entry = RecordEntry | { kind: 'watermark'; watermark: number };

export interface AsyncWaitOperatorOptions {
  /** Connector state of the old subtasks (after a restore). */
  restored: readonly unknown[] | undefined;
  /** The key of a record, when the operator runs on a keyed stream. */
  keySelector: ((value: unknown) => unknown) | undefined;
}

export class AsyncWaitOperator implements StreamOperator {
  readonly fn: AsyncFunction<unknown, unknown>;
  readonly ordered: boolean;
  readonly timeoutMs: number;
  readonly capacity: number;
  readonly #spec: AsyncWaitOperatorSpec;
  readonly #options: AsyncWaitOperatorOptions;
  #ctx!: OperatorContext;
  #out!: Output<unknown>;
  /** Records (in arrival order) and the watermarks between them, until emitted. */
  #queue: Entry[] = [];
  /** Records not yet invoked (beyond capacity). */
  #waiting: RecordEntry[] = [];
  /** Records invoked and not yet emitted. */
  #held = 0;
  #peakInFlight = 0;
  #inFlight = 0;
  #failure: Error | undefined;
  #closed = false;
  /** Woken whenever a record is emitted or the operator fails. */
  #waiters: Array<() => void> = [];

  constructor(spec: AsyncWaitOperatorSpec, options: AsyncWaitOperatorOptions) {
    this.#spec = spec;
    this.fn = spec.fn;
    this.ordered = spec.mode === 'ordered';
    this.timeoutMs = spec.timeoutMs;
    this.capacity = spec.capacity;
    this.#options = options;
  }

  /** The most requests of this operator in flight at once (for tests and diagnostics). */
  get peakInFlight(): number {
    return this.#peakInFlight;
  }

  async open(ctx: OperatorContext, output: Output<unknown>): Promise<void> {
    this.#ctx = ctx;
    this.#out = output;
    await this.fn.open?.(runtimeContext(ctx));
  }

  /** The chain is open and state restored: the requests a checkpoint had pending are invoked again. */
  start(): void {
    const restored = this.#options.restored;
    if (restored === undefined) return;
    const { subtaskIndex, parallelism, maxParallelism } = this.#ctx;
    const key = this.#options.keySelector;
    const range = keyGroupRange(subtaskIndex, maxParallelism, parallelism);
    let n = 0;
    for (let k = 0; k < restored.length; k++) {
      const state = restored[k] as Partial<AsyncWaitState> | null | undefined;
      if (state === undefined || state === null) continue;
      if (typeof state !== 'object' || state.v !== 1 || !Array.isArray(state.records)) {
        throw new SluiceError(
          ErrorCode.CorruptedState,
          `async operator '${this.#ctx.operatorName}': the checkpointed state of old subtask ${k} is not a list of pending requests`,
        );
      }
      if (key === undefined && k % parallelism !== subtaskIndex) continue;
      for (const [input, ts] of state.records) {
        if (key !== undefined && !ownsKey(key(input), maxParallelism, range)) continue;
        this.processElement(input, ts ?? undefined);
        n++;
      }
    }
    if (n > 0)
      this.#ctx.log.info({ requests: n }, 'async requests restored from the checkpoint invoked again');
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    if (this.#failure !== undefined) throw this.#failure;
    const entry: RecordEntry = {
      kind: 'record',
      input: value,
      timestamp,
      status: 'waiting',
      results: undefined,
      attempts: 0,
      attempt: 0,
      controller: undefined,
      timeoutTimer: undefined,
      retryTimer: undefined,
    };
    this.#queue.push(entry);
    this.#waiting.push(entry);
    this.#pump();
  }

  processWatermark(watermark: number): void {
    if (this.#queue.length === 0) this.#out.emitWatermark(watermark);
    else this.#queue.push({ kind: 'watermark', watermark });
  }

  get writable(): boolean {
    return this.#failure === undefined && this.#held + this.#waiting.length < this.capacity;
  }

  async ready(): Promise<void> {
    while (this.#failure === undefined && this.#held + this.#waiting.length >= this.capacity) {
      await this.#changed();
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  snapshotState(): AsyncWaitState | undefined {
    const records: Array<[unknown, number | null]> = [];
    for (const e of this.#queue) if (e.kind === 'record') records.push([e.input, e.timestamp ?? null]);
    return records.length > 0 ? { v: 1, records } : undefined;
  }

  /** Every input has ended: resolves once every record's results (and held watermarks) are emitted. */
  async endInput(): Promise<void> {
    while (this.#failure === undefined && this.#queue.length > 0) await this.#changed();
    if (this.#failure !== undefined) throw this.#failure;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const e of this.#queue) if (e.kind === 'record') this.#clearTimers(e, true);
    this.#queue = [];
    this.#waiting = [];
    this.#wake();
    await this.fn.close?.();
  }

  #pump(): void {
    while (this.#held < this.capacity && this.#waiting.length > 0) {
      const e = this.#waiting.shift()!;
      this.#held++;
      this.#inFlight++;
      if (this.#inFlight > this.#peakInFlight) this.#peakInFlight = this.#inFlight;
      e.status = 'running';
      e.timeoutTimer = setTimeout(() => this.#onTimeout(e), this.timeoutMs);
      this.#invoke(e);
    }
  }

  #invoke(e: RecordEntry): void {
    e.attempts++;
    const attempt = ++e.attempt;
    e.controller = new AbortController();
    const future = this.#future(e, attempt, e.controller.signal, false);
    this.#call(() => this.fn.asyncInvoke(e.input, future), future);
  }

  /** Runs asyncInvoke or timeout: a returned Promise completes the future; a throw completes it exceptionally. */
  #call(run: () => AsyncResult<unknown>, future: ResultFuture<unknown>): void {
    let returned: AsyncResult<unknown>;
    try {
      returned = run();
    } catch (err) {
      future.completeExceptionally(err);
      return;
    }
    if (returned !== undefined && typeof (returned as Promise<unknown>).then === 'function') {
      (returned as Promise<Iterable<unknown> | undefined>).then(
        (results) => {
          if (results !== undefined) future.complete(results);
        },
        (err: unknown) => future.completeExceptionally(err),
      );
    }
  }

  #future(e: RecordEntry, attempt: number, signal: AbortSignal, fromTimeout: boolean): ResultFuture<unknown> {
    let settled = false;
    const current = () => {
      if (settled) return false;
      settled = true;
      return !this.#closed && e.status === 'running' && e.attempt === attempt;
    };
    return {
      signal,
      complete: (results) => {
        if (!current()) return;
        let list: unknown[];
        try {
          list = [...results];
        } catch (err) {
          this.#fail(this.#error(e, 'completed with results that are not iterable', err));
          return;
        }
        if (fromTimeout) this.#finish(e, list);
        else this.#onResult(e, list);
      },
      completeExceptionally: (err) => {
        if (!current()) return;
        if (fromTimeout) this.#fail(this.#error(e, 'timeout hook failed', err));
        else this.#onError(e, err);
      },
    };
  }

  #onResult(e: RecordEntry, results: unknown[]): void {
    const retry = this.#spec.retry;
    if (retry?.resultPredicate?.(results) && retry.canRetry(e.attempts)) this.#retry(e);
    else this.#finish(e, results);
  }

  #onError(e: RecordEntry, err: unknown): void {
    const retry = this.#spec.retry;
    if (retry?.exceptionPredicate?.(err) && retry.canRetry(e.attempts)) {
      this.#retry(e);
      return;
    }
    this.#fail(this.#error(e, `failed after ${e.attempts} attempt(s)`, err));
  }

  #retry(e: RecordEntry): void {
    const delay = Math.max(0, this.#spec.retry!.getBackoffTimeMillis(e.attempts));
    e.retryTimer = setTimeout(() => {
      e.retryTimer = undefined;
      if (!this.#closed && e.status === 'running') this.#invoke(e);
    }, delay);
  }

  #onTimeout(e: RecordEntry): void {
    e.timeoutTimer = undefined;
    if (this.#closed || e.status !== 'running') return;
    // The attempt under way (or the retry due) no longer counts.
    e.attempt++;
    if (e.retryTimer !== undefined) clearTimeout(e.retryTimer);
    e.retryTimer = undefined;
    e.controller?.abort(new Error(`timed out after ${this.timeoutMs} ms`));
    const hook = this.fn.timeout;
    if (hook === undefined) {
      this.#fail(this.#error(e, `timed out after ${this.timeoutMs} ms (${e.attempts} attempt(s))`));
      return;
    }
    e.controller = new AbortController();
    const future = this.#future(e, e.attempt, e.controller.signal, true);
    this.#call(() => hook.call(this.fn, e.input, future), future);
  }

  #finish(e: RecordEntry, results: unknown[]): void {
    this.#clearTimers(e, false);
    e.status = 'done';
    e.results = results;
    this.#inFlight--;
    try {
      if (this.ordered) this.#emitOrdered();
      else this.#emitUnordered();
      this.#pump();
    } catch (err) {
      // Thrown by an operator downstream in the chain (or asyncInvoke of a record invoked now): outside
      // the task's loop, so the task is told.
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
    this.#wake();
  }

  #emitOrdered(): void {
    const q = this.#queue;
    while (q.length > 0) {
      const head = q[0]!;
      if (head.kind === 'record' && head.status !== 'done') break;
      // Dequeued before it is emitted: downstream may throw.
      q.shift();
      if (head.kind === 'watermark') this.#out.emitWatermark(head.watermark);
      else this.#emit(head);
    }
  }

  /** Emits the completed records before the first watermark; a watermark with none before it goes too. */
  #emitUnordered(): void {
    const q = this.#queue;
    let i = 0;
    while (i < q.length) {
      const x = q[i]!;
      if (x.kind === 'watermark') {
        if (i > 0) break;
        q.shift();
        this.#out.emitWatermark(x.watermark);
      } else if (x.status === 'done') {
        q.splice(i, 1);
        this.#emit(x);
      } else {
        i++;
      }
    }
  }

  #emit(e: RecordEntry): void {
    this.#held--;
    const results = e.results!;
    e.results = undefined;
    for (const r of results) this.#out.collect(r, e.timestamp);
  }

  #clearTimers(e: RecordEntry, abort: boolean): void {
    if (e.timeoutTimer !== undefined) clearTimeout(e.timeoutTimer);
    if (e.retryTimer !== undefined) clearTimeout(e.retryTimer);
    e.timeoutTimer = undefined;
    e.retryTimer = undefined;
    if (abort) e.controller?.abort(new Error('the task ended'));
  }

  #error(e: RecordEntry, what: string, cause?: unknown): SluiceError {
    const reason = cause === undefined ? '' : `: ${cause instanceof Error ? cause.message : String(cause)}`;
    return new SluiceError(
      ErrorCode.UserCode,
      `async function of operator '${this.#ctx.operatorName}' ${what} for input ${preview(e.input)}${reason}`,
      cause === undefined ? {} : { cause },
    );
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#failure ??= err;
    this.#ctx.fail?.(err);
    this.#wake();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
