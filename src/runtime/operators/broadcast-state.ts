/**
 * Broadcast state (as Flink's operator broadcast state): per MapStateDescriptor name, a map that every
 * parallel instance of the operator holds in full. The broadcast side writes it, the other side only reads
 * it; if every instance applies the same broadcast elements alike, all copies are equal.
 *
 * Checkpoints: each subtask snapshots its copy (plain [key, value] pairs per state name). On restore, at
 * any parallelism, each new subtask takes one old copy (the one of old subtask `index % oldParallelism`,
 * else the first present): every subtask gets the whole state. Refuses: a descriptor that was not
 * declared in `broadcast(...)` (the job fails, naming it).
 */
import type { BroadcastState } from '../../api/co-functions.js';
import type { MapStateDescriptor } from '../../api/functions.js';
import { keyString } from '../state/key-groups.js';

/** What a subtask stores in a checkpoint: state name → [key, value] pairs. */
export interface BroadcastStateSnapshot {
  broadcast: Record<string, Array<[unknown, unknown]>>;
}

export class BroadcastStates {
  readonly #maps = new Map<string, Map<string, [unknown, unknown]>>();
  readonly #operatorName: string;

  constructor(descriptors: readonly MapStateDescriptor<unknown, unknown>[], operatorName: string) {
    for (const d of descriptors) this.#maps.set(d.name, new Map());
    this.#operatorName = operatorName;
  }

  /** The state for `descriptor`, writable or not (the read-only side gets an object without writers). */
  get<K, V>(descriptor: MapStateDescriptor<K, V>, writable: boolean): BroadcastState<K, V> {
    const map = this.#maps.get(descriptor.name);
    if (!map) {
      throw new Error(
        `broadcast state '${descriptor.name}' was not declared: pass its MapStateDescriptor to broadcast(...) (operator '${this.#operatorName}')`,
      );
    }
    const readOnly = () => {
      throw new Error(
        `broadcast state '${descriptor.name}' is read-only in processElement: only processBroadcastElement may change it (operator '${this.#operatorName}')`,
      );
    };
    return {
      get: (k) => map.get(keyString(k))?.[1] as V | undefined,
      contains: (k) => map.has(keyString(k)),
      entries: () => [...map.values()] as Array<[K, V]>,
      keys: () => [...map.values()].map(([k]) => k as K),
      values: () => [...map.values()].map(([, v]) => v as V),
      isEmpty: () => map.size === 0,
      put: writable ? (k, v) => void map.set(keyString(k), [k, v]) : readOnly,
      remove: writable ? (k) => void map.delete(keyString(k)) : readOnly,
      clear: writable ? () => map.clear() : readOnly,
    };
  }

  snapshot(): BroadcastStateSnapshot {
    const broadcast: BroadcastStateSnapshot['broadcast'] = {};
    for (const [name, map] of this.#maps) broadcast[name] = [...map.values()];
    return { broadcast };
  }

  /** Takes one old subtask's copy (see the module comment); `copies` is indexed by old subtask. */
  restore(copies: readonly unknown[] | undefined, subtaskIndex: number): void {
    if (copies === undefined || copies.length === 0) return;
    const preferred = copies[subtaskIndex % copies.length];
    const copy = (isSnapshot(preferred) ? preferred : copies.find(isSnapshot)) as
      | BroadcastStateSnapshot
      | undefined;
    if (!copy) return;
    for (const [name, pairs] of Object.entries(copy.broadcast)) {
      // A state no longer declared is dropped, as the descriptors define what the operator has.
      const map = this.#maps.get(name);
      if (!map || !Array.isArray(pairs)) continue;
      for (const [k, v] of pairs) map.set(keyString(k), [k, v]);
    }
  }
}

function isSnapshot(value: unknown): value is BroadcastStateSnapshot {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as BroadcastStateSnapshot).broadcast === 'object' &&
    (value as BroadcastStateSnapshot).broadcast !== null
  );
}
