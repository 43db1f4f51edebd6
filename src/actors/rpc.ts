/**
 * `tell` and `ask` over NATS with Sluice envelopes. Used by actors and by the client alike.
 *
 * Only asks marked idempotent are retried (p-retry with jitter), and only on errors that say retrying can
 * help (no responders, timeout).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { NoRespondersError, TimeoutError } from '@nats-io/transport-node';
import pRetry from 'p-retry';
import type { z } from 'zod';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { decodeReply, type Envelope, encode } from './envelope.js';

export interface RpcOptions {
  maxMessageBytes: number;
  askTimeoutMs: number;
  /** Retries of idempotent asks (attempts = retries + 1). */
  askRetries: number;
  /**
   * Stop retrying an idempotent ask once this much time has passed since its first attempt (no limit when
   * undefined). With it, `askRetries` can be large: e.g. a client that rides out a JobManager failover.
   */
  askRetryMaxTimeMs?: number;
  /** Sender id put on every envelope. */
  from?: string;
  log?: Logger;
}

export interface AskOptions<T> {
  timeoutMs?: number;
  /** Safe to send twice? Only then is the ask retried. */
  idempotent?: boolean;
  /** Validates the reply body. */
  reply?: z.ZodType<T>;
  epoch?: number;
}

export class Rpc {
  readonly nc: NatsConnection;
  readonly options: RpcOptions;

  constructor(nc: NatsConnection, options: RpcOptions) {
    this.nc = nc;
    this.options = options;
  }

  /** Publishes a message; nobody answers. */
  tell(subject: string, type: string, body: unknown, extra: Pick<Envelope, 'epoch'> = {}): void {
    const data = this.#encode(type, body, extra);
    this.nc.publish(subject, data);
  }

  /** Sends a request and waits for the reply body; throws the remote SluiceError on an error reply. */
  async ask<T = unknown>(
    subject: string,
    type: string,
    body: unknown,
    options: AskOptions<T> = {},
  ): Promise<T> {
    const once = () => this.#askOnce(subject, type, body, options);
    if (!options.idempotent || this.options.askRetries <= 0) return once();
    return pRetry(once, {
      retries: this.options.askRetries,
      minTimeout: 100,
      maxTimeout: 2_000,
      factor: 2,
      randomize: true,
      ...(this.options.askRetryMaxTimeMs !== undefined
        ? { maxRetryTime: this.options.askRetryMaxTimeMs }
        : {}),
      shouldRetry: ({ error }) => error instanceof SluiceError && error.retryable,
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        this.options.log?.debug(
          { subject, type, attempt: attemptNumber, retriesLeft, err: error.message },
          'ask failed, retrying',
        );
      },
    });
  }

  async #askOnce<T>(subject: string, type: string, body: unknown, options: AskOptions<T>): Promise<T> {
    const data = this.#encode(type, body, { epoch: options.epoch });
    const timeout = options.timeoutMs ?? this.options.askTimeoutMs;
    let replyData: Uint8Array;
    try {
      const msg = await this.nc.request(subject, data, { timeout });
      replyData = msg.data;
    } catch (err) {
      throw mapRequestError(err, subject, timeout);
    }
    const reply = decodeReply(replyData, this.options.maxMessageBytes);
    if (!options.reply) return reply as T;
    const parsed = options.reply.safeParse(reply);
    if (!parsed.success) {
      throw new SluiceError(ErrorCode.InvalidMessage, `reply to '${type}' from ${subject} is malformed`, {
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  #encode(type: string, body: unknown, extra: Pick<Envelope, 'epoch'>): Uint8Array {
    const env: Pick<Envelope, 'epoch' | 'from'> = {};
    if (extra.epoch !== undefined) env.epoch = extra.epoch;
    if (this.options.from !== undefined) env.from = this.options.from;
    const data = encode(type, body, env);
    if (data.byteLength > this.options.maxMessageBytes) {
      throw new SluiceError(
        ErrorCode.MessageTooLarge,
        `'${type}' message of ${data.byteLength} bytes is over the limit of ${this.options.maxMessageBytes} bytes (rpc.max-message-size)`,
      );
    }
    return data;
  }
}

/** Maps the NATS client's request errors onto Sluice codes. */
export function mapRequestError(err: unknown, subject: string, timeoutMs: number): SluiceError {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof SluiceError) return e;
    if (e instanceof NoRespondersError) {
      return new SluiceError(ErrorCode.NoResponders, `no responders on ${subject}`, { cause: err });
    }
    if (e instanceof TimeoutError) {
      return new SluiceError(ErrorCode.Timeout, `no reply on ${subject} within ${timeoutMs} ms`, {
        cause: err,
      });
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(ErrorCode.ConnectionFailed, `request on ${subject} failed: ${message}`, {
    cause: err,
  });
}
