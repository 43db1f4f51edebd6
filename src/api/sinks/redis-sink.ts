/**
 * Writes records to Redis as commands, described per record by a `RedisMapper` (as the Redis connector of
 * Apache Bahir for Flink): a command, a key, a value and, for hashes and sorted sets, an additional key.
 * The client is node-redis (`redis`), Redis' own Node.js client.
 *
 * Guarantees (`deliveryGuarantee`):
 * - `EXACTLY_ONCE` (default; needs checkpointing): a two-phase-commit sink. Commands written between two
 *   checkpoints are buffered; at checkpoint n they become transaction n of the subtask, stored in the
 *   checkpoint; when n completes they are applied in one MULTI/EXEC together with a transaction marker
 *   (`HSET <markerKey> <jobId>/<subtask> n`), after a WATCH of the marker and a check that it is below n. A
 *   transaction is therefore applied at most once, even when a restore commits it again, and every command
 *   works — INCRBY, HINCRBY, ZINCRBY, RPUSH included: a restart does not double-count. Output becomes
 *   visible when its checkpoint completes; memory and checkpoint size grow with one interval's output.
 *   When a bounded input ends the rest is applied as a final transaction (marker = 2^53 - 1).
 * - `AT_LEAST_ONCE`: commands are sent as they come (pipelined in batches of `batchSize`, at least every
 *   `flushIntervalMs`). A checkpoint stores the commands not yet acknowledged by Redis; a restore sends them
 *   again, and the job replays the input after the checkpoint: commands may run twice. With idempotent
 *   commands (SET, HSET, ZADD, SADD, SREM, ZREM, HDEL, PFADD) the end state is the same as exactly once;
 *   with counting or list commands it is not.
 * - Without checkpointing both behave as AT_LEAST_ONCE without the stored commands: a failed job that
 *   starts again from the beginning writes everything again.
 *
 * Redis unreachable: each write (a batch, a commit) is tried `maxRetries` more times with exponential
 * backoff from `initialBackoffMs` up to `maxBackoffMs`, then the task fails with a CONNECTION_FAILED error
 * naming the sink and the server. The job's restart strategy then restarts it from the latest checkpoint,
 * whose pending transactions are committed (once) before new output. A command Redis refuses (WRONGTYPE, a
 * bad value) fails the task at once, naming the command.
 *
 * Refuses: a mapper without the methods it needs, a hash or sorted-set command without an additional key,
 * an empty key, options out of range.
 *
 * Size: one connector; mapper validation, both delivery guarantees and the retrying client share one
 * writer's state.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type * as RedisModule from 'redis';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';

/** The commands a RedisMapper can describe (Bahir's RedisCommand). */
export const RedisCommand = {
  SET: 'SET',
  HSET: 'HSET',
  ZADD: 'ZADD',
  SADD: 'SADD',
  SREM: 'SREM',
  ZREM: 'ZREM',
  HDEL: 'HDEL',
  PFADD: 'PFADD',
  RPUSH: 'RPUSH',
  LPUSH: 'LPUSH',
  INCRBY: 'INCRBY',
  DECRBY: 'DECRBY',
  HINCRBY: 'HINCRBY',
  ZINCRBY: 'ZINCRBY',
  PUBLISH: 'PUBLISH',
} as const;
export type RedisCommand = (typeof RedisCommand)[keyof typeof RedisCommand];

/** Commands whose repetition leaves Redis as one execution does. */
export const IDEMPOTENT_REDIS_COMMANDS: ReadonlySet<RedisCommand> = new Set([
  'SET',
  'HSET',
  'ZADD',
  'SADD',
  'SREM',
  'ZREM',
  'HDEL',
  'PFADD',
]);

/** Commands on a hash or sorted set: the additional key names it, the record's key is the field/member. */
const NEEDS_ADDITIONAL_KEY: ReadonlySet<RedisCommand> = new Set([
  'HSET',
  'HDEL',
  'HINCRBY',
  'ZADD',
  'ZREM',
  'ZINCRBY',
]);

/** Bahir's RedisCommandDescription: the command, and the hash / sorted set it writes to. */
export class RedisCommandDescription {
  constructor(
    readonly command: RedisCommand,
    /** The hash (HSET, HDEL, HINCRBY) or sorted set (ZADD, ZREM, ZINCRBY). */
    readonly additionalKey?: string,
    /** SET only: expire the key after this many seconds. */
    readonly additionalTTL?: number,
  ) {
    if (!Object.values(RedisCommand).includes(command)) {
      throw new TypeError(`RedisCommandDescription: unknown command ${JSON.stringify(command)}`);
    }
    if (additionalTTL !== undefined && (!Number.isSafeInteger(additionalTTL) || additionalTTL < 1)) {
      throw new RangeError(`RedisCommandDescription: additionalTTL must be a positive integer of seconds`);
    }
  }
}

/**
 * Bahir's RedisMapper: what to write for a record.
 *
 * - SET key value [EX ttl] · INCRBY / DECRBY key value · SADD / SREM / PFADD / RPUSH / LPUSH key value ·
 *   PUBLISH key(channel) value
 * - HSET / HINCRBY additionalKey key(field) value · HDEL additionalKey key(field)
 * - ZADD / ZINCRBY additionalKey value(score) key(member) · ZREM additionalKey key(member)
 */
export interface RedisMapper<T> {
  getCommandDescription(): RedisCommandDescription;
  getKeyFromData(data: T): string;
  getValueFromData(data: T): string | number;
  /** Per record, instead of the description's additional key. */
  getAdditionalKey?(data: T): string | undefined;
}

export type RedisDeliveryGuarantee = 'EXACTLY_ONCE' | 'AT_LEAST_ONCE';

export interface RedisSinkOptions {
  /** `redis://[user:password@]host:port[/db]`. */
  url: string;
  /** Default EXACTLY_ONCE (applied with checkpoints; see the module comment). */
  deliveryGuarantee?: RedisDeliveryGuarantee;
  /** Hash holding the last committed checkpoint per writer (EXACTLY_ONCE). Default `sluice:redis-sink:commits`. */
  markerKey?: string;
  /** Retries of a write after the first try fails for want of a connection (default 5). */
  maxRetries?: number;
  /** Backoff before the first retry, doubled for each next one (default 100 ms). */
  initialBackoffMs?: number;
  /** Longest backoff (default 2000 ms). */
  maxBackoffMs?: number;
  /** AT_LEAST_ONCE: commands per pipelined batch (default 500). */
  batchSize?: number;
  /** AT_LEAST_ONCE: longest time a command waits in the writer before it is sent (default 20 ms). */
  flushIntervalMs?: number;
}

interface CompiledOptions {
  url: string;
  deliveryGuarantee: RedisDeliveryGuarantee;
  markerKey: string;
  maxRetries: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  batchSize: number;
  flushIntervalMs: number;
}

/** One subtask's commands between two checkpoints (owner and checkpointId set for EXACTLY_ONCE). */
export interface RedisTransaction {
  owner?: string;
  checkpointId?: number;
  commands: string[][];
}

/** What a writer stores in a checkpoint. */
export interface RedisSinkState {
  v: 1;
  pending: RedisTransaction[];
}

const FINAL_TRANSACTION = Number.MAX_SAFE_INTEGER;

function compile(options: RedisSinkOptions): CompiledOptions {
  const problems: string[] = [];
  let url = '';
  if (typeof options?.url !== 'string') problems.push('url must be a redis:// URL');
  else {
    try {
      const parsed = new URL(options.url);
      if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
        problems.push('url must start with redis:// or rediss://');
      url = options.url;
    } catch {
      problems.push(`url ${JSON.stringify(options.url)} is not a URL`);
    }
  }
  const int = (name: keyof RedisSinkOptions, fallback: number, min: number): number => {
    const v = options?.[name] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      problems.push(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  };
  const guarantee = options?.deliveryGuarantee ?? 'EXACTLY_ONCE';
  if (guarantee !== 'EXACTLY_ONCE' && guarantee !== 'AT_LEAST_ONCE') {
    problems.push(
      `deliveryGuarantee must be EXACTLY_ONCE or AT_LEAST_ONCE, got ${JSON.stringify(guarantee)}`,
    );
  }
  const markerKey = options?.markerKey ?? 'sluice:redis-sink:commits';
  if (typeof markerKey !== 'string' || markerKey.length === 0)
    problems.push('markerKey must be a non-empty string');
  const compiled: CompiledOptions = {
    url,
    deliveryGuarantee: guarantee,
    markerKey,
    maxRetries: int('maxRetries', 5, 0),
    initialBackoffMs: int('initialBackoffMs', 100, 0),
    maxBackoffMs: int('maxBackoffMs', 2_000, 0),
    batchSize: int('batchSize', 500, 1),
    flushIntervalMs: int('flushIntervalMs', 20, 0),
  };
  if (problems.length > 0)
    throw new SluiceError(ErrorCode.InvalidConfig, `RedisSink: ${problems.join('; ')}`);
  return compiled;
}

/** The URL without its password, for messages. */
function shown(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(bad url)';
  }
}

export class RedisSink<T> implements Sink<T> {
  readonly name: string;
  readonly #options: CompiledOptions;
  readonly #mapper: RedisMapper<T>;
  readonly #description: RedisCommandDescription;

  constructor(options: RedisSinkOptions, mapper: RedisMapper<T>) {
    this.#options = compile(options);
    for (const m of ['getCommandDescription', 'getKeyFromData', 'getValueFromData'] as const) {
      if (typeof mapper?.[m] !== 'function') throw new TypeError(`RedisSink: the mapper has no ${m}()`);
    }
    const description = mapper.getCommandDescription();
    if (!(description instanceof RedisCommandDescription)) {
      throw new TypeError('RedisSink: getCommandDescription() must return a RedisCommandDescription');
    }
    if (
      NEEDS_ADDITIONAL_KEY.has(description.command) &&
      description.additionalKey === undefined &&
      typeof mapper.getAdditionalKey !== 'function'
    ) {
      throw new TypeError(
        `RedisSink: ${description.command} needs an additional key (the hash or sorted set): pass it to RedisCommandDescription or define getAdditionalKey()`,
      );
    }
    this.#mapper = mapper;
    this.#description = description;
    this.name = `Redis Sink (${description.command} ${shown(this.#options.url)})`;
  }

  async createWriter(ctx: ConnectorContext): Promise<SinkWriter<T>> {
    const redis = new RedisConnection(await loadRedis(), this.name, this.#options, ctx);
    try {
      const restored = restoredTransactions(ctx, this.name);
      if (restored.length > 0) {
        ctx.log.info(
          { transactions: restored.length, commands: restored.reduce((n, t) => n + t.commands.length, 0) },
          'Redis sink: applying the transactions restored from the checkpoint',
        );
        for (const txn of restored) await redis.apply(txn);
      }
    } catch (err) {
      redis.close();
      throw err;
    }
    const toCommand = (value: T) => command(this.#mapper, this.#description, value);
    return ctx.checkpointing && this.#options.deliveryGuarantee === 'EXACTLY_ONCE'
      ? new TransactionalRedisWriter<T>(ctx, redis, toCommand)
      : new PipelinedRedisWriter<T>(ctx, redis, this.#options, toCommand);
  }
}

function command<T>(mapper: RedisMapper<T>, d: RedisCommandDescription, value: T): string[] {
  const key = mapper.getKeyFromData(value);
  if (typeof key !== 'string' || key.length === 0) {
    throw new Error(
      `Redis sink: getKeyFromData returned ${JSON.stringify(key)} (a non-empty string is needed)`,
    );
  }
  const raw = mapper.getValueFromData(value);
  if (typeof raw !== 'string' && typeof raw !== 'number') {
    throw new Error(
      `Redis sink: getValueFromData returned ${JSON.stringify(raw)} (a string or a number is needed)`,
    );
  }
  const v = String(raw);
  const c = d.command;
  if (NEEDS_ADDITIONAL_KEY.has(c)) {
    const outer = mapper.getAdditionalKey?.(value) ?? d.additionalKey;
    if (typeof outer !== 'string' || outer.length === 0) {
      throw new Error(`Redis sink: ${c} needs an additional key, got ${JSON.stringify(outer)}`);
    }
    if (c === 'ZADD' || c === 'ZINCRBY') return [c, outer, v, key];
    if (c === 'ZREM' || c === 'HDEL') return [c, outer, key];
    return [c, outer, key, v];
  }
  if (c === 'SET' && d.additionalTTL !== undefined) return ['SET', key, v, 'EX', String(d.additionalTTL)];
  return [c, key, v];
}

/** The pending transactions of the old subtasks that are now this subtask's (k mod p), checked. */
function restoredTransactions(ctx: ConnectorContext, name: string): RedisTransaction[] {
  const out: RedisTransaction[] = [];
  const restored = ctx.restoredState ?? [];
  for (let k = 0; k < restored.length; k++) {
    if (k % ctx.parallelism !== ctx.subtaskIndex) continue;
    const state = restored[k] as Partial<RedisSinkState> | null | undefined;
    if (state === undefined || state === null) continue;
    const ok =
      typeof state === 'object' &&
      state.v === 1 &&
      Array.isArray(state.pending) &&
      state.pending.every(
        (t) =>
          Array.isArray(t?.commands) &&
          t.commands.every((c) => Array.isArray(c) && c.every((a) => typeof a === 'string')) &&
          (t.owner === undefined || (typeof t.owner === 'string' && typeof t.checkpointId === 'number')),
      );
    if (!ok) {
      throw new SluiceError(
        ErrorCode.CorruptedState,
        `${name}: the checkpointed state of old subtask ${k} is not a list of Redis transactions`,
      );
    }
    out.push(...state.pending!);
  }
  // Each old subtask's transactions stay in their order; the unmarked (at-least-once) ones first.
  return out.sort((a, b) => (a.checkpointId ?? -1) - (b.checkpointId ?? -1));
}

/**
 * node-redis, loaded when a writer is created: it costs half a second of CPU to load, which every process
 * that imports the Sluice API (the CLI, each TaskManager's slot workers) would otherwise pay.
 */
let redisModule: typeof RedisModule | undefined;

async function loadRedis(): Promise<typeof RedisModule> {
  redisModule ??= await import('redis');
  return redisModule;
}

/** `instanceof` a class of node-redis; false while it is not loaded (nothing of it can exist yet). */
function isRedisError(err: unknown, kind: 'ErrorReply' | 'WatchError'): boolean {
  const cls = redisModule?.[kind];
  return cls !== undefined && err instanceof cls;
}

/** A node-redis client with bounded, backed-off retries of each write. */
class RedisConnection {
  readonly #name: string;
  readonly #options: CompiledOptions;
  readonly #ctx: ConnectorContext;
  readonly #client: ReturnType<typeof RedisModule.createClient>;
  readonly #closing = new AbortController();
  #lastError: unknown;

  constructor(redis: typeof RedisModule, name: string, options: CompiledOptions, ctx: ConnectorContext) {
    this.#name = name;
    this.#options = options;
    this.#ctx = ctx;
    this.#client = redis.createClient({
      url: options.url,
      name: `sluice-${ctx.jobId}-${ctx.subtaskIndex}`,
      // Commands fail at once while disconnected; the retries below decide how long to wait.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 2_000,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1_000),
      },
    });
    // The client reports connection problems as events; the writes below report them to the task.
    this.#client.on('error', (err: unknown) => {
      this.#lastError = err;
    });
    this.#client.connect().catch((err: unknown) => {
      this.#lastError = err;
    });
  }

  /** Applies a transaction (with its marker) or plain commands (pipelined). */
  async apply(txn: RedisTransaction): Promise<void> {
    if (txn.owner !== undefined) await this.#retrying('commit a transaction', () => this.#commit(txn));
    else if (txn.commands.length > 0) await this.#retrying('write', () => this.#pipeline(txn.commands));
  }

  close(): void {
    this.#closing.abort();
    try {
      this.#client.destroy();
    } catch {
      // already closed
    }
  }

  async #pipeline(commands: string[][]): Promise<void> {
    const batch = this.#client.multi();
    for (const c of commands) batch.addCommand(c);
    const replies = (await batch.execAsPipeline().catch((err: unknown) => {
      throw refusedIn(this.#name, commands, err);
    })) as unknown[];
    const refused = replies.findIndex((r) => isRedisError(r, 'ErrorReply'));
    if (refused >= 0) throw refusedError(this.#name, commands[refused]!, replies[refused]);
  }

  /** Applies the transaction unless the marker shows it applied; false when it was. */
  async #commit(txn: RedisTransaction): Promise<boolean> {
    const { markerKey } = this.#options;
    const client = this.#client;
    for (;;) {
      await client.watch(markerKey);
      const last = await client.hGet(markerKey, txn.owner!);
      if (last !== null && Number(last) >= txn.checkpointId!) {
        await client.unwatch();
        return false;
      }
      const multi = client.multi();
      for (const c of txn.commands) multi.addCommand(c);
      multi.addCommand(['HSET', markerKey, txn.owner!, String(txn.checkpointId)]);
      try {
        const replies = (await multi.exec()) as unknown[];
        const refused = replies.findIndex((r) => isRedisError(r, 'ErrorReply'));
        if (refused >= 0) throw refusedError(this.#name, txn.commands[refused] ?? [], replies[refused]);
        return true;
      } catch (err) {
        // Another writer of the same owner (a cancelled attempt still committing) touched the marker.
        if (isRedisError(err, 'WatchError')) continue;
        throw refusedIn(this.#name, txn.commands, err);
      }
    }
  }

  async #retrying(what: string, op: () => Promise<unknown>): Promise<void> {
    const { maxRetries, initialBackoffMs, maxBackoffMs } = this.#options;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      let cause: unknown;
      try {
        if (!this.#client.isReady) {
          cause = new Error(`not connected${this.#lastError ? ` (${message(this.#lastError)})` : ''}`);
        } else {
          await op();
          return;
        }
      } catch (err) {
        if (isRefused(err)) throw err instanceof SluiceError ? err : refusedError(this.#name, [], err);
        cause = err;
      }
      if (this.#closing.signal.aborted) throw new Error(`${this.#name}: closed`);
      if (attempt > maxRetries) {
        throw new SluiceError(
          ErrorCode.ConnectionFailed,
          `${this.#name}: could not ${what} to Redis at ${shown(this.#options.url)} after ${attempt} attempts in ${Date.now() - started} ms: ${message(cause)}`,
          { cause },
        );
      }
      const backoff = Math.min(maxBackoffMs, initialBackoffMs * 2 ** (attempt - 1));
      this.#ctx.log.warn(
        { attempt, backoffMs: backoff, error: message(cause) },
        `Redis sink: ${what} failed; retrying`,
      );
      await sleep(backoff, undefined, { signal: this.#closing.signal }).catch(() => undefined);
    }
  }
}

/** A MultiErrorReply (by shape: it is not exported) names the commands Redis refused; others pass. */
function refusedIn(name: string, commands: string[][], err: unknown): unknown {
  const multi = err as { errorIndexes?: unknown; replies?: unknown[] };
  if (
    !isRedisError(err, 'ErrorReply') ||
    !Array.isArray(multi.errorIndexes) ||
    !Array.isArray(multi.replies)
  ) {
    return err;
  }
  const i = multi.errorIndexes[0] as number;
  return refusedError(name, commands[i] ?? [], multi.replies[i]);
}

function isRefused(err: unknown): boolean {
  return isRedisError(err, 'ErrorReply') || (err instanceof SluiceError && err.code === ErrorCode.UserCode);
}

function refusedError(name: string, cmd: string[], reply: unknown): SluiceError {
  const shownCmd = cmd.length > 0 ? ` ${cmd.slice(0, 4).join(' ')}${cmd.length > 4 ? ' …' : ''}` : '';
  return new SluiceError(
    ErrorCode.UserCode,
    `${name}: Redis refused the command${shownCmd}: ${message(reply)}`,
    {
      cause: reply,
    },
  );
}

function message(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/** EXACTLY_ONCE: the commands of each checkpoint interval, applied in MULTI/EXEC once it completes. */
class TransactionalRedisWriter<T> implements SinkWriter<T> {
  readonly #redis: RedisConnection;
  readonly #owner: string;
  readonly #toCommand: (value: T) => string[];
  #buffer: string[][] = [];
  #pending: RedisTransaction[] = [];
  #commits: Promise<void> = Promise.resolve();
  #failure: Error | undefined;

  constructor(ctx: ConnectorContext, redis: RedisConnection, toCommand: (value: T) => string[]) {
    this.#redis = redis;
    this.#owner = `${ctx.jobId}/${ctx.subtaskIndex}`;
    this.#toCommand = toCommand;
  }

  get writable(): boolean {
    return this.#failure === undefined;
  }

  async ready(): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
  }

  write(value: T): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#buffer.push(this.#toCommand(value));
  }

  snapshotState(checkpointId: number): RedisSinkState {
    if (this.#buffer.length > 0) {
      this.#pending.push({ owner: this.#owner, checkpointId, commands: this.#buffer });
      this.#buffer = [];
    }
    return { v: 1, pending: [...this.#pending] };
  }

  notifyCheckpointComplete(checkpointId: number): Promise<void> {
    return this.#commit(checkpointId);
  }

  async finish(): Promise<void> {
    await this.#commit(Number.POSITIVE_INFINITY);
    const rest = this.#buffer;
    this.#buffer = [];
    if (rest.length > 0)
      await this.#redis.apply({ owner: this.#owner, checkpointId: FINAL_TRANSACTION, commands: rest });
  }

  close(): void {
    this.#buffer = [];
    this.#redis.close();
  }

  #commit(upTo: number): Promise<void> {
    const run = async () => {
      if (this.#failure !== undefined) throw this.#failure;
      try {
        while (this.#pending.length > 0 && this.#pending[0]!.checkpointId! <= upTo) {
          await this.#redis.apply(this.#pending[0]!);
          // Only now: a checkpoint taken meanwhile still carries the transaction.
          this.#pending.shift();
        }
      } catch (err) {
        this.#failure ??= err instanceof Error ? err : new Error(String(err));
        throw this.#failure;
      }
    };
    const next = this.#commits.then(run, run);
    this.#commits = next;
    return next;
  }
}

/** AT_LEAST_ONCE (or no checkpoints): commands pipelined in batches, one batch in flight at a time. */
class PipelinedRedisWriter<T> implements SinkWriter<T> {
  readonly #ctx: ConnectorContext;
  readonly #redis: RedisConnection;
  readonly #options: CompiledOptions;
  readonly #toCommand: (value: T) => string[];
  #buffer: string[][] = [];
  #sending: string[][] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  #waiters: Array<() => void> = [];

  constructor(
    ctx: ConnectorContext,
    redis: RedisConnection,
    options: CompiledOptions,
    toCommand: (value: T) => string[],
  ) {
    this.#ctx = ctx;
    this.#redis = redis;
    this.#options = options;
    this.#toCommand = toCommand;
  }

  get writable(): boolean {
    return this.#failure === undefined && this.#buffer.length < this.#options.batchSize * 4;
  }

  async ready(): Promise<void> {
    while (this.#failure === undefined && this.#buffer.length >= this.#options.batchSize * 4) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  write(value: T): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#buffer.push(this.#toCommand(value));
    if (this.#buffer.length >= this.#options.batchSize) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), this.#options.flushIntervalMs);
  }

  /** The commands Redis has not acknowledged: sent again after a restore. */
  snapshotState(): RedisSinkState {
    const unacked = [...this.#sending, ...this.#buffer];
    return { v: 1, pending: unacked.length > 0 ? [{ commands: unacked }] : [] };
  }

  async finish(): Promise<void> {
    while (this.#failure === undefined && (this.#buffer.length > 0 || this.#flushing !== undefined)) {
      this.#flush();
      await this.#flushing?.catch(() => undefined);
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#buffer = [];
    this.#redis.close();
  }

  /** Sends the buffer unless a batch is in flight (it sends again when that one is acknowledged). */
  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flushing !== undefined || this.#buffer.length === 0 || this.#failure !== undefined) return;
    this.#sending = this.#buffer.splice(0, this.#options.batchSize);
    this.#flushing = this.#redis
      .apply({ commands: this.#sending })
      .then(
        () => {
          this.#sending = [];
          this.#flushing = undefined;
          if (this.#buffer.length >= this.#options.batchSize) this.#flush();
          else if (this.#buffer.length > 0)
            this.#timer ??= setTimeout(() => this.#flush(), this.#options.flushIntervalMs);
        },
        (err: unknown) => {
          this.#flushing = undefined;
          this.#failure ??= err instanceof Error ? err : new Error(String(err));
          this.#ctx.fail?.(this.#failure);
        },
      )
      .finally(() => {
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) w();
      });
  }
}
