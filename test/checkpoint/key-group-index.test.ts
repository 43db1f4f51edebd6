/**
 * Keyed state stored per key group (state objects of version 2): a backend's snapshot by key group puts
 * each key in its own key group; stored in a real nats-server's object store and restored at another
 * parallelism, each new subtask decodes only its key groups, and together they hold every entry again
 * (values, list and map state, string, number and object keys). A version 1 object (all tables in one)
 * still restores; a key group whose bytes are not msgpack is CORRUPTED_STATE.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError } from '../../src/common/errors.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { checkpointTarget, subtaskObjectName } from '../../src/runtime/checkpoint/protocol.js';
import type { SubtaskStateHandle } from '../../src/runtime/checkpoint/state-handles.js';
import { StateStore } from '../../src/runtime/checkpoint/state-store.js';
import {
  encodeKeyGroups,
  encodeSubtaskState,
  type OperatorState,
  type RestoreTiming,
  readRestoredState,
} from '../../src/runtime/checkpoint/subtask-state.js';
import { keyGroupOfKey, keyGroupRange } from '../../src/runtime/state/key-groups.js';
import { KeyedStateBackend } from '../../src/runtime/state/keyed-state-backend.js';

const JOB = 'ab'.repeat(16);
const MAX_P = 16;

function filled(): KeyedStateBackend {
  const backend = new KeyedStateBackend(MAX_P);
  const value = backend.valueState<string>('value');
  const list = backend.listState<number>('list');
  const map = backend.mapState<string, number>('map');
  const keys: unknown[] = [...Array.from({ length: 60 }, (_, i) => i), 'a', 'b', 'ünï', [1, 'x'], { id: 3 }];
  for (const key of keys) {
    backend.setCurrentKey(key);
    value.update(`v-${JSON.stringify(key)}`);
    if (typeof key === 'number' && key % 3 === 0) list.update([key, key + 1]);
    if (typeof key === 'string') map.put(`m-${key}`, key.length);
  }
  return backend;
}

/** Every entry as a comparable string, sorted. */
function dump(backend: KeyedStateBackend): string[] {
  return [...backend.entries()]
    .map((e) =>
      JSON.stringify([e.state, e.key, e.keyGroup, e.value instanceof Map ? [...e.value.values()] : e.value]),
    )
    .sort();
}

describe('keyed state per key group', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let store: StateStore;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    store = await StateStore.open(nc, 'key-group-index');
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const handle = (object: SubtaskStateHandle['object']): SubtaskStateHandle => ({
    vertexId: 'v1',
    subtaskIndex: 0,
    parallelism: 1,
    object,
    operators: [{ uid: 'op', maxParallelism: MAX_P, keyed: true, connector: false }],
  });
  const put = async (checkpointId: number, state: OperatorState) =>
    handle(
      await store.put(
        subtaskObjectName(checkpointTarget(JOB, checkpointId), 'v1', 0),
        encodeSubtaskState({ op: state }),
      ),
    );
  const restoreAt = async (h: SubtaskStateHandle, subtask: number, parallelism: number) => {
    const timing: RestoreTiming = { readMs: 0, hashMs: 0, bytes: 0, decodeMs: 0, localBytes: 0 };
    const restored = await readRestoredState(
      store,
      { checkpointId: 1, handles: [h] },
      [{ uid: 'op', maxParallelism: MAX_P }],
      subtask,
      parallelism,
      timing,
    );
    const op = restored.get('op')!;
    const backend = new KeyedStateBackend(MAX_P);
    const [first, last] = keyGroupRange(subtask, MAX_P, parallelism);
    for (const tables of op.keyed) backend.restore(tables, first, last);
    for (const [group, tables] of op.keyedGroups) backend.restoreKeyGroup(group, tables);
    return { backend, groups: op.keyedGroups.map(([g]) => g), range: [first, last] as const };
  };

  it('snapshots by key group: ascending, every key in its own key group', () => {
    const groups = filled().snapshotByKeyGroup();
    expect(groups.map(([g]) => g)).toEqual([...groups.map(([g]) => g)].sort((a, b) => a - b));
    for (const [group, tables] of groups) {
      for (const table of tables) {
        for (let i = 0; i < table.entries.length; i += 2) {
          expect(keyGroupOfKey(table.entries[i], MAX_P)).toBe(group);
        }
      }
    }
  });

  it('restores at parallelism 3: each subtask decodes its key groups only; together every entry', async () => {
    const original = filled();
    const h = await put(1, { keyedGroups: encodeKeyGroups(original.snapshotByKeyGroup()) });
    const parts = await Promise.all([0, 1, 2].map((i) => restoreAt(h, i, 3)));
    for (const { backend, groups, range } of parts) {
      expect(groups.length).toBeGreaterThan(0);
      expect(groups.every((g) => g >= range[0] && g <= range[1])).toBe(true);
      expect([...backend.entries()].every((e) => e.keyGroup >= range[0] && e.keyGroup <= range[1])).toBe(
        true,
      );
    }
    expect(parts.flatMap((p) => dump(p.backend)).sort()).toEqual(dump(original));
    // The restored state works as state: the map of key 'a' reads back.
    const owner = parts.find((p) => [...p.backend.entries()].some((e) => e.key === 'a'))!.backend;
    owner.setCurrentKey('a');
    expect(owner.mapState<string, number>('map').get('m-a')).toBe(1);
  });

  it('still restores a version 1 object, and refuses a key group that is not msgpack', async () => {
    const original = filled();
    const v1 = await put(2, { keyed: original.snapshot() });
    const parts = await Promise.all([0, 1].map((i) => restoreAt(v1, i, 2)));
    expect(parts.flatMap((p) => dump(p.backend)).sort()).toEqual(dump(original));

    const [first] = keyGroupRange(0, MAX_P, 1);
    const damaged = await put(3, {
      keyedGroups: [[first, new Uint8Array([0xc1, 0xc1, 0xc1])]],
    });
    const err = await restoreAt(damaged, 0, 1).catch((e: unknown) => e);
    expect(isSluiceError(err, ErrorCode.CorruptedState)).toBe(true);
    expect((err as Error).message).toMatch(/key group 0 is not msgpack/);
  });
});
