/**
 * What the two-input DataStream calls record (connect with co-functions, interval join, broadcast
 * connect): operators with two logical inputs. Input 0 is the stream `connect` was called on, input 1 the
 * argument; the StreamGraph marks each edge with the input it feeds. Window joins need no spec of their
 * own: as in Flink, they are a coGroup built from map, union, keyBy and a window.
 */
import type {
  BroadcastProcessFunction,
  CoFlatMapFunction,
  CoMapFunction,
  CoProcessFunction,
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
  ProcessJoinFunction,
} from './co-functions.js';
import type { MapStateDescriptor } from './functions.js';

export type TwoInputSpec =
  | { kind: 'coMap'; fn: CoMapFunction<unknown, unknown, unknown> }
  | { kind: 'coFlatMap'; fn: CoFlatMapFunction<unknown, unknown, unknown> }
  | { kind: 'coProcess'; fn: CoProcessFunction<unknown, unknown, unknown> }
  | { kind: 'keyedCoProcess'; fn: KeyedCoProcessFunction<unknown, unknown, unknown, unknown> }
  | {
      kind: 'intervalJoin';
      lowerMs: number;
      upperMs: number;
      lowerExclusive: boolean;
      upperExclusive: boolean;
      fn: ProcessJoinFunction<unknown, unknown, unknown>;
    }
  | {
      kind: 'broadcastProcess';
      fn: BroadcastProcessFunction<unknown, unknown, unknown>;
      descriptors: MapStateDescriptor<unknown, unknown>[];
    }
  | {
      kind: 'keyedBroadcastProcess';
      fn: KeyedBroadcastProcessFunction<unknown, unknown, unknown, unknown>;
      descriptors: MapStateDescriptor<unknown, unknown>[];
    };

export type TwoInputKind = TwoInputSpec['kind'];

export const TWO_INPUT_KINDS: ReadonlySet<string> = new Set<TwoInputKind>([
  'coMap',
  'coFlatMap',
  'coProcess',
  'keyedCoProcess',
  'intervalJoin',
  'broadcastProcess',
  'keyedBroadcastProcess',
]);

export function isTwoInputKind(kind: string): kind is TwoInputKind {
  return TWO_INPUT_KINDS.has(kind);
}
