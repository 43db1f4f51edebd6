/**
 * Names of the per-vertex gauges a stream task reports with its accumulators (`<vertex name> <suffix>`):
 * time spent backpressured and time spent busy (both summed over subtasks), the records a source still has
 * to read (its backlog, summed over subtasks), and the event time reached (the JobMaster takes the minimum
 * over subtasks).
 */
export const BACKPRESSURED_MS = 'backpressured ms';
/**
 * Time the subtasks spent processing (Flink's busy time: neither idle, waiting for input, nor backpressured,
 * waiting for output). A vertex's busy ms per second over its subtasks' wall time is its busy fraction.
 */
export const BUSY_MS = 'busy ms';
/** A source's backlog: records it has not read yet (JetStream: the consumer's `num_pending`). */
export const PENDING_RECORDS = 'pending records';
export const RECORDS_IN = 'records in';
export const RECORDS_OUT = 'records out';
export const WATERMARK = 'watermark';
/** A watermark gauge's value while a subtask has none yet. */
export const NO_WATERMARK = Number.MIN_SAFE_INTEGER;
