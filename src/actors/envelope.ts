/**
 * The wire format of every actor message: a versioned msgpackr envelope.
 *
 *   { v: 1, type: 'submit', body: {...}, epoch?: 7, from?: 'tm-1' }      a request or a tell
 *   { v: 1, type: 'ok', body: {...} }                                     a successful reply
 *   { v: 1, type: 'error', error: { code, message, retryable } }          a failed reply
 *
 * Decoding never throws anything but a SluiceError with a stable code, so a receiver can always answer
 * (for asks) or count and drop (for tells).
 */
import { Packr } from 'msgpackr';
import { ErrorCode, SluiceError, type WireError } from '../common/errors.js';

export const ENVELOPE_VERSION = 1;

export interface Envelope {
  v: number;
  type: string;
  body?: unknown;
  /** Fencing token of the sender's leadership (HA); absent where no leader is involved. */
  epoch?: number;
  /** Sender's id, for logs. */
  from?: string;
  error?: WireError;
}

// Plain maps as objects, no records extension: any msgpack peer can read what we write, and decoding
// cannot be steered into building shared structures by a sender.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return packr.pack(envelope);
}

export function encode(
  type: string,
  body: unknown,
  extra: Pick<Envelope, 'epoch' | 'from'> = {},
): Uint8Array {
  return encodeEnvelope({ v: ENVELOPE_VERSION, type, body, ...extra });
}

export function encodeOk(body: unknown): Uint8Array {
  return encodeEnvelope({ v: ENVELOPE_VERSION, type: 'ok', body });
}

export function encodeError(error: SluiceError): Uint8Array {
  return encodeEnvelope({ v: ENVELOPE_VERSION, type: 'error', error: error.toWire() });
}

/**
 * Decodes and checks the envelope frame (not the body: the handler's schema does that).
 * @throws SluiceError MESSAGE_TOO_LARGE, BAD_ENVELOPE or UNSUPPORTED_VERSION
 */
export function decodeEnvelope(data: Uint8Array, maxBytes: number): Envelope {
  if (data.byteLength > maxBytes) {
    throw new SluiceError(
      ErrorCode.MessageTooLarge,
      `message of ${data.byteLength} bytes is over the limit of ${maxBytes} bytes (rpc.max-message-size)`,
    );
  }
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (err) {
    throw new SluiceError(ErrorCode.BadEnvelope, `not a msgpack envelope: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SluiceError(ErrorCode.BadEnvelope, 'not a msgpack envelope: expected a map');
  }
  const env = value as Record<string, unknown>;
  if (typeof env.v !== 'number') {
    throw new SluiceError(ErrorCode.BadEnvelope, "envelope has no numeric version field 'v'");
  }
  if (env.v !== ENVELOPE_VERSION) {
    throw new SluiceError(
      ErrorCode.UnsupportedVersion,
      `envelope version ${env.v} is not supported (this process speaks version ${ENVELOPE_VERSION})`,
    );
  }
  if (typeof env.type !== 'string' || env.type.length === 0 || env.type.length > 128) {
    throw new SluiceError(ErrorCode.BadEnvelope, "envelope has no valid 'type' field");
  }
  if (env.epoch !== undefined && (typeof env.epoch !== 'number' || !Number.isSafeInteger(env.epoch))) {
    throw new SluiceError(ErrorCode.BadEnvelope, "envelope field 'epoch' must be an integer");
  }
  if (env.from !== undefined && typeof env.from !== 'string') {
    throw new SluiceError(ErrorCode.BadEnvelope, "envelope field 'from' must be a string");
  }
  return env as unknown as Envelope;
}

/**
 * Decodes a reply: returns the body of an 'ok', throws the SluiceError carried by an 'error'.
 */
export function decodeReply(data: Uint8Array, maxBytes: number): unknown {
  const env = decodeEnvelope(data, maxBytes);
  if (env.type === 'ok') return env.body;
  if (env.type === 'error' && isWireError(env.error)) throw SluiceError.fromWire(env.error);
  throw new SluiceError(ErrorCode.BadEnvelope, `reply of unexpected type '${env.type}'`);
}

function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return typeof e.code === 'string' && typeof e.message === 'string';
}
