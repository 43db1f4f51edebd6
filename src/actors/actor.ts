/**
 * The actor base: an address (subject prefix), one subscription feeding one mailbox, typed handlers.
 *
 * Every message to `<address>.<type>` is decoded and validated on receipt, before it reaches the
 * mailbox. An invalid ask gets a coded error reply; an invalid tell is dropped, logged and counted in
 * `stats.dropped`. Handlers run one at a time in the mailbox; what they return is the ask's reply.
 * Handlers must stay short: slow work runs outside and reports back with `runInMailbox`.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import { ErrorCode, SluiceError, toSluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { decodeEnvelope, type Envelope, encodeError, encodeOk } from './envelope.js';
import { Mailbox } from './mailbox.js';
import type { Rpc } from './rpc.js';

export interface ActorContext {
  nc: NatsConnection;
  rpc: Rpc;
  log: Logger;
  clusterId: string;
  maxMessageBytes: number;
}

export interface MessageMeta {
  subject: string;
  epoch: number | undefined;
  from: string | undefined;
}

type Kind = 'ask' | 'tell';

interface Handler {
  kind: Kind;
  schema: z.ZodType;
  handle: (body: never, meta: MessageMeta) => unknown;
}

export interface ActorStats {
  /** Messages handled (successfully or with an error reply). */
  processed: number;
  /** Messages dropped before reaching a handler, by error code. */
  dropped: Record<string, number>;
  /** Asks answered with an error reply, by error code. */
  rejected: Record<string, number>;
}

export type ActorState = 'CREATED' | 'RUNNING' | 'STOPPING' | 'STOPPED';

/** Message type every actor answers with its ActorStats. */
export const STATS_TYPE = 'stats';

export abstract class Actor {
  readonly address: string;
  readonly name: string;
  protected readonly ctx: ActorContext;
  protected readonly log: Logger;
  readonly stats: ActorStats = { processed: 0, dropped: {}, rejected: {} };
  #state: ActorState = 'CREATED';
  #sub: Subscription | undefined;
  readonly #handlers = new Map<string, Handler>();
  readonly #mailbox: Mailbox;

  protected constructor(
    ctx: ActorContext,
    name: string,
    address: string,
    logFields: Record<string, unknown> = {},
  ) {
    this.ctx = ctx;
    this.name = name;
    this.address = address;
    this.log = ctx.log.child({ actor: name, ...logFields });
    this.#mailbox = new Mailbox((err) => this.log.error({ err }, 'mailbox item failed'));
  }

  get state(): ActorState {
    return this.#state;
  }

  /**
   * Registers a request/reply handler for `<address>.<type>`. A handler whose answer takes long (a
   * savepoint) returns a {@link LaterReply}: the mailbox goes on with the next message meanwhile.
   */
  protected onAsk<S extends z.ZodType>(
    type: string,
    schema: S,
    handle: (body: z.infer<S>, meta: MessageMeta) => unknown,
  ): void {
    this.#handlers.set(type, { kind: 'ask', schema, handle: handle as Handler['handle'] });
  }

  /** Registers a fire-and-forget handler for `<address>.<type>`. */
  protected onTell<S extends z.ZodType>(
    type: string,
    schema: S,
    handle: (body: z.infer<S>, meta: MessageMeta) => unknown,
  ): void {
    this.#handlers.set(type, { kind: 'tell', schema, handle: handle as Handler['handle'] });
  }

  start(): void {
    if (this.#state !== 'CREATED')
      throw new SluiceError(ErrorCode.IllegalState, `${this.name} already started`);
    this.#sub = this.ctx.nc.subscribe(`${this.address}.>`, {
      callback: (err, msg) => this.#receive(err, msg),
    });
    this.#state = 'RUNNING';
    this.log.debug({ address: this.address }, 'actor started');
  }

  /** Stops taking messages, lets the mailbox finish, then runs `onStop`. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === 'STOPPING' || this.#state === 'STOPPED') return;
    this.#state = 'STOPPING';
    this.#sub?.unsubscribe();
    await this.#mailbox.idle();
    this.#mailbox.close();
    try {
      await this.onStop();
    } finally {
      this.#state = 'STOPPED';
      this.log.debug('actor stopped');
    }
  }

  /** Hook for subclasses: release what the actor holds. Runs after the mailbox is idle. */
  protected async onStop(): Promise<void> {}

  /** Runs `fn` in this actor's mailbox (in order with its messages) and returns its result. */
  runInMailbox<T>(fn: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const accepted = this.#mailbox.enqueue(async () => {
        try {
          resolve(await fn());
        } catch (err) {
          reject(err);
        }
      });
      if (!accepted) reject(new SluiceError(ErrorCode.IllegalState, `${this.name} is stopped`));
    });
  }

  #receive(err: Error | null, msg: Msg): void {
    if (err) {
      this.log.error({ err }, 'subscription failed');
      return;
    }
    const type = msg.subject.slice(this.address.length + 1);
    if (type === STATS_TYPE && msg.reply) {
      msg.respond(encodeOk(this.stats));
      return;
    }
    let env: Envelope;
    let handler: Handler;
    let body: unknown;
    try {
      env = decodeEnvelope(msg.data, this.ctx.maxMessageBytes);
      const found = this.#handlers.get(type);
      if (!found) {
        throw new SluiceError(ErrorCode.UnknownMessageType, `${this.name} has no handler for '${type}'`);
      }
      if (env.type !== type) {
        throw new SluiceError(
          ErrorCode.InvalidMessage,
          `envelope type '${env.type}' does not match subject type '${type}'`,
        );
      }
      handler = found;
      const parsed = handler.schema.safeParse(env.body);
      if (!parsed.success) {
        throw new SluiceError(
          ErrorCode.InvalidMessage,
          `invalid '${type}': ${z.prettifyError(parsed.error)}`,
        );
      }
      body = parsed.data;
    } catch (e) {
      this.#reject(msg, type, toSluiceError(e));
      return;
    }
    const meta: MessageMeta = { subject: msg.subject, epoch: env.epoch, from: env.from };
    const accepted = this.#mailbox.enqueue(async () => {
      try {
        const result = await handler.handle(body as never, meta);
        this.stats.processed++;
        if (result instanceof LaterReply) {
          // The mailbox moves on; the answer goes out when the work is done.
          (result.promise as Promise<unknown>).then(
            (value) => {
              if (msg.reply) this.#respond(msg, type, value);
            },
            (e: unknown) => {
              const error = toSluiceError(e);
              if (error.code === ErrorCode.Internal) this.log.error({ err: e, type }, 'handler failed');
              if (msg.reply) {
                this.#count(this.stats.rejected, error.code);
                msg.respond(encodeError(error));
              }
            },
          );
          return;
        }
        if (msg.reply) this.#respond(msg, type, result);
      } catch (e) {
        this.stats.processed++;
        const error = toSluiceError(e);
        if (error.code === ErrorCode.Internal) this.log.error({ err: e, type }, 'handler failed');
        if (msg.reply) {
          this.#count(this.stats.rejected, error.code);
          msg.respond(encodeError(error));
        } else {
          this.log.warn({ type, code: error.code, err: error.message }, 'tell handler failed');
        }
      }
    });
    if (!accepted)
      this.#reject(msg, type, new SluiceError(ErrorCode.IllegalState, `${this.name} is stopping`));
  }

  #respond(msg: Msg, type: string, result: unknown): void {
    const data = encodeOk(result ?? null);
    if (data.byteLength > this.ctx.maxMessageBytes) {
      const error = new SluiceError(
        ErrorCode.MessageTooLarge,
        `reply to '${type}' of ${data.byteLength} bytes is over the limit of ${this.ctx.maxMessageBytes} bytes`,
      );
      this.#count(this.stats.rejected, error.code);
      msg.respond(encodeError(error));
      return;
    }
    msg.respond(data);
  }

  /** An invalid message: coded error reply for an ask, counted drop for a tell. */
  #reject(msg: Msg, type: string, error: SluiceError): void {
    if (msg.reply) {
      this.#count(this.stats.rejected, error.code);
      msg.respond(encodeError(error));
      this.log.warn({ subject: msg.subject, code: error.code, err: error.message }, 'rejected ask');
    } else {
      this.#count(this.stats.dropped, error.code);
      this.log.warn({ subject: msg.subject, code: error.code, err: error.message, type }, 'dropped tell');
    }
  }

  #count(table: Record<string, number>, code: string): void {
    table[code] = (table[code] ?? 0) + 1;
  }
}

/** What an ask handler returns when its answer comes later: the reply is sent when `promise` settles. */
export class LaterReply<T> {
  constructor(readonly promise: Promise<T>) {}
}
