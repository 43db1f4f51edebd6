/**
 * A sink for tests on the local environment (same process): remembers each record with the subtask
 * that wrote it. Optionally slow, to test backpressure.
 */
import type { ConnectorContext, Sink, SinkWriter } from '../../src/index.js';

export interface Recorded<T> {
  subtask: number;
  value: T;
  timestamp: number | undefined;
}

export class RecordingSink<T> implements Sink<T> {
  readonly name = 'Recording Sink';
  readonly records: Recorded<T>[] = [];

  /** @param delayEvery when set, the writer pauses `delayMs` after every `delayEvery` records */
  constructor(readonly options: { delayEvery?: number; delayMs?: number; onWrite?: () => void } = {}) {}

  createWriter(ctx: ConnectorContext): SinkWriter<T> {
    let pending: Promise<void> | undefined;
    let n = 0;
    const { delayEvery, delayMs = 1, onWrite } = this.options;
    return {
      write: (value, timestamp) => {
        this.records.push({ subtask: ctx.subtaskIndex, value, timestamp });
        onWrite?.();
        n++;
        if (delayEvery && n % delayEvery === 0) {
          pending = new Promise((r) => setTimeout(r, delayMs)).then(() => {
            pending = undefined;
          });
        }
      },
      get writable() {
        return pending === undefined;
      },
      ready: async () => {
        await pending;
      },
    };
  }

  values(): T[] {
    return this.records.map((r) => r.value);
  }

  bySubtask(): Map<number, T[]> {
    const m = new Map<number, T[]>();
    for (const r of this.records) {
      const list = m.get(r.subtask) ?? [];
      list.push(r.value);
      m.set(r.subtask, list);
    }
    return m;
  }
}

/** Final value per key of a rolling aggregation's output: the last update wins. */
export function lastPerKey<T, K>(records: T[], key: (r: T) => K): Map<K, T> {
  const m = new Map<K, T>();
  for (const r of records) m.set(key(r), r);
  return m;
}

export function sorted<T>(values: T[]): T[] {
  return [...values].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}
