/**
 * TextFileSink with checkpointing: in-progress part files, committed when their checkpoint completes.
 */
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/log.js';
import { type ConnectorContext, type SinkWriter, TextFileSink } from '../../src/index.js';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
const stored = (state: unknown): unknown => unpack(pack(state));

describe('TextFileSink with checkpointing (exactly-once)', () => {
  let root: string;
  let dirs = 0;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'sluice-file-sink-'));
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const ctx = (over: Partial<ConnectorContext> = {}): ConnectorContext => ({
    jobId: 'job',
    clusterId: 'test',
    subtaskIndex: 0,
    parallelism: 1,
    log: silentLogger(),
    signal: new AbortController().signal,
    nats: undefined as never,
    checkpointing: true,
    restoredState: undefined,
    ...over,
  });
  const fresh = () => join(root, `out${++dirs}`);
  const write = (w: SinkWriter<number>, from: number, to: number) => {
    for (const i of range(from, to)) w.write(i, undefined);
  };
  const lines = (from: number, to: number) =>
    range(from, to)
      .map((i) => `${i}\n`)
      .join('');
  const visible = async (dir: string) => (await readdir(dir)).filter((f) => !f.startsWith('.')).sort();
  const hidden = async (dir: string) => (await readdir(dir)).filter((f) => f.startsWith('.')).sort();

  it('renames a checkpoint’s part file into place only when the checkpoint completes', async () => {
    const dir = fresh();
    const w = await new TextFileSink<number>(dir).createWriter(ctx({ subtaskIndex: 1, parallelism: 2 }));
    write(w, 0, 3);
    const s1 = w.snapshotState!(1) as { files: Array<{ target: string; length: number }> };
    expect(s1.files.map((f) => [f.target, f.length])).toEqual([['part-1-1', 6]]);
    write(w, 3, 5);
    expect(await visible(dir)).toEqual([]);
    await w.notifyCheckpointComplete!(1);
    expect(await visible(dir)).toEqual(['part-1-1']);
    expect(await readFile(join(dir, 'part-1-1'), 'utf8')).toBe(lines(0, 3));
    w.snapshotState!(2);
    write(w, 5, 6);
    await w.finish!();
    expect(await visible(dir)).toEqual(['part-1-1', 'part-1-2', 'part-1-final']);
    expect(await readFile(join(dir, 'part-1-2'), 'utf8')).toBe(lines(3, 5));
    expect(await readFile(join(dir, 'part-1-final'), 'utf8')).toBe(lines(5, 6));
    expect(await hidden(dir)).toEqual([]);
    await w.close!();
  });

  it('close without finish drops what no checkpoint covers; a restore commits the pending files once, truncated', async () => {
    const dir = fresh();
    const sink = new TextFileSink<number>(dir);
    const w = await sink.createWriter(ctx());
    write(w, 0, 1_000);
    w.snapshotState!(1);
    write(w, 1_000, 1_500);
    const state = stored(w.snapshotState!(2)) as { files: Array<{ inProgress: string }> };
    expect(state.files).toHaveLength(2);
    write(w, 1_500, 1_600);
    // Fails before checkpoints 1 and 2 complete: their files stay (hidden), the rest is gone.
    await w.close!();
    expect(await visible(dir)).toEqual([]);
    expect(await hidden(dir)).toEqual(state.files.map((f) => f.inProgress).sort());
    // Bytes after the checkpoint in a pending file (not possible here, but a restore must not keep them).
    await appendFile(join(dir, state.files[1]!.inProgress), 'garbage\n');
    // An in-progress file of an earlier attempt, not in the state: deleted.
    await writeFile(join(dir, '.part-0-dead-0.inprogress'), 'lost\n');

    const r1 = await sink.createWriter(ctx({ restoredState: [state] }));
    expect(await visible(dir)).toEqual(['part-0-1', 'part-0-2']);
    expect(await readFile(join(dir, 'part-0-1'), 'utf8')).toBe(lines(0, 1_000));
    expect(await readFile(join(dir, 'part-0-2'), 'utf8')).toBe(lines(1_000, 1_500));
    expect(await hidden(dir)).toEqual([]);
    await r1.close!();
    // The same restore again: already committed, nothing changes.
    const r2 = await sink.createWriter(ctx({ restoredState: [state] }));
    write(r2, 1_500, 1_600);
    await r2.finish!();
    expect(await visible(dir)).toEqual(['part-0-1', 'part-0-2', 'part-0-final']);
    expect(await readFile(join(dir, 'part-0-2'), 'utf8')).toBe(lines(1_000, 1_500));
    expect(await readFile(join(dir, 'part-0-final'), 'utf8')).toBe(lines(1_500, 1_600));
    await r2.close!();
  });

  it('rescaled restore (3 → 2): new subtask j commits old subtasks k ≡ j (mod 2) and cleans their leftovers', async () => {
    const dir = fresh();
    const sink = new TextFileSink<number>(dir);
    const old = await Promise.all(
      range(0, 3).map((k) => sink.createWriter(ctx({ subtaskIndex: k, parallelism: 3 }))),
    );
    old.forEach((w, k) => {
      write(w, k * 10, k * 10 + 5);
    });
    const states = old.map((w) => stored(w.snapshotState!(3)));
    old.forEach((w, k) => {
      write(w, k * 10 + 5, k * 10 + 8);
    });
    // A crash: the writers are not closed, their files after checkpoint 3 stay behind.
    expect(await hidden(dir)).toHaveLength(6);
    await sink.createWriter(ctx({ subtaskIndex: 1, parallelism: 2, restoredState: states }));
    expect(await visible(dir)).toEqual(['part-1-3']);
    expect(await hidden(dir)).toHaveLength(4);
    await sink.createWriter(ctx({ subtaskIndex: 0, parallelism: 2, restoredState: states }));
    expect(await visible(dir)).toEqual(['part-0-3', 'part-1-3', 'part-2-3']);
    expect(await hidden(dir)).toEqual([]);
    for (const k of [0, 1, 2]) {
      expect(await readFile(join(dir, `part-${k}-3`), 'utf8')).toBe(lines(k * 10, k * 10 + 5));
    }
    await Promise.all(old.map((w) => w.close!()));
  });

  it('fails a restore whose pending file is gone and was never committed', async () => {
    const dir = fresh();
    const sink = new TextFileSink<number>(dir);
    const w = await sink.createWriter(ctx());
    write(w, 0, 2);
    const state = stored(w.snapshotState!(1)) as { files: Array<{ inProgress: string }> };
    await w.close!();
    await rm(join(dir, state.files[0]!.inProgress));
    await expect(sink.createWriter(ctx({ restoredState: [state] }))).rejects.toThrow('is gone');
  });

  it('without checkpointing: unchanged (one file at parallelism 1, renamed at the end)', async () => {
    const path = join(fresh(), 'result.txt');
    const w = await new TextFileSink<number>(path).createWriter(ctx({ checkpointing: false }));
    expect(w.snapshotState).toBeUndefined();
    write(w, 0, 3);
    await w.finish!();
    expect(await readFile(path, 'utf8')).toBe(lines(0, 3));
  });
});
