/**
 * Window state through a failure on the local environment (real nats-server): a job with event-time
 * session windows (out-of-order input) and sliding count windows checkpoints every 50 ms; half-way,
 * once two checkpoints completed, the source throws once; the job restarts from the latest checkpoint (sources at their
 * positions, merged sessions, kept count-window elements and trigger counts restored) and its
 * exactly-once file sinks hold every result exactly once, equal to a plain-JS reference, at parallelism 1
 * and 4.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  type ConnectorContext,
  EventTimeSessionWindows,
  type Sink,
  type SinkWriter,
  type Source,
  type SourceContext,
  StreamExecutionEnvironment,
  TextFileSink,
  WatermarkStrategy,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';

interface Event {
  i: number;
  user: string;
  amount: number;
  ts: number;
}

const COUNT = 4_000;
const USERS = 8;
const GAP = 100;

/** Deterministic per index: out of order by up to 39 ms, and a 1 s jump every 200 records (sessions end). */
function event(i: number): Event {
  const h = Math.imul(i + 1, 2654435761) >>> 0;
  return {
    i,
    user: `u${i % USERS}`,
    amount: 1 + (h % 50),
    ts: i * 5 + (h % 40) + 1_000 * Math.floor(i / 200),
  };
}

/** A TextFileSink (exactly-once with checkpointing) that notes the checkpoints that completed. */
class CountingFileSink implements Sink<string> {
  readonly name: string;
  readonly #inner: TextFileSink<string>;
  constructor(
    path: string,
    readonly progress: { checkpoints: Set<number> },
  ) {
    this.#inner = new TextFileSink<string>(path, (s) => s);
    this.name = this.#inner.name;
  }
  async createWriter(ctx: ConnectorContext): Promise<SinkWriter<string>> {
    const w = await this.#inner.createWriter(ctx);
    const progress = this.progress;
    return {
      write: (v, ts) => w.write(v, ts),
      get writable() {
        return w.writable ?? true;
      },
      ready: () => w.ready?.() ?? Promise.resolve(),
      finish: () => w.finish?.() ?? Promise.resolve(),
      close: () => w.close?.(),
      snapshotState: (id) => w.snapshotState?.(id),
      notifyCheckpointComplete: async (id) => {
        progress.checkpoints.add(id);
        await w.notifyCheckpointComplete?.(id);
      },
    };
  }
}

/**
 * Record i of subtask s is event(i) for i ≡ s (mod parallelism), paced; its position is checkpointed.
 * Half-way through, the first run waits until two checkpoints have completed (whatever the machine's
 * speed), then fails once; the restarted run resumes from the restored position and ends.
 */
class FailingOnceSource implements Source<Event> {
  readonly name = 'Failing-once Source';
  constructor(
    readonly progress: { checkpoints: Set<number> },
    readonly failure: { at: number | undefined },
  ) {}

  async run(ctx: SourceContext<Event>): Promise<void> {
    const p = ctx.parallelism;
    const restored = ctx.restoredState?.[ctx.subtaskIndex] as { next: number } | undefined;
    let next = restored?.next ?? ctx.subtaskIndex;
    ctx.onCheckpoint(() => ({ next }));
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let emitted = 0;
    while (next < COUNT) {
      if (this.failure.at === undefined && next >= COUNT / 2) {
        if (this.progress.checkpoints.size < 2) {
          await sleep(10);
          continue;
        }
        this.failure.at = next;
        throw new Error(`injected failure at record ${next}`);
      }
      ctx.collect(event(next));
      next += p;
      if (++emitted % 20 === 0) await sleep(5);
      if (!ctx.writable) await ctx.ready();
    }
  }
}

async function lines(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of await readdir(dir)) {
    if (f.startsWith('.')) continue;
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) if (line) out.push(line);
  }
  return out.sort();
}

function referenceSessions(events: Event[]): string[] {
  const out: string[] = [];
  for (let u = 0; u < USERS; u++) {
    const list = events.filter((e) => e.user === `u${u}`).sort((a, b) => a.ts - b.ts);
    let cur: { start: number; last: number; n: number; sum: number } | undefined;
    const push = () => cur && out.push(`u${u} ${cur.start}-${cur.last + GAP} n=${cur.n} sum=${cur.sum}`);
    for (const e of list) {
      if (cur && e.ts < cur.last + GAP) {
        cur.last = Math.max(cur.last, e.ts);
        cur.n++;
        cur.sum += e.amount;
      } else {
        push();
        cur = { start: e.ts, last: e.ts, n: 1, sum: e.amount };
      }
    }
    push();
  }
  return out.sort();
}

function referenceCounts(events: Event[]): string[] {
  const out: string[] = [];
  for (let u = 0; u < USERS; u++) {
    const amounts = events.filter((e) => e.user === `u${u}`).map((e) => e.amount);
    for (let n = 2; n <= amounts.length; n += 2) {
      out.push(`u${u} #${n} ${amounts.slice(Math.max(0, n - 5), n).reduce((a, b) => a + b, 0)}`);
    }
  }
  return out.sort();
}

describe('windows through a restart from a checkpoint', () => {
  let nats: NatsServerHandle;
  let dir: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'sluice-windows-restart-'));
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const p of [1, 4]) {
    it(`sessions and count windows: no result lost or doubled (p=${p})`, async () => {
      const progress = { checkpoints: new Set<number>() };
      const env = StreamExecutionEnvironment.createLocalEnvironment(p, nats.url).enableCheckpointing(50);
      const failure = { at: undefined as number | undefined };
      const events = env
        .fromSource(
          new FailingOnceSource(progress, failure),
          WatermarkStrategy.forBoundedOutOfOrderness<Event>(50)
            .withTimestampAssigner((e) => e.ts)
            .withAutoWatermarkInterval(20),
        )
        .uid('events');
      events
        .keyBy((e) => e.user)
        .window(EventTimeSessionWindows.withGap(GAP))
        .process<string>({
          process(user, ctx, elements, out) {
            const sum = elements.reduce((s, e) => s + e.amount, 0);
            out.collect(`${user} ${ctx.window.start}-${ctx.window.end} n=${elements.length} sum=${sum}`);
          },
        })
        .uid('sessions')
        .sinkTo(new CountingFileSink(join(dir, `sessions-${p}`), progress))
        .uid('sessions-out');
      events
        .keyBy((e) => e.user)
        .countWindow(5, 2)
        .process<string>({
          process(user, _ctx, elements, out) {
            const last = elements[elements.length - 1]!;
            // Index of the last element among the key's elements: i / USERS + 1.
            const n = Math.floor(last.i / USERS) + 1;
            out.collect(`${user} #${n} ${elements.reduce((s, e) => s + e.amount, 0)}`);
          },
        })
        .uid('counts')
        .sinkTo(new CountingFileSink(join(dir, `counts-${p}`), progress))
        .uid('counts-out');

      await env.execute(`windows restart p=${p}`);
      expect(failure.at, 'the injected failure happened after checkpoints completed').toBeDefined();

      const all = Array.from({ length: COUNT }, (_, i) => event(i));
      const sessions = await lines(join(dir, `sessions-${p}`));
      const expectedSessions = referenceSessions(all);
      expect(expectedSessions.length).toBeGreaterThan(USERS * 10);
      expect(sessions).toEqual(expectedSessions);
      expect(await lines(join(dir, `counts-${p}`))).toEqual(referenceCounts(all));
    }, 90_000);
  }
});
