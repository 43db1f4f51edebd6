/**
 * Helpers for JetStream object-store objects (artifacts, checkpoint state).
 *
 * `readObjectChunks` reads an object's chunks with message-get requests (`next_by_subj` on the chunk
 * subject of ADR-20's layout, `$O.<bucket>.C.<nuid>`), one request per chunk, each wrapped by `call` (the
 * caller's timeout and retries). Unlike the client's `get`, this creates no consumer: on NATS 2.9 with a
 * node of the cluster down, an ephemeral consumer may be placed on the dead node and its creation times
 * out. Returns null when a chunk is missing (the object is being replaced, or was damaged).
 */
import { createHash } from 'node:crypto';
import type { JetStreamManager, MsgRequest, StoredMsg } from '@nats-io/jetstream';
import type { ObjectInfo } from '@nats-io/obj';

export async function readObjectChunks(
  jsm: JetStreamManager,
  bucket: string,
  info: ObjectInfo,
  call: (get: () => Promise<StoredMsg | null>) => Promise<StoredMsg | null>,
): Promise<Uint8Array | null> {
  const stream = `OBJ_${bucket}`;
  const subject = `$O.${bucket}.C.${info.nuid}`;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let seq = 1;
  for (let i = 0; i < info.chunks; i++) {
    // The typings of the stream API omit `next_by_subj`, which STREAM.MSG.GET has had since NATS 2.9.
    const query = { seq, next_by_subj: subject } as unknown as MsgRequest;
    const msg = await call(() => jsm.streams.getMessage(stream, query));
    if (msg === null || msg.subject !== subject) return null;
    chunks.push(msg.data);
    total += msg.data.byteLength;
    if (total > info.size) return null;
    seq = msg.seq + 1;
  }
  const bytes = Buffer.concat(chunks, total);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
