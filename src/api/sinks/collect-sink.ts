/**
 * Sends a job's records back to the client that ran it (`executeAndCollect`). Batches go to
 * `sluice.<cluster>.collect.<jobId>` as asks; one batch is in flight per subtask, which is the
 * backpressure: a slow client slows the job instead of losing records.
 *
 * Exactly once, across restarts:
 * - **with checkpoints** the writer is a two-phase-commit sink towards the client: what it receives between
 *   two barriers becomes transaction *n* at barrier *n* (stored with checkpoint *n*) and is sent, as
 *   *committed* batches keyed by (subtask, *n*, part), only once checkpoint *n* completed. A restore sends
 *   the transactions of the checkpoint it restores again (the client keeps one copy per key); records after
 *   the last checkpoint are replayed by the sources. At the end of input the rest goes as the final
 *   transaction (a later run's final replaces an earlier one's entirely).
 * - **without checkpoints** a restart replays the job from its beginning: batches are *direct*, numbered
 *   per run, and the client keeps only those of the newest run.
 * Every batch names its run (leader epoch, attempt); the client refuses batches of a run older than the
 * newest it has seen (a task of a cancelled attempt that still sends).
 */
import { z } from 'zod';
import { decodeReply, encode } from '../../actors/envelope.js';
import { Subjects } from '../../actors/subjects.js';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';

const BATCH_RECORDS = 500;
const MAX_BUFFERED = 5_000;
const REPLY_LIMIT = 64 * 1024;
/** The transaction id of what came after the last checkpoint, sent at the end of input. */
export const FINAL_TRANSACTION = Number.MAX_SAFE_INTEGER;

const RunSchema = z.object({ epoch: z.number().int().min(0), attempt: z.number().int().min(0) });
export type CollectRun = z.infer<typeof RunSchema>;

/** A batch of collected records, as the client receives it (validated there). */
export const CollectBatchSchema = z.discriminatedUnion('mode', [
  z.object({
    mode: z.literal('direct'),
    subtask: z.number().int().min(0),
    run: RunSchema,
    seq: z.number().int().min(0),
    records: z.array(z.unknown()),
    last: z.boolean(),
  }),
  z.object({
    mode: z.literal('committed'),
    subtask: z.number().int().min(0),
    run: RunSchema,
    /** The checkpoint whose transaction this is, or {@link FINAL_TRANSACTION}. */
    txn: z.number().int().min(0),
    part: z.number().int().min(0),
    parts: z.number().int().min(1),
    records: z.array(z.unknown()),
  }),
]);
export type CollectBatch = z.infer<typeof CollectBatchSchema>;

interface Transaction {
  checkpointId: number;
  /** The subtask that wrote it (its key at the client, also after a restore at another parallelism). */
  subtask: number;
  records: unknown[];
}

/** What a collect writer stores with a checkpoint. */
interface CollectSinkState {
  transactions: Transaction[];
}

export class CollectSink<T> implements Sink<T> {
  readonly name = 'Collect Sink';

  createWriter(ctx: ConnectorContext): SinkWriter<T> {
    return ctx.checkpointing ? new CommittingCollectWriter<T>(ctx) : new CollectWriter<T>(ctx);
  }
}

/** Sends a batch and waits for the client's answer; rejects when the client refused it or is gone. */
async function sendBatch(ctx: ConnectorContext, subject: string, batch: CollectBatch): Promise<void> {
  try {
    const reply = await ctx.nats.request(subject, encode('collect', batch), { timeout: 30_000 });
    decodeReply(reply.data, REPLY_LIMIT);
  } catch (err) {
    throw new Error(`the client collecting results did not take a batch: ${(err as Error).message}`);
  }
}

function runOf(ctx: ConnectorContext): CollectRun {
  return ctx.executionAttempt ?? { epoch: 0, attempt: 0 };
}

/** Without checkpoints: batches as they fill, one in flight. */
class CollectWriter<T> implements SinkWriter<T> {
  readonly #ctx: ConnectorContext;
  readonly #subject: string;
  #buffer: unknown[] = [];
  #seq = 0;
  #inFlight: Promise<void> | undefined;
  #failure: unknown;

  constructor(ctx: ConnectorContext) {
    this.#ctx = ctx;
    this.#subject = new Subjects(ctx.clusterId).collect(ctx.jobId);
  }

  get writable(): boolean {
    return this.#buffer.length < MAX_BUFFERED && this.#failure === undefined;
  }

  write(value: T): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#buffer.push(value);
    if (this.#buffer.length >= BATCH_RECORDS && !this.#inFlight) this.#send(false);
  }

  async ready(): Promise<void> {
    while (!this.writable) {
      if (this.#failure !== undefined) throw this.#failure;
      if (!this.#inFlight) this.#send(false);
      await this.#inFlight;
    }
  }

  async finish(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
    this.#send(true);
    await this.#inFlight;
    if (this.#failure !== undefined) throw this.#failure;
  }

  #send(last: boolean): void {
    const batch: CollectBatch = {
      mode: 'direct',
      subtask: this.#ctx.subtaskIndex,
      run: runOf(this.#ctx),
      seq: this.#seq++,
      records: this.#buffer,
      last,
    };
    this.#buffer = [];
    this.#inFlight = sendBatch(this.#ctx, this.#subject, batch)
      .catch((err: unknown) => {
        this.#failure = err;
      })
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#buffer.length >= BATCH_RECORDS && this.#failure === undefined) this.#send(false);
      });
  }
}

/** With checkpoints: transactions per checkpoint, sent once the checkpoint completed. */
class CommittingCollectWriter<T> implements SinkWriter<T> {
  readonly #ctx: ConnectorContext;
  readonly #subject: string;
  #buffer: unknown[] = [];
  /** Pre-committed transactions not yet sent, oldest first. */
  #pending: Transaction[];
  #commits: Promise<void> = Promise.resolve();
  #failure: Error | undefined;

  constructor(ctx: ConnectorContext) {
    this.#ctx = ctx;
    this.#subject = new Subjects(ctx.clusterId).collect(ctx.jobId);
    this.#pending = restoredTransactions(ctx);
    // The restored checkpoint completed: its transactions are committed; send them (again) now.
    const restored = this.#pending.at(-1)?.checkpointId;
    if (restored !== undefined) void this.#commit(restored).catch(() => undefined);
  }

  /** Buffering is not limited: the buffer only empties at a checkpoint (as the JetStream sink's). */
  get writable(): boolean {
    return this.#failure === undefined;
  }

  write(value: T): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#buffer.push(value);
  }

  snapshotState(checkpointId: number): CollectSinkState {
    if (this.#buffer.length > 0) {
      this.#pending.push({ checkpointId, subtask: this.#ctx.subtaskIndex, records: this.#buffer });
      this.#buffer = [];
    }
    return { transactions: [...this.#pending] };
  }

  notifyCheckpointComplete(checkpointId: number): Promise<void> {
    return this.#commit(checkpointId);
  }

  async finish(): Promise<void> {
    await this.#commit(Number.POSITIVE_INFINITY);
    const rest = this.#buffer;
    this.#buffer = [];
    await this.#run(() => this.#sendTransaction(this.#ctx.subtaskIndex, FINAL_TRANSACTION, rest));
  }

  /** Without finish: what came after the last checkpoint is dropped (the sources replay it). */
  close(): void {
    this.#buffer = [];
  }

  #commit(upTo: number): Promise<void> {
    return this.#run(async () => {
      while (this.#pending.length > 0 && this.#pending[0]!.checkpointId <= upTo) {
        const txn = this.#pending[0]!;
        await this.#sendTransaction(txn.subtask, txn.checkpointId, txn.records);
        // Only now: a checkpoint taken meanwhile still carries the transaction.
        this.#pending.shift();
      }
    });
  }

  async #sendTransaction(subtask: number, txn: number, records: unknown[]): Promise<void> {
    const parts = Math.max(1, Math.ceil(records.length / BATCH_RECORDS));
    for (let part = 0; part < parts; part++) {
      await sendBatch(this.#ctx, this.#subject, {
        mode: 'committed',
        subtask,
        run: runOf(this.#ctx),
        txn,
        part,
        parts,
        records: records.slice(part * BATCH_RECORDS, (part + 1) * BATCH_RECORDS),
      });
    }
  }

  #run(commit: () => Promise<void>): Promise<void> {
    const run = async () => {
      if (this.#failure !== undefined) throw this.#failure;
      try {
        await commit();
      } catch (err) {
        this.#failure ??= err instanceof Error ? err : new Error(String(err));
        throw this.#failure;
      }
    };
    const next = this.#commits.then(run, run);
    this.#commits = next;
    return next;
  }
}

/** The transactions of the old subtasks that are now this subtask's (k mod p), checked. */
function restoredTransactions(ctx: ConnectorContext): Transaction[] {
  const out: Transaction[] = [];
  const restored = ctx.restoredState ?? [];
  for (let k = 0; k < restored.length; k++) {
    if (k % ctx.parallelism !== ctx.subtaskIndex) continue;
    const state = restored[k] as Partial<CollectSinkState> | null | undefined;
    if (state === undefined || state === null) continue;
    const ok =
      typeof state === 'object' &&
      Array.isArray(state.transactions) &&
      state.transactions.every(
        (t) =>
          typeof t?.checkpointId === 'number' &&
          typeof t.subtask === 'number' &&
          Array.isArray((t as Transaction).records),
      );
    if (!ok) throw new Error(`collect sink: cannot restore from the checkpointed state (old subtask ${k})`);
    out.push(...(state.transactions as Transaction[]));
  }
  return out.sort((a, b) => a.checkpointId - b.checkpointId);
}
