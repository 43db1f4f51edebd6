/**
 * Test harness, shared by the rescale and autoscaler tests: output streams, and the exactly-once check of test/fixtures/jobs/chaos-count.ts's output when
 * the job ran at several parallelisms (a key's events may then come from several source subtasks, so the
 * event behind the n-th count is not fixed; the counts and the events counted are).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { json, readStream } from '../connectors/jetstream-helpers.js';

export interface CountRecord {
  k: number;
  n: number;
  i: number;
}

/** A stream capturing `subject` with a duplicate window long enough for every restore of the test. */
export async function createOutputStream(nc: NatsConnection, name: string, subject: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [subject], duplicate_window: 120_000_000_000 });
}

/**
 * Reads the stream and returns every problem with exactly-once output: per key, the counts must be 1..max
 * each exactly once, and the events counted (`i`) distinct and of that key. Also the number of records.
 */
export async function exactlyOnceProblems(
  nc: NatsConnection,
  stream: string,
  keys: number,
): Promise<{ records: number; problems: string[]; perKey: Map<number, number> }> {
  const records = (await readStream(nc, stream)).map((m) => json<CountRecord>(m));
  const byKey = new Map<number, CountRecord[]>();
  for (const r of records) {
    const list = byKey.get(r.k) ?? [];
    list.push(r);
    byKey.set(r.k, list);
  }
  const problems: string[] = [];
  const perKey = new Map<number, number>();
  for (const [k, list] of byKey) {
    const counts = list.map((r) => r.n).sort((a, b) => a - b);
    const max = counts[counts.length - 1] ?? 0;
    perKey.set(k, max);
    if (counts.length !== max || counts.some((n, idx) => n !== idx + 1)) {
      const seen = new Map<number, number>();
      for (const n of counts) seen.set(n, (seen.get(n) ?? 0) + 1);
      const dup = [...seen].filter(([, c]) => c > 1).map(([n]) => n);
      const missing: number[] = [];
      for (let n = 1; n <= max && missing.length < 5; n++) if (!seen.has(n)) missing.push(n);
      problems.push(
        `key ${k}: ${counts.length} records for counts up to ${max} (duplicated ${dup.slice(0, 5).join(',') || '-'}, missing ${missing.join(',') || '-'})`,
      );
    }
    const events = new Set(list.map((r) => r.i));
    if (events.size !== list.length) problems.push(`key ${k}: an event was counted twice`);
    if (list.some((r) => r.i % keys !== k)) problems.push(`key ${k}: counted an event of another key`);
  }
  return { records: records.length, problems, perKey };
}
