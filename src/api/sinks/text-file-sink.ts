import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';
import { formatRecord } from './print-sink.js';

/**
 * Writes records as lines of text. At parallelism 1 to `path`; otherwise subtask s writes
 * `path/part-<s>`. Each subtask writes to an in-progress file (`.<name>.inprogress`) and renames it into
 * place when its input ends, so a reader never sees a half-written result file.
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
