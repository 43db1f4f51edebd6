/**
 * Restoring broadcast state reads one copy: against a real nats-server's object store, a new subtask
 * reads only the object of old subtask `index mod old parallelism` for an operator whose state is
 * marked broadcast, while connector state (union redistribution) still reads every old subtask's.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { checkpointTarget, subtaskObjectName } from '../../src/runtime/checkpoint/protocol.js';
import type { SubtaskStateHandle } from '../../src/runtime/checkpoint/state-handles.js';
import { StateStore } from '../../src/runtime/checkpoint/state-store.js';
import { encodeSubtaskState, readRestoredState } from '../../src/runtime/checkpoint/subtask-state.js';

const JOB = 'cd'.repeat(16);
const OLD_PARALLELISM = 4;

describe('restoring broadcast state', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let store: StateStore;
  const handles = (broadcast: boolean): Promise<SubtaskStateHandle[]> =>
    Promise.all(
      Array.from({ length: OLD_PARALLELISM }, async (_, i) => {
        const target = checkpointTarget(JOB, broadcast ? 1 : 2);
        const object = await store.put(
          subtaskObjectName(target, 'v0', i),
          encodeSubtaskState({ op: { connector: { copyOf: i } } }),
        );
        return {
          vertexId: 'v0',
          subtaskIndex: i,
          parallelism: OLD_PARALLELISM,
          object,
          operators: [{ uid: 'op', maxParallelism: 128, keyed: false, connector: true, broadcast }],
        };
      }),
    );

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    store = await StateStore.open(nc, 'broadcast-restore');
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('reads one old copy per new subtask for broadcast state, every copy for connector state', async () => {
    const reads: string[] = [];
    const get = store.get.bind(store);
    store.get = (ref) => {
      reads.push(ref.name);
      return get(ref);
    };
    const broadcast = await handles(true);
    for (const [subtask, parallelism] of [
      [0, 3],
      [2, 3],
      [5, 6],
    ] as const) {
      reads.length = 0;
      const restored = await readRestoredState(
        store,
        { checkpointId: 1, handles: broadcast },
        [{ uid: 'op', maxParallelism: 128 }],
        subtask,
        parallelism,
      );
      const old = subtask % OLD_PARALLELISM;
      expect(reads).toEqual([broadcast[old]!.object!.name]);
      expect(restored.get('op')!.connector!.filter((c) => c !== undefined)).toEqual([{ copyOf: old }]);
    }
    reads.length = 0;
    const union = await readRestoredState(
      store,
      { checkpointId: 2, handles: await handles(false) },
      [{ uid: 'op', maxParallelism: 128 }],
      0,
      3,
    );
    expect(reads).toHaveLength(OLD_PARALLELISM);
    expect(union.get('op')!.connector).toEqual([0, 1, 2, 3].map((i) => ({ copyOf: i })));
  });
});
