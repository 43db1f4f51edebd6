/**
 * Benchmark job of `npm run bench:rescale`: a keyed operator holding `keys` × `value-bytes` of state,
 * updated at `rate` records/s in all (whatever the parallelism), checkpointed every `interval` ms; every
 * update also goes out on the core NATS subject `subject` as the execution attempt that processed it, so
 * the bench sees the last record of the old tasks and the first of the new ones around a rescale.
 * Args: <keys> <value-bytes> <rate> <interval-ms> <subject>.
 *
 * Each source subtask first writes its share of the keys (k ≡ subtask mod parallelism) once at full speed —
 * the build, not repeated after a restore (its checkpointed state says it is done) — then updates its keys
 * round-robin at rate ÷ parallelism records/s until cancelled.
 */
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  type Collector,
  type ConnectorContext,
  type KeyedProcessContext,
  type KeyedProcessFunction,
  type RuntimeContext,
  type Sink,
  type SinkWriter,
  type Source,
  type SourceContext,
  StreamExecutionEnvironment,
  type ValueState,
  ValueStateDescriptor,
} from 'sluice';

const [keysArg, bytesArg, rateArg, intervalArg, subjectArg] = process.argv.slice(2);
const keys = Number(keysArg ?? 200_000);
const valueBytes = Number(bytesArg ?? 500);
const rate = Number(rateArg ?? 1_000);
const interval = Number(intervalArg ?? 5_000);
const subject = subjectArg ?? 'bench.rescale';

type Update = [key: number, seq: number];

class KeyUpdates implements Source<Update> {
  readonly name = 'Key Updates';
  async run(ctx: SourceContext<Update>): Promise<void> {
    const p = ctx.parallelism;
    const s = ctx.subtaskIndex;
    const share = Math.max(1, Math.floor((keys - s + p - 1) / p));
    const restored = (ctx.restoredState ?? []) as Array<{ built?: boolean } | null>;
    let built = restored.some((r) => r?.built === true);
    let seq = 0;
    ctx.onCheckpoint(() => ({ built }));
    if (!built) {
      for (let k = s; k < keys; k += p) {
        ctx.collect([k, seq++]);
        if (!ctx.writable) await ctx.ready();
        if (seq % 1_000 === 0) {
          await yieldToEventLoop();
          ctx.signal.throwIfAborted();
        }
      }
      built = true;
    }
    const perSubtask = rate / p;
    const started = Date.now();
    for (let n = 1; ; n++) {
      const k = s + ((n - 1) % share) * p;
      ctx.collect([k, seq++]);
      const wait = started + (n * 1_000) / perSubtask - Date.now();
      if (wait > 1) await sleep(wait, undefined, { signal: ctx.signal });
      else if (n % 1_000 === 0) await yieldToEventLoop();
      if (!ctx.writable) await ctx.ready();
      ctx.signal.throwIfAborted();
    }
  }
}

class PaddedValue implements KeyedProcessFunction<number, Update, number> {
  #state: ValueState<string> | undefined;
  open(ctx: RuntimeContext): void {
    this.#state = ctx.getState(new ValueStateDescriptor<string>('value'));
  }
  processElement([key, seq]: Update, _ctx: KeyedProcessContext<number>, out: Collector<number>): void {
    this.#state!.update(`${key}:${seq}:`.padEnd(valueBytes, 'x'));
    out.collect(key);
  }
}

/** Publishes the execution attempt of every record on a core NATS subject (no JetStream: a probe). */
class AttemptProbe implements Sink<number> {
  readonly name = 'Attempt probe';
  createWriter(ctx: ConnectorContext): SinkWriter<number> {
    const payload = new TextEncoder().encode(String(ctx.executionAttempt?.attempt ?? 0));
    return { write: () => ctx.nats.publish(subject, payload) };
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
  .sinkTo(new AttemptProbe())
  .uid('probe');
await env.execute(`bench rescale, ${keys} keys × ${valueBytes} B`);
