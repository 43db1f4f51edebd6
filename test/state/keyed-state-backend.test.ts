/**
 * Key groups and the heap keyed state backend: the key group of a key computed without building its key
 * string (strings, integers) is the one its key string gives, so partitioner, state and checkpoints agree
 * with what older code wrote; string, number and other keys never collide (1 and "1" and "n1" are three
 * keys); state survives a snapshot and restore with its key groups.
 */
import { describe, expect, it } from 'vitest';
import { keyGroupOf, keyGroupOfKey, keyGroupRange, keyString } from '../../src/runtime/state/key-groups.js';
import { KeyedStateBackend } from '../../src/runtime/state/keyed-state-backend.js';

describe('key groups', () => {
  it('keyGroupOfKey equals keyGroupOf(keyString(key)) for strings, integers and other keys', () => {
    const keys: unknown[] = [
      '',
      'a',
      'w12345',
      'ünïcødé',
      0,
      -0,
      1,
      -1,
      7,
      10,
      99,
      100,
      123_456_789,
      -987_654_321,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
      2 ** 53 + 2,
      1.5,
      -0.25,
      1e21,
      Number.NaN,
      true,
      false,
      12n,
      [1, 'a'],
      { id: 3 },
    ];
    for (let i = 0; i < 5_000; i++) keys.push(Math.floor((i - 2_500) * 7_919.3));
    for (const key of keys) {
      for (const maxParallelism of [128, 1000, 32_768]) {
        expect(keyGroupOfKey(key, maxParallelism), String(key)).toBe(
          keyGroupOf(keyString(key), maxParallelism),
        );
      }
    }
  });
});

describe('KeyedStateBackend', () => {
  it('keeps string, number and other keys apart, and reads back what it wrote per key', () => {
    const backend = new KeyedStateBackend(128);
    const state = backend.valueState<string>('v');
    const keys: unknown[] = [1, '1', 'n1', true, 'bt', [1], 'j[1]', -0, 0.5];
    for (const key of keys) {
      backend.setCurrentKey(key);
      expect(state.value()).toBeUndefined();
      state.update(`value of ${JSON.stringify(key)}`);
    }
    // -0 and 0 are one key (as keyString says)
    backend.setCurrentKey(0);
    expect(state.value()).toBe('value of 0');
    for (const key of keys) {
      backend.setCurrentKey(key);
      expect(state.value()).toBe(`value of ${JSON.stringify(key)}`);
      expect(backend.currentKeyGroup).toBe(keyGroupOf(keyString(key), 128));
    }
    expect(backend.size).toBe(keys.length);
    backend.setCurrentKey('1');
    state.clear();
    expect(state.value()).toBeUndefined();
    backend.setCurrentKey(1);
    expect(state.value()).toBe('value of 1');
    expect(() => backend.setCurrentKey(null)).toThrow(/a key cannot be null/);
    backend.clearCurrentKey();
    expect(() => state.value()).toThrow(/outside of a keyed context/);
  });

  it('restores only the key groups a subtask owns, with list and map state', () => {
    const source = new KeyedStateBackend(128);
    const value = source.valueState<number>('count');
    const list = source.listState<number>('list');
    const map = source.mapState<string, number>('map');
    const keys: unknown[] = [];
    for (let i = 0; i < 300; i++) keys.push(i % 3 === 0 ? i : i % 3 === 1 ? `k${i}` : [i]);
    for (const [i, key] of keys.entries()) {
      source.setCurrentKey(key);
      value.update(i);
      list.add(i);
      list.add(-i);
      map.put(`m${i}`, i * 2);
    }
    const snapshot = source.snapshot();
    const [first, last] = keyGroupRange(1, 128, 2);
    const restored = new KeyedStateBackend(128);
    const kept = restored.restore(snapshot, first, last);
    const owned = keys.filter((k) => {
      const g = keyGroupOf(keyString(k), 128);
      return g >= first && g <= last;
    });
    expect(owned.length).toBeGreaterThan(50);
    expect(kept).toBe(owned.length * 3);
    const value2 = restored.valueState<number>('count');
    const list2 = restored.listState<number>('list');
    const map2 = restored.mapState<string, number>('map');
    for (const [i, key] of keys.entries()) {
      restored.setCurrentKey(key);
      const mine = owned.includes(key);
      expect(value2.value()).toBe(mine ? i : undefined);
      expect(list2.get()).toEqual(mine ? [i, -i] : []);
      expect(map2.get(`m${i}`)).toBe(mine ? i * 2 : undefined);
    }
  });
});
