/**
 * Sends a job's records back to the client that ran it (`executeAndCollect`). Batches go to
 * `sluice.<cluster>.collect.<jobId>` as asks; one batch is in flight per subtask, which is the
 * backpressure: a slow client slows the job instead of losing records.
 */
import { decodeReply, encode } from '../../actors/envelope.js';
import { Subjects } from '../../actors/subjects.js';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';

const BATCH_RECORDS = 500;
const MAX_BUFFERED = 5_000;
const REPLY_LIMIT = 64 * 1024;

export interface CollectBatch {
  subtask: number;
  seq: number;
  records: unknown[];
  last: boolean;
}

export class CollectSink<T> implements Sink<T> {
  readonly name = 'Collect Sink';

  createWriter(ctx: ConnectorContext): SinkWriter<T> {
    return new CollectWriter<T>(ctx);
  }
}

class CollectWriter<T> implements SinkWriter<T> {
  readonly #ctx: ConnectorContext;
  readonly #subject: string;
  #buffer: unknown[] = [];
  #seq = 0;
  #inFlight: Promise<void> | undefined;
  #failure: unknown;

  constructor(ctx: ConnectorContext) {
    this.#ctx = ctx;
    this.#subject = new Subjects(ctx.clusterId).collect(ctx.jobId);
  }

  get writable(): boolean {
    return this.#buffer.length < MAX_BUFFERED && this.#failure === undefined;
  }

  write(value: T): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#buffer.push(value);
    if (this.#buffer.length >= BATCH_RECORDS && !this.#inFlight) this.#send(false);
  }

  async ready(): Promise<void> {
    while (!this.writable) {
      if (this.#failure !== undefined) throw this.#failure;
      if (!this.#inFlight) this.#send(false);
      await this.#inFlight;
    }
  }

  async finish(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
    this.#send(true);
    await this.#inFlight;
    if (this.#failure !== undefined) throw this.#failure;
  }

  #send(last: boolean): void {
    const batch: CollectBatch = {
      subtask: this.#ctx.subtaskIndex,
      seq: this.#seq++,
      records: this.#buffer,
      last,
    };
    this.#buffer = [];
    this.#inFlight = this.#ctx.nats
      .request(this.#subject, encode('collect', batch), { timeout: 30_000 })
      .then((reply) => {
        decodeReply(reply.data, REPLY_LIMIT);
      })
      .catch((err: unknown) => {
        this.#failure = new Error(
          `the client collecting results stopped answering: ${(err as Error).message}`,
        );
      })
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#buffer.length >= BATCH_RECORDS && this.#failure === undefined) this.#send(false);
      });
  }
}
