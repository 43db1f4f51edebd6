/**
 * What the built-in operators do when a TaskExecutor runs them (see jobgraph/builtin-jobs.ts).
 */
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { BuiltinOperator } from '../../jobgraph/job-graph.js';

export interface TaskContext {
  subtaskIndex: number;
  parallelism: number;
  signal: AbortSignal;
  /** Numbers the task adds up; the JobMaster sums them over subtasks. */
  accumulators: Record<string, number>;
  /**
   * The task is initialized (state restored, channels open) and processes records: reported RUNNING. A
   * checkpoint is only triggered once every task of the job is RUNNING.
   */
  running: () => void;
}

type Invokable = (ctx: TaskContext, args: BuiltinOperator['args']) => Promise<void>;

const BATCH = 10_000;

async function count(ctx: TaskContext, records: number, map: (x: number) => number): Promise<void> {
  let n = 0;
  let sum = 0;
  for (let i = ctx.subtaskIndex; i < records; i += ctx.parallelism) {
    sum += map(i);
    n++;
    if (n % BATCH === 0) {
      ctx.accumulators.records = n;
      await yieldToEventLoop();
      ctx.signal.throwIfAborted();
    }
  }
  ctx.accumulators.records = n;
  ctx.accumulators.sum = sum;
}

function double(x: number): number {
  return x * 2;
}

function explode(x: number, failAt: number): number {
  if (x >= failAt) throw new Error(`boom: map function failed on record ${x}`);
  return x;
}

async function endless(ctx: TaskContext, args: BuiltinOperator['args']): Promise<void> {
  const rate = Math.max(1, Number(args.rate ?? 1000));
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  let n = 0;
  for (;;) {
    n += perTick;
    ctx.accumulators.records = n;
    await sleep(tickMs, undefined, { signal: ctx.signal });
  }
}

export const BUILTIN_INVOKABLES: Record<string, Invokable> = {
  count: (ctx, args) => count(ctx, Number(args.records), double),
  endless,
  // Some subtask reaches a record >= failAt: the records run on to failAt + parallelism.
  fail: (ctx, args) => {
    const failAt = Number(args.failAt);
    return count(ctx, failAt + ctx.parallelism, (x) => explode(x, failAt));
  },
};
