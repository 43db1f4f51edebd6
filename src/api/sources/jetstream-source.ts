/**
 * Reads a JetStream stream. Bounded by default: the messages present when the job starts, then the
 * source ends (as a Kafka source with bounded offsets). Unbounded: keeps reading until cancelled.
 *
 * Subtask s of p emits the messages whose stream sequence ≡ s (mod p); each subtask reads the stream
 * with its own ordered consumer and skips the others' messages, so p subtasks read the stream p times.
 */
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Source, SourceContext } from '../connector.js';

export interface JetStreamSourceOptions<T> {
  stream: string;
  /** Only messages on this subject (filter); default all of the stream. */
  subject?: string;
  /** Payload → record; default JSON of the UTF-8 payload. */
  deserialize?: (data: Uint8Array, subject: string) => T;
  /** Read what the stream holds at the start, then end (default true); false: read until cancelled. */
  bounded?: boolean;
  /** First stream sequence to read (default 1). */
  startSequence?: number;
  /** Read from these NATS servers instead of the TaskManager's own connection. */
  servers?: string | string[];
  /** The message's stream timestamp (ms) becomes the record's event time (default false). */
  useMessageTimestamps?: boolean;
  /** Messages asked for per fetch (default 500). */
  batchSize?: number;
}

const decoder = new TextDecoder();

function defaultDeserialize(data: Uint8Array): unknown {
  return JSON.parse(decoder.decode(data));
}

export class JetStreamSource<T> implements Source<T> {
  readonly name: string;
  readonly #options: JetStreamSourceOptions<T>;

  constructor(options: JetStreamSourceOptions<T>) {
    if (!options.stream) throw new Error('JetStreamSource: stream is required');
    this.#options = options;
    this.name = `JetStream Source (${options.stream}${options.subject ? `: ${options.subject}` : ''})`;
  }

  async run(ctx: SourceContext<T>): Promise<void> {
    const o = this.#options;
    const own: NatsConnection | undefined = o.servers ? await connect({ servers: o.servers }) : undefined;
    const nc = own ?? ctx.nats;
    try {
      const jsm = await jetstreamManager(nc);
      const last = await lastSequence(jsm, o.stream);
      const start = o.startSequence ?? 1;
      const bounded = o.bounded ?? true;
      if (bounded && last < start) return;
      const consumer = await jetstream(nc).consumers.get(o.stream, {
        ...(o.subject ? { filter_subjects: o.subject } : {}),
        ...(start > 1 ? { deliver_policy: 'by_start_sequence' as never, opt_start_seq: start } : {}),
      });
      const deserialize = o.deserialize ?? (defaultDeserialize as (data: Uint8Array, subject: string) => T);
      // The last sequence emitted; checkpoints will store it to resume from.
      let position = start - 1;
      for (;;) {
        ctx.signal.throwIfAborted();
        const batch = await consumer.fetch({ max_messages: o.batchSize ?? 500, expires: 1_000 });
        let caughtUp = false;
        let got = 0;
        for await (const msg of batch) {
          got++;
          position = msg.seq;
          if (bounded && (msg.seq >= last || msg.info.pending === 0)) caughtUp = true;
          if (msg.seq % ctx.parallelism !== ctx.subtaskIndex) continue;
          let value: T;
          try {
            value = deserialize(msg.data, msg.subject);
          } catch (err) {
            throw new Error(
              `cannot decode message ${msg.seq} of JetStream stream '${o.stream}': ${(err as Error).message}`,
            );
          }
          const ts = o.useMessageTimestamps ? Number(msg.timestampNanos / 1_000_000n) : undefined;
          ctx.collect(value, ts);
          if (!ctx.writable) await ctx.ready();
        }
        if (bounded && (caughtUp || (got === 0 && position >= last))) return;
        if (bounded && got === 0 && (await lastSequence(jsm, o.stream)) <= position) return;
      }
    } finally {
      await own?.close();
    }
  }
}

async function lastSequence(jsm: JetStreamManager, stream: string): Promise<number> {
  try {
    return (await jsm.streams.info(stream)).state.last_seq;
  } catch (err) {
    const message = (err as Error).message;
    if (/not found/i.test(message)) throw new Error(`JetStream stream '${stream}' not found`);
    throw new Error(`cannot read JetStream stream '${stream}': ${message}`);
  }
}
