/**
 * Names of the per-vertex gauges a stream task reports with its accumulators (`<vertex name> <suffix>`):
 * time spent backpressured (summed over subtasks) and the event time reached (the JobMaster takes the
 * minimum over subtasks).
 */
export const BACKPRESSURED_MS = 'backpressured ms';
export const WATERMARK = 'watermark';
/** A watermark gauge's value while a subtask has none yet. */
export const NO_WATERMARK = Number.MIN_SAFE_INTEGER;
