/**
 * Benchmark job: a keyed operator holding `keys` × `value-bytes` of state, checkpointed every `interval` ms.
 * Args: <keys> <value-bytes> <rate> <interval-ms>.
 *
 * Each source subtask first emits its share of the keys (k ≡ subtask mod parallelism) as fast as the job
 * takes them — the build phase — then updates its keys round-robin at `rate` records/s, until cancelled.
 * The keyed process function stores, per key, a string of `value-bytes` characters in a ValueState (a
 * fresh string per update: the sequence number of the update, padded). Nothing is emitted downstream.
 */
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  type KeyedProcessFunction,
  type RuntimeContext,
  type Source,
  type SourceContext,
  StreamExecutionEnvironment,
  type ValueState,
  ValueStateDescriptor,
} from 'sluice';
import { CountingSink } from './shared.js';

const [keysArg, bytesArg, rateArg, intervalArg] = process.argv.slice(2);
const keys = Number(keysArg ?? 200_000);
const valueBytes = Number(bytesArg ?? 500);
const rate = Number(rateArg ?? 2_000);
const interval = Number(intervalArg ?? 1_000);

type Update = [key: number, seq: number];

class KeyUpdates implements Source<Update> {
  readonly name = 'Key Updates';
  async run(ctx: SourceContext<Update>): Promise<void> {
    const p = ctx.parallelism;
    const s = ctx.subtaskIndex;
    const share = Math.floor((keys - s + p - 1) / p);
    let seq = 0;
    ctx.onCheckpoint(() => ({ seq }));
    // Build: every key of the share once, at full speed.
    for (let k = s; k < keys; k += p) {
      ctx.collect([k, seq++]);
      if (!ctx.writable) await ctx.ready();
      if (seq % 1_000 === 0) {
        await yieldToEventLoop();
        ctx.signal.throwIfAborted();
      }
    }
    // Steady state: round-robin updates at `rate` records/s until the job is cancelled.
    const started = Date.now();
    for (let n = 1; ; n++) {
      const k = s + ((n - 1) % share) * p;
      ctx.collect([k, seq++]);
      const wait = started + (n * 1_000) / rate - Date.now();
      if (wait > 1) await sleep(wait, undefined, { signal: ctx.signal });
      else if (n % 1_000 === 0) await yieldToEventLoop();
      if (!ctx.writable) await ctx.ready();
      ctx.signal.throwIfAborted();
    }
  }
}

class PaddedValue implements KeyedProcessFunction<number, Update, never> {
  #state: ValueState<string> | undefined;
  open(ctx: RuntimeContext): void {
    this.#state = ctx.getState(new ValueStateDescriptor<string>('value'));
  }
  processElement([key, seq]: Update): void {
    this.#state!.update(`${key}:${seq}:`.padEnd(valueBytes, 'x'));
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.enableCheckpointing(interval);
env
  .fromSource(new KeyUpdates())
  .uid('updates')
  .keyBy(([key]) => key)
  .process(new PaddedValue())
  .uid('state')
  .sinkTo(new CountingSink());
await env.execute(`bench keyed state, ${keys} keys × ${valueBytes} B`);
