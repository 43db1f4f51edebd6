/**
 * Side outputs inside a task: the Output a chained operator writes to, extended so that records it emits
 * to an OutputTag reach the outgoing edges that read that tag (network edges leaving the chain at this
 * operator). Watermarks the operator emits go to its main output and to each of its side-output edges,
 * so a side-output stream has the operator's event time. Records emitted to a tag no edge reads are
 * dropped, as in Flink.
 */
import type { Output } from '../operators/operator.js';
import type { RecordWriter } from './record-writer.js';

export interface SideOutputWriter {
  tag: string;
  writer: RecordWriter;
}

export function withSideOutputs(main: Output<unknown>, side: readonly SideOutputWriter[]): Output<unknown> {
  if (side.length === 0) return main;
  const byTag = new Map<string, RecordWriter[]>();
  for (const { tag, writer } of side) {
    const list = byTag.get(tag);
    if (list) list.push(writer);
    else byTag.set(tag, [writer]);
  }
  return {
    collect: (value, timestamp) => main.collect(value, timestamp),
    emitWatermark: (wm) => {
      main.emitWatermark(wm);
      for (const s of side) s.writer.emitWatermark(wm);
    },
    sideOutput: (tag, value, timestamp) => {
      const writers = byTag.get(tag);
      if (writers) for (const w of writers) w.emit(value, timestamp);
    },
  };
}
