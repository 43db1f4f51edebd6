/**
 * JSON on the wire, for clients without msgpack (the `nats` CLI, a Go or Python program): a request to a
 * client-facing ask with the header `Content-Type: application/json` carries the request BODY as JSON (the
 * message type is the subject's last token; an empty payload is `{}`); its reply, with the same header, is
 * the envelope as JSON:
 *
 *   {"v":1,"type":"ok","body":{...}}
 *   {"v":1,"type":"error","error":{"code":"UNKNOWN_JOB","message":"...","retryable":false}}
 *
 * Refuses, with a SluiceError (the actor answers it in JSON): a payload over the size limit
 * (MESSAGE_TOO_LARGE, checked before parsing), bytes that are not UTF-8 JSON (BAD_ENVELOPE). Shapes are
 * the handler's schema's business (INVALID_MESSAGE).
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
import { ENVELOPE_VERSION, type Envelope } from './envelope.js';

export const JSON_CONTENT_TYPE = 'application/json';

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** The request envelope of a JSON request to `<address>.<type>`. */
export function decodeJsonRequest(type: string, data: Uint8Array, maxBytes: number): Envelope {
  if (data.byteLength > maxBytes) {
    throw new SluiceError(
      ErrorCode.MessageTooLarge,
      `message of ${data.byteLength} bytes is over the limit of ${maxBytes} bytes (rpc.max-message-size)`,
    );
  }
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    throw new SluiceError(ErrorCode.BadEnvelope, 'not JSON: the payload is not UTF-8');
  }
  if (text.trim() === '') return { v: ENVELOPE_VERSION, type, body: {} };
  try {
    return { v: ENVELOPE_VERSION, type, body: JSON.parse(text) as unknown };
  } catch (err) {
    throw new SluiceError(ErrorCode.BadEnvelope, `not JSON: ${(err as Error).message}`);
  }
}

export function encodeJsonOk(body: unknown): Uint8Array {
  return encoder.encode(JSON.stringify({ v: ENVELOPE_VERSION, type: 'ok', body }));
}

export function encodeJsonError(error: SluiceError): Uint8Array {
  return encoder.encode(JSON.stringify({ v: ENVELOPE_VERSION, type: 'error', error: error.toWire() }));
}
