import { inspect } from 'node:util';
import type { ConnectorContext, Sink, SinkWriter } from '../connector.js';

export function formatRecord(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return inspect(value, { depth: 4, breakLength: Number.POSITIVE_INFINITY });
  }
}

/** Writes each record to the TaskManager's stdout; prefixed `<subtask>> ` when parallel, as Flink. */
export class PrintSink<T> implements Sink<T> {
  readonly name = 'Print to Std. Out';

  constructor(readonly prefix?: string) {}

  createWriter(ctx: ConnectorContext): SinkWriter<T> {
    const parts: string[] = [];
    if (this.prefix) parts.push(this.prefix);
    if (ctx.parallelism > 1) parts.push(`${ctx.subtaskIndex + 1}`);
    const lead = parts.length > 0 ? `${parts.join(':')}> ` : '';
    return {
      write: (value) => {
        process.stdout.write(`${lead}${formatRecord(value)}\n`);
      },
    };
  }
}
