/**
 * DataStream, KeyedStream and WindowedStream: the typed surface a job is written against. Each call
 * records a Transformation in the environment; nothing runs until `execute()`.
 */
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
import { CollectSink } from './sinks/collect-sink.js';
import { PrintSink } from './sinks/print-sink.js';
import type {
  Partitioning,
  StreamEnvironment,
  Transformation,
  TransformationSpec,
} from './transformation.js';
import type { WatermarkStrategy } from './watermarks.js';
import type { ProcessWindowFunction, WindowAssigner } from './windows.js';

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

  process<R>(fn: KeyedProcessFunction<K, T, R>): DataStream<R> {
    return this.derive<R>('Keyed Process', {
      kind: 'process',
      fn: fn as KeyedProcessFunction<unknown, unknown, unknown>,
    });
  }

  window(assigner: WindowAssigner): WindowedStream<T, K> {
    return new WindowedStream<T, K>(this, assigner);
  }
}

export class WindowedStream<T, K> {
  #allowedLatenessMs = 0;

  constructor(
    readonly input: KeyedStream<T, K>,
    readonly assigner: WindowAssigner,
  ) {}

  allowedLateness(ms: number): this {
    this.#allowedLatenessMs = ms;
    return this;
  }

  reduce(fn: ReduceFunction<T>): DataStream<T>;
  reduce<R>(fn: ReduceFunction<T>, process: ProcessWindowFunction<T, R, K>): DataStream<R>;
  reduce<R>(fn: ReduceFunction<T>, process?: ProcessWindowFunction<T, R, K>): DataStream<T | R> {
    const spec = process
      ? {
          kind: 'reduce-process' as const,
          reduce: fn as ReduceFunction<unknown>,
          process: process as ProcessWindowFunction<unknown, unknown, unknown>,
        }
      : { kind: 'reduce' as const, reduce: fn as ReduceFunction<unknown> };
    return this.#window<T | R>(spec);
  }

  aggregate<ACC, R>(fn: AggregateFunction<T, ACC, R>): DataStream<R> {
    return this.#window<R>({
      kind: 'aggregate',
      aggregate: fn as AggregateFunction<unknown, unknown, unknown>,
    });
  }

  process<R>(fn: ProcessWindowFunction<T, R, K>): DataStream<R> {
    return this.#window<R>({
      kind: 'process',
      process: fn as ProcessWindowFunction<unknown, unknown, unknown>,
    });
  }

  #window<R>(fn: Extract<TransformationSpec, { kind: 'window' }>['fn']): DataStream<R> {
    const domain = this.assigner.eventTime ? 'Event' : 'Processing';
    const t = this.input.environment.addTransformation(
      `Window(${this.assigner.kind === 'tumbling' ? 'Tumbling' : 'Sliding'}${domain}TimeWindows(${this.assigner.sizeMs}))`,
      { kind: 'window', assigner: this.assigner, fn, allowedLatenessMs: this.#allowedLatenessMs },
      [this.input.transformation],
    );
    return new DataStream<R>(this.input.environment, t);
  }
}
