import { randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, openSync, type WriteStream, writeSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';
import { formatRecord } from './print-sink.js';

/**
 * Writes records as lines of text.
 *
 * Without checkpointing: at parallelism 1 to `path`; otherwise subtask s writes `path/part-<s>`. Each
 * subtask writes to an in-progress file (`.<name>.inprogress`) and renames it into place when its input
 * ends, so a reader never sees a half-written result file.
 *
 * With checkpointing (exactly-once): `path` is a directory at any parallelism. Subtask s writes what comes
 * between two checkpoints to a hidden in-progress file; at a checkpoint the file is closed (synced) and
 * recorded in the checkpoint with its length, and once the checkpoint completes it is renamed to
 * `part-<s>-<checkpointId>`. When the input ends, the rest goes to `part-<s>-final`. After a restore, the
 * files the checkpoint had pending are committed (truncated to their recorded length first) and the other
 * in-progress files are deleted: their lines are written again.
 */
export class TextFileSink<T> implements Sink<T> {
  readonly name: string;

  constructor(
    readonly path: string,
    readonly format: (value: T) => string = formatRecord,
  ) {
    this.name = `File Sink (${path})`;
  }

  async createWriter(ctx: ConnectorContext): Promise<SinkWriter<T>> {
    if (ctx.restoredState !== undefined || ctx.checkpointing) {
      await mkdir(this.path, { recursive: true });
      await recover(this.path, ctx);
    }
    if (ctx.checkpointing) return new CheckpointedFileWriter(this.path, ctx.subtaskIndex, this.format);
    const target = ctx.parallelism === 1 ? this.path : join(this.path, `part-${ctx.subtaskIndex}`);
    await mkdir(dirname(target), { recursive: true });
    const inProgress = join(dirname(target), `.${target.split('/').pop()}.inprogress`);
    const stream: WriteStream = createWriteStream(inProgress, { encoding: 'utf8' });
    let failure: Error | undefined;
    stream.on('error', (err) => {
      failure = err;
    });
    const format = this.format;
    return {
      write(value) {
        if (failure) throw failure;
        stream.write(`${format(value)}\n`);
      },
      get writable() {
        return !stream.writableNeedDrain;
      },
      ready: () =>
        new Promise<void>((resolve, reject) => {
          if (failure) return reject(failure);
          if (!stream.writableNeedDrain) return resolve();
          stream.once('drain', resolve);
        }),
      finish: async () => {
        await new Promise<void>((resolve, reject) =>
          stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
        );
        if (failure) throw failure;
        await rename(inProgress, target);
      },
      close: async () => {
        if (!stream.closed) stream.destroy();
        await rm(inProgress, { force: true });
      },
    };
  }
}

/** A file written between two checkpoints, to be committed when the later one completes. */
export interface PendingPartFile {
  checkpointId: number;
  /** The in-progress file's name in the sink's directory. */
  inProgress: string;
  /** Its bytes at the checkpoint. */
  length: number;
  /** Its name once committed. */
  target: string;
  /**
   * The directory it was written in (absolute), when it differs from the sink's: a job resumed from a
   * savepoint with another output path still commits its predecessor's pending files where they are.
   */
  dir?: string;
}

/** What a checkpointed writer stores: its files not yet committed, in order. */
export interface TextFileSinkState {
  files: PendingPartFile[];
}

/** Written lines are kept up to this many bytes before a (synchronous) write to the file. */
const FLUSH_BYTES = 64 * 1024;
const IN_PROGRESS = /^\.part-(\d+)-.*\.inprogress$/;

class CheckpointedFileWriter<T> implements SinkWriter<T> {
  readonly #dir: string;
  readonly #subtask: number;
  readonly #format: (value: T) => string;
  /** Distinguishes this writer's in-progress files from those of earlier attempts. */
  readonly #token = randomBytes(4).toString('hex');
  #files = 0;
  /** The current in-progress file (opened at the first write after a checkpoint). */
  #current: { name: string; fd: number; length: number } | undefined;
  #lines: string[] = [];
  #buffered = 0;
  #pending: PendingPartFile[] = [];
  /** Commits run one after the other. */
  #commits: Promise<void> = Promise.resolve();

  constructor(dir: string, subtask: number, format: (value: T) => string) {
    this.#dir = dir;
    this.#subtask = subtask;
    this.#format = format;
  }

  write(value: T): void {
    const line = `${this.#format(value)}\n`;
    this.#current ??= this.#open();
    this.#lines.push(line);
    this.#buffered += line.length;
    if (this.#buffered >= FLUSH_BYTES) this.#flush();
  }

  snapshotState(checkpointId: number): TextFileSinkState {
    const file = this.#seal();
    if (file !== undefined) {
      this.#pending.push({
        checkpointId,
        ...file,
        target: `part-${this.#subtask}-${checkpointId}`,
        dir: resolve(this.#dir),
      });
    }
    return { files: [...this.#pending] };
  }

  notifyCheckpointComplete(checkpointId: number): Promise<void> {
    return this.#commit(checkpointId);
  }

  async finish(): Promise<void> {
    await this.#commit(Number.POSITIVE_INFINITY);
    const file = this.#seal();
    if (file !== undefined)
      await rename(join(this.#dir, file.inProgress), join(this.#dir, this.#finalName()));
  }

  /** Without finish: the lines since the last checkpoint are dropped (they are written again). */
  async close(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    this.#lines = [];
    this.#buffered = 0;
    if (current !== undefined) {
      closeSync(current.fd);
      await rm(join(this.#dir, current.name), { force: true });
    }
  }

  #finalName(): string {
    return `part-${this.#subtask}-final`;
  }

  #open(): { name: string; fd: number; length: number } {
    const name = `.part-${this.#subtask}-${this.#token}-${this.#files++}.inprogress`;
    return { name, fd: openSync(join(this.#dir, name), 'w'), length: 0 };
  }

  #flush(): void {
    const current = this.#current;
    if (current === undefined || this.#lines.length === 0) return;
    const data = Buffer.from(this.#lines.join(''), 'utf8');
    this.#lines = [];
    this.#buffered = 0;
    let done = 0;
    while (done < data.length) done += writeSync(current.fd, data, done);
    current.length += data.length;
  }

  /** Writes out, syncs and closes the current file: what a checkpoint then covers is on disk. */
  #seal(): { inProgress: string; length: number } | undefined {
    const current = this.#current;
    if (current === undefined) return undefined;
    this.#flush();
    fsyncSync(current.fd);
    closeSync(current.fd);
    this.#current = undefined;
    return { inProgress: current.name, length: current.length };
  }

  #commit(upTo: number): Promise<void> {
    const run = async () => {
      while (this.#pending.length > 0 && this.#pending[0]!.checkpointId <= upTo) {
        await commitFile(this.#dir, this.#pending[0]!);
        this.#pending.shift();
      }
    };
    this.#commits = this.#commits.then(run);
    return this.#commits;
  }
}

/**
 * Idempotent: truncates the in-progress file to its recorded length and renames it; a file renamed before
 * (a commit repeated after a restore) is left alone.
 */
async function commitFile(sinkDir: string, file: PendingPartFile): Promise<void> {
  const dir = typeof file.dir === 'string' ? file.dir : sinkDir;
  const from = join(dir, file.inProgress);
  const to = join(dir, file.target);
  try {
    await truncate(from, file.length);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (await exists(to)) return;
    throw new Error(
      `File sink: cannot commit ${to}: its in-progress file ${from} is gone (deleted from outside?)`,
    );
  }
  await rename(from, to);
}

/**
 * After a restore: commits what the old subtasks k ≡ this subtask (mod parallelism) had pending, and
 * deletes their other in-progress files (output after the checkpoint, to be written again).
 */
async function recover(dir: string, ctx: ConnectorContext): Promise<void> {
  const restored = ctx.restoredState ?? [];
  const referenced = new Set<string>();
  const mine: PendingPartFile[] = [];
  for (let k = 0; k < restored.length; k++) {
    const state = restored[k] as Partial<TextFileSinkState> | null | undefined;
    if (state === undefined || state === null) continue;
    if (typeof state !== 'object' || !Array.isArray(state.files) || !state.files.every(isPendingFile)) {
      throw new Error(`File sink: cannot restore from the checkpointed state of old subtask ${k}`);
    }
    for (const f of state.files) referenced.add(f.inProgress);
    if (k % ctx.parallelism === ctx.subtaskIndex) mine.push(...state.files);
  }
  for (const f of mine.sort((a, b) => a.checkpointId - b.checkpointId)) await commitFile(dir, f);
  if (ctx.restoredState === undefined) return;
  for (const name of await readdir(dir)) {
    const match = IN_PROGRESS.exec(name);
    if (match === null || referenced.has(name)) continue;
    if (Number(match[1]) % ctx.parallelism !== ctx.subtaskIndex) continue;
    await rm(join(dir, name), { force: true });
  }
}

function isPendingFile(f: unknown): f is PendingPartFile {
  const p = f as Partial<PendingPartFile> | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.checkpointId === 'number' &&
    typeof p.inProgress === 'string' &&
    IN_PROGRESS.test(p.inProgress) &&
    typeof p.target === 'string' &&
    /^part-[\w.-]+$/.test(p.target) &&
    Number.isSafeInteger(p.length) &&
    p.length! >= 0
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
