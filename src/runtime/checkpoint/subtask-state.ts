/**
 * One subtask's state in a checkpoint: per chained operator (by uid) its keyed state, its timers and its
 * connector state (a source's position, a sink's pending transactions), msgpack-encoded into one object.
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
  keyed?: SnapshotTable[];
  timers?: TimerSnapshot;
  /** Present (possibly null) when the operator has connector state. */
  connector?: unknown;
}

interface SubtaskStateObject {
  v: 1;
  operators: Record<string, OperatorState>;
}

/** `allocate` gives the memory the encoding is copied into (local recovery: shared memory). */
export function encodeSubtaskState(
  operators: Record<string, OperatorState>,
  allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size),
): Uint8Array {
  const packed = stateCodec.pack({ v: 1, operators } satisfies SubtaskStateObject);
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
    obj.v !== 1 ||
    typeof obj.operators !== 'object' ||
    obj.operators === null
  ) {
    throw new SluiceError(ErrorCode.CorruptedState, `state object ${name} is not a subtask's state`);
  }
  return obj as SubtaskStateObject;
}

/** What one operator of a new subtask gets back. */
export interface RestoredOperator {
  /** Keyed state tables of every old subtask read (the backend keeps its key groups). */
  keyed: SnapshotTable[][];
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
        r = { keyed: [], timers: [], connector: undefined };
        result.set(op.uid, r);
      }
      if (saved.keyed) r.keyed.push(saved.keyed);
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
