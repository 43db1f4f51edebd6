/**
 * The keyed state a user function reads and writes (Flink's ValueState, ListState, MapState). Handles are
 * obtained from the RuntimeContext with a state descriptor; each call reads or writes the entry of the
 * key of the record being processed. The runtime's heap backend (`src/runtime/state/`) implements them.
 */
export interface ValueState<T> {
  value(): T | undefined;
  update(value: T): void;
  clear(): void;
}

export interface ListState<T> {
  get(): T[];
  add(value: T): void;
  update(values: T[]): void;
  clear(): void;
}

export interface MapState<K, V> {
  get(key: K): V | undefined;
  put(key: K, value: V): void;
  remove(key: K): void;
  contains(key: K): boolean;
  entries(): Array<[K, V]>;
  keys(): K[];
  values(): V[];
  isEmpty(): boolean;
  clear(): void;
}
