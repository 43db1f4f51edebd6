/**
 * How a stream gets event time: a timestamp per record and watermarks that say "no record older than
 * this will come" (Flink's WatermarkStrategy). Bounded out-of-orderness emits
 * `maxTimestampSeen - maxOutOfOrderness - 1`, periodically (`autoWatermarkIntervalMs`, default 200 ms)
 * and when the input ends.
 */
export type TimestampAssigner<T> = (element: T, recordTimestamp: number | undefined) => number;

export class WatermarkStrategy<T> {
  private constructor(
    readonly kind: 'bounded-out-of-orderness' | 'none',
    readonly maxOutOfOrdernessMs: number,
    readonly timestampAssigner: TimestampAssigner<T> | undefined,
    readonly autoWatermarkIntervalMs: number,
  ) {}

  static forBoundedOutOfOrderness<T>(maxOutOfOrdernessMs: number): WatermarkStrategy<T> {
    if (!(maxOutOfOrdernessMs >= 0)) throw new RangeError('maxOutOfOrderness must be >= 0 ms');
    return new WatermarkStrategy<T>('bounded-out-of-orderness', maxOutOfOrdernessMs, undefined, 200);
  }

  static forMonotonousTimestamps<T>(): WatermarkStrategy<T> {
    return WatermarkStrategy.forBoundedOutOfOrderness<T>(0);
  }

  static noWatermarks<T>(): WatermarkStrategy<T> {
    return new WatermarkStrategy<T>('none', 0, undefined, 200);
  }

  withTimestampAssigner(assigner: TimestampAssigner<T>): WatermarkStrategy<T> {
    return new WatermarkStrategy<T>(
      this.kind,
      this.maxOutOfOrdernessMs,
      assigner,
      this.autoWatermarkIntervalMs,
    );
  }

  withAutoWatermarkInterval(intervalMs: number): WatermarkStrategy<T> {
    return new WatermarkStrategy<T>(this.kind, this.maxOutOfOrdernessMs, this.timestampAssigner, intervalMs);
  }
}
