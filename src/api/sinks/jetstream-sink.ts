/**
 * Publishes records to JetStream and waits for its acknowledgements (the message is stored). Per subtask at
 * most `maxInFlight` publishes are unacknowledged; records written beyond that wait in the writer, which
 * then reports itself not writable, so the task stops feeding it until acks come back.
 *
 * Each message carries `Nats-Msg-Id: <jobId>-<subtaskIndex>-<n>` (n counts the writer's records from 1),
 * so JetStream drops a message published twice within the stream's duplicate window — e.g. a publish
 * retried after a lost ack, or the same record written again when the job's tasks restart and replay the
 * same input in the same order. That is not exactly-once yet: it needs checkpoints (ids tied to the
 * checkpointed input position, as a transactional Kafka sink in Flink); it comes with checkpointing.
 */
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
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
    return new JetStreamWriter<T>(ctx, this.#options, this.#maxInFlight, own, (n) => {
      if (n > this.#peakInFlight) this.#peakInFlight = n;
    });
  }
}

interface Pending {
  subject: string;
  data: Uint8Array;
  msgId: string;
}

class JetStreamWriter<T> implements SinkWriter<T> {
  readonly #js: ReturnType<typeof jetstream>;
  readonly #own: NatsConnection | undefined;
  readonly #idPrefix: string;
  readonly #maxInFlight: number;
  readonly #subjectOf: (value: T) => string;
  readonly #serialize: (value: T) => Uint8Array;
  readonly #onInFlight: (n: number) => void;
  /** Records written so far; the n of the message ids. */
  #written = 0;
  #inFlight = 0;
  /** Written while `maxInFlight` publishes await their acks; published as acks come back. */
  #queue: Pending[] = [];
  #failure: Error | undefined;
  /** Woken whenever a publish settles. */
  #waiters: Array<() => void> = [];

  constructor(
    ctx: ConnectorContext,
    options: JetStreamSinkOptions<T>,
    maxInFlight: number,
    own: NatsConnection | undefined,
    onInFlight: (n: number) => void,
  ) {
    this.#js = jetstream(own ?? ctx.nats);
    this.#own = own;
    this.#idPrefix = `${ctx.jobId}-${ctx.subtaskIndex}-`;
    this.#maxInFlight = maxInFlight;
    const subject = options.subject;
    this.#subjectOf = typeof subject === 'string' ? () => subject : subject;
    this.#serialize = options.serialize ?? (encodeJson as (value: T) => Uint8Array);
    this.#onInFlight = onInFlight;
  }

  get writable(): boolean {
    return this.#failure === undefined && this.#inFlight + this.#queue.length < this.#maxInFlight;
  }

  write(value: T): void {
    if (this.#failure !== undefined) throw this.#failure;
    const subject = this.#subjectOf(value);
    if (typeof subject !== 'string' || subject.length === 0) {
      throw new Error(`JetStream sink: the subject function returned ${JSON.stringify(subject)}`);
    }
    const pending: Pending = {
      subject,
      data: this.#serialize(value),
      msgId: `${this.#idPrefix}${++this.#written}`,
    };
    if (this.#queue.length === 0 && this.#inFlight < this.#maxInFlight) this.#publish(pending);
    else this.#queue.push(pending);
  }

  async ready(): Promise<void> {
    while (this.#failure === undefined && this.#inFlight + this.#queue.length >= this.#maxInFlight) {
      await this.#settled();
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Resolves once every record is acknowledged; throws the first publish error. */
  async finish(): Promise<void> {
    while (this.#inFlight > 0 || (this.#failure === undefined && this.#queue.length > 0)) {
      await this.#settled();
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  async close(): Promise<void> {
    this.#queue = [];
    // Publishes still pending (a cancelled task) fail with the closed connection; that is handled.
    await this.#own?.close().catch(() => {});
  }

  #publish(p: Pending): void {
    this.#inFlight++;
    this.#onInFlight(this.#inFlight);
    this.#js.publish(p.subject, p.data, { msgID: p.msgId }).then(
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
    while (this.#failure === undefined && this.#queue.length > 0 && this.#inFlight < this.#maxInFlight) {
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

function publishError(subject: string, err: unknown): Error {
  // With no stream capturing the subject nobody answers the publish; nats.js reports the "no responders"
  // as JetStreamNotEnabled ('jetstream is not enabled').
  const text = message(err);
  const name = (err as { name?: unknown } | undefined)?.name;
  if (name === 'JetStreamNotEnabled' || /no responders|jetstream is not enabled/i.test(text)) {
    return new Error(`no JetStream stream captures subject '${subject}'`, { cause: err });
  }
  return new Error(`publishing to JetStream subject '${subject}' failed: ${text}`, { cause: err });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
