/**
 * DataStream, KeyedStream and WindowedStream: the typed surface a job is written against. Each call
 * records a Transformation in the environment; nothing runs until `execute()`.
 */

import { ErrorCode, SluiceError } from '../common/errors.js';
import type { Sink } from './connector.js';
import type {
  AggregateFunction,
  FilterFunction,
  FlatMapFunction,
  KeyedProcessFunction,
  KeySelector,
  MapFunction,
  ReduceFunction,
} from './functions.js';
import { OutputTag } from './output-tag.js';
import type { ProcessFunction } from './process-function.js';
import { CollectSink } from './sinks/collect-sink.js';
import { PrintSink } from './sinks/print-sink.js';
import type {
  Partitioning,
  StreamEnvironment,
  Transformation,
  TransformationSpec,
} from './transformation.js';
import type { WatermarkStrategy } from './watermarks.js';
import { checkWindowSpec } from './windowing/check-window-spec.js';
import { GlobalWindows } from './windowing/global-windows.js';
import { CountTrigger, PurgingTrigger, Trigger } from './windowing/triggers.js';
import type { GlobalWindow, ProcessWindowFunction, TimeWindow, Window, WindowAssigner } from './windows.js';

export class DataStream<T> {
  readonly environment: StreamEnvironment;
  readonly transformation: Transformation;

  constructor(environment: StreamEnvironment, transformation: Transformation) {
    this.environment = environment;
    this.transformation = transformation;
  }

  protected derive<R>(
    name: string,
    spec: TransformationSpec,
    inputs: Transformation[] = [this.transformation],
  ) {
    return new DataStream<R>(this.environment, this.environment.addTransformation(name, spec, inputs));
  }

  map<R>(fn: MapFunction<T, R>): DataStream<R> {
    return this.derive<R>('Map', { kind: 'map', fn: fn as MapFunction<unknown, unknown> });
  }

  flatMap<R>(fn: FlatMapFunction<T, R>): DataStream<R> {
    return this.derive<R>('Flat Map', { kind: 'flatMap', fn: fn as FlatMapFunction<unknown, unknown> });
  }

  filter(fn: FilterFunction<T>): DataStream<T> {
    return this.derive<T>('Filter', { kind: 'filter', fn: fn as FilterFunction<unknown> });
  }

  /** Per-element logic with timestamps and side outputs (timers need keyBy(...).process(...)). */
  process<R>(fn: ProcessFunction<T, R>): SingleOutputStreamOperator<R> {
    const t = this.environment.addTransformation(
      'Process',
      { kind: 'non-keyed-process', fn: fn as ProcessFunction<unknown, unknown> },
      [this.transformation],
    );
    return new SingleOutputStreamOperator<R>(this.environment, t);
  }

  /** Partitions by key: records with equal keys meet in one subtask, with their keyed state. */
  keyBy<K>(keySelector: KeySelector<T, K>): KeyedStream<T, K> {
    const t = this.environment.addTransformation(
      'Key By',
      {
        kind: 'keyBy',
        keySelector: keySelector as KeySelector<unknown, unknown>,
      },
      [this.transformation],
    );
    return new KeyedStream<T, K>(this.environment, t);
  }

  /** Merges streams of the same type. */
  union(...others: DataStream<T>[]): DataStream<T> {
    for (const o of others) {
      if (o.environment !== this.environment)
        throw new Error('union: streams belong to different environments');
    }
    return this.derive<T>('Union', { kind: 'union' }, [
      this.transformation,
      ...others.map((o) => o.transformation),
    ]);
  }

  rebalance(): DataStream<T> {
    return this.#partition('rebalance');
  }

  broadcast(): DataStream<T> {
    return this.#partition('broadcast');
  }

  forward(): DataStream<T> {
    return this.#partition('forward');
  }

  shuffle(): DataStream<T> {
    return this.#partition('shuffle');
  }

  #partition(partitioning: Exclude<Partitioning, 'hash'>): DataStream<T> {
    const names = { rebalance: 'Rebalance', broadcast: 'Broadcast', forward: 'Forward', shuffle: 'Shuffle' };
    return this.derive<T>(names[partitioning], { kind: 'partition', partitioning });
  }

  assignTimestampsAndWatermarks(strategy: WatermarkStrategy<T>): DataStream<T> {
    return this.derive<T>('Timestamps/Watermarks', {
      kind: 'timestamps',
      watermarks: strategy as WatermarkStrategy<unknown>,
    });
  }

  setParallelism(parallelism: number): this {
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new RangeError(`parallelism must be a positive integer, got ${parallelism}`);
    }
    this.transformation.parallelism = parallelism;
    return this;
  }

  setMaxParallelism(maxParallelism: number): this {
    if (!Number.isInteger(maxParallelism) || maxParallelism < 1 || maxParallelism > 32_768) {
      throw new RangeError(`maxParallelism must be an integer from 1 to 32768, got ${maxParallelism}`);
    }
    this.transformation.maxParallelism = maxParallelism;
    return this;
  }

  /** A stable id for the operator: how state and user functions are matched (keep it when code changes). */
  uid(uid: string): this {
    if (typeof uid !== 'string' || uid.length === 0 || uid.length > 256) {
      throw new RangeError('uid must be a non-empty string of at most 256 characters');
    }
    this.transformation.uid = uid;
    return this;
  }

  name(name: string): this {
    this.transformation.name = name;
    return this;
  }

  print(prefix?: string): DataStreamSink<T> {
    return this.sinkTo(new PrintSink<T>(prefix));
  }

  sinkTo(sink: Sink<T>): DataStreamSink<T> {
    const t = this.environment.addTransformation(
      `Sink: ${sink.name}`,
      { kind: 'sink', sink: sink as Sink<unknown> },
      [this.transformation],
    );
    return new DataStreamSink<T>(t);
  }

  /** Runs the job and returns every record of this stream to the caller (in order per subtask). */
  async executeAndCollect(jobName?: string): Promise<T[]> {
    this.sinkTo(new CollectSink<T>());
    return (await this.environment.executeCollecting(jobName)) as T[];
  }
}

/**
 * The stream of an operator that may emit side outputs (process functions, windows), as Flink's
 * SingleOutputStreamOperator: `getSideOutput(tag)` reads the records it emitted to `tag`.
 */
export class SingleOutputStreamOperator<T> extends DataStream<T> {
  getSideOutput<X>(tag: OutputTag<X>): DataStream<X> {
    if (!(tag instanceof OutputTag)) {
      throw new SluiceError(ErrorCode.InvalidJob, 'getSideOutput needs an OutputTag: new OutputTag<T>(id)');
    }
    const t = this.environment.addTransformation(
      `Side Output (${tag.id})`,
      { kind: 'sideOutput', tag: tag as OutputTag<unknown> },
      [this.transformation],
    );
    return new DataStream<X>(this.environment, t);
  }
}

export class DataStreamSink<T> {
  declare readonly _type?: T;
  constructor(readonly transformation: Transformation) {}

  uid(uid: string): this {
    this.transformation.uid = uid;
    return this;
  }

  name(name: string): this {
    this.transformation.name = name;
    return this;
  }

  setParallelism(parallelism: number): this {
    this.transformation.parallelism = parallelism;
    return this;
  }
}

/** Field of a record to aggregate over in sum/min/max; omit for streams of numbers. */
export type FieldRef<T> = T extends number ? undefined : T extends readonly unknown[] ? number : keyof T;

function fieldAggregate<T>(field: PropertyKey | undefined, pick: (a: number, b: number) => number) {
  return (acc: T, value: T): T => {
    if (field === undefined) return pick(acc as number, value as number) as T;
    const a = (acc as Record<PropertyKey, number>)[field]!;
    const b = (value as Record<PropertyKey, number>)[field]!;
    // A copy: the previous result was emitted and may still be held downstream.
    const out = Array.isArray(acc) ? acc.slice() : { ...(acc as object) };
    (out as Record<PropertyKey, number>)[field] = pick(a, b);
    return out as T;
  };
}

export class KeyedStream<T, K> extends DataStream<T> {
  /** Rolling reduce per key: emits the updated value for every record. */
  reduce(fn: ReduceFunction<T>): DataStream<T> {
    return this.derive<T>('Keyed Reduce', { kind: 'reduce', fn: fn as ReduceFunction<unknown> });
  }

  sum(field?: FieldRef<T>): DataStream<T> {
    return this.#aggregate('Keyed Sum', field as PropertyKey | undefined, (a, b) => a + b);
  }

  min(field?: FieldRef<T>): DataStream<T> {
    return this.#aggregate('Keyed Min', field as PropertyKey | undefined, Math.min);
  }

  max(field?: FieldRef<T>): DataStream<T> {
    return this.#aggregate('Keyed Max', field as PropertyKey | undefined, Math.max);
  }

  #aggregate(
    name: string,
    field: PropertyKey | undefined,
    pick: (a: number, b: number) => number,
  ): DataStream<T> {
    return this.derive<T>(name, {
      kind: 'reduce',
      fn: fieldAggregate<T>(field, pick) as ReduceFunction<unknown>,
    });
  }

  override process<R>(fn: KeyedProcessFunction<K, T, R>): SingleOutputStreamOperator<R> {
    const t = this.environment.addTransformation(
      'Keyed Process',
      { kind: 'process', fn: fn as KeyedProcessFunction<unknown, unknown, unknown> },
      [this.transformation],
    );
    return new SingleOutputStreamOperator<R>(this.environment, t);
  }

  window<W extends Window>(assigner: WindowAssigner<W>): WindowedStream<T, K, W> {
    return new WindowedStream<T, K, W>(this, assigner);
  }

  /**
   * Count windows (as Flink's countWindow): `countWindow(size)` fires and empties each key's window every
   * `size` elements; `countWindow(size, slide)` fires every `slide` elements with the key's last `size`.
   * A count not reached when the input ends emits nothing.
   */
  countWindow(size: number, slide?: number): WindowedStream<T, K, GlobalWindow> {
    const windowed = this.window(GlobalWindows.create());
    if (slide === undefined)
      return windowed.trigger(PurgingTrigger.of(CountTrigger.of(checkCount('size', size))));
    windowed.trigger(CountTrigger.of(checkCount('slide', slide)));
    windowed.keepLastElements(checkCount('size', size));
    return windowed;
  }
}

function checkCount(what: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) {
    throw new SluiceError(
      ErrorCode.InvalidJob,
      `countWindow ${what} must be a whole number >= 1, got ${String(n)}`,
    );
  }
  return n;
}

export class WindowedStream<T, K, W extends Window = TimeWindow> {
  #allowedLatenessMs = 0;
  #trigger: Trigger | undefined;
  #lateDataTag: OutputTag<unknown> | undefined;
  #keepLast: number | undefined;

  constructor(
    readonly input: KeyedStream<T, K>,
    readonly assigner: WindowAssigner<W>,
  ) {}

  /** Keeps windows (event time) this long after their end: late elements update and re-fire them. */
  allowedLateness(ms: number): this {
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `allowed lateness must be a number of milliseconds >= 0, got ${String(ms)}`,
      );
    }
    this.#allowedLatenessMs = ms;
    return this;
  }

  /** When windows fire (and purge), instead of the assigner's default trigger. */
  trigger(trigger: Trigger<W>): this {
    if (!(trigger instanceof Trigger)) {
      throw new SluiceError(ErrorCode.InvalidJob, 'trigger(...) needs a Trigger, e.g. CountTrigger.of(100)');
    }
    this.#trigger = trigger as Trigger;
    return this;
  }

  /** Elements too late for every window they belong to go to this side output instead of being dropped. */
  sideOutputLateData(tag: OutputTag<T>): this {
    if (!(tag instanceof OutputTag)) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        'sideOutputLateData needs an OutputTag: new OutputTag<T>(id)',
      );
    }
    this.#lateDataTag = tag as OutputTag<unknown>;
    return this;
  }

  /** @internal Keeps each window's last `n` elements (countWindow(size, slide)). */
  keepLastElements(n: number): this {
    this.#keepLast = n;
    return this;
  }

  reduce(fn: ReduceFunction<T>): SingleOutputStreamOperator<T>;
  reduce<R>(fn: ReduceFunction<T>, process: ProcessWindowFunction<T, R, K, W>): SingleOutputStreamOperator<R>;
  reduce<R>(
    fn: ReduceFunction<T>,
    process?: ProcessWindowFunction<T, R, K, W>,
  ): SingleOutputStreamOperator<T | R> {
    const spec = process
      ? {
          kind: 'reduce-process' as const,
          reduce: fn as ReduceFunction<unknown>,
          process: process as unknown as ProcessWindowFunction<unknown, unknown, unknown>,
        }
      : { kind: 'reduce' as const, reduce: fn as ReduceFunction<unknown> };
    return this.#window<T | R>(spec);
  }

  aggregate<ACC, R>(fn: AggregateFunction<T, ACC, R>): SingleOutputStreamOperator<R> {
    return this.#window<R>({
      kind: 'aggregate',
      aggregate: fn as AggregateFunction<unknown, unknown, unknown>,
    });
  }

  process<R>(fn: ProcessWindowFunction<T, R, K, W>): SingleOutputStreamOperator<R> {
    return this.#window<R>({
      kind: 'process',
      process: fn as unknown as ProcessWindowFunction<unknown, unknown, unknown>,
    });
  }

  #window<R>(fn: Extract<TransformationSpec, { kind: 'window' }>['fn']): SingleOutputStreamOperator<R> {
    const spec: Extract<TransformationSpec, { kind: 'window' }> = {
      kind: 'window',
      assigner: this.assigner as WindowAssigner,
      fn,
      allowedLatenessMs: this.#allowedLatenessMs,
      trigger: this.#trigger,
      keepLast: this.#keepLast,
      lateDataTag: this.#lateDataTag,
    };
    checkWindowSpec(spec);
    const trigger = this.#trigger ? `, ${this.#trigger.toString()}` : '';
    const t = this.input.environment.addTransformation(
      `Window(${this.assigner.toString()}${trigger})`,
      spec,
      [this.input.transformation],
    );
    return new SingleOutputStreamOperator<R>(this.input.environment, t);
  }
}
