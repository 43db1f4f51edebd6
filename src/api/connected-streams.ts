/**
 * ConnectedStreams: two streams, possibly of different types, processed by one operator with one method
 * per input (Flink's `connect`). Keyed when both inputs are keyed (two KeyedStreams connected, or
 * `keyBy(key1, key2)`): then `process` takes a KeyedCoProcessFunction with keyed state and timers shared
 * by both inputs. Refuses streams of different environments.
 */
import type {
  CoFlatMapFunction,
  CoMapFunction,
  CoProcessFunction,
  KeyedCoProcessFunction,
} from './co-functions.js';
import { DataStream, type KeyedStream } from './datastream.js';
import type { StreamExecutionEnvironment } from './environment.js';
import type { KeySelector } from './functions.js';
import type { TwoInputSpec } from './two-input-specs.js';

export class ConnectedStreams<IN1, IN2> {
  readonly environment: StreamExecutionEnvironment;

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

export function isKeyed<T>(stream: DataStream<T>): stream is KeyedStream<T, unknown> {
  return stream.transformation.spec.kind === 'keyBy';
}

export function requireMethods(fn: unknown, methods: string[], what: string): void {
  for (const m of methods) {
    if (typeof (fn as Record<string, unknown> | null)?.[m] !== 'function') {
      throw new TypeError(`a ${what} needs a method ${m}()`);
    }
  }
}
