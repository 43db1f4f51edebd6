import type { Sink, SinkWriter } from 'sluice';

const VOCABULARY = Array.from({ length: 1_000 }, (_, i) => `w${(i * 7919) % 100_003}`);

/** Line i of the benchmark text: 8 words, deterministic. */
export function benchLine(i: number): string {
  const words: string[] = [];
  for (let k = 0; k < 8; k++) words.push(VOCABULARY[(i * 31 + k * 17) % VOCABULARY.length]!);
  return words.join(' ');
}

/** Counts records and drops them; the count ends up in the task's accumulators ("records in"). */
export class CountingSink<T> implements Sink<T> {
  readonly name = 'Discard';
  createWriter(): SinkWriter<T> {
    return { write: () => undefined };
  }
}
