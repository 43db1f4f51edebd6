/**
 * Declared protocols: each role (Dispatcher, ResourceManager, JobMaster, TaskExecutor) declares ONCE, in
 * its `protocol.ts`, the asks and tells it answers — each with its request schema, an ask's reply schema,
 * and options — and the subject it listens on. The declaration drives both sides:
 *
 * - the actor registers its handlers with `serve(protocol, handlers)` (actor.ts): the handlers object must
 *   have a handler for every declared message, each typed by its schemas (an ask's handler returns the
 *   reply type); a message that is not declared has no handler (UNKNOWN_MESSAGE_TYPE);
 * - callers use a {@link Gateway} built from the same declaration: `gateway.ask('status', { jobId })`
 *   checks the request type, sends it to the declared subject, validates the reply with the declared
 *   schema and retries only asks declared `idempotent` — no hand-built subjects, no unchecked casts;
 * - `fenced` makes the actor base class enforce the leader epoch before the handler runs (see
 *   {@link Fencing}); handlers hold no epoch checks of their own;
 * - `json` lets a client-facing ask be sent as JSON (`Content-Type: application/json`), answered in JSON;
 * - `scripts/protocol-docs.ts` prints docs/protocol.md from the client-facing declarations.
 *
 * Refuses nothing at run time by itself: validation and fencing happen in the actor (actor.ts) and the
 * gateway (rpc.ts); this module only holds the declarations and their types.
 */
import type { z } from 'zod';
import type { Rpc } from './rpc.js';
import type { Subjects } from './subjects.js';

/**
 * How the actor base class fences a message by the leader epoch of its envelope:
 * - `leader-epoch`: a command from the leader. Its epoch must not be older than the newest the receiver
 *   has seen (the receiver's EpochFence; a newer one advances it). Refused: LEADERSHIP_LOST (an ask gets
 *   it as its reply, a tell is a counted drop). A message without an epoch (no HA) is not fenced.
 * - `own-epoch`: a report to a leader's JobMaster from a task it deployed. Its epoch must be the
 *   receiver's own (a task deployed by a former leader is not its own): else a counted drop.
 */
export type Fencing = 'leader-epoch' | 'own-epoch';

/** What a handler learns about a message besides its body. */
export interface MessageMeta {
  subject: string;
  epoch: number | undefined;
  from: string | undefined;
  /** How the request was encoded (and the reply will be): JSON only for asks declared `json`. */
  encoding: 'msgpack' | 'json';
}

/** What an ask handler returns when its answer comes later: the reply is sent when `promise` settles. */
export class LaterReply<T> {
  constructor(readonly promise: Promise<T>) {}
}

interface MessageOptions {
  /** One line for docs/protocol.md and the code. */
  description: string;
  fenced?: Fencing;
}

export interface AskSpec<Req extends z.ZodType = z.ZodType, Rep extends z.ZodType = z.ZodType>
  extends MessageOptions {
  readonly kind: 'ask';
  readonly request: Req;
  readonly reply: Rep;
  /** Safe to send twice: the gateway retries it on retryable errors. */
  readonly idempotent: boolean;
  /** Also accepted as JSON (`Content-Type: application/json`), answered in JSON. */
  readonly json: boolean;
}

export interface TellSpec<Req extends z.ZodType = z.ZodType> extends MessageOptions {
  readonly kind: 'tell';
  readonly request: Req;
}

export type MessageSpec = AskSpec | TellSpec;
export type MessageSpecs = Record<string, MessageSpec>;

export function ask<Req extends z.ZodType, Rep extends z.ZodType>(
  request: Req,
  reply: Rep,
  options: MessageOptions & { idempotent?: boolean; json?: boolean },
): AskSpec<Req, Rep> {
  return {
    kind: 'ask',
    request,
    reply,
    description: options.description,
    idempotent: options.idempotent ?? false,
    json: options.json ?? false,
    ...(options.fenced ? { fenced: options.fenced } : {}),
  };
}

export function tell<Req extends z.ZodType>(request: Req, options: MessageOptions): TellSpec<Req> {
  return {
    kind: 'tell',
    request,
    description: options.description,
    ...(options.fenced ? { fenced: options.fenced } : {}),
  };
}

export interface Protocol<M extends MessageSpecs = MessageSpecs, P extends unknown[] = unknown[]> {
  /** The role, e.g. `Dispatcher`. */
  readonly role: string;
  /** The address under `sluice.<clusterId>.`, with parameters in angle brackets (docs), e.g. `tm.<taskManagerId>`. */
  readonly subject: string;
  /** The address for the given parameters. */
  readonly address: (subjects: Subjects, ...params: P) => string;
  /** Listed in docs/protocol.md: clients (CLI, REST, any NATS client) call it. */
  readonly clientFacing: boolean;
  readonly messages: M;
}

export function defineProtocol<const M extends MessageSpecs, P extends unknown[]>(
  protocol: Protocol<M, P>,
): Protocol<M, P> {
  return protocol;
}

type Awaitable<T> = T | Promise<T>;

/** The handler of one declared message: typed by its schemas. */
export type HandlerOf<S> =
  S extends AskSpec<infer Req, infer Rep>
    ? (body: z.output<Req>, meta: MessageMeta) => Awaitable<z.input<Rep>> | LaterReply<z.input<Rep>>
    : S extends TellSpec<infer Req>
      ? (body: z.output<Req>, meta: MessageMeta) => Awaitable<void>
      : never;

/** One handler for every message a protocol declares. */
export type Handlers<M extends MessageSpecs> = { [K in keyof M]: HandlerOf<M[K]> };

type AskNames<M> = { [K in keyof M]: M[K] extends AskSpec ? K : never }[keyof M] & string;
type TellNames<M> = { [K in keyof M]: M[K] extends TellSpec ? K : never }[keyof M] & string;

export interface GatewayCallOptions {
  timeoutMs?: number;
  /** The sender's leader epoch (HA), for `fenced` messages. */
  epoch?: number | undefined;
  /** `false`: no retries for this call even if the ask is declared idempotent. */
  idempotent?: false;
}

/**
 * The typed client of one actor (Flink's *Gateway): asks and tells by their declared names, requests
 * typed by the declared schemas, replies validated by them.
 */
export class Gateway<M extends MessageSpecs> {
  readonly address: string;
  readonly #rpc: Rpc;
  readonly #protocol: Protocol<M, never[]>;
  readonly #epoch: number | undefined;

  constructor(rpc: Rpc, protocol: Protocol<M, never[]>, address: string, epoch?: number) {
    this.#rpc = rpc;
    this.#protocol = protocol;
    this.address = address;
    this.#epoch = epoch;
  }

  /** Sends an ask; resolves with its validated reply, throws the remote SluiceError on an error reply. */
  ask<K extends AskNames<M>>(
    type: K,
    body: z.input<M[K]['request']>,
    options: GatewayCallOptions = {},
  ): Promise<z.output<(M[K] & AskSpec)['reply']>> {
    const spec = this.#protocol.messages[type] as AskSpec;
    const epoch = options.epoch ?? this.#epoch;
    return this.#rpc.ask(`${this.address}.${type}`, type, body, {
      reply: spec.reply,
      idempotent: options.idempotent ?? spec.idempotent,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(epoch === undefined ? {} : { epoch }),
    }) as Promise<z.output<(M[K] & AskSpec)['reply']>>;
  }

  /** Publishes a tell (fire and forget). Throws MESSAGE_TOO_LARGE before sending an oversized one. */
  tell<K extends TellNames<M>>(
    type: K,
    body: z.input<M[K]['request']>,
    options: GatewayCallOptions = {},
  ): void {
    const epoch = options.epoch ?? this.#epoch;
    this.#rpc.tell(`${this.address}.${type}`, type, body, epoch === undefined ? {} : { epoch });
  }
}

/** A gateway to the actor of `protocol` at the address its parameters name. */
export function gateway<M extends MessageSpecs, P extends unknown[]>(
  rpc: Rpc,
  subjects: Subjects,
  protocol: Protocol<M, P>,
  ...params: P
): Gateway<M> {
  return new Gateway(rpc, protocol as unknown as Protocol<M, never[]>, protocol.address(subjects, ...params));
}

/** {@link gateway} whose every message carries `epoch` (a leader's commands under HA). */
export function fencedGateway<M extends MessageSpecs, P extends unknown[]>(
  rpc: Rpc,
  subjects: Subjects,
  epoch: number | undefined,
  protocol: Protocol<M, P>,
  ...params: P
): Gateway<M> {
  return new Gateway(
    rpc,
    protocol as unknown as Protocol<M, never[]>,
    protocol.address(subjects, ...params),
    epoch,
  );
}
