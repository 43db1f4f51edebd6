/**
 * The shapes of user functions. Plain functions where Flink has single-method interfaces; objects
 * (or class instances) where a function has a lifecycle or several methods.
 */

export interface Collector<T> {
  collect(value: T): void;
}

export type MapFunction<T, R> = (value: T) => R;
/** Emits any number of results per input: through `out`, or by returning an iterable. */
// biome-ignore lint/suspicious/noConfusingVoidType: a callback that only uses `out` returns nothing.
export type FlatMapFunction<T, R> = (value: T, out: Collector<R>) => Iterable<R> | undefined | void;
export type FilterFunction<T> = (value: T) => boolean;
export type KeySelector<T, K> = (value: T) => K;
export type ReduceFunction<T> = (accumulated: T, value: T) => T;

/** Incremental aggregation of a window's (or a key's) elements, as Flink's AggregateFunction. */
export interface AggregateFunction<IN, ACC, OUT> {
  createAccumulator(): ACC;
  add(value: IN, accumulator: ACC): ACC;
  getResult(accumulator: ACC): OUT;
  merge?(a: ACC, b: ACC): ACC;
}

/** What a function can ask about where it runs, and its keyed state. */
export interface RuntimeContext {
  readonly subtaskIndex: number;
  readonly parallelism: number;
  readonly maxParallelism: number;
  readonly taskName: string;
  /** Keyed state (only after keyBy). */
  getState<T>(descriptor: ValueStateDescriptor<T>): import('./state.js').ValueState<T>;
  getListState<T>(descriptor: ListStateDescriptor<T>): import('./state.js').ListState<T>;
  getMapState<K, V>(descriptor: MapStateDescriptor<K, V>): import('./state.js').MapState<K, V>;
}

export class ValueStateDescriptor<T> {
  readonly kind = 'value';
  constructor(
    readonly name: string,
    readonly defaultValue?: T,
  ) {}
}

export class ListStateDescriptor<T> {
  readonly kind = 'list';
  /** Phantom field: ties the element type to the descriptor. */
  declare readonly _type?: T;
  constructor(readonly name: string) {}
}

export class MapStateDescriptor<K, V> {
  readonly kind = 'map';
  declare readonly _type?: [K, V];
  constructor(readonly name: string) {}
}

export interface TimerServiceApi {
  currentProcessingTime(): number;
  currentWatermark(): number;
  registerEventTimeTimer(timestamp: number): void;
  registerProcessingTimeTimer(timestamp: number): void;
  deleteEventTimeTimer(timestamp: number): void;
  deleteProcessingTimeTimer(timestamp: number): void;
}

export interface KeyedProcessContext<K> {
  /** Event time of the current element (undefined when it has none). */
  timestamp(): number | undefined;
  getCurrentKey(): K;
  timerService(): TimerServiceApi;
  /** Emits to a side output (read with `getSideOutput(tag)`), with the current output timestamp. */
  output<X>(tag: import('./output-tag.js').OutputTag<X>, value: X): void;
}

export interface OnTimerContext<K> extends KeyedProcessContext<K> {
  timeDomain(): 'EVENT_TIME' | 'PROCESSING_TIME';
}

/** Flink's KeyedProcessFunction: per-element logic with keyed state and timers. */
export interface KeyedProcessFunction<K, IN, OUT> {
  open?(context: RuntimeContext): void;
  processElement(value: IN, ctx: KeyedProcessContext<K>, out: Collector<OUT>): void;
  onTimer?(timestamp: number, ctx: OnTimerContext<K>, out: Collector<OUT>): void;
  close?(): void;
}
