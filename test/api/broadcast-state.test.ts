/**
 * The broadcast state pattern on the local environment with a real nats-server, at parallelism 1 and 4,
 * through a restart from a checkpoint: rules (key → multiplier) are broadcast once at the start, then
 * the rules source only sends no-ops; after the restart the sources resume from the checkpoint, so every
 * event processed after it is priced with the broadcast state restored from the checkpoint. The
 * exactly-once sink holds exactly the plain-JS reference.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  type BroadcastProcessFunction,
  type Collector,
  type DataStream,
  GeneratorSource,
  type KeyedBroadcastContext,
  type KeyedBroadcastProcessFunction,
  type KeyedBroadcastReadOnlyContext,
  type ListState,
  ListStateDescriptor,
  MapStateDescriptor,
  type RuntimeContext,
  type Source,
  type SourceContext,
  StreamExecutionEnvironment,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { bag, FailOnce, jsonSink, readJsonLines } from './two-input-helpers.js';

const N = 1_200;
const KEYS = 12;
interface Event {
  i: number;
  k: number;
  v: number;
}
type Rule = [key: number, multiplier: number];
const EVENTS: Event[] = Array.from({ length: N }, (_, i) => ({ i, k: (i * 5) % KEYS, v: (i % 17) + 1 }));
const multiplier = (k: number) => ((k * 7) % 13) + 2;
const REFERENCE = EVENTS.map((e) => `${e.i}:${e.v * multiplier(e.k)}`);
const RULES = new MapStateDescriptor<number, number>('rules');

/** The rules, then no-ops (key -1) for as long as the events run, so checkpoints continue. */
function rules(env: StreamExecutionEnvironment): DataStream<Rule> {
  return env
    .fromSource(
      new GeneratorSource<Rule>(KEYS + 300, (i) => (i < KEYS ? [i, multiplier(i)] : [-1, 0]), {
        ratePerSecond: 100,
      }),
    )
    .uid('rules')
    .setParallelism(1);
}

/** A GeneratorSource that starts emitting once `gate` resolved. */
class GatedSource<T> implements Source<T> {
  readonly name = 'Gated Generator';
  constructor(
    readonly inner: GeneratorSource<T>,
    readonly gate: Promise<void>,
  ) {}
  async run(ctx: SourceContext<T>): Promise<void> {
    await this.gate;
    await this.inner.run(ctx);
  }
}

describe('broadcast state through a restart', () => {
  let nats: NatsServerHandle;
  let dir: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-broadcast-'));
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const parallelism of [1, 4]) {
    it(`non-keyed BroadcastProcessFunction at parallelism ${parallelism}`, async () => {
      const out = join(dir, `plain-${parallelism}`);
      const env = StreamExecutionEnvironment.createLocalEnvironment(
        parallelism,
        nats.url,
      ).enableCheckpointing(100);
      const fail = new FailOnce(N / 2, 'Broadcast Process');
      // Events start once every subtask holds every rule: without keyed state to park them, an event
      // before its rule would have no price.
      let applied = 0;
      let open!: () => void;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      const fn: BroadcastProcessFunction<Event, Rule, string> = {
        processElement(e, ctx, c) {
          fail.hit();
          const m = ctx.getBroadcastState(RULES).get(e.k);
          if (m === undefined) throw new Error(`no rule for key ${e.k}`);
          c.collect(`${e.i}:${e.v * m}`);
        },
        processBroadcastElement([k, m], ctx) {
          if (k < 0) return;
          ctx.getBroadcastState(RULES).put(k, m);
          if (++applied === KEYS * parallelism) open();
        },
      };
      env
        .fromSource(
          new GatedSource(
            new GeneratorSource(N, (i) => EVENTS[i]!, { ratePerSecond: Math.ceil(800 / parallelism) }),
            gate,
          ),
        )
        .uid('events')
        .connect(rules(env).broadcast(RULES))
        .process(fn)
        .uid('price')
        .sinkTo(jsonSink<string>(out))
        .uid('out');
      await env.execute(`broadcast p${parallelism}`);

      expect(fail.failed).toBe(true);
      expect(fail.callsAfterFailure).toBeGreaterThan(0);
      expect(fail.callsAfterFailure).toBeLessThan(N);
      // Rules were not sent again after the restart (the rules source resumed past them).
      expect(applied).toBe(KEYS * parallelism);
      expect(bag(await readJsonLines(out))).toEqual(bag(REFERENCE));
    }, 60_000);
  }

  for (const parallelism of [1, 4]) {
    it(`KeyedBroadcastProcessFunction with applyToKeyedState at parallelism ${parallelism}`, async () => {
      const out = join(dir, `keyed-${parallelism}`);
      const env = StreamExecutionEnvironment.createLocalEnvironment(
        parallelism,
        nats.url,
      ).enableCheckpointing(100);
      const fail = new FailOnce(N / 2, 'Keyed Broadcast Process');
      const parked = new ListStateDescriptor<Event>('parked');
      let applied = 0;
      class Pricing implements KeyedBroadcastProcessFunction<number, Event, Rule, string> {
        parked!: ListState<Event>;
        open(rc: RuntimeContext): void {
          this.parked = rc.getListState(parked);
        }
        processElement(e: Event, ctx: KeyedBroadcastReadOnlyContext<number>, c: Collector<string>) {
          fail.hit();
          const m = ctx.getBroadcastState(RULES).get(e.k);
          // An event before its rule waits in keyed state (checkpointed) until the rule comes.
          if (m === undefined) this.parked.add(e);
          else c.collect(`${e.i}:${e.v * m}`);
        }
        processBroadcastElement([k, m]: Rule, ctx: KeyedBroadcastContext, c: Collector<string>) {
          if (k < 0) return;
          applied++;
          ctx.getBroadcastState(RULES).put(k, m);
          ctx.applyToKeyedState(parked, (key, list) => {
            if (key !== k) return;
            for (const e of list.get()) c.collect(`${e.i}:${e.v * m}`);
            list.clear();
          });
        }
      }
      env
        .fromSource(
          new GeneratorSource(N, (i) => EVENTS[i]!, { ratePerSecond: Math.ceil(800 / parallelism) }),
        )
        .uid('events')
        .keyBy((e) => e.k)
        .connect(rules(env).broadcast(RULES))
        .process(new Pricing())
        .uid('price')
        .sinkTo(jsonSink<string>(out))
        .uid('out');
      await env.execute(`keyed broadcast p${parallelism}`);

      expect(fail.failed).toBe(true);
      expect(fail.callsAfterFailure).toBeGreaterThan(0);
      expect(fail.callsAfterFailure).toBeLessThan(N);
      expect(applied).toBe(KEYS * parallelism);
      expect(bag(await readJsonLines(out))).toEqual(bag(REFERENCE));
    }, 60_000);
  }
});
