/**
 * How a window is named in keyed state: a time window by [start, end] (session windows of one key have
 * different ends), the global window by 'global'. Keys round-trip through checkpoints (plain data).
 */
import { GlobalWindow, TimeWindow, type Window } from '../../../api/windows.js';

export type WindowKey = readonly [number, number] | 'global';

export function windowKey(window: Window): WindowKey {
  return window instanceof TimeWindow ? [window.start, window.end] : 'global';
}

export function windowFromKey(key: unknown): Window {
  if (key === 'global') return GlobalWindow.get();
  if (Array.isArray(key) && key.length === 2 && typeof key[0] === 'number' && typeof key[1] === 'number') {
    return new TimeWindow(key[0], key[1]);
  }
  if (typeof key === 'number') {
    throw new Error(
      `window state keyed by window start (${key}) comes from a checkpoint or savepoint taken before session windows: this version keys windows by [start, end] and cannot read it; start the job without that state`,
    );
  }
  throw new Error(`window state holds an unknown window key ${JSON.stringify(key)}`);
}

export function sameWindow(a: Window, b: Window): boolean {
  if (a instanceof TimeWindow && b instanceof TimeWindow) return a.start === b.start && a.end === b.end;
  return a === b;
}
