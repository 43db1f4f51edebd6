/**
 * What travels on a data channel between two subtasks: records, watermarks, checkpoint barriers and the
 * end-of-partition marker, in order. A decoder meeting a kind it does not know fails with a clear error
 * rather than skipping it.
 */
export const ElementKind = { Record: 0, Watermark: 1, EndOfPartition: 2, Barrier: 3 } as const;

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

/**
 * Checkpoint `checkpointId` cuts the stream here: what came before it on this channel belongs to the
 * checkpoint, what follows does not. `target` names where the checkpoint's state objects go.
 */
export interface BarrierElement {
  kind: 3;
  checkpointId: number;
  target: string;
}

export type StreamElement = RecordElement | WatermarkElement | EndOfPartitionElement | BarrierElement;

/** A record element; `timestamp` is optional. */
export function record(value: unknown, timestamp?: number): RecordElement {
  return { kind: ElementKind.Record, value, timestamp };
}

export function watermark(value: number): WatermarkElement {
  return { kind: ElementKind.Watermark, watermark: value };
}

export function barrier(checkpointId: number, target: string): BarrierElement {
  return { kind: ElementKind.Barrier, checkpointId, target };
}

export const END_OF_PARTITION: EndOfPartitionElement = Object.freeze({ kind: ElementKind.EndOfPartition });
