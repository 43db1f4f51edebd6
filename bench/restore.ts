/**
 * One rescale restore, taken apart (npx tsx bench/restore.ts [--keys N] [--value-bytes N] [--rounds N]):
 * a private nats-server, one old subtask's keyed state (the share of subtask 0 of 2 of `--keys` keys ×
 * `--value-bytes` B, 128 key groups) snapshotted, encoded and stored as a checkpoint does, then restored
 * `--rounds` times by new subtask 0 of 4 (2 → 4: it keeps half of the object's key groups), each step
 * timed: reading the object (info and chunks), its SHA-256, msgpack decoding (of its own key groups: the
 * object is encoded per key group), filling the keyed-state backend. Run it under `node --cpu-prof` (`npx tsx --cpu-prof …`) to see the frames.
 * Stops its nats-server on success, on error and on Ctrl-C.
 */
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '../src/nats/launcher.js';
import { StateStore } from '../src/runtime/checkpoint/state-store.js';
import {
  encodeKeyGroups,
  encodeSubtaskState,
  type RestoreTiming,
  readRestoredState,
} from '../src/runtime/checkpoint/subtask-state.js';
import { keyGroupOfKey, keyGroupRange } from '../src/runtime/state/key-groups.js';
import { KeyedStateBackend } from '../src/runtime/state/keyed-state-backend.js';

const MAX_PARALLELISM = 128;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
  return v;
}

const keys = arg('--keys', 200_000);
const valueBytes = arg('--value-bytes', 500);
const rounds = arg('--rounds', 5);
const ms = (v: number) => `${v.toFixed(0)} ms`;

const nats = await startNatsServer();
process.once('SIGINT', () => void nats.stop().finally(() => process.exit(130)));
try {
  const nc = await connect({ servers: nats.url });
  const store = await StateStore.open(nc, 'bench-restore');
  const [first, last] = keyGroupRange(0, MAX_PARALLELISM, 2);
  const old = new KeyedStateBackend(MAX_PARALLELISM);
  const value = old.valueState<string>('value');
  for (let k = 0; k < keys; k++) {
    const group = keyGroupOfKey(k, MAX_PARALLELISM);
    if (group < first || group > last) continue;
    old.setCurrentKey(k);
    value.update(`${k}:0:`.padEnd(valueBytes, 'x'));
  }
  let t = performance.now();
  const bytes = encodeSubtaskState({ state: { keyedGroups: encodeKeyGroups(old.snapshotByKeyGroup()) } });
  const encodeMs = performance.now() - t;
  t = performance.now();
  const ref = await store.put('checkpoints/bench/chk-1/v/0', bytes);
  const putMs = performance.now() - t;
  console.log(
    `old subtask 0 of 2: ${old.size} keys, ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB; snapshot + encode ${ms(encodeMs)}, put ${ms(putMs)}`,
  );
  const handle = {
    vertexId: 'v',
    subtaskIndex: 0,
    parallelism: 2,
    object: ref,
    operators: [{ uid: 'state', maxParallelism: MAX_PARALLELISM, keyed: true, connector: false }],
  };
  const [mFirst, mLast] = keyGroupRange(0, MAX_PARALLELISM, 4);
  for (let r = 0; r < rounds; r++) {
    const timing: RestoreTiming = { readMs: 0, hashMs: 0, bytes: 0, decodeMs: 0, localBytes: 0 };
    const t0 = performance.now();
    const restored = await readRestoredState(
      store,
      { checkpointId: 1, handles: [handle] },
      [{ uid: 'state', maxParallelism: MAX_PARALLELISM }],
      0,
      4,
      timing,
    );
    const t1 = performance.now();
    const backend = new KeyedStateBackend(MAX_PARALLELISM);
    let kept = 0;
    const op = restored.get('state')!;
    for (const ts of op.keyed) kept += backend.restore(ts, mFirst, mLast);
    for (const [group, ts] of op.keyedGroups) kept += backend.restoreKeyGroup(group, ts);
    const t2 = performance.now();
    console.log(
      `restore ${r + 1}: ${ms(t1 - t0)} to read and decode (read ${ms(timing.readMs)}, SHA-256 ${ms(timing.hashMs)}, decode ${ms(timing.decodeMs)}); fill ${ms(t2 - t1)} (${kept} keys kept)`,
    );
  }
  await nc.close();
} finally {
  await nats.stop();
}
