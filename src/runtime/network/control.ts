/**
 * The control messages of the data plane, beside the data frames:
 *
 * - connect: a NATS request on the receiver's data subject, an actor envelope
 *   `{ v: 1, type: 'connect', body: { sourceSubtask } }`, answered `ok { grant, window }` (the receiver's
 *   cumulative credit grant and its window, both in frames; `thread { process, slot }` too when the
 *   receiver runs in a slot worker thread, so a sender of the same TaskManager can switch to a thread
 *   channel, see thread-channels.ts) or with an error envelope;
 * - credit: published by the receiver on the sender's credit subject as the msgpack array
 *   `[version, targetSubtask, grant]`: "you may have sent frames up to `grant`". Cumulative, so a lost,
 *   duplicated or reordered credit message costs nothing but a delay.
 */
import { Packr } from 'msgpackr';
import { decodeEnvelope, encode, encodeOk } from '../../actors/envelope.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';

export const CREDIT_VERSION = 1;
export const CONNECT_TYPE = 'connect';
/** Connect requests and replies are tiny; anything bigger is not one. */
export const MAX_CONTROL_BYTES = 4096;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export function encodeConnect(sourceSubtask: number): Uint8Array {
  return encode(CONNECT_TYPE, { sourceSubtask });
}

/**
 * @returns the source subtask of a connect request
 * @throws SluiceError BAD_ENVELOPE / UNSUPPORTED_VERSION / INVALID_MESSAGE
 */
export function decodeConnect(data: Uint8Array): number {
  const env = decodeEnvelope(data, MAX_CONTROL_BYTES);
  if (env.type !== CONNECT_TYPE) {
    throw new SluiceError(ErrorCode.UnknownMessageType, `unexpected request '${env.type}' on a data subject`);
  }
  const body = env.body as { sourceSubtask?: unknown } | null | undefined;
  const source = body?.sourceSubtask;
  if (typeof source !== 'number' || !Number.isSafeInteger(source) || source < 0) {
    throw new SluiceError(ErrorCode.InvalidMessage, 'connect request without a valid sourceSubtask');
  }
  return source;
}

export interface ConnectGrant {
  grant: number;
  window: number;
}

/** The connect reply: the grant, and where the receiver runs when it is in a slot worker thread. */
export interface ConnectReply extends ConnectGrant {
  thread?: { process: string; slot: number };
}

export function encodeConnectReply(reply: ConnectReply): Uint8Array {
  return encodeOk(reply);
}

export function checkConnectReply(body: unknown): ConnectReply {
  const b = body as Partial<ConnectReply> | null | undefined;
  if (!isCount(b?.grant) || !isCount(b?.window) || b.window < 1) {
    throw new SluiceError(ErrorCode.InvalidMessage, 'malformed connect reply');
  }
  const t = b.thread as { process?: unknown; slot?: unknown } | undefined;
  // A location that does not parse is ignored: the channel then simply goes over NATS.
  if (t !== undefined && t !== null && typeof t.process === 'string' && isCount(t.slot)) {
    return { grant: b.grant, window: b.window, thread: { process: t.process, slot: t.slot } };
  }
  return { grant: b.grant, window: b.window };
}

export function encodeCredit(targetSubtask: number, grant: number): Uint8Array {
  return packr.pack([CREDIT_VERSION, targetSubtask, grant]);
}

export interface Credit {
  targetSubtask: number;
  grant: number;
}

/** @throws SluiceError BAD_ENVELOPE for anything but a credit message */
export function decodeCredit(data: Uint8Array): Credit {
  if (data.byteLength > 64) throw new SluiceError(ErrorCode.BadEnvelope, 'credit message too large');
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (err) {
    throw new SluiceError(ErrorCode.BadEnvelope, `not a msgpack credit message: ${(err as Error).message}`);
  }
  if (!Array.isArray(value) || value.length !== 3 || value[0] !== CREDIT_VERSION) {
    throw new SluiceError(ErrorCode.BadEnvelope, 'not a credit message: expected [1, target, grant]');
  }
  const [, targetSubtask, grant] = value as [number, unknown, unknown];
  if (!isCount(targetSubtask) || !isCount(grant)) {
    throw new SluiceError(ErrorCode.BadEnvelope, 'credit message with an invalid target or grant');
  }
  return { targetSubtask, grant };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
