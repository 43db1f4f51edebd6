/**
 * The client's side of `executeAndCollect()`: the batches a job's collect sinks send
 * (`api/sinks/collect-sink.ts`), kept so that every record counts exactly once across restarts.
 *
 * Promises: *committed* batches (jobs with checkpoints) are kept one copy per (subtask, transaction,
 * part), a later run's copy of a transaction replacing an earlier run's entirely; *direct* batches (no
 * checkpoints: a restart replays from the beginning) are kept only for the newest run. Records come out
 * by subtask, then transaction (checkpoint order, the final one last), then part or sequence.
 * Refuses (the sender gets an error, nothing changes): a batch that is not one, and a batch of a run older
 * than the newest seen (a task of a cancelled attempt still sending).
 */
import { z } from 'zod';
import { type CollectBatch, CollectBatchSchema, type CollectRun } from '../api/sinks/collect-sink.js';

const compareRuns = (a: CollectRun, b: CollectRun) => a.epoch - b.epoch || a.attempt - b.attempt;

export class CollectedResults {
  #newest: CollectRun | undefined;
  /** Direct batches of the newest run: subtask → seq → records. */
  #direct = new Map<number, unknown[][]>();
  /** Committed transactions: `subtask/txn` → the run that sent it and its parts. */
  readonly #committed = new Map<
    string,
    { subtask: number; txn: number; run: CollectRun; parts: unknown[][] }
  >();

  /** Takes a batch as received; a string says why it was refused. */
  accept(body: unknown): string | undefined {
    const parsed = CollectBatchSchema.safeParse(body);
    if (!parsed.success) return `malformed collect batch: ${z.prettifyError(parsed.error).slice(0, 300)}`;
    const batch: CollectBatch = parsed.data;
    const newest = this.#newest;
    if (newest !== undefined && compareRuns(batch.run, newest) < 0) {
      return `a batch of run ${batch.run.epoch}.${batch.run.attempt}, older than the job's current run ${newest.epoch}.${newest.attempt}`;
    }
    if (newest === undefined || compareRuns(batch.run, newest) > 0) {
      this.#newest = batch.run;
      this.#direct = new Map(); // a restart without checkpoints replays everything
    }
    if (batch.mode === 'direct') {
      const batches = this.#direct.get(batch.subtask) ?? [];
      batches[batch.seq] = batch.records;
      this.#direct.set(batch.subtask, batches);
      return undefined;
    }
    const key = `${batch.subtask}/${batch.txn}`;
    let entry = this.#committed.get(key);
    if (entry === undefined || compareRuns(batch.run, entry.run) > 0) {
      entry = { subtask: batch.subtask, txn: batch.txn, run: batch.run, parts: [] };
      this.#committed.set(key, entry);
    }
    entry.parts[batch.part] = batch.records;
    return undefined;
  }

  records(): unknown[] {
    const out: unknown[] = [];
    const committed = [...this.#committed.values()].sort((a, b) => a.subtask - b.subtask || a.txn - b.txn);
    for (const t of committed) for (const part of t.parts) if (part) out.push(...part);
    for (const subtask of [...this.#direct.keys()].sort((a, b) => a - b)) {
      for (const batch of this.#direct.get(subtask)!) if (batch) out.push(...batch);
    }
    return out;
  }
}
