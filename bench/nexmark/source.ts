/**
 * The Nexmark source: the first `events` events of bench/nexmark/generator.ts's stream, with event time and
 * watermarks, as a replayable source inside the job.
 *
 * Promises:
 * - It is Sluice's GeneratorSource over `nexmarkEvent`: subtask s of p generates the event numbers
 *   n ≡ s (mod p); a checkpoint stores each subtask's next number, so a restore at any parallelism resumes
 *   exactly after the last event emitted, and the events are the same on every run (the generator is a
 *   pure function of the event number).
 * - Event time is the event's `dateTime`; the watermark is bounded out-of-orderness, 4 s by default (the
 *   Nexmark DDL's `WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND`). Each subtask's events come
 *   in event-time order, so nothing is late at any parallelism.
 *
 * The Sluice API comes in as a parameter (`NexmarkApi`): the job passes the `sluice` module it was bundled
 * with, the test passes `src/api` — one set of classes per job either way.
 */
import type * as SluiceApi from 'sluice';
import type { DataStream, StreamExecutionEnvironment } from 'sluice';
import { eventTime, type NexmarkConfig, type NexmarkEvent, nexmarkEvent } from './generator.js';

export type NexmarkApi = Pick<
  typeof SluiceApi,
  | 'GeneratorSource'
  | 'WatermarkStrategy'
  | 'SlidingEventTimeWindows'
  | 'TumblingEventTimeWindows'
  | 'EventTimeSessionWindows'
>;

/** Nexmark's watermark delay (the DDL's `dateTime - INTERVAL '4' SECOND`). */
export const WATERMARK_DELAY_MS = 4_000;

export interface NexmarkSourceOptions {
  /** How many events (numbers 0 … events - 1). */
  events: number;
  config: NexmarkConfig;
  /** Bounded out-of-orderness of the watermark; default WATERMARK_DELAY_MS. */
  maxOutOfOrdernessMs?: number;
}

/** The Nexmark event stream with event time and watermarks. */
export function nexmarkSource(
  api: NexmarkApi,
  env: StreamExecutionEnvironment,
  options: NexmarkSourceOptions,
): DataStream<NexmarkEvent> {
  const { config } = options;
  const watermarks = api.WatermarkStrategy.forBoundedOutOfOrderness<NexmarkEvent>(
    options.maxOutOfOrdernessMs ?? WATERMARK_DELAY_MS,
  ).withTimestampAssigner((e) => eventTime(e));
  return env
    .fromSource(
      new api.GeneratorSource(options.events, (n) => nexmarkEvent(n, config)),
      watermarks,
      'Source: Nexmark',
    )
    .uid('nexmark-source');
}
