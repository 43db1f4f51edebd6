/**
 * DataStream, KeyedStream and WindowedStream: the typed surface a job is written against. Each call
 * records a Transformation in the environment; nothing runs until `execute()`.
 *
 * Two inputs (at the end of this file; they build DataStreams, so they live here, without an import
 * cycle): ConnectedStreams (`connect`, co-functions), BroadcastStream and BroadcastConnectedStream (the
 * broadcast state pattern), JoinedStreams / CoGroupedStreams (window joins: as in Flink, a coGroup made
 * of a tagging map per input, union, keyBy and a window) and IntervalJoin (a two-input keyed operator).
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
import type {
  BroadcastProcessFunction,
  CoFlatMapFunction,
  CoGroupFunction,
  CoMapFunction,
  CoProcessFunction,
  JoinFunction,
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
  ProcessJoinFunction,
} from './co-functions.js';
import type { Sink } from './connector.js';
import type {
  AggregateFunction,
  FilterFunction,
  FlatMapFunction,
  KeyedProcessFunction,
  KeySelector,
  MapFunction,
  MapStateDescriptor,
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
import type { TwoInputSpec } from './two-input-specs.js';
import {
  assignerName,
  checkBroadcastDescriptors,
  coGroupWindowFunction,
  requireMethods,
  type TaggedUnion,
} from './two-input-support.js';
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

  /**
   * Without arguments: every record goes to every subtask of the next operator. With MapStateDescriptors:
   * a BroadcastStream to `connect` a stream with (the broadcast state pattern).
   */
  broadcast(): DataStream<T>;
  broadcast(...descriptors: MapStateDescriptor<unknown, unknown>[]): BroadcastStream<T>;
  broadcast(...descriptors: MapStateDescriptor<unknown, unknown>[]): DataStream<T> | BroadcastStream<T> {
    const partitioned = this.#partition('broadcast');
    return descriptors.length === 0 ? partitioned : new BroadcastStream<T>(partitioned, descriptors);
  }

  /** Two inputs, one operator with a method per input (co-functions), or the broadcast state pattern. */
  connect<R>(other: BroadcastStream<R>): BroadcastConnectedStream<T, R>;
  connect<R>(other: DataStream<R>): ConnectedStreams<T, R>;
  connect<R>(
    other: DataStream<R> | BroadcastStream<R>,
  ): ConnectedStreams<T, R> | BroadcastConnectedStream<T, R> {
    if (other instanceof BroadcastStream) {
      if (other.stream.environment !== this.environment)
        throw new Error('connect: streams belong to different environments');
      return new BroadcastConnectedStream<T, R>(this, other);
    }
    return new ConnectedStreams<T, R>(this, other);
  }

  /** Window join: `join(other).where(key).equalTo(otherKey).window(assigner).apply(fn)`. */
  join<R>(other: DataStream<R>): JoinedStreams<T, R> {
    return new JoinedStreams<T, R>(this, other);
  }

  /** Window coGroup: as `join`, but `apply` gets all elements of both inputs per key and window. */
  coGroup<R>(other: DataStream<R>): CoGroupedStreams<T, R> {
    return new CoGroupedStreams<T, R>(this, other);
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

  /** Interval join with another keyed stream: `intervalJoin(other).between(lower, upper).process(fn)`. */
  intervalJoin<R>(other: KeyedStream<R, K>): IntervalJoin<T, R, K> {
    return new IntervalJoin<T, R, K>(this, other);
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

/** Whether a stream is keyed (its records reach the next operator partitioned by key). */
function isKeyed<T>(stream: DataStream<T>): boolean {
  return stream.transformation.spec.kind === 'keyBy';
}

/**
 * Two streams, possibly of different types, processed by one operator with a method per input (Flink's
 * `connect`). Keyed when both inputs are keyed (two KeyedStreams, or `keyBy(key1, key2)`): `process`
 * then takes a KeyedCoProcessFunction with keyed state and timers shared by both inputs.
 */
export class ConnectedStreams<IN1, IN2> {
  readonly environment: StreamEnvironment;

  constructor(
    readonly first: DataStream<IN1>,
    readonly second: DataStream<IN2>,
  ) {
    if (first.environment !== second.environment) {
      throw new Error('connect: streams belong to different environments');
    }
    this.environment = first.environment;
  }

  getFirstInput(): DataStream<IN1> {
    return this.first;
  }

  getSecondInput(): DataStream<IN2> {
    return this.second;
  }

  /** Both inputs are keyed (records of either input with equal keys meet in one subtask). */
  get keyed(): boolean {
    return isKeyed(this.first) && isKeyed(this.second);
  }

  /** Keys both inputs, with keys of the same kind: records with equal keys meet, with their keyed state. */
  keyBy<K>(key1: KeySelector<IN1, K>, key2: KeySelector<IN2, K>): ConnectedStreams<IN1, IN2> {
    return new ConnectedStreams<IN1, IN2>(this.first.keyBy(key1), this.second.keyBy(key2));
  }

  map<R>(fn: CoMapFunction<IN1, IN2, R>): DataStream<R> {
    requireMethods(fn, ['map1', 'map2'], 'CoMapFunction');
    return this.transform<R>('Co-Map', { kind: 'coMap', fn: fn as CoMapFunction<unknown, unknown, unknown> });
  }

  flatMap<R>(fn: CoFlatMapFunction<IN1, IN2, R>): DataStream<R> {
    requireMethods(fn, ['flatMap1', 'flatMap2'], 'CoFlatMapFunction');
    return this.transform<R>('Co-Flat Map', {
      kind: 'coFlatMap',
      fn: fn as CoFlatMapFunction<unknown, unknown, unknown>,
    });
  }

  /** A KeyedCoProcessFunction when both inputs are keyed (keyed state, timers); else a CoProcessFunction. */
  process<R>(fn: CoProcessFunction<IN1, IN2, R>): DataStream<R>;
  process<R, K = unknown>(fn: KeyedCoProcessFunction<K, IN1, IN2, R>): DataStream<R>;
  process<R, K = unknown>(
    fn: CoProcessFunction<IN1, IN2, R> | KeyedCoProcessFunction<K, IN1, IN2, R>,
  ): DataStream<R> {
    requireMethods(fn, ['processElement1', 'processElement2'], 'CoProcessFunction');
    if (this.keyed) {
      return this.transform<R>('Keyed Co-Process', {
        kind: 'keyedCoProcess',
        fn: fn as KeyedCoProcessFunction<unknown, unknown, unknown, unknown>,
      });
    }
    return this.transform<R>('Co-Process', {
      kind: 'coProcess',
      fn: fn as CoProcessFunction<unknown, unknown, unknown>,
    });
  }

  /** @internal Records a two-input operator over the two inputs (input 0: first, input 1: second). */
  transform<R>(name: string, spec: TwoInputSpec): DataStream<R> {
    const t = this.environment.addTransformation(name, spec, [
      this.first.transformation,
      this.second.transformation,
    ]);
    return new DataStream<R>(this.environment, t);
  }
}

/** `stream.broadcast(descriptor, ...)`: its elements reach every subtask of the operator it connects to. */
export class BroadcastStream<T> {
  constructor(
    /** The stream, partitioned to every subtask of its consumer. */
    readonly stream: DataStream<T>,
    readonly descriptors: readonly MapStateDescriptor<unknown, unknown>[],
  ) {
    checkBroadcastDescriptors(descriptors);
  }
}

/** A (keyed or non-keyed) stream connected with a BroadcastStream. */
export class BroadcastConnectedStream<IN1, IN2> {
  constructor(
    readonly nonBroadcast: DataStream<IN1>,
    readonly broadcast: BroadcastStream<IN2>,
  ) {}

  /** A KeyedBroadcastProcessFunction when the non-broadcast stream is keyed, else a BroadcastProcessFunction. */
  process<R>(fn: BroadcastProcessFunction<IN1, IN2, R>): DataStream<R>;
  process<R, K = unknown>(fn: KeyedBroadcastProcessFunction<K, IN1, IN2, R>): DataStream<R>;
  process<R, K = unknown>(
    fn: BroadcastProcessFunction<IN1, IN2, R> | KeyedBroadcastProcessFunction<K, IN1, IN2, R>,
  ): DataStream<R> {
    requireMethods(fn, ['processElement', 'processBroadcastElement'], 'BroadcastProcessFunction');
    const connected = new ConnectedStreams<IN1, IN2>(this.nonBroadcast, this.broadcast.stream);
    const descriptors = [...this.broadcast.descriptors];
    if (isKeyed(this.nonBroadcast)) {
      return connected.transform<R>('Keyed Broadcast Process', {
        kind: 'keyedBroadcastProcess',
        fn: fn as KeyedBroadcastProcessFunction<unknown, unknown, unknown, unknown>,
        descriptors,
      });
    }
    return connected.transform<R>('Broadcast Process', {
      kind: 'broadcastProcess',
      fn: fn as BroadcastProcessFunction<unknown, unknown, unknown>,
      descriptors,
    });
  }
}

/** The window coGroup both window joins and coGroups run as (Flink's CoGroupedStreams). */
function windowedCoGroup<T1, T2, K, R>(
  first: DataStream<T1>,
  second: DataStream<T2>,
  key1: KeySelector<T1, K>,
  key2: KeySelector<T2, K>,
  assigner: WindowAssigner,
  allowedLatenessMs: number,
  name: string,
  fn: CoGroupFunction<T1, T2, R>,
): DataStream<R> {
  if (first.environment !== second.environment) {
    throw new Error(`${name}: streams belong to different environments`);
  }
  const left = first.map((value): TaggedUnion => ({ side: 0, value })).name(`${name}: Tag Input 1`);
  const right = second.map((value): TaggedUnion => ({ side: 1, value })).name(`${name}: Tag Input 2`);
  return left
    .union(right)
    .keyBy((t) => (t.side === 0 ? key1(t.value as T1) : key2(t.value as T2)))
    .window(assigner)
    .allowedLateness(allowedLatenessMs)
    .process<R>(coGroupWindowFunction<T1, T2, K, R>(fn))
    .name(`${name}(${assignerName(assigner)})`);
}

/** `a.join(b).where(keyA).equalTo(keyB).window(assigner).apply(fn)`: pairs with equal keys per window. */
export class JoinedStreams<T1, T2> {
  constructor(
    readonly first: DataStream<T1>,
    readonly second: DataStream<T2>,
  ) {}

  where<K>(key1: KeySelector<T1, K>) {
    return {
      equalTo: (key2: KeySelector<T2, K>) => ({
        window: (assigner: WindowAssigner) =>
          new WindowedJoin<T1, T2, K>(this.first, this.second, key1, key2, assigner),
      }),
    };
  }
}

export class WindowedJoin<T1, T2, K> {
  #allowedLatenessMs = 0;
  constructor(
    readonly first: DataStream<T1>,
    readonly second: DataStream<T2>,
    readonly key1: KeySelector<T1, K>,
    readonly key2: KeySelector<T2, K>,
    readonly assigner: WindowAssigner,
  ) {}

  allowedLateness(ms: number): this {
    this.#allowedLatenessMs = ms;
    return this;
  }

  /** `fn(a, b)` for every pair of a window's elements with equal keys; results get the window's end - 1. */
  apply<R>(fn: JoinFunction<T1, T2, R>): DataStream<R> {
    if (typeof fn !== 'function')
      throw new TypeError('join(...).apply needs a JoinFunction (a, b) => result');
    return windowedCoGroup<T1, T2, K, R>(
      this.first,
      this.second,
      this.key1,
      this.key2,
      this.assigner,
      this.#allowedLatenessMs,
      'Window Join',
      (as, bs, out) => {
        for (const a of as) for (const b of bs) out.collect(fn(a, b));
      },
    );
  }
}

/** `a.coGroup(b).where(keyA).equalTo(keyB).window(assigner).apply(fn)`: both inputs' elements per key and window. */
export class CoGroupedStreams<T1, T2> {
  constructor(
    readonly first: DataStream<T1>,
    readonly second: DataStream<T2>,
  ) {}

  where<K>(key1: KeySelector<T1, K>) {
    return {
      equalTo: (key2: KeySelector<T2, K>) => ({
        window: (assigner: WindowAssigner) => ({
          apply: <R>(fn: CoGroupFunction<T1, T2, R>): DataStream<R> => {
            if (typeof fn !== 'function') throw new TypeError('coGroup(...).apply needs a CoGroupFunction');
            return windowedCoGroup<T1, T2, K, R>(
              this.first,
              this.second,
              key1,
              key2,
              assigner,
              0,
              'Window CoGroup',
              fn,
            );
          },
        }),
      }),
    };
  }
}

/** `left.intervalJoin(right).between(lower, upper).process(fn)` on two keyed streams, in event time. */
export class IntervalJoin<T1, T2, K> {
  constructor(
    readonly left: KeyedStream<T1, K>,
    readonly right: KeyedStream<T2, K>,
  ) {}

  /** Joins `l` and `r` when `l.ts + lowerMs <= r.ts <= l.ts + upperMs` (both bounds inclusive by default). */
  between(lowerMs: number, upperMs: number): IntervalJoined<T1, T2, K> {
    if (!Number.isFinite(lowerMs) || !Number.isFinite(upperMs) || lowerMs > upperMs) {
      throw new RangeError(
        `intervalJoin: between(lower, upper) needs lower <= upper, got (${lowerMs}, ${upperMs})`,
      );
    }
    return new IntervalJoined<T1, T2, K>(this.left, this.right, lowerMs, upperMs);
  }
}

export class IntervalJoined<T1, T2, K> {
  #lowerExclusive = false;
  #upperExclusive = false;
  constructor(
    readonly left: KeyedStream<T1, K>,
    readonly right: KeyedStream<T2, K>,
    readonly lowerMs: number,
    readonly upperMs: number,
  ) {}

  lowerBoundExclusive(): this {
    this.#lowerExclusive = true;
    return this;
  }

  upperBoundExclusive(): this {
    this.#upperExclusive = true;
    return this;
  }

  process<R>(fn: ProcessJoinFunction<T1, T2, R>): DataStream<R> {
    requireMethods(fn, ['processElement'], 'ProcessJoinFunction');
    const lower = this.#lowerExclusive ? this.lowerMs + 1 : this.lowerMs;
    const upper = this.#upperExclusive ? this.upperMs - 1 : this.upperMs;
    if (lower > upper) {
      throw new RangeError(
        `intervalJoin: the exclusive bounds leave no interval (${this.lowerMs}, ${this.upperMs})`,
      );
    }
    return new ConnectedStreams<T1, T2>(this.left, this.right).transform<R>('Interval Join', {
      kind: 'intervalJoin',
      lowerMs: this.lowerMs,
      upperMs: this.upperMs,
      lowerExclusive: this.#lowerExclusive,
      upperExclusive: this.#upperExclusive,
      fn: fn as ProcessJoinFunction<unknown, unknown, unknown>,
    });
  }
}
