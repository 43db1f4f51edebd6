/**
 * Shared by the two-input tests: keyed events with event time, shuffled within a bound; sources that
 * emit them at a steady rate with bounded-out-of-orderness watermarks; a function wrapper that fails
 * once half-way (after checkpoints completed) and counts what it sees after the restart; and the
 * lines an exactly-once TextFileSink committed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type DataStream,
  GeneratorSource,
  type StreamExecutionEnvironment,
  TextFileSink,
  WatermarkStrategy,
} from '../../src/index.js';
import { prng } from '../operators/harness.js';

export interface Ev {
  /** Index in its input (unique per input). */
  i: number;
  k: number;
  v: number;
  ts: number;
}

/** `n` events over `keys` keys, `stepMs` apart in event time, delivered shuffled by at most `boundMs`. */
export function makeEvents(n: number, keys: number, seed: number, stepMs: number, boundMs: number): Ev[] {
  const rnd = prng(seed);
  const inOrder = Array.from({ length: n }, (_, i) => ({
    i,
    k: Math.floor(rnd() * keys),
    v: 1 + Math.floor(rnd() * 50),
    ts: 10_000 + i * stepMs + Math.floor(rnd() * stepMs),
  }));
  return inOrder
    .map((e) => ({ e, at: e.ts + rnd() * boundMs }))
    .sort((a, b) => a.at - b.at)
    .map(({ e }) => e);
}

/** Events at `ratePerSecond` per subtask, with event time and watermarks that allow `boundMs` disorder. */
export function eventSource(
  env: StreamExecutionEnvironment,
  events: Ev[],
  ratePerSecond: number,
  boundMs: number,
  uid: string,
): DataStream<Ev> {
  return env
    .fromSource(
      new GeneratorSource(events.length, (i) => events[i]!, { ratePerSecond }),
      WatermarkStrategy.forBoundedOutOfOrderness<Ev>(boundMs + 1)
        .withTimestampAssigner((e) => e.ts)
        .withAutoWatermarkInterval(50),
    )
    .uid(uid);
}

/**
 * Fails once, when `hit()` was called `failAt` times (the function object is shared by the subtasks of
 * the in-process cluster, so this counts over all of them); then counts calls after the failure.
 */
export class FailOnce {
  #calls = 0;
  failed = false;
  callsAfterFailure = 0;
  constructor(
    readonly failAt: number,
    readonly what: string,
  ) {}

  hit(): void {
    if (this.failed) {
      this.callsAfterFailure++;
      return;
    }
    if (++this.#calls >= this.failAt) {
      this.failed = true;
      throw new Error(`${this.what}: planned failure after ${this.#calls} records`);
    }
  }
}

/** A sink writing each record as a JSON line (exactly-once with checkpointing). */
export function jsonSink<T>(dir: string): TextFileSink<T> {
  return new TextFileSink<T>(dir, (v) => JSON.stringify(v));
}

/** Every line committed to a TextFileSink directory, parsed. */
export async function readJsonLines<T>(dir: string): Promise<T[]> {
  const out: T[] = [];
  for (const file of await readdir(dir)) {
    if (file.startsWith('.')) continue;
    for (const line of (await readFile(join(dir, file), 'utf8')).split('\n')) {
      if (line) out.push(JSON.parse(line) as T);
    }
  }
  return out;
}

/** A multiset as sorted strings, for exact comparison with a reference. */
export function bag(values: unknown[]): string[] {
  return values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).sort();
}
