/**
 * The broadcast state pattern (Flink's): `stream.broadcast(descriptor, ...)` gives a BroadcastStream,
 * whose elements reach every parallel instance of the operator it is connected to; `connect` of a
 * (keyed or non-keyed) stream with it gives a BroadcastConnectedStream, processed by a
 * (Keyed)BroadcastProcessFunction that keeps the broadcast state named by the descriptors.
 */
import type { BroadcastProcessFunction, KeyedBroadcastProcessFunction } from './co-functions.js';
import { ConnectedStreams, isKeyed, requireMethods } from './connected-streams.js';
import type { DataStream } from './datastream.js';
import type { MapStateDescriptor } from './functions.js';

export class BroadcastStream<T> {
  constructor(
    /** The stream, partitioned to every subtask of its consumer. */
    readonly stream: DataStream<T>,
    readonly descriptors: readonly MapStateDescriptor<unknown, unknown>[],
  ) {
    if (descriptors.length === 0) throw new TypeError('broadcast(...) needs at least one MapStateDescriptor');
    const names = new Set<string>();
    for (const d of descriptors) {
      if (d?.kind !== 'map') throw new TypeError('broadcast state is declared with MapStateDescriptors');
      if (names.has(d.name)) throw new TypeError(`broadcast state '${d.name}' is declared twice`);
      names.add(d.name);
    }
  }
}

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
