/**
 * The shapes of user functions with two inputs (Flink's CoMapFunction, CoFlatMapFunction,
 * CoProcessFunction, KeyedCoProcessFunction, JoinFunction, CoGroupFunction, ProcessJoinFunction,
 * BroadcastProcessFunction, KeyedBroadcastProcessFunction) and the broadcast state they see.
 *
 * Objects with one method per input, as Flink's interfaces; `open` gets the RuntimeContext (keyed state
 * only on keyed streams). A method that throws fails the job, like any user function.
 */

import type {
  Collector,
  KeyedProcessContext,
  ListStateDescriptor,
  MapStateDescriptor,
  OnTimerContext,
  RuntimeContext,
  TimerServiceApi,
  ValueStateDescriptor,
} from './functions.js';
import type { ListState, MapState, ValueState } from './state.js';

export interface CoMapFunction<IN1, IN2, OUT> {
  open?(context: RuntimeContext): void;
  map1(value: IN1): OUT;
  map2(value: IN2): OUT;
  close?(): void;
}

/** Each method emits through `out`, or returns an iterable of results. */
export interface CoFlatMapFunction<IN1, IN2, OUT> {
  open?(context: RuntimeContext): void;
  // biome-ignore lint/suspicious/noConfusingVoidType: a callback that only uses `out` returns nothing.
  flatMap1(value: IN1, out: Collector<OUT>): Iterable<OUT> | undefined | void;
  // biome-ignore lint/suspicious/noConfusingVoidType: a callback that only uses `out` returns nothing.
  flatMap2(value: IN2, out: Collector<OUT>): Iterable<OUT> | undefined | void;
  close?(): void;
}

/** What a non-keyed two-input function can ask while it processes an element. */
export interface CoProcessContext {
  /** Event time of the current element (undefined when it has none). */
  timestamp(): number | undefined;
  /** Current processing time and watermark (timers need a keyed stream, as in Flink). */
  timerService(): Pick<TimerServiceApi, 'currentProcessingTime' | 'currentWatermark'>;
}

/** Flink's CoProcessFunction (non-keyed): per-element logic for each input. */
export interface CoProcessFunction<IN1, IN2, OUT> {
  open?(context: RuntimeContext): void;
  processElement1(value: IN1, ctx: CoProcessContext, out: Collector<OUT>): void;
  processElement2(value: IN2, ctx: CoProcessContext, out: Collector<OUT>): void;
  close?(): void;
}

/** Flink's KeyedCoProcessFunction: both inputs keyed alike, keyed state and timers shared by both. */
export interface KeyedCoProcessFunction<K, IN1, IN2, OUT> {
  open?(context: RuntimeContext): void;
  processElement1(value: IN1, ctx: KeyedProcessContext<K>, out: Collector<OUT>): void;
  processElement2(value: IN2, ctx: KeyedProcessContext<K>, out: Collector<OUT>): void;
  onTimer?(timestamp: number, ctx: OnTimerContext<K>, out: Collector<OUT>): void;
  close?(): void;
}

/** Window join: called for each pair of elements with the same key in the same window. */
export type JoinFunction<IN1, IN2, OUT> = (first: IN1, second: IN2) => OUT;

/** CoGroup: called once per key and window with the elements of both inputs (either list may be empty). */
export type CoGroupFunction<IN1, IN2, OUT> = (first: IN1[], second: IN2[], out: Collector<OUT>) => void;

export interface ProcessJoinContext {
  /** Timestamp of the left element of the pair. */
  getLeftTimestamp(): number;
  /** Timestamp of the right element of the pair. */
  getRightTimestamp(): number;
  /** The result's timestamp: the larger of the two. */
  getTimestamp(): number;
}

/** Interval join: called for each pair with `left.ts + lower <= right.ts <= left.ts + upper`. */
export interface ProcessJoinFunction<IN1, IN2, OUT> {
  open?(context: RuntimeContext): void;
  processElement(left: IN1, right: IN2, ctx: ProcessJoinContext, out: Collector<OUT>): void;
  close?(): void;
}

/** Broadcast state as the non-broadcast side sees it: read only. */
export interface ReadOnlyBroadcastState<K, V> {
  get(key: K): V | undefined;
  contains(key: K): boolean;
  entries(): Array<[K, V]>;
  keys(): K[];
  values(): V[];
  isEmpty(): boolean;
}

/** Broadcast state as the broadcast side sees it: the same on every subtask if every subtask writes alike. */
export interface BroadcastState<K, V> extends ReadOnlyBroadcastState<K, V> {
  put(key: K, value: V): void;
  remove(key: K): void;
  clear(): void;
}

export interface BroadcastReadOnlyContext {
  timestamp(): number | undefined;
  currentWatermark(): number;
  currentProcessingTime(): number;
  getBroadcastState<K, V>(descriptor: MapStateDescriptor<K, V>): ReadOnlyBroadcastState<K, V>;
}

export interface BroadcastContext {
  timestamp(): number | undefined;
  currentWatermark(): number;
  currentProcessingTime(): number;
  getBroadcastState<K, V>(descriptor: MapStateDescriptor<K, V>): BroadcastState<K, V>;
}

/** Flink's BroadcastProcessFunction: a non-keyed stream connected with a broadcast stream. */
export interface BroadcastProcessFunction<IN1, IN2, OUT> {
  open?(context: RuntimeContext): void;
  processElement(value: IN1, ctx: BroadcastReadOnlyContext, out: Collector<OUT>): void;
  processBroadcastElement(value: IN2, ctx: BroadcastContext, out: Collector<OUT>): void;
  close?(): void;
}

export interface KeyedBroadcastReadOnlyContext<K> extends BroadcastReadOnlyContext {
  getCurrentKey(): K;
  timerService(): TimerServiceApi;
}

/** Any keyed state descriptor. */
export type AnyStateDescriptor =
  | ValueStateDescriptor<unknown>
  | ListStateDescriptor<unknown>
  | MapStateDescriptor<unknown, unknown>;

/** The state handle a descriptor gives. */
export type StateOf<D> =
  D extends ValueStateDescriptor<infer T>
    ? ValueState<T>
    : D extends ListStateDescriptor<infer T>
      ? ListState<T>
      : D extends MapStateDescriptor<infer K, infer V>
        ? MapState<K, V>
        : never;

export interface KeyedBroadcastContext extends BroadcastContext {
  /**
   * Runs `fn` for every key of this subtask that has the keyed state named by `descriptor`, with that
   * key's state handle (as Flink's `applyToKeyedState`).
   */
  applyToKeyedState<D extends AnyStateDescriptor>(
    descriptor: D,
    fn: (key: unknown, state: StateOf<D>) => void,
  ): void;
}

export interface KeyedBroadcastOnTimerContext<K> extends KeyedBroadcastReadOnlyContext<K> {
  timeDomain(): 'EVENT_TIME' | 'PROCESSING_TIME';
}

/** Flink's KeyedBroadcastProcessFunction: a keyed stream connected with a broadcast stream. */
export interface KeyedBroadcastProcessFunction<K, IN1, IN2, OUT> {
  open?(context: RuntimeContext): void;
  processElement(value: IN1, ctx: KeyedBroadcastReadOnlyContext<K>, out: Collector<OUT>): void;
  processBroadcastElement(value: IN2, ctx: KeyedBroadcastContext, out: Collector<OUT>): void;
  onTimer?(timestamp: number, ctx: KeyedBroadcastOnTimerContext<K>, out: Collector<OUT>): void;
  close?(): void;
}
