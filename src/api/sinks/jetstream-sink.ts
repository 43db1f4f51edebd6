/**
 * Publishes records to JetStream and waits for its acknowledgements (the message is stored). Per subtask at
 * most `maxInFlight` publishes are unacknowledged; records written beyond that wait in the writer, which
 * then reports itself not writable, so the task stops feeding it until acks come back.
 *
 * Without checkpointing (at-least-once): each message is published at once and carries
 * `Nats-Msg-Id: <jobId>-<subtaskIndex>-<n>` (n counts the writer's records from 1), so JetStream drops a
 * message published twice within the stream's duplicate window — e.g. the same record written again when
 * the job's tasks restart and replay the same input in the same order.
 *
 * With checkpointing (exactly-once, two-phase commit): the records written since the last checkpoint are
 * held in memory; at a checkpoint they become a pending transaction, stored in the checkpoint (its records,
 * each with the message id `<jobId>.<checkpointId>.<subtaskIndex>.<i>`), and are published once that
 * checkpoint completes. A restored writer publishes again the transactions that the checkpoint still had
 * pending; JetStream drops those already stored, by their ids, if it still remembers them: the stream's
 * `duplicate_window` (default 2 minutes) must cover the time from a commit to a restore. Memory (and
 * checkpoint size) grows with the output of one checkpoint interval; the writer applies backpressure only
 * while it commits. When a bounded input ends, everything is published at once (the rest with ids
 * `<jobId>.final.<subtaskIndex>.<i>`).
 */
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pRetry from 'p-retry';
import { isNoResponders, isTimeout } from '../../nats/jetstream.js';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';

export interface JetStreamSinkOptions<T> {
  /** The subject to publish to, or how to derive it from the record; a JetStream stream must capture it. */
  subject: string | ((value: T) => string);
  /** Record → payload; default JSON, UTF-8. */
  serialize?: (value: T) => Uint8Array;
  /** Connect to these NATS servers instead of using the TaskManager's own connection. */
  servers?: string | string[];
  /** Unacknowledged publishes per subtask (default 256). */
  maxInFlight?: number;
}

const encoder = new TextEncoder();

function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export class JetStreamSink<T> implements Sink<T> {
  readonly name: string;
  readonly #options: JetStreamSinkOptions<T>;
  readonly #maxInFlight: number;
  #peakInFlight = 0;

  constructor(options: JetStreamSinkOptions<T>) {
    if (typeof options.subject !== 'function' && (typeof options.subject !== 'string' || !options.subject)) {
      throw new TypeError('JetStreamSink: subject must be a non-empty string or a function');
    }
    const maxInFlight = options.maxInFlight ?? 256;
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) {
      throw new RangeError(`JetStreamSink: maxInFlight must be an integer >= 1, got ${maxInFlight}`);
    }
    this.#options = options;
    this.#maxInFlight = maxInFlight;
    this.name = `JetStream Sink (${typeof options.subject === 'string' ? options.subject : 'subject by record'})`;
  }

  /**
   * The most unacknowledged publishes one writer of this sink had at once, over the writers created in
   * this process (for tests and diagnostics; never above `maxInFlight`).
   */
  get peakInFlight(): number {
    return this.#peakInFlight;
  }

  async createWriter(ctx: ConnectorContext): Promise<SinkWriter<T>> {
    const { servers } = this.#options;
    let own: NatsConnection | undefined;
    if (servers !== undefined) {
      try {
        own = await connect({ servers, name: `sluice-${ctx.jobId}-jetstream-sink-${ctx.subtaskIndex}` });
      } catch (err) {
        throw new Error(
          `JetStream sink: cannot connect to NATS at ${[servers].flat().join(', ')}: ${message(err)}`,
        );
      }
    }
    const publisher = new Publisher(jetstream(own ?? ctx.nats), this.#maxInFlight, (n) => {
      if (n > this.#peakInFlight) this.#peakInFlight = n;
    });
    try {
      // What the checkpoint still had pending is published before anything new, at any parallelism: old
      // subtask k's transactions go to new subtask k mod p.
      const restored = restoredTransactions(ctx);
      if (restored.length > 0) {
        ctx.log.info(
          { transactions: restored.length, records: restored.reduce((n, t) => n + t.records.length, 0) },
          'JetStream sink: committing the transactions restored from the checkpoint',
        );
        for (const txn of restored) await publishAll(publisher, txn.records);
      }
    } catch (err) {
      await own?.close().catch(() => {});
      throw err;
    }
    return ctx.checkpointing
      ? new TransactionalJetStreamWriter<T>(ctx, this.#options, publisher, this.#maxInFlight, own)
      : new JetStreamWriter<T>(ctx, this.#options, publisher, own);
  }
}

interface Outgoing {
  subject: string;
  data: Uint8Array;
  msgId: string;
}

/** A record of a pending transaction (plain data, stored in checkpoints). */
export interface JetStreamTransactionRecord {
  subject: string;
  data: Uint8Array;
  /** Its `Nats-Msg-Id`: `<jobId>.<checkpointId>.<subtaskIndex>.<i>`. */
  id: string;
}

/** The output of one subtask between two checkpoints, published when the later one completes. */
export interface JetStreamTransaction {
  checkpointId: number;
  records: JetStreamTransactionRecord[];
}

/** What an exactly-once writer stores in a checkpoint: its transactions not yet committed, in order. */
export interface JetStreamSinkState {
  transactions: JetStreamTransaction[];
}

/** Publish attempts per message when the ack times out (the message id makes a retry harmless). */
const COMMIT_RETRIES = 3;

/**
 * Publishes messages with at most `maxInFlight` unacknowledged; the rest queue. The first failure sticks:
 * the queue is dropped and every later wait throws it.
 */
class Publisher {
  readonly maxInFlight: number;
  readonly #js: ReturnType<typeof jetstream>;
  readonly #onInFlight: (n: number) => void;
  #inFlight = 0;
  #queue: Outgoing[] = [];
  #failure: Error | undefined;
  /** Woken whenever a publish settles. */
  #waiters: Array<() => void> = [];
  /** Retries after a timed-out ack (0: none). */
  retries = 0;

  constructor(js: ReturnType<typeof jetstream>, maxInFlight: number, onInFlight: (n: number) => void) {
    this.#js = js;
    this.maxInFlight = maxInFlight;
    this.#onInFlight = onInFlight;
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Publishes not yet acknowledged, queued ones included. */
  get backlog(): number {
    return this.#inFlight + this.#queue.length;
  }

  send(p: Outgoing): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#queue.length === 0 && this.#inFlight < this.maxInFlight) this.#publish(p);
    else this.#queue.push(p);
  }

  /** Resolves once the backlog is below `maxInFlight`; throws the failure. */
  async room(): Promise<void> {
    while (this.#failure === undefined && this.backlog >= this.maxInFlight) await this.#settled();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Resolves once everything sent is acknowledged; throws the failure. */
  async drain(): Promise<void> {
    while (this.#inFlight > 0 || (this.#failure === undefined && this.#queue.length > 0)) {
      await this.#settled();
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  discard(): void {
    this.#queue = [];
  }

  #publish(p: Outgoing): void {
    this.#inFlight++;
    this.#onInFlight(this.#inFlight);
    const once = () => this.#js.publish(p.subject, p.data, { msgID: p.msgId });
    const published =
      this.retries === 0
        ? once()
        : pRetry(once, {
            retries: this.retries,
            minTimeout: 100,
            maxTimeout: 1_000,
            factor: 2,
            randomize: true,
            shouldRetry: ({ error }) => isTimeout(error),
          });
    // A duplicate ack (the id was stored before: a re-commit) is success.
    published.then(
      () => this.#done(),
      (err: unknown) => {
        this.#failure ??= publishError(p.subject, err);
        this.#queue = [];
        this.#done();
      },
    );
  }

  #done(): void {
    this.#inFlight--;
    while (this.#failure === undefined && this.#queue.length > 0 && this.#inFlight < this.maxInFlight) {
      this.#publish(this.#queue.shift()!);
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #settled(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** Publishes the records in order (at most `maxInFlight` unacknowledged) and waits for every ack. */
async function publishAll(
  publisher: Publisher,
  records: readonly JetStreamTransactionRecord[],
): Promise<void> {
  const retries = publisher.retries;
  publisher.retries = COMMIT_RETRIES;
  try {
    for (const r of records) {
      await publisher.room();
      publisher.send({ subject: r.subject, data: r.data, msgId: r.id });
    }
    await publisher.drain();
  } finally {
    publisher.retries = retries;
  }
}

function subjectOf<T>(options: JetStreamSinkOptions<T>): (value: T) => string {
  const subject = options.subject;
  const of = typeof subject === 'string' ? () => subject : subject;
  return (value) => {
    const s = of(value);
    if (typeof s !== 'string' || s.length === 0) {
      throw new Error(`JetStream sink: the subject function returned ${JSON.stringify(s)}`);
    }
    return s;
  };
}

/** At-least-once (no checkpoints): publishes each record at once. */
class JetStreamWriter<T> implements SinkWriter<T> {
  readonly #publisher: Publisher;
  readonly #own: NatsConnection | undefined;
  readonly #idPrefix: string;
  readonly #subjectOf: (value: T) => string;
  readonly #serialize: (value: T) => Uint8Array;
  /** Records written so far; the n of the message ids. */
  #written = 0;

  constructor(
    ctx: ConnectorContext,
    options: JetStreamSinkOptions<T>,
    publisher: Publisher,
    own: NatsConnection | undefined,
  ) {
    this.#publisher = publisher;
    this.#own = own;
    this.#idPrefix = `${ctx.jobId}-${ctx.subtaskIndex}-`;
    this.#subjectOf = subjectOf(options);
    this.#serialize = options.serialize ?? (encodeJson as (value: T) => Uint8Array);
  }

  get writable(): boolean {
    return this.#publisher.failure === undefined && this.#publisher.backlog < this.#publisher.maxInFlight;
  }

  write(value: T): void {
    if (this.#publisher.failure !== undefined) throw this.#publisher.failure;
    const subject = this.#subjectOf(value);
    this.#publisher.send({
      subject,
      data: this.#serialize(value),
      msgId: `${this.#idPrefix}${++this.#written}`,
    });
  }

  ready(): Promise<void> {
    return this.#publisher.room();
  }

  /** Resolves once every record is acknowledged; throws the first publish error. */
  finish(): Promise<void> {
    return this.#publisher.drain();
  }

  async close(): Promise<void> {
    this.#publisher.discard();
    // Publishes still pending (a cancelled task) fail with the closed connection; that is handled.
    await this.#own?.close().catch(() => {});
  }
}

/** Exactly-once (with checkpoints): two-phase commit of the output between checkpoints. */
class TransactionalJetStreamWriter<T> implements SinkWriter<T> {
  readonly #publisher: Publisher;
  readonly #own: NatsConnection | undefined;
  readonly #jobId: string;
  readonly #subtask: number;
  readonly #maxInFlight: number;
  readonly #subjectOf: (value: T) => string;
  readonly #serialize: (value: T) => Uint8Array;
  /** Written since the last checkpoint. */
  #buffer: Array<{ subject: string; data: Uint8Array }> = [];
  /** Pre-committed (stored with a checkpoint), not yet published, by checkpoint id. */
  #pending: JetStreamTransaction[] = [];
  /** Commits run one after the other. */
  #commits: Promise<void> = Promise.resolve();
  #committing = 0;
  #failure: Error | undefined;
  #closed = false;

  constructor(
    ctx: ConnectorContext,
    options: JetStreamSinkOptions<T>,
    publisher: Publisher,
    maxInFlight: number,
    own: NatsConnection | undefined,
  ) {
    this.#publisher = publisher;
    this.#own = own;
    this.#jobId = ctx.jobId;
    this.#subtask = ctx.subtaskIndex;
    this.#maxInFlight = maxInFlight;
    this.#subjectOf = subjectOf(options);
    this.#serialize = options.serialize ?? (encodeJson as (value: T) => Uint8Array);
  }

  /**
   * Buffering is not limited (the buffer only shrinks at a checkpoint); while a commit publishes, at most
   * `maxInFlight` more records are taken.
   */
  get writable(): boolean {
    return this.#failure === undefined && (this.#committing === 0 || this.#buffer.length < this.#maxInFlight);
  }

  write(value: T): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#buffer.push({ subject: this.#subjectOf(value), data: this.#serialize(value) });
  }

  async ready(): Promise<void> {
    while (!this.writable && this.#failure === undefined) await this.#commits.catch(() => {});
    if (this.#failure !== undefined) throw this.#failure;
  }

  snapshotState(checkpointId: number): JetStreamSinkState {
    if (this.#buffer.length > 0) {
      const prefix = `${this.#jobId}.${checkpointId}.${this.#subtask}.`;
      this.#pending.push({
        checkpointId,
        records: this.#buffer.map((r, i) => ({ subject: r.subject, data: r.data, id: `${prefix}${i}` })),
      });
      this.#buffer = [];
    }
    return { transactions: [...this.#pending] };
  }

  notifyCheckpointComplete(checkpointId: number): Promise<void> {
    return this.#commit(checkpointId);
  }

  /** Publishes every pending transaction and what was written since the last checkpoint. */
  async finish(): Promise<void> {
    await this.#commit(Number.POSITIVE_INFINITY);
    const prefix = `${this.#jobId}.final.${this.#subtask}.`;
    const rest = this.#buffer.map((r, i) => ({ subject: r.subject, data: r.data, id: `${prefix}${i}` }));
    this.#buffer = [];
    await this.#run(() => publishAll(this.#publisher, rest));
  }

  /** Without finish: what was written since the last checkpoint is dropped (the input is replayed). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#buffer = [];
    this.#publisher.discard();
    await this.#own?.close().catch(() => {});
  }

  #commit(upTo: number): Promise<void> {
    return this.#run(async () => {
      while (this.#pending.length > 0 && this.#pending[0]!.checkpointId <= upTo) {
        await publishAll(this.#publisher, this.#pending[0]!.records);
        // Only now: a checkpoint taken meanwhile still carries the transaction.
        this.#pending.shift();
      }
    });
  }

  #run(commit: () => Promise<void>): Promise<void> {
    // Counted from now: the writer applies backpressure as soon as a commit is due.
    this.#committing++;
    const run = async () => {
      try {
        if (this.#failure !== undefined) throw this.#failure;
        if (this.#closed) throw new Error('JetStream sink: the writer is closed');
        await commit();
      } catch (err) {
        this.#failure ??= err instanceof Error ? err : new Error(String(err));
        throw this.#failure;
      } finally {
        this.#committing--;
      }
    };
    const next = this.#commits.then(run, run);
    this.#commits = next;
    return next;
  }
}

/** The transactions of the old subtasks that are now this subtask's (k mod p), checked. */
function restoredTransactions(ctx: ConnectorContext): JetStreamTransaction[] {
  const out: JetStreamTransaction[] = [];
  const restored = ctx.restoredState ?? [];
  const bad = (why: string) =>
    new Error(`JetStream sink: cannot restore from the checkpointed state: ${why}`);
  for (let k = 0; k < restored.length; k++) {
    if (k % ctx.parallelism !== ctx.subtaskIndex) continue;
    const state = restored[k] as Partial<JetStreamSinkState> | null | undefined;
    if (state === undefined || state === null) continue;
    if (typeof state !== 'object' || !Array.isArray(state.transactions)) {
      throw bad(`not a transaction list (old subtask ${k})`);
    }
    for (const txn of state.transactions) {
      if (
        typeof txn !== 'object' ||
        txn === null ||
        typeof txn.checkpointId !== 'number' ||
        !Array.isArray(txn.records) ||
        !txn.records.every(
          (r) => typeof r?.subject === 'string' && r.data instanceof Uint8Array && typeof r.id === 'string',
        )
      ) {
        throw bad(`not a transaction (old subtask ${k})`);
      }
      out.push(txn);
    }
  }
  // Stable: each old subtask's transactions stay in their order.
  return out.sort((a, b) => a.checkpointId - b.checkpointId);
}

function publishError(subject: string, err: unknown): Error {
  // With no stream capturing the subject nobody answers the publish.
  if (isNoResponders(err)) {
    return new Error(`no JetStream stream captures subject '${subject}'`, { cause: err });
  }
  return new Error(`publishing to JetStream subject '${subject}' failed: ${message(err)}`, { cause: err });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
