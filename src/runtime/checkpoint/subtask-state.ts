/**
 * One subtask's state in a checkpoint: per chained operator (by uid) its keyed state, its timers and its
 * connector state (a source's position, a sink's pending transactions), msgpack-encoded into one object.
 * Keyed state is encoded per key group (version 2: `keyedGroups`, each key group's tables a msgpack of
 * their own inside the object), so a restoring subtask decodes only the key groups it gets; version 1
 * objects (`keyed`: all tables in one, filtered key by key) are still read. An older Sluice refuses a
 * version 2 object (CORRUPTED_STATE) rather than miss its keyed state.
 *
 * Restoring reads the objects that matter to a subtask: for keyed state, those of the old subtasks whose
 * key groups overlap the new subtask's (a rescaled job reads parts of several); for connector state, every
 * old subtask's (the connector picks its share: union redistribution); for broadcast state (the same in
 * every old subtask), one: old subtask `index mod old parallelism`.
 */
import { ErrorCode, SluiceError } from '../../common/errors.js';
import { keyGroupOfKey, keyGroupRange } from '../state/key-groups.js';
import type { SnapshotTable } from '../state/keyed-state-backend.js';
import type { TimerSnapshot } from '../state/timer-service.js';
import type { LocalRecovery } from './local-state.js';
import type { RestoreSpec, SubtaskStateHandle } from './protocol.js';
import { type ReadTiming, type StateStore, stateCodec } from './state-store.js';

/** Where a restore's time went (summed over the objects read, which are read concurrently). */
export interface RestoreTiming extends ReadTiming {
  decodeMs: number;
  /** Bytes found in the TaskManager's local copies (local recovery) instead of read. */
  localBytes: number;
}

export interface OperatorState {
  /** Version 1: every key's state in one list of tables. */
  keyed?: SnapshotTable[];
  /** Version 2: [keyGroup, msgpack of that key group's tables], ascending (see {@link encodeKeyGroups}). */
  keyedGroups?: Array<[number, Uint8Array]>;
  timers?: TimerSnapshot;
  /** Present (possibly null) when the operator has connector state. */
  connector?: unknown;
}

interface SubtaskStateObject {
  v: 1 | 2;
  operators: Record<string, OperatorState>;
}

/** Each key group's tables encoded on their own (for {@link OperatorState.keyedGroups}). */
export function encodeKeyGroups(
  groups: ReadonlyArray<[number, SnapshotTable[]]>,
): Array<[number, Uint8Array]> {
  // msgpackr may reuse its buffer for the next encoding: each is copied.
  return groups.map(([group, tables]) => [group, Uint8Array.prototype.slice.call(stateCodec.pack(tables))]);
}

/** `allocate` gives the memory the encoding is copied into (local recovery: shared memory). */
export function encodeSubtaskState(
  operators: Record<string, OperatorState>,
  allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size),
): Uint8Array {
  const packed = stateCodec.pack({ v: 2, operators } satisfies SubtaskStateObject);
  // msgpackr may reuse its buffer for the next encoding: keep a copy.
  const bytes = allocate(packed.byteLength);
  bytes.set(packed);
  return bytes;
}

function decodeSubtaskState(bytes: Uint8Array, name: string): SubtaskStateObject {
  // A local copy lives in shared memory, which msgpackr's string decoding refuses ("source must be an
  // ArrayBuffer"): decode a private copy (a memcpy: a few % of decoding).
  if (bytes.buffer instanceof SharedArrayBuffer) bytes = new Uint8Array(bytes);
  let decoded: unknown;
  try {
    decoded = stateCodec.unpack(bytes);
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CorruptedState,
      `state object ${name} is not msgpack: ${(err as Error).message}`,
    );
  }
  const obj = decoded as Partial<SubtaskStateObject> | null;
  if (
    obj === null ||
    typeof obj !== 'object' ||
    (obj.v !== 1 && obj.v !== 2) ||
    typeof obj.operators !== 'object' ||
    obj.operators === null
  ) {
    throw new SluiceError(ErrorCode.CorruptedState, `state object ${name} is not a subtask's state`);
  }
  return obj as SubtaskStateObject;
}

function decodeKeyGroup(packed: unknown, name: string, group: number): SnapshotTable[] {
  let tables: unknown;
  try {
    if (!(packed instanceof Uint8Array)) throw new Error('not bytes');
    tables = stateCodec.unpack(packed);
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CorruptedState,
      `state object ${name}: key group ${group} is not msgpack: ${(err as Error).message}`,
    );
  }
  if (!Array.isArray(tables)) {
    throw new SluiceError(
      ErrorCode.CorruptedState,
      `state object ${name}: key group ${group} holds no tables`,
    );
  }
  return tables as SnapshotTable[];
}

/** What one operator of a new subtask gets back. */
export interface RestoredOperator {
  /** Keyed state tables of every version 1 object read (the backend keeps its key groups). */
  keyed: SnapshotTable[][];
  /** Keyed state of version 2 objects: the new subtask's key groups only, [keyGroup, tables]. */
  keyedGroups: Array<[number, SnapshotTable[]]>;
  timers: TimerSnapshot[];
  /** Connector state by old subtask index; undefined when no old subtask had any. */
  connector: unknown[] | undefined;
}

export interface RestoreTarget {
  uid: string;
  maxParallelism: number;
}

/**
 * Reads the state a subtask (`subtaskIndex` of `parallelism`) needs for its operators.
 * @throws SluiceError when an object is missing or damaged, or an operator's max parallelism changed
 */
export async function readRestoredState(
  store: StateStore,
  restore: RestoreSpec,
  operators: readonly RestoreTarget[],
  subtaskIndex: number,
  parallelism: number,
  timing?: RestoreTiming,
  local?: Pick<LocalRecovery, 'find'>,
): Promise<Map<string, RestoredOperator>> {
  const result = new Map<string, RestoredOperator>();
  const mine = new Map(operators.map((o) => [o.uid, o]));
  const needed: SubtaskStateHandle[] = [];
  for (const handle of restore.handles) {
    if (handle.object === null) continue;
    let need = false;
    for (const op of handle.operators) {
      const target = mine.get(op.uid);
      if (!target) continue;
      if (op.keyed && op.maxParallelism !== target.maxParallelism) {
        throw new SluiceError(
          ErrorCode.InvalidJob,
          `cannot restore operator ${op.uid}: its max parallelism was ${op.maxParallelism} and is ${target.maxParallelism} now (keyed state is split into that many key groups)`,
        );
      }
      // Broadcast state: one copy is enough (each old subtask stored the same).
      if (op.connector && (!op.broadcast || handle.subtaskIndex === subtaskIndex % handle.parallelism))
        need = true;
      if (op.keyed) {
        const [s, e] = keyGroupRange(handle.subtaskIndex, op.maxParallelism, handle.parallelism);
        const [ms, me] = keyGroupRange(subtaskIndex, target.maxParallelism, parallelism);
        if (s <= me && ms <= e) need = true;
      }
    }
    if (need) needed.push(handle);
  }
  const objects = await Promise.all(
    needed.map(async (h) => {
      const ref = h.object!;
      const copy = local?.find(ref);
      if (copy !== undefined && timing) timing.localBytes += copy.byteLength;
      const bytes = copy ?? (await store.get(ref, timing));
      const started = performance.now();
      const state = decodeSubtaskState(bytes, h.object!.name);
      if (timing) timing.decodeMs += performance.now() - started;
      return { handle: h, state };
    }),
  );
  for (const { handle, state } of objects) {
    for (const op of handle.operators) {
      if (!mine.has(op.uid)) continue;
      const saved = state.operators[op.uid];
      if (saved === undefined) continue;
      let r = result.get(op.uid);
      if (!r) {
        r = { keyed: [], keyedGroups: [], timers: [], connector: undefined };
        result.set(op.uid, r);
      }
      if (saved.keyed) r.keyed.push(saved.keyed);
      if (saved.keyedGroups) {
        const started = performance.now();
        const target = mine.get(op.uid)!;
        const [first, last] = keyGroupRange(subtaskIndex, target.maxParallelism, parallelism);
        for (const [group, packed] of saved.keyedGroups) {
          if (group < first || group > last) continue;
          r.keyedGroups.push([group, decodeKeyGroup(packed, handle.object!.name, group)]);
        }
        if (timing) timing.decodeMs += performance.now() - started;
      }
      if (saved.timers) r.timers.push(saved.timers);
      if (op.connector) {
        r.connector ??= [];
        r.connector[handle.subtaskIndex] = saved.connector;
      }
    }
  }
  return result;
}

/** Whether a key belongs to a subtask's key groups. */
export function ownsKey(key: unknown, maxParallelism: number, range: readonly [number, number]): boolean {
  const group = keyGroupOfKey(key, maxParallelism);
  return group >= range[0] && group <= range[1];
}
