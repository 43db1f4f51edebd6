/**
 * What the two-input API classes (in datastream.ts: ConnectedStreams, BroadcastStream, joins) share and
 * that needs no DataStream: checks of user functions and broadcast descriptors, and the window function a
 * window coGroup runs. Refuses functions without the methods their interface requires.
 */
import type { CoGroupFunction } from './co-functions.js';
import type { MapStateDescriptor } from './functions.js';
import type { ProcessWindowFunction, WindowAssigner } from './windows.js';

/** An element of either input of a coGroup, tagged with its side (0: first, 1: second). */
export interface TaggedUnion {
  side: 0 | 1;
  value: unknown;
}

export function requireMethods(fn: unknown, methods: string[], what: string): void {
  for (const m of methods) {
    if (typeof (fn as Record<string, unknown> | null)?.[m] !== 'function') {
      throw new TypeError(`a ${what} needs a method ${m}()`);
    }
  }
}

export function checkBroadcastDescriptors(
  descriptors: readonly MapStateDescriptor<unknown, unknown>[],
): void {
  if (descriptors.length === 0) throw new TypeError('broadcast(...) needs at least one MapStateDescriptor');
  const names = new Set<string>();
  for (const d of descriptors) {
    if (d?.kind !== 'map') throw new TypeError('broadcast state is declared with MapStateDescriptors');
    if (names.has(d.name)) throw new TypeError(`broadcast state '${d.name}' is declared twice`);
    names.add(d.name);
  }
}

export function assignerName(assigner: WindowAssigner): string {
  return assigner.toString();
}

/** The window function of a coGroup: splits a window's tagged elements by side and calls `fn`. */
export function coGroupWindowFunction<T1, T2, K, R>(
  fn: CoGroupFunction<T1, T2, R>,
): ProcessWindowFunction<TaggedUnion, R, K> {
  return {
    process(_key, _ctx, elements, out) {
      const a: T1[] = [];
      const b: T2[] = [];
      for (const t of elements) {
        if (t.side === 0) a.push(t.value as T1);
        else b.push(t.value as T2);
      }
      fn(a, b, out);
    },
  };
}
