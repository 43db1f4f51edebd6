/**
 * The actor base: an address (subject prefix), one subscription feeding one mailbox, typed handlers.
 *
 * Handlers come from a declared protocol (`serve(protocol, handlers)`, see protocol.ts): one for every
 * message the protocol declares. Every message to `<address>.<type>` is decoded and validated on receipt,
 * before it reaches the mailbox. An invalid ask gets a coded error reply; an invalid tell is dropped,
 * logged and counted in `stats.dropped`. A message declared `fenced` is checked against the leader epoch
 * in the mailbox, before its handler runs (see {@link Fencing}): refused, an ask gets LEADERSHIP_LOST and
 * a tell is a counted drop. Handlers run one at a time in the mailbox; what they return is the ask's reply.
 * Handlers must stay short: slow work runs outside and reports back with `runInMailbox`.
 *
 * Encodings: msgpack envelopes (envelope.ts) always; JSON as well for asks declared `json`, chosen by the
 * request's `Content-Type: application/json` header and answered in JSON (json-codec.ts). A JSON request
 * to a message not declared `json` gets a JSON error reply (BAD_ENVELOPE).
 */
import { headers, Match, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import { ErrorCode, SluiceError, toSluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { decodeEnvelope, type Envelope, encodeError, encodeOk } from './envelope.js';
import { decodeJsonRequest, encodeJsonError, encodeJsonOk, JSON_CONTENT_TYPE } from './json-codec.js';
import { Mailbox } from './mailbox.js';
import {
  type Fencing,
  type Handlers,
  LaterReply,
  type MessageMeta,
  type MessageSpecs,
  type Protocol,
} from './protocol.js';
import type { Rpc } from './rpc.js';

export { LaterReply, type MessageMeta };

export interface ActorContext {
  nc: NatsConnection;
  rpc: Rpc;
  log: Logger;
  clusterId: string;
  maxMessageBytes: number;
}

interface Handler {
  kind: 'ask' | 'tell';
  schema: z.ZodType;
  fenced: Fencing | undefined;
  json: boolean;
  handle: (body: never, meta: MessageMeta) => unknown;
}

/** How an actor checks `fenced` messages (see {@link Fencing}). */
export interface ActorFence {
  /** `leader-epoch`: accepts the epoch (advancing the receiver's fence) or throws LEADERSHIP_LOST. */
  require?: (epoch: number) => void;
  /** `own-epoch`: the receiver's own leader epoch; undefined without HA. */
  own?: number | undefined;
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
  #fence: ActorFence = {};

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
   * Registers a handler for every message `protocol` declares (the type requires all of them; a missing one
   * is also refused here, at construction). `fence` says how `fenced` messages are checked.
   */
  protected serve<M extends MessageSpecs>(
    protocol: Protocol<M, never[]> | Protocol<M, [string]>,
    handlers: Handlers<M>,
    fence: ActorFence = {},
  ): void {
    this.#fence = fence;
    for (const [type, spec] of Object.entries(protocol.messages)) {
      const handle = (handlers as Record<string, unknown>)[type];
      if (typeof handle !== 'function') {
        throw new SluiceError(ErrorCode.Internal, `${this.name} has no handler for its declared '${type}'`);
      }
      if (spec.fenced === 'leader-epoch' && fence.require === undefined) {
        throw new SluiceError(ErrorCode.Internal, `${this.name} declares '${type}' fenced but has no fence`);
      }
      this.#handlers.set(type, {
        kind: spec.kind,
        schema: spec.request,
        fenced: spec.fenced,
        json: spec.kind === 'ask' && spec.json,
        handle: handle as Handler['handle'],
      });
    }
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

  /** Counts a message its handler refused as invalid (e.g. a report validated there) in `stats.dropped`. */
  protected countDropped(code: ErrorCode): void {
    this.#count(this.stats.dropped, code);
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
    const encoding = isJson(msg) ? 'json' : 'msgpack';
    if (type === STATS_TYPE && msg.reply) {
      msg.respond(encodeOk(this.stats));
      return;
    }
    let env: Envelope;
    let handler: Handler;
    let body: unknown;
    try {
      const found = this.#handlers.get(type);
      if (encoding === 'json') {
        env = decodeJsonRequest(type, msg.data, this.ctx.maxMessageBytes);
        if (found && !found.json) {
          throw new SluiceError(
            ErrorCode.BadEnvelope,
            `'${type}' takes msgpack envelopes only (JSON is for the client-facing asks, see docs/protocol.md)`,
          );
        }
      } else {
        env = decodeEnvelope(msg.data, this.ctx.maxMessageBytes);
      }
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
      this.#reject(msg, type, toSluiceError(e), encoding);
      return;
    }
    const meta: MessageMeta = { subject: msg.subject, epoch: env.epoch, from: env.from, encoding };
    const accepted = this.#mailbox.enqueue(async () => {
      if (handler.fenced && !this.#passesFence(handler.fenced, msg, type, meta, body)) return;
      try {
        const result = await handler.handle(body as never, meta);
        this.stats.processed++;
        if (result instanceof LaterReply) {
          // The mailbox moves on; the answer goes out when the work is done.
          (result.promise as Promise<unknown>).then(
            (value) => {
              if (msg.reply) this.#respond(msg, type, value, encoding);
            },
            (e: unknown) => this.#failed(msg, type, e, encoding),
          );
          return;
        }
        if (msg.reply) this.#respond(msg, type, result, encoding);
      } catch (e) {
        this.stats.processed++;
        this.#failed(msg, type, e, encoding);
      }
    });
    if (!accepted)
      this.#reject(msg, type, new SluiceError(ErrorCode.IllegalState, `${this.name} is stopping`), encoding);
  }

  /**
   * Checks a `fenced` message's epoch (in the mailbox: a `leader-epoch` fence may cancel tasks when it
   * advances). The epoch is the envelope's; a report whose sender put it only in the body (`epoch`) is
   * taken from there.
   */
  #passesFence(fencing: Fencing, msg: Msg, type: string, meta: MessageMeta, body: unknown): boolean {
    if (fencing === 'leader-epoch') {
      if (meta.epoch === undefined) return true;
      try {
        this.#fence.require!(meta.epoch);
        return true;
      } catch (e) {
        this.#reject(msg, type, toSluiceError(e), meta.encoding);
        return false;
      }
    }
    const epoch = meta.epoch ?? (body as { epoch?: number } | null)?.epoch;
    if (epoch === this.#fence.own) return true;
    // Routine after a failover (tasks of the former leader report until they are cancelled): debug only.
    this.#count(this.stats.dropped, ErrorCode.LeadershipLost);
    this.log.debug({ type, epoch, own: this.#fence.own }, 'dropped a message of another leader epoch');
    if (msg.reply) {
      msg.respond(
        encodeReply(
          meta.encoding,
          new SluiceError(
            ErrorCode.LeadershipLost,
            `epoch ${epoch} is not this JobManager's (${this.#fence.own})`,
          ),
        ),
      );
    }
    return false;
  }

  #failed(msg: Msg, type: string, e: unknown, encoding: MessageMeta['encoding']): void {
    const error = toSluiceError(e);
    if (error.code === ErrorCode.Internal) this.log.error({ err: e, type }, 'handler failed');
    if (msg.reply) {
      this.#count(this.stats.rejected, error.code);
      respond(msg, encodeReply(encoding, error), encoding);
    } else {
      this.log.warn({ type, code: error.code, err: error.message }, 'tell handler failed');
    }
  }

  #respond(msg: Msg, type: string, result: unknown, encoding: MessageMeta['encoding']): void {
    const data = encoding === 'json' ? encodeJsonOk(result ?? null) : encodeOk(result ?? null);
    if (data.byteLength > this.ctx.maxMessageBytes) {
      const error = new SluiceError(
        ErrorCode.MessageTooLarge,
        `reply to '${type}' of ${data.byteLength} bytes is over the limit of ${this.ctx.maxMessageBytes} bytes`,
      );
      this.#count(this.stats.rejected, error.code);
      respond(msg, encodeReply(encoding, error), encoding);
      return;
    }
    respond(msg, data, encoding);
  }

  /** An invalid message: coded error reply for an ask, counted drop for a tell. */
  #reject(msg: Msg, type: string, error: SluiceError, encoding: MessageMeta['encoding']): void {
    if (msg.reply) {
      this.#count(this.stats.rejected, error.code);
      respond(msg, encodeReply(encoding, error), encoding);
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

function isJson(msg: Msg): boolean {
  const value = msg.headers?.get('Content-Type', Match.IgnoreCase);
  return value !== undefined && value.split(';')[0]!.trim().toLowerCase() === JSON_CONTENT_TYPE;
}

function encodeReply(encoding: MessageMeta['encoding'], error: SluiceError): Uint8Array {
  return encoding === 'json' ? encodeJsonError(error) : encodeError(error);
}

function respond(msg: Msg, data: Uint8Array, encoding: MessageMeta['encoding']): void {
  if (encoding !== 'json') {
    msg.respond(data);
    return;
  }
  const h = headers();
  h.set('Content-Type', JSON_CONTENT_TYPE);
  msg.respond(data, { headers: h });
}
