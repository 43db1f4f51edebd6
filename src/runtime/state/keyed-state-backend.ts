/**
 * Keyed state on the heap: per state name, per key, one value, grouped by key group so a checkpoint can
 * write state per key group and a rescaled job can read back only the groups it owns.
 *
 * The task sets the current key before each record; state handles read and write the current key's
 * entry, as in Flink.
 */
import type { ListState, MapState, ValueState } from '../../api/state.js';
import { keyGroupOf, keyString } from './key-groups.js';

export type { ListState, MapState, ValueState };

interface Entry {
  key: unknown;
  keyGroup: number;
  value: unknown;
}

/** One keyed state of a snapshot: `entries` is flat [key, value, key, value, …]. */
export interface SnapshotTable {
  name: string;
  map: boolean;
  entries: unknown[];
}

export class KeyedStateBackend {
  /**
   * The backend whose key was set last, in this process. A user function instance may be shared by
   * several subtasks (they run one record at a time, never concurrently), so the state handles it gets
   * from its RuntimeContext resolve the backend through this at each call.
   */
  static active: KeyedStateBackend | undefined;
  readonly maxParallelism: number;
  /** state name → key string → entry */
  readonly #tables = new Map<string, Map<string, Entry>>();
  /** Tables whose values are MapState maps (snapshotted as arrays of [key, value]). */
  readonly #mapTables = new Set<string>();
  #key: unknown;
  #keyStr: string | undefined;
  #keyGroup = -1;

  constructor(maxParallelism: number) {
    this.maxParallelism = maxParallelism;
  }

  setCurrentKey(key: unknown): void {
    KeyedStateBackend.active = this;
    this.#key = key;
    this.#keyStr = keyString(key);
    this.#keyGroup = keyGroupOf(this.#keyStr, this.maxParallelism);
  }

  /**
   * No current key (a broadcast input's record): state access fails until the next `setCurrentKey`,
   * instead of reaching the previous record's key.
   */
  clearCurrentKey(): void {
    this.#key = undefined;
    this.#keyStr = undefined;
    this.#keyGroup = -1;
  }

  get currentKey(): unknown {
    return this.#key;
  }

  get currentKeyGroup(): number {
    return this.#keyGroup;
  }

  valueState<T>(name: string, defaultValue?: T): ValueState<T> {
    const table = this.#table(name);
    return {
      value: () => {
        const entry = table.get(this.#requireKey());
        return entry === undefined ? defaultValue : (entry.value as T);
      },
      update: (value) => this.#put(table, value),
      clear: () => void table.delete(this.#requireKey()),
    };
  }

  listState<T>(name: string): ListState<T> {
    const table = this.#table(name);
    const list = (): T[] | undefined => table.get(this.#requireKey())?.value as T[] | undefined;
    return {
      get: () => [...(list() ?? [])],
      add: (value) => {
        const current = list();
        if (current) current.push(value);
        else this.#put(table, [value]);
      },
      update: (values) => this.#put(table, [...values]),
      clear: () => void table.delete(this.#requireKey()),
    };
  }

  mapState<K, V>(name: string): MapState<K, V> {
    const table = this.#table(name);
    this.#mapTables.add(name);
    const map = (create: boolean): Map<string, [K, V]> | undefined => {
      let m = table.get(this.#requireKey())?.value as Map<string, [K, V]> | undefined;
      if (!m && create) {
        m = new Map();
        this.#put(table, m);
      }
      return m;
    };
    return {
      get: (k) => map(false)?.get(keyString(k))?.[1],
      put: (k, v) => void map(true)!.set(keyString(k), [k, v]),
      remove: (k) => void map(false)?.delete(keyString(k)),
      contains: (k) => map(false)?.has(keyString(k)) ?? false,
      entries: () => [...(map(false)?.values() ?? [])],
      keys: () => [...(map(false)?.values() ?? [])].map(([k]) => k),
      values: () => [...(map(false)?.values() ?? [])].map(([, v]) => v),
      isEmpty: () => (map(false)?.size ?? 0) === 0,
      clear: () => void table.delete(this.#requireKey()),
    };
  }

  /** Every (state, key) entry, for snapshots and tests. */
  *entries(): Generator<{ state: string; key: unknown; keyGroup: number; value: unknown }> {
    for (const [state, table] of this.#tables) {
      for (const e of table.values()) yield { state, key: e.key, keyGroup: e.keyGroup, value: e.value };
    }
  }

  /**
   * The state for a checkpoint, as plain data: per state name, flat [key, value, key, value, …] (MapState
   * maps as arrays of [key, value]). Values are copied when the snapshot is encoded, which the task does
   * before it processes the next record.
   */
  snapshot(): SnapshotTable[] {
    const out: SnapshotTable[] = [];
    for (const [name, table] of this.#tables) {
      if (table.size === 0) continue;
      const isMap = this.#mapTables.has(name);
      const entries: unknown[] = new Array(table.size * 2);
      let i = 0;
      for (const e of table.values()) {
        entries[i++] = e.key;
        entries[i++] = isMap ? [...(e.value as Map<string, unknown>).values()] : e.value;
      }
      out.push({ name, map: isMap, entries });
    }
    return out;
  }

  /**
   * Adds restored state: the entries of `tables` whose key falls into the key groups [first, last] (a
   * rescaled job reads the snapshots of several old subtasks and keeps its share). Returns entries kept.
   */
  restore(tables: readonly SnapshotTable[], first: number, last: number): number {
    let kept = 0;
    for (const { name, map, entries } of tables) {
      const table = this.#table(name);
      if (map) this.#mapTables.add(name);
      for (let i = 0; i + 1 < entries.length; i += 2) {
        const key = entries[i];
        const ks = keyString(key);
        const keyGroup = keyGroupOf(ks, this.maxParallelism);
        if (keyGroup < first || keyGroup > last) continue;
        let value = entries[i + 1];
        if (map) {
          const m = new Map<string, [unknown, unknown]>();
          for (const pair of value as Array<[unknown, unknown]>) m.set(keyString(pair[0]), pair);
          value = m;
        }
        table.set(ks, { key, keyGroup, value });
        kept++;
      }
    }
    return kept;
  }

  /** Number of keys holding some state. */
  get size(): number {
    let n = 0;
    for (const table of this.#tables.values()) n += table.size;
    return n;
  }

  #table(name: string): Map<string, Entry> {
    let table = this.#tables.get(name);
    if (!table) {
      table = new Map();
      this.#tables.set(name, table);
    }
    return table;
  }

  #put(table: Map<string, Entry>, value: unknown): void {
    const k = this.#requireKey();
    const entry = table.get(k);
    // The key's entry is updated in place: no new entry (and no map insertion) per update.
    if (entry !== undefined) entry.value = value;
    else table.set(k, { key: this.#key, keyGroup: this.#keyGroup, value });
  }

  #requireKey(): string {
    if (this.#keyStr === undefined) throw new Error('keyed state accessed outside of a keyed context');
    return this.#keyStr;
  }
}
