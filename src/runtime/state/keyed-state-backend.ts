/**
 * Keyed state on the heap: per state name, per key, one value, grouped by key group so a checkpoint can
 * write state per key group and a rescaled job can read back only the groups it owns.
 *
 * The task sets the current key before each record; state handles read and write the current key's
 * entry, as in Flink.
 *
 * Per record it allocates nothing for a string or number key: a table keeps string keys, number keys and
 * other keys (by their canonical {@link keyString}) in three maps, so no key string is built, and the
 * current key's group is computed only when it is needed (a new entry, `currentKeyGroup`): an update of
 * an existing entry hashes nothing (the partitioner upstream already hashed the key to get here).
 */
import type { ListState, MapState, ValueState } from '../../api/state.js';
import { keyGroupOf, keyGroupOfKey, keyString } from './key-groups.js';

export type { ListState, MapState, ValueState };

interface Entry {
  key: unknown;
  keyGroup: number;
  value: unknown;
}

/** One state's entries: string keys, number keys (-0 is 0, as for Map), other keys by key string. */
class Table {
  readonly strings = new Map<string, Entry>();
  readonly numbers = new Map<number, Entry>();
  readonly others = new Map<string, Entry>();

  get size(): number {
    return this.strings.size + this.numbers.size + this.others.size;
  }

  *values(): Generator<Entry> {
    yield* this.strings.values();
    yield* this.numbers.values();
    yield* this.others.values();
  }
}

const NO_KEY = 0;
const STRING_KEY = 1;
const NUMBER_KEY = 2;
const OTHER_KEY = 3;

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
  /** state name → entries by key */
  readonly #tables = new Map<string, Table>();
  /** Tables whose values are MapState maps (snapshotted as arrays of [key, value]). */
  readonly #mapTables = new Set<string>();
  #key: unknown;
  /** Which map of a table holds the current key (NO_KEY: none set). */
  #kind: number = NO_KEY;
  /** The key string of a key that is neither a string nor a number. */
  #keyStr = '';
  /** The current key's group; -1 until computed. */
  #keyGroup = -1;

  constructor(maxParallelism: number) {
    this.maxParallelism = maxParallelism;
  }

  /** @throws TypeError for a key that cannot be one (null, undefined, a function, a symbol) */
  setCurrentKey(key: unknown): void {
    KeyedStateBackend.active = this;
    this.#keyGroup = -1;
    if (typeof key === 'string') {
      this.#kind = STRING_KEY;
    } else if (typeof key === 'number') {
      this.#kind = NUMBER_KEY;
    } else {
      this.#keyStr = keyString(key);
      this.#kind = OTHER_KEY;
    }
    this.#key = key;
  }

  /**
   * No current key (a broadcast input's record): state access fails until the next `setCurrentKey`,
   * instead of reaching the previous record's key.
   */
  clearCurrentKey(): void {
    this.#key = undefined;
    this.#kind = NO_KEY;
    this.#keyGroup = -1;
  }

  get currentKey(): unknown {
    return this.#key;
  }

  get currentKeyGroup(): number {
    if (this.#keyGroup < 0 && this.#kind !== NO_KEY) {
      this.#keyGroup = keyGroupOfKey(this.#key, this.maxParallelism);
    }
    return this.#keyGroup;
  }

  valueState<T>(name: string, defaultValue?: T): ValueState<T> {
    const table = this.#table(name);
    return {
      value: () => {
        const entry = this.#get(table);
        return entry === undefined ? defaultValue : (entry.value as T);
      },
      update: (value) => this.#put(table, value),
      clear: () => this.#delete(table),
    };
  }

  listState<T>(name: string): ListState<T> {
    const table = this.#table(name);
    const list = (): T[] | undefined => this.#get(table)?.value as T[] | undefined;
    return {
      get: () => [...(list() ?? [])],
      add: (value) => {
        const current = list();
        if (current) current.push(value);
        else this.#put(table, [value]);
      },
      update: (values) => this.#put(table, [...values]),
      clear: () => this.#delete(table),
    };
  }

  mapState<K, V>(name: string): MapState<K, V> {
    const table = this.#table(name);
    this.#mapTables.add(name);
    const map = (create: boolean): Map<string, [K, V]> | undefined => {
      let m = this.#get(table)?.value as Map<string, [K, V]> | undefined;
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
      clear: () => this.#delete(table),
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
   * The state for a checkpoint per key group, ascending: [keyGroup, tables] for every key group holding
   * state (a restoring subtask then decodes only its own key groups). As {@link snapshot} otherwise.
   */
  snapshotByKeyGroup(): Array<[keyGroup: number, tables: SnapshotTable[]]> {
    const groups = new Map<number, SnapshotTable[]>();
    for (const [name, table] of this.#tables) {
      if (table.size === 0) continue;
      const isMap = this.#mapTables.has(name);
      /** This state's table in each key group, by key group. */
      const mine = new Map<number, SnapshotTable>();
      for (const e of table.values()) {
        let t = mine.get(e.keyGroup);
        if (t === undefined) {
          t = { name, map: isMap, entries: [] };
          mine.set(e.keyGroup, t);
          const tables = groups.get(e.keyGroup);
          if (tables) tables.push(t);
          else groups.set(e.keyGroup, [t]);
        }
        t.entries.push(e.key, isMap ? [...(e.value as Map<string, unknown>).values()] : e.value);
      }
    }
    return [...groups].sort((a, b) => a[0] - b[0]);
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
        insert(table, key, ks, keyGroup, entries[i + 1], map);
        kept++;
      }
    }
    return kept;
  }

  /**
   * Adds the restored state of one key group (from {@link snapshotByKeyGroup}): its keys are taken to
   * belong to `keyGroup`, none is hashed. Returns the entries added.
   */
  restoreKeyGroup(keyGroup: number, tables: readonly SnapshotTable[]): number {
    let kept = 0;
    for (const { name, map, entries } of tables) {
      const table = this.#table(name);
      if (map) this.#mapTables.add(name);
      for (let i = 0; i + 1 < entries.length; i += 2) {
        const key = entries[i];
        const ks = typeof key === 'string' || typeof key === 'number' ? '' : keyString(key);
        insert(table, key, ks, keyGroup, entries[i + 1], map);
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

  #table(name: string): Table {
    let table = this.#tables.get(name);
    if (!table) {
      table = new Table();
      this.#tables.set(name, table);
    }
    return table;
  }

  #get(table: Table): Entry | undefined {
    switch (this.#kind) {
      case STRING_KEY:
        return table.strings.get(this.#key as string);
      case NUMBER_KEY:
        return table.numbers.get(this.#key as number);
      case OTHER_KEY:
        return table.others.get(this.#keyStr);
      default:
        return noKey();
    }
  }

  #put(table: Table, value: unknown): void {
    const entry = this.#get(table);
    // The key's entry is updated in place: no new entry (and no map insertion) per update.
    if (entry !== undefined) {
      entry.value = value;
      return;
    }
    const created: Entry = { key: this.#key, keyGroup: this.currentKeyGroup, value };
    if (this.#kind === STRING_KEY) table.strings.set(this.#key as string, created);
    else if (this.#kind === NUMBER_KEY) table.numbers.set(this.#key as number, created);
    else table.others.set(this.#keyStr, created);
  }

  #delete(table: Table): void {
    switch (this.#kind) {
      case STRING_KEY:
        table.strings.delete(this.#key as string);
        return;
      case NUMBER_KEY:
        table.numbers.delete(this.#key as number);
        return;
      case OTHER_KEY:
        table.others.delete(this.#keyStr);
        return;
      default:
        noKey();
    }
  }
}

/** Puts a restored entry into its table (`ks`: the key string, needed for keys neither string nor number). */
function insert(
  table: Table,
  key: unknown,
  ks: string,
  keyGroup: number,
  value: unknown,
  map: boolean,
): void {
  if (map) {
    const m = new Map<string, [unknown, unknown]>();
    for (const pair of value as Array<[unknown, unknown]>) m.set(keyString(pair[0]), pair);
    value = m;
  }
  const entry: Entry = { key, keyGroup, value };
  if (typeof key === 'string') table.strings.set(key, entry);
  else if (typeof key === 'number') table.numbers.set(key, entry);
  else table.others.set(ks, entry);
}

function noKey(): never {
  throw new Error('keyed state accessed outside of a keyed context');
}
