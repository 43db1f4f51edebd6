import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Source, SourceContext } from '../connector.js';

/**
 * The lines of a text file (UTF-8, without line endings). Subtask s of p reads the lines whose number
 * n satisfies n ≡ s (mod p), so each line is read once at any parallelism.
 */
export class TextFileSource implements Source<string> {
  readonly name: string;

  constructor(readonly path: string) {
    this.name = `File Source (${path})`;
  }

  async run(ctx: SourceContext<string>): Promise<void> {
    try {
      await access(this.path);
    } catch {
      throw new Error(`input file not found: ${this.path}`);
    }
    const lines = createInterface({
      input: createReadStream(this.path, { encoding: 'utf8' }),
      crlfDelay: Infinity,
    });
    let n = 0;
    try {
      for await (const line of lines) {
        if (n++ % ctx.parallelism !== ctx.subtaskIndex) continue;
        ctx.collect(line);
        if (!ctx.writable) await ctx.ready();
        ctx.signal.throwIfAborted();
      }
    } finally {
      lines.close();
    }
  }
}
