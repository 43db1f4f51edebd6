/**
 * Publishes records to a JetStream subject and waits for JetStream's acknowledgements: at most
 * `maxInFlight` unacknowledged messages per subtask (more, and the task waits). Each message carries
 * `Nats-Msg-Id: <jobId>-<subtask>-<n>`, so JetStream drops a message published twice within the
 * stream's duplicate window. (Exactly-once across restarts needs checkpoints: ids then derive from the
 * checkpoint and the record's position.)
 */
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';

export interface JetStreamSinkOptions<T> {
  subject: string | ((value: T) => string);
  /** Record → payload; default JSON, UTF-8. */
  serialize?: (value: T) => Uint8Array;
  /** Publish to these NATS servers instead of the TaskManager's own connection. */
  servers?: string | string[];
  /** Unacknowledged messages per subtask (default 256). */
  maxInFlight?: number;
}

const encoder = new TextEncoder();

export class JetStreamSink<T> implements Sink<T> {
  readonly name: string;
  readonly #options: JetStreamSinkOptions<T>;

  constructor(options: JetStreamSinkOptions<T>) {
    this.#options = options;
    this.name = `JetStream Sink (${typeof options.subject === 'string' ? options.subject : 'by record'})`;
  }

  async createWriter(ctx: ConnectorContext): Promise<SinkWriter<T>> {
    const o = this.#options;
    const own: NatsConnection | undefined = o.servers ? await connect({ servers: o.servers }) : undefined;
    const js = jetstream(own ?? ctx.nats);
    const maxInFlight = o.maxInFlight ?? 256;
    const serialize = o.serialize ?? ((v: T) => encoder.encode(JSON.stringify(v)));
    const subjectOf = typeof o.subject === 'string' ? () => o.subject as string : o.subject;
    const inFlight = new Set<Promise<void>>();
    let n = 0;
    let failure: Error | undefined;
    const drainOne = async () => {
      if (inFlight.size > 0) await Promise.race(inFlight);
    };
    return {
      write(value) {
        if (failure) throw failure;
        const subject = subjectOf(value);
        const p: Promise<void> = js
          .publish(subject, serialize(value), { msgID: `${ctx.jobId}-${ctx.subtaskIndex}-${n++}` })
          .then(
            () => undefined,
            (err: Error) => {
              // With no stream on the subject the publish gets no responders, which nats.js reports as
              // 'jetstream is not enabled'.
              failure ??= /no responders|no stream|jetstream is not enabled/i.test(err.message)
                ? new Error(`no JetStream stream captures subject '${subject}'`)
                : new Error(`publishing to JetStream subject '${subject}' failed: ${err.message}`);
            },
          )
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
      get writable() {
        return inFlight.size < maxInFlight && failure === undefined;
      },
      async ready() {
        while (inFlight.size >= maxInFlight && failure === undefined) await drainOne();
        if (failure) throw failure;
      },
      async finish() {
        await Promise.all(inFlight);
        if (failure) throw failure;
      },
      async close() {
        await own?.close();
      },
    };
  }
}
