/**
 * What travels on a data channel between two subtasks: records, watermarks and the end-of-partition
 * marker, in order. A checkpoint barrier (kind 3) is reserved for the checkpointing work; a decoder meeting
 * a kind it does not know fails with a clear error rather than skipping it.
 */
export const ElementKind = { Record: 0, Watermark: 1, EndOfPartition: 2 } as const;

export type ElementKind = (typeof ElementKind)[keyof typeof ElementKind];

export interface RecordElement {
  kind: 0;
  value: unknown;
  /** Event time in ms, if the record has one. */
  timestamp: number | undefined;
}

export interface WatermarkElement {
  kind: 1;
  /** No record with an event time at or below this will follow on this channel. */
  watermark: number;
}

export interface EndOfPartitionElement {
  kind: 2;
}

export type StreamElement = RecordElement | WatermarkElement | EndOfPartitionElement;

/** A record element; `timestamp` is optional. */
export function record(value: unknown, timestamp?: number): RecordElement {
  return { kind: ElementKind.Record, value, timestamp };
}

export function watermark(value: number): WatermarkElement {
  return { kind: ElementKind.Watermark, watermark: value };
}

export const END_OF_PARTITION: EndOfPartitionElement = Object.freeze({ kind: ElementKind.EndOfPartition });
