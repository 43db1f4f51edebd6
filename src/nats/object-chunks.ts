/**
 * Helpers for JetStream object-store objects (artifacts, checkpoint state).
 *
 * `readObjectChunks` reads an object's chunks one request per chunk (`next_by_subj` on the chunk subject
 * of ADR-20's layout, `$O.<bucket>.C.<nuid>`), each wrapped by `call` (the caller's timeout and retries).
 * Unlike the client's `get`, this creates no consumer: on NATS 2.9 with a node of the cluster down, an
 * ephemeral consumer may be placed on the dead node and its creation times out. It asks with Direct Get
 * (`$JS.API.DIRECT.GET`, which object-store streams allow): the reply is the chunk's raw bytes, where the
 * stream API's reply is JSON with the payload in base64 (decoding that was most of a restore's CPU: about
 * 20 ms per MiB). Any replica may answer a Direct Get, and one that lags may not have a chunk yet: a
 * chunk Direct Get does not find is asked again of the stream's leader (`STREAM.MSG.GET`). The caller
 * says whether the stream allows Direct Get (its config's `allow_direct`; NATS 2.9 lets a request to a
 * stream whose `allow_direct` was turned off time out); a stream that answers none (no responders) is read
 * with the stream API from then on.
 * Returns null when a chunk is missing (the object is being replaced, or was damaged).
 */
import { createHash } from 'node:crypto';
import type { JetStreamManager, MsgRequest, StoredMsg } from '@nats-io/jetstream';
import type { ObjectInfo } from '@nats-io/obj';

/** A chunk as both APIs return it. */
type Chunk = Pick<StoredMsg, 'subject' | 'seq' | 'data'>;

export async function readObjectChunks(
  jsm: JetStreamManager,
  bucket: string,
  info: ObjectInfo,
  call: <T>(get: () => Promise<T>) => Promise<T>,
  options: { direct: boolean },
): Promise<Uint8Array | null> {
  const stream = `OBJ_${bucket}`;
  const subject = `$O.${bucket}.C.${info.nuid}`;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let seq = 1;
  let direct = options.direct;
  for (let i = 0; i < info.chunks; i++) {
    // The typings of the stream API omit `next_by_subj`, which STREAM.MSG.GET has had since NATS 2.9.
    const query = { seq, next_by_subj: subject } as unknown as MsgRequest;
    let msg: Chunk | null | undefined;
    if (direct) {
      msg = await call(() => directGet(jsm, stream, query));
      if (msg === undefined) direct = false;
    }
    // Not found by a replica that may lag, or no Direct Get: the leader decides.
    if (msg == null) msg = await call(() => jsm.streams.getMessage(stream, query));
    if (msg === null || msg.subject !== subject) return null;
    chunks.push(msg.data);
    total += msg.data.byteLength;
    if (total > info.size) return null;
    seq = msg.seq + 1;
  }
  const bytes = Buffer.concat(chunks, total);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A Direct Get; null when not found, undefined when the stream answers no Direct Get. */
async function directGet(
  jsm: JetStreamManager,
  stream: string,
  query: MsgRequest,
): Promise<Chunk | null | undefined> {
  try {
    return await jsm.direct.getMessage(stream, query);
  } catch (err) {
    if (isNoResponders(err)) return undefined;
    throw err;
  }
}

function isNoResponders(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.name === 'NoResponders') return true;
  }
  return false;
}

/** The SHA-256 of `bytes`, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Whether the object store's digest of an object (`SHA-256=` and base64url, padded or not) is the SHA-256
 * given in hex.
 */
export function hasSha256(info: Pick<ObjectInfo, 'digest'>, sha256: string): boolean {
  const expected = `SHA-256=${Buffer.from(sha256, 'hex').toString('base64url')}`;
  return info.digest.replace(/=+$/, '') === expected.replace(/=+$/, '');
}
