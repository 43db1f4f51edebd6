/**
 * Checkpoint positions of the built-in sources: a run interrupted right after a snapshot, then restored
 * from it at the same and at other parallelisms, emits every record exactly once over both runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CollectionSource,
  GeneratorSource,
  JetStreamSource,
  type Source,
  TextFileSource,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { sorted } from '../api/recording-sink.js';
import { emitted, type RunOptions, runAttempt, runSubtask, states } from './checkpoint-harness.js';
import { createStream, publishJson } from './jetstream-helpers.js';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/**
 * Parallelism 2 interrupted at different points per subtask, then restored at `to`: checks that both
 * runs together emit `all` exactly once, and that restored subtask j emits only its share (`key(v) mod
 * to = j`).
 */
async function checkRestore<T>(
  source: Source<T>,
  all: T[],
  key: (value: T) => number,
  to: number,
  options: Partial<RunOptions>,
  cut: [number, number],
): Promise<void> {
  const first = await runAttempt(source, 2, undefined, (s) => cut[s], options);
  expect(first.map((r) => r.ended)).toEqual([false, false]);
  if (options.where === 'loop') {
    // At the first chance after the cut.
    first.forEach((r, s) => {
      expect(r.emitted.length).toBeGreaterThanOrEqual(cut[s]!);
    });
  } else {
    expect(first.map((r) => r.emitted.length)).toEqual(cut);
  }
  // Subtask s of 2 emitted its share only.
  first.forEach((r, s) => {
    expect(r.emitted.every((v) => key(v) % 2 === s)).toBe(true);
  });
  const second = await runAttempt(source, to, states(first), () => undefined, options);
  expect(second.every((r) => r.ended)).toBe(true);
  second.forEach((r, j) => {
    expect(r.emitted.every((v) => key(v) % to === j)).toBe(true);
  });
  const together = [...emitted(first), ...emitted(second)].map(key);
  expect(sorted(together)).toEqual(sorted(all.map(key)));
}

describe('GeneratorSource checkpoints', () => {
  const COUNT = 20_000;
  const all = range(0, COUNT);
  const source = new GeneratorSource(COUNT, (i) => i);

  for (const to of [2, 3, 1]) {
    for (const where of ['ready', 'loop'] as const) {
      it(`restores 2 → ${to}, snapshot taken in ${where === 'ready' ? 'ready()' : 'the run loop'}`, async () => {
        await checkRestore(source, all, (i) => i, to, { where }, [3_000, 7_000]);
      });
    }
  }

  it('same parallelism: each subtask resumes at its own next index', async () => {
    const [run] = await runAttempt(source, 2, undefined, (s) => (s === 1 ? 10 : undefined));
    const first = await runAttempt(source, 2, undefined, (s) => [4, 10][s]);
    expect(first.map((r) => r.state)).toEqual([
      { parallelism: 2, subtask: 0, next: 8 },
      { parallelism: 2, subtask: 1, next: 21 },
    ]);
    const second = await runSubtask(source, { parallelism: 2, subtask: 1, restored: states(first) });
    expect(second.emitted.slice(0, 3)).toEqual([21, 23, 25]);
    expect(run!.emitted).toHaveLength(COUNT / 2);
  });

  it('restored twice with a rescale in between (2 → 3, interrupted again, → 1): still exactly once', async () => {
    const first = await runAttempt(source, 2, undefined, (s) => [1_000, 9_000][s]);
    // Subtask 0 of 3 is behind what old subtask 1 emitted: its position keeps the old ones.
    const second = await runAttempt(source, 3, states(first), (s) => [700, 1_500, 2_000][s], {
      where: 'loop',
    });
    expect(second.map((r) => r.ended)).toEqual([false, false, false]);
    expect((second[0]!.state as { before?: unknown }).before).toBeDefined();
    const third = await runAttempt(source, 1, states(second), () => undefined);
    const together = [...emitted(first), ...emitted(second), ...emitted(third)];
    expect(together).toHaveLength(COUNT);
    expect(sorted(together)).toEqual(sorted(all));
  });

  it('an old subtask missing from the restored state counts as having emitted nothing', async () => {
    const first = await runAttempt(source, 2, undefined, (s) => [500, 800][s]);
    const restored = [first[0]!.state, undefined];
    const second = await runAttempt(source, 3, restored, () => undefined);
    const together = [...first[0]!.emitted, ...emitted(second)];
    expect(sorted(together)).toEqual(sorted(all));
  });

  it('keeps rate limiting after a restore', async () => {
    const limited = new GeneratorSource(60, (i) => i, { ratePerSecond: 200 });
    const first = await runAttempt(limited, 1, undefined, () => 20);
    const started = Date.now();
    const second = await runAttempt(limited, 1, states(first), () => undefined);
    // 40 records at 200/s: about 200 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect([...emitted(first), ...emitted(second)]).toEqual(range(0, 60));
  });

  it('refuses a state that is not a position', async () => {
    await expect(
      runSubtask(source, { parallelism: 1, subtask: 0, restored: [{ offset: 3 }] }),
    ).rejects.toThrow('cannot restore from the checkpointed state');
  });
});

describe('CollectionSource checkpoints', () => {
  it('resumes at the next element', async () => {
    const elements = range(0, 2_500).map((i) => `e${i}`);
    const source = new CollectionSource(elements);
    const first = await runSubtask(source, { parallelism: 1, subtask: 0, snapshotAfter: 1_234 });
    expect(first.state).toEqual({ next: 1_234 });
    const second = await runSubtask(source, { parallelism: 1, subtask: 0, restored: [first.state] });
    expect([...first.emitted, ...second.emitted]).toEqual(elements);
  });
});

describe('TextFileSource checkpoints', () => {
  let dir: string;
  let path: string;
  // Line n is `line <n> …`; endings \n, \r\n and \r; some lines empty (not after a \r: that would
  // make a \r\n), some not ASCII.
  const lines = range(0, 3_000).map((n) =>
    n % 97 === 5 && n % 3 !== 0 ? '' : `line ${n} ${'é€😀'.repeat(n % 4)}`,
  );
  const endings = ['\n', '\r\n', '\r'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-text-source-'));
    path = join(dir, 'input.txt');
    // The last line has no ending.
    await writeFile(path, lines.map((l, n) => (n === lines.length - 1 ? l : l + endings[n % 3])).join(''));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const source = () => new TextFileSource(path);
  const numbered = () => lines.map((line, n) => ({ line, n }));

  it('reads every line, with its endings removed', async () => {
    const [run] = await runAttempt(source(), 1, undefined, () => undefined);
    expect(run!.emitted).toEqual(lines);
    // \r\n and \r at a chunk boundary: a tiny file read whole either way.
    const small = join(dir, 'small.txt');
    await writeFile(small, 'a\r\n\r\nb\rc\n\nd\r');
    const [s] = await runAttempt(new TextFileSource(small), 1, undefined, () => undefined);
    expect(s!.emitted).toEqual(['a', '', 'b', 'c', '', 'd']);
  });

  for (const to of [2, 3, 1]) {
    it(`restores 2 → ${to} from line numbers and byte offsets`, async () => {
      // Records are lines; find their numbers by content (line n is unique but for the empty ones).
      const first = await runAttempt(source(), 2, undefined, (s) => [400, 1_100][s]);
      const second = await runAttempt(source(), to, states(first), () => undefined);
      const state0 = first[0]!.state as { next: number; offset: number };
      // Lines 0, 2, …, 798 emitted: the next line to read is 799 (subtask 1's).
      expect(state0.next).toBe(799);
      expect(state0.offset).toBeGreaterThan(0);
      const all = [...emitted(first), ...emitted(second)];
      expect(all).toHaveLength(lines.length);
      expect(sorted(all)).toEqual(sorted(lines));
      // Each restored subtask emitted its share of line numbers, in order.
      second.forEach((r, j) => {
        const expected = numbered()
          .filter(({ n }) => n % to === j)
          .filter(({ n }) => (n % 2 === 0 ? n >= 800 : n >= 2_201))
          .map(({ line }) => line);
        expect(r.emitted).toEqual(expected);
      });
    });
  }
});

describe('JetStreamSource checkpoints', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  const COUNT = 600;
  interface Rec {
    i: number;
  }
  const all = range(0, COUNT).map((i) => ({ i }));
  // Record i has stream sequence i + 1.
  const seq = (r: Rec) => r.i + 1;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await createStream(nc, 'cp', ['cp.>']);
    await publishJson<Rec>(nc, all, (r) => (r.i % 3 === 0 ? 'cp.a' : 'cp.b'));
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const source = () => new JetStreamSource<Rec>({ stream: 'cp', batchSize: 16 });

  for (const to of [2, 3, 1]) {
    for (const where of ['ready', 'loop'] as const) {
      it(`restores 2 → ${to}, snapshot taken in ${where === 'ready' ? 'ready()' : 'the fetch loop'}`, async () => {
        await checkRestore(source(), all, seq, to, { where, nats: nc }, [60, 200]);
      });
    }
  }

  it('stores the sequence after the last one read, and a restored subtask starts its consumer there', async () => {
    const first = await runAttempt(source(), 2, undefined, (s) => [10, 30][s], { nats: nc });
    // Subtask 0 emitted sequences 2, 4, …, 20 (records 1, 3, …, 19); subtask 1 sequences 1 … 59.
    expect(first.map((r) => r.emitted.map(seq).at(-1))).toEqual([20, 59]);
    expect(first.map((r) => (r.state as { next: number }).next)).toEqual([21, 60]);
    const second = await runSubtask(source(), {
      parallelism: 2,
      subtask: 0,
      restored: states(first),
      nats: nc,
    });
    expect(second.emitted.map(seq).slice(0, 3)).toEqual([22, 24, 26]);
  });

  it('with a subject filter and rescaling: exactly the filtered messages once', async () => {
    const filtered = new JetStreamSource<Rec>({ stream: 'cp', subject: 'cp.a', batchSize: 8 });
    const expected = all.filter((r) => r.i % 3 === 0);
    await checkRestore(filtered, expected, seq, 3, { nats: nc }, [20, 40]);
  });

  it("reports its backlog (its share of the consumer's num_pending), falling to 0 at the end", async () => {
    const [run] = await runAttempt(source(), 1, undefined, () => undefined, { nats: nc });
    const pending = run!.pending;
    expect(run!.emitted).toHaveLength(COUNT);
    // One report per message read: COUNT - 1 left after the first, none after the last.
    expect(pending).toHaveLength(COUNT);
    expect(pending[0]).toBe(COUNT - 1);
    expect(pending.at(-1)).toBe(0);
    expect(pending.every((p, i) => i === 0 || p <= pending[i - 1]!)).toBe(true);
    // At parallelism 2 each subtask reads the whole stream and owns half of what is left.
    const two = await runAttempt(source(), 2, undefined, () => undefined, { nats: nc });
    expect(two.map((r) => r.pending[0])).toEqual([(COUNT - 1) / 2, (COUNT - 1) / 2]);
  });

  it('restored twice with a rescale in between (2 → 3 → 1)', async () => {
    const first = await runAttempt(source(), 2, undefined, (s) => [20, 250][s], { nats: nc });
    const second = await runAttempt(source(), 3, states(first), (s) => [30, 60, 90][s], { nats: nc });
    const third = await runAttempt(source(), 1, states(second), () => undefined, { nats: nc });
    const together = [...emitted(first), ...emitted(second), ...emitted(third)].map(seq);
    expect(together).toHaveLength(COUNT);
    expect(sorted(together)).toEqual(sorted(range(1, COUNT + 1)));
  });
});
