/**
 * How a window is named in keyed state. Windows of a fixed size (tumbling, sliding) by their start, a
 * number (as before session windows existed, so older checkpoints still restore); other time windows
 * (sessions: a key's windows have different ends) by 'start/end'; the global window by 'global'. Names
 * round-trip through checkpoints (plain data).
 *
 * Windows and assigners are recognised by their shape, not `instanceof`: on a TaskManager they are made by
 * the job bundle's own copy of the API classes (the bundle includes the API it was built against), so
 * `instanceof` this module's classes is false for them.
 */
import { GlobalWindow, TimeWindow, type Window, type WindowAssigner } from '../../../api/windows.js';

/** A TimeWindow, from this copy of the API or the job bundle's. */
export function isTimeWindow(window: unknown): window is TimeWindow {
  const w = window as Partial<TimeWindow> | null;
  return typeof w?.start === 'number' && typeof w.end === 'number' && typeof w.intersects === 'function';
}

/** The size of a tumbling or sliding assigner (FixedSizeTimeWindows, from either copy), else undefined. */
function fixedSizeOf(assigner: WindowAssigner): number | undefined {
  const a = assigner as unknown as { kind?: unknown; sizeMs?: unknown };
  return (a.kind === 'tumbling' || a.kind === 'sliding') && typeof a.sizeMs === 'number'
    ? a.sizeMs
    : undefined;
}

export type WindowKey = number | string;

export class WindowNames {
  readonly #fixedSize: number | undefined;

  constructor(assigner: WindowAssigner) {
    this.#fixedSize = fixedSizeOf(assigner);
  }

  key(window: Window): WindowKey {
    if (!isTimeWindow(window)) return 'global';
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
  if (isTimeWindow(a) && isTimeWindow(b)) return a.start === b.start && a.end === b.end;
  return a === b;
}
