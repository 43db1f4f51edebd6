/**
 * Reads a JetStream stream, as Flink's Kafka source reads a topic. Bounded by default: the messages up to
 * the stream's last sequence when the subtask starts, then the source ends. Unbounded: keeps reading (and
 * waiting for new messages) until the job is cancelled.
 *
 * Parallelism: subtask s of p emits the messages whose stream sequence ≡ s (mod p). Each subtask reads the
 * whole stream (its own ordered consumer from `startSequence`) and skips the messages of the others, so p
 * subtasks read the stream p times. Simple and exact at any parallelism; fine for now.
 *
 * Backpressure: messages are pulled in batches (`fetch`), and the next batch is asked for only once the
 * previous one is emitted; while downstream is backpressured the source awaits `ready()`, so nothing more
 * is pulled.
 *
 * Checkpoints: each subtask stores `{ parallelism, subtask, next }`, `next` being the sequence after the
 * last message it read (emitted, or passed as another subtask's). After a restore, at any parallelism, a
 * subtask starts its consumer at the smallest sequence that the old subtasks whose messages are now its
 * own had not all passed, and skips the messages they had emitted: the stream is emitted exactly once
 * across the restore. A bounded read still ends at the stream's last sequence when the subtask starts.
 */
import { type Consumer, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { isStreamNotFound } from '../../nats/jetstream.js';
import type { Source, SourceContext } from '../connector.js';
import { SplitReader } from './split-positions.js';

export interface JetStreamSourceOptions<T> {
  stream: string;
  /** Only messages on this subject (filter, wildcards allowed); default all of the stream. */
  subject?: string;
  /**
   * Payload → record; default JSON.parse of the UTF-8 payload. A payload it cannot decode fails the task
   * with an error naming the stream and the message's sequence.
   */
  deserialize?: (data: Uint8Array, subject: string) => T;
  /**
   * Bounded (default true): read up to the stream's last sequence as of the start, then end. Unbounded:
   * keep reading until cancelled.
   */
  bounded?: boolean;
  /** First stream sequence to read (default 1). */
  startSequence?: number;
  /**
   * Connect to these NATS servers instead of using the TaskManager's own connection (the data may live in
   * another NATS, as a Kafka cluster does for Flink).
   */
  servers?: string | string[];
  /** Attach the message's stream timestamp (ms) as the record's event time. Default false. */
  useMessageTimestamps?: boolean;
  /** Messages pulled per fetch (default 256): at most this many are buffered per subtask. */
  batchSize?: number;
}

const decoder = new TextDecoder();

function decodeJson(data: Uint8Array): unknown {
  return JSON.parse(decoder.decode(data));
}

/** How long a fetch waits for messages (ms). Bounded reads end through the checks in the loop instead. */
const FETCH_EXPIRES_MS = 5_000;
/** How long deleting the consumer may take when the source ends; it expires by itself anyway. */
const CLEANUP_TIMEOUT_MS = 2_000;

export class JetStreamSource<T> implements Source<T> {
  readonly name: string;
  readonly #options: JetStreamSourceOptions<T>;

  constructor(options: JetStreamSourceOptions<T>) {
    if (typeof options.stream !== 'string' || options.stream.length === 0) {
      throw new TypeError('JetStreamSource: stream must be a non-empty string');
    }
    const start = options.startSequence ?? 1;
    if (!Number.isSafeInteger(start) || start < 1) {
      throw new RangeError(`JetStreamSource: startSequence must be an integer >= 1, got ${start}`);
    }
    const batch = options.batchSize ?? 256;
    if (!Number.isSafeInteger(batch) || batch < 1) {
      throw new RangeError(`JetStreamSource: batchSize must be an integer >= 1, got ${batch}`);
    }
    this.#options = options;
    this.name = `JetStream Source (${options.stream}${options.subject ? `: ${options.subject}` : ''})`;
  }

  async run(ctx: SourceContext<T>): Promise<void> {
    // The source object is shared by the subtasks in one process: per-subtask state lives in the reader.
    await new JetStreamSubtaskReader(this.#options, ctx, this.name).run();
  }
}

/** One subtask's read of the stream. */
class JetStreamSubtaskReader<T> {
  readonly #o: JetStreamSourceOptions<T>;
  readonly #ctx: SourceContext<T>;
  readonly #stream: string;
  readonly #deserialize: (data: Uint8Array, subject: string) => T;
  /** Which sequences are this subtask's, and where it is (`next`: the sequence after the last one read). */
  readonly #position: SplitReader;

  constructor(options: JetStreamSourceOptions<T>, ctx: SourceContext<T>, name: string) {
    this.#o = options;
    this.#ctx = ctx;
    this.#stream = options.stream;
    this.#deserialize = options.deserialize ?? (decodeJson as (data: Uint8Array, subject: string) => T);
    this.#position = new SplitReader(
      ctx.parallelism,
      ctx.subtaskIndex,
      options.startSequence ?? 1,
      ctx.restoredState,
      name,
    );
    ctx.onCheckpoint(() => this.#position.snapshot());
  }

  async run(): Promise<void> {
    const { servers } = this.#o;
    let own: NatsConnection | undefined;
    if (servers !== undefined) {
      try {
        own = await connect({
          servers,
          name: `sluice-${this.#ctx.jobId}-jetstream-source-${this.#ctx.subtaskIndex}`,
        });
      } catch (err) {
        throw new Error(
          `JetStream source: cannot connect to NATS at ${[servers].flat().join(', ')}: ${message(err)}`,
        );
      }
    }
    try {
      await this.#read(own ?? this.#ctx.nats);
    } finally {
      await own?.close().catch(() => {});
    }
  }

  async #read(nc: NatsConnection): Promise<void> {
    const ctx = this.#ctx;
    const bounded = this.#o.bounded ?? true;
    const position = this.#position;
    // After a restore: where the old subtasks had all read to (for this subtask's messages).
    const start = position.next;
    const batchSize = this.#o.batchSize ?? 256;
    const { parallelism, subtaskIndex } = ctx;

    const jsm = await this.#api(() => jetstreamManager(nc));
    // Bounded: what the stream holds now is what this subtask reads.
    const lastSequence = (await this.#api(() => jsm.streams.info(this.#stream))).state.last_seq;
    if (bounded && lastSequence < start) return;
    const consumer = await this.#api(() =>
      jetstream(nc).consumers.get(this.#stream, {
        opt_start_seq: start,
        ...(this.#o.subject !== undefined ? { filter_subjects: this.#o.subject } : {}),
      }),
    );
    try {
      // Nothing to read (e.g. no message on the subject filter).
      if (bounded && (await consumer.info(true)).num_pending === 0) return;
      for (;;) {
        ctx.signal.throwIfAborted();
        const batch = await consumer.fetch({ max_messages: batchSize, expires: FETCH_EXPIRES_MS });
        const stop = () => batch.stop();
        ctx.signal.addEventListener('abort', stop, { once: true });
        let received = 0;
        try {
          for await (const msg of batch) {
            received++;
            const seq = msg.seq;
            // A message stored after the start: not part of a bounded read.
            if (bounded && seq > lastSequence) return;
            if (seq % parallelism === subtaskIndex && !position.emittedBefore(seq)) {
              let value: T;
              try {
                value = this.#deserialize(msg.data, msg.subject);
              } catch (err) {
                throw new Error(
                  `cannot decode the message at sequence ${seq} of JetStream stream '${this.#stream}' ` +
                    `(subject '${msg.subject}'): ${message(err)}`,
                );
              }
              ctx.collect(value, this.#o.useMessageTimestamps ? msg.time.getTime() : undefined);
            }
            // Read (emitted, another subtask's, or emitted before a restore); set before any await.
            position.next = seq + 1;
            // The backlog: messages after this one the consumer has not delivered; this subtask's share.
            ctx.setPendingRecords(msg.info.pending / parallelism);
            // Read up to the last sequence, or no matching message is left (filter, deleted messages).
            if (bounded && (seq >= lastSequence || msg.info.pending === 0)) return;
            if (!ctx.writable) await ctx.ready();
          }
        } finally {
          ctx.signal.removeEventListener('abort', stop);
          batch.stop();
        }
        ctx.signal.throwIfAborted();
        // An empty fetch of an unbounded read: caught up.
        if (received === 0) ctx.setPendingRecords(0);
        // An empty fetch: messages may have been removed (limits, purge) after the start.
        if (bounded && received === 0 && (await consumer.info()).num_pending === 0) return;
      }
    } finally {
      await deleteQuietly(consumer);
    }
  }

  /** Runs a JetStream API call, turning "stream not found" into a clear error. */
  async #api<R>(call: () => Promise<R>): Promise<R> {
    try {
      return await call();
    } catch (err) {
      if (isStreamNotFound(err)) throw new Error(`JetStream stream '${this.#stream}' not found`);
      throw new Error(`JetStream stream '${this.#stream}': ${message(err)}`, { cause: err });
    }
  }
}

/** The ordered consumer is ephemeral (it expires when inactive), but need not linger until then. */
async function deleteQuietly(consumer: Consumer): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    consumer.delete().catch(() => false),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLEANUP_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
