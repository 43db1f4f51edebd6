/**
 * How a window is named in keyed state. Windows of a fixed size (tumbling, sliding) by their start, a
 * number (as before session windows existed, so older checkpoints still restore); other time windows
 * (sessions: a key's windows have different ends) by 'start/end'; the global window by 'global'. Names
 * round-trip through checkpoints (plain data).
 */
import {
  FixedSizeTimeWindows,
  GlobalWindow,
  TimeWindow,
  type Window,
  type WindowAssigner,
} from '../../../api/windows.js';

export type WindowKey = number | string;

export class WindowNames {
  readonly #fixedSize: number | undefined;

  constructor(assigner: WindowAssigner) {
    this.#fixedSize = assigner instanceof FixedSizeTimeWindows ? assigner.sizeMs : undefined;
  }

  key(window: Window): WindowKey {
    if (!(window instanceof TimeWindow)) return 'global';
    return this.#fixedSize !== undefined ? window.start : `${window.start}/${window.end}`;
  }

  window(key: unknown): Window {
    if (typeof key === 'number' && this.#fixedSize !== undefined)
      return new TimeWindow(key, key + this.#fixedSize);
    if (key === 'global') return GlobalWindow.get();
    if (typeof key === 'string') {
      const slash = key.indexOf('/');
      const start = Number(key.slice(0, slash));
      const end = Number(key.slice(slash + 1));
      if (slash > 0 && Number.isFinite(start) && Number.isFinite(end)) return new TimeWindow(start, end);
    }
    throw new Error(
      `window state holds a window named ${JSON.stringify(key)}, which this window assigner does not make: was the job's window assigner changed since the checkpoint?`,
    );
  }
}

export function sameWindow(a: Window, b: Window): boolean {
  if (a instanceof TimeWindow && b instanceof TimeWindow) return a.start === b.start && a.end === b.end;
  return a === b;
}
