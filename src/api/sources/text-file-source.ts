import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Source, SourceContext } from '../connector.js';
import { SplitReader } from './split-positions.js';

/**
 * The lines of a text file (UTF-8, without line endings: `\n`, `\r\n` or `\r`). Subtask s of p reads the
 * lines whose number n satisfies n ≡ s (mod p), so each line is read once at any parallelism.
 *
 * Checkpoints store each subtask's position (`{ parallelism, subtask, next, offset }`: the number of the
 * line after the last one it read, and that line's byte offset). A restored subtask seeks to the offset
 * and emits, at any parallelism, exactly the lines of its share that were not emitted before. The file must
 * not change in between.
 */
export class TextFileSource implements Source<string> {
  readonly name: string;

  constructor(readonly path: string) {
    this.name = `File Source (${path})`;
  }

  async run(ctx: SourceContext<string>): Promise<void> {
    const position = new SplitReader(ctx.parallelism, ctx.subtaskIndex, 0, ctx.restoredState, this.name);
    if (position.next > 0 && position.offset === undefined) {
      throw new Error(`${this.name}: cannot restore: the checkpointed position has no byte offset`);
    }
    position.offset ??= 0;
    ctx.onCheckpoint(() => position.snapshot());
    try {
      await access(this.path);
    } catch {
      throw new Error(`input file not found: ${this.path}`);
    }
    for await (const { line, end } of readLines(this.path, position.offset)) {
      const n = position.next;
      // Set before any await: a snapshot there covers this line.
      position.next = n + 1;
      position.offset = end;
      if (n % ctx.parallelism !== ctx.subtaskIndex || position.emittedBefore(n)) continue;
      ctx.collect(line);
      if (!ctx.writable) await ctx.ready();
      ctx.signal.throwIfAborted();
    }
  }
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * The lines of the file from byte `start` (a line's start), each with the byte offset after its line
 * ending. Lines end at `\n`, `\r\n` or `\r` (as node:readline with `crlfDelay: Infinity`); a last line
 * without an ending counts, an empty rest after the last ending does not.
 */
async function* readLines(path: string, start: number): AsyncGenerator<{ line: string; end: number }> {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const input = createReadStream(path, { start });
  /** The file offset of `buf[0]`. */
  let base = start;
  let buf: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let pos = 0;
      let cr = buf.indexOf(CR, pos);
      let lf = buf.indexOf(LF, pos);
      for (;;) {
        if (cr !== -1 && cr < pos) cr = buf.indexOf(CR, pos);
        if (lf !== -1 && lf < pos) lf = buf.indexOf(LF, pos);
        const at = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
        if (at === -1) break;
        let after = at + 1;
        if (at === cr) {
          // `\r\n` is one ending: wait for the next byte when the chunk ends with `\r`.
          if (at + 1 === buf.length) break;
          if (buf[at + 1] === LF) after = at + 2;
        }
        yield { line: decoder.decode(buf.subarray(pos, at)), end: base + after };
        pos = after;
      }
      buf = buf.subarray(pos);
      base += pos;
    }
    if (buf.length > 0) {
      const ending = buf[buf.length - 1] === CR ? 1 : 0;
      yield { line: decoder.decode(buf.subarray(0, buf.length - ending)), end: base + buf.length };
    }
  } finally {
    input.destroy();
  }
}
