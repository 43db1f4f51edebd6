/**
 * Local recovery (src/runtime/checkpoint/local-state.ts): the cache's rules (exact object only, the
 * latest checkpoint per job, a memory bound), and a restore against a real nats-server's object store
 * that takes the local copy when it is of the very object asked for (no read: the object is not even in
 * the store) and reads the store when the copy is of another checkpoint, damaged, or missing.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { sha256Hex } from '../../src/nats/object-chunks.js';
import {
  LocalStateCache,
  type LocalStateCopy,
  localRecovery,
} from '../../src/runtime/checkpoint/local-state.js';
import { checkpointTarget, subtaskObjectName } from '../../src/runtime/checkpoint/protocol.js';
import type { StateObjectRef, SubtaskStateHandle } from '../../src/runtime/checkpoint/state-handles.js';
import { StateStore } from '../../src/runtime/checkpoint/state-store.js';
import {
  encodeSubtaskState,
  type RestoreTiming,
  readRestoredState,
} from '../../src/runtime/checkpoint/subtask-state.js';

const JOB = 'ef'.repeat(16);

function copyOf(jobId: string, checkpointId: number, subtask: number, bytes: Uint8Array): LocalStateCopy {
  const ref: StateObjectRef = {
    name: subtaskObjectName(checkpointTarget(jobId, checkpointId), 'v1', subtask),
    sizeBytes: bytes.byteLength,
    sha256: sha256Hex(bytes),
  };
  return { jobId, checkpointId, ref, bytes };
}

describe('LocalStateCache', () => {
  it('finds only the very object: same name, size and SHA-256', () => {
    const cache = new LocalStateCache(1_000);
    const copy = copyOf(JOB, 3, 0, new Uint8Array([1, 2, 3]));
    expect(cache.add(copy)).toBe(true);
    expect(cache.find(copy.ref)).toBe(copy.bytes);
    expect(cache.find({ ...copy.ref, sha256: sha256Hex(new Uint8Array([9])) })).toBeUndefined();
    expect(cache.find({ ...copy.ref, sizeBytes: 4 })).toBeUndefined();
    expect(cache.find(copyOf(JOB, 2, 0, copy.bytes).ref)).toBeUndefined();
    expect(cache.find(copyOf(JOB, 3, 1, copy.bytes).ref)).toBeUndefined();
  });

  it("keeps a job's latest checkpoint only: a newer one drops the older copies, an older one is refused", () => {
    const cache = new LocalStateCache(1_000);
    const a3 = copyOf(JOB, 3, 0, new Uint8Array(10));
    const b3 = copyOf(JOB, 3, 1, new Uint8Array(10));
    const other = copyOf('aa'.repeat(16), 1, 0, new Uint8Array(10));
    expect(cache.add(a3) && cache.add(b3) && cache.add(other)).toBe(true);
    const a4 = copyOf(JOB, 4, 0, new Uint8Array(20));
    expect(cache.add(a4)).toBe(true);
    expect(cache.find(a3.ref)).toBeUndefined();
    expect(cache.find(b3.ref)).toBeUndefined();
    expect(cache.find(a4.ref)).toBe(a4.bytes);
    expect(cache.find(other.ref)).toBe(other.bytes);
    expect(cache.sizeBytes).toBe(30);
    expect(cache.add(copyOf(JOB, 3, 1, new Uint8Array(10)))).toBe(false);
    expect(cache.size).toBe(2);
    cache.dropJob(JOB);
    expect(cache.find(a4.ref)).toBeUndefined();
    expect(cache.sizeBytes).toBe(10);
  });

  it("holds at most maxBytes: other jobs' copies go first, oldest first; a copy that does not fit is not kept", () => {
    const cache = new LocalStateCache(100);
    const old = copyOf('01'.repeat(16), 1, 0, new Uint8Array(40));
    const newer = copyOf('02'.repeat(16), 1, 0, new Uint8Array(40));
    cache.add(old);
    cache.add(newer);
    const mine = copyOf(JOB, 1, 0, new Uint8Array(50));
    expect(cache.add(mine)).toBe(true);
    expect(cache.find(old.ref)).toBeUndefined();
    expect(cache.find(newer.ref)).toBe(newer.bytes);
    expect(cache.sizeBytes).toBe(90);
    // Its own job's copies are not dropped for a sibling: the next one fits once the other job's is gone,
    // the one after that does not fit.
    expect(cache.add(copyOf(JOB, 1, 1, new Uint8Array(50)))).toBe(true);
    expect(cache.find(newer.ref)).toBeUndefined();
    expect(cache.add(copyOf(JOB, 1, 2, new Uint8Array(60)))).toBe(false);
    expect(cache.add(copyOf(JOB, 2, 0, new Uint8Array(101)))).toBe(false);
    expect(cache.sizeBytes).toBeLessThanOrEqual(100);
  });

  it('encodes into shared memory when copies go to other threads', () => {
    const shared = localRecovery(new LocalStateCache(100), () => undefined);
    expect(shared.allocate(8).buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(localRecovery(new LocalStateCache(100)).allocate(8).buffer).toBeInstanceOf(ArrayBuffer);
  });
});

describe('restoring with local copies', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let store: StateStore;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    store = await StateStore.open(nc, 'local-state');
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const keyed = (values: Record<string, string>) =>
    encodeSubtaskState(
      { count: { keyed: [{ name: 'v', map: false, entries: Object.entries(values).flat() }] } },
      (size) => new Uint8Array(new SharedArrayBuffer(size)),
    );
  const handle = (subtask: number, object: StateObjectRef): SubtaskStateHandle => ({
    vertexId: 'v1',
    subtaskIndex: subtask,
    parallelism: 2,
    object,
    operators: [{ uid: 'count', maxParallelism: 128, keyed: true, connector: false }],
  });
  const restore = async (handles: SubtaskStateHandle[], cache: LocalStateCache) => {
    const timing: RestoreTiming = { readMs: 0, hashMs: 0, bytes: 0, decodeMs: 0, localBytes: 0 };
    const restored = await readRestoredState(
      store,
      { checkpointId: 5, handles },
      [{ uid: 'count', maxParallelism: 128 }],
      0,
      1,
      timing,
      localRecovery(cache),
    );
    const entries = restored.get('count')!.keyed.flatMap((tables) => tables.flatMap((t) => t.entries));
    return { entries, timing };
  };

  it('takes the copy of the very object, reads the store for another checkpoint or a damaged copy', async () => {
    // Old subtask 0's object is only local (never stored): restoring it can only come from memory.
    // (A long string: msgpackr decodes those natively, which refuses shared memory.)
    const zero = keyed({ a: 'from memory'.padEnd(1_000, '.') });
    const zeroCopy = copyOf(JOB, 5, 0, zero);
    // Old subtask 1's object is in the store; the TaskManager holds a copy of checkpoint 4's instead.
    const one = keyed({ b: 'from the store' });
    const oneRef = await store.put(subtaskObjectName(checkpointTarget(JOB, 5), 'v1', 1), one);
    const cache = new LocalStateCache(1 << 20);
    cache.add(copyOf(JOB, 4, 1, keyed({ b: 'stale' })));
    cache.add(zeroCopy);
    const { entries, timing } = await restore([handle(0, zeroCopy.ref), handle(1, oneRef)], cache);
    expect(entries.sort()).toEqual(['a', 'b', 'from memory'.padEnd(1_000, '.'), 'from the store']);
    expect(timing.localBytes).toBe(zero.byteLength);
    expect(timing.bytes).toBe(one.byteLength);

    // A copy of another version of the object (same name, another SHA-256): not taken, the store is read.
    const damaged = new LocalStateCache(1 << 20);
    damaged.add({
      ...copyOf(JOB, 5, 1, keyed({ b: 'damaged' })),
      ref: { ...oneRef, sha256: '0'.repeat(64) },
    });
    const again = await restore([handle(1, oneRef)], damaged);
    expect(again.entries).toEqual(['b', 'from the store']);
    expect(again.timing.localBytes).toBe(0);

    // No copy at all, and the object missing from the store: the restore fails as before.
    await expect(restore([handle(0, zeroCopy.ref)], new LocalStateCache(1 << 20))).rejects.toThrow(
      /does not exist/,
    );
  });
});
