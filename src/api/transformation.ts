/**
 * What each DataStream call records: a tree of transformations, turned into a StreamGraph at execute().
 * `keyBy`, `union` and the partitioning calls are virtual: they shape edges, not operators.
 */
import type { AsyncFunction, AsyncOutputMode, AsyncRetryStrategy } from './async-functions.js';
import type { Sink, Source } from './connector.js';
import type {
  AggregateFunction,
  FilterFunction,
  FlatMapFunction,
  KeyedProcessFunction,
  KeySelector,
  MapFunction,
  ReduceFunction,
} from './functions.js';
import type { OutputTag } from './output-tag.js';
import type { ProcessFunction } from './process-function.js';
import type { TwoInputSpec } from './two-input-specs.js';
import type { WatermarkStrategy } from './watermarks.js';
import type { Trigger } from './windowing/triggers.js';
import type { ProcessWindowFunction, WindowAssigner } from './windows.js';

export type Partitioning = 'forward' | 'rebalance' | 'broadcast' | 'shuffle' | 'hash';

export type WindowFunctionSpec =
  | { kind: 'reduce'; reduce: ReduceFunction<unknown> }
  | { kind: 'aggregate'; aggregate: AggregateFunction<unknown, unknown, unknown> }
  | { kind: 'process'; process: ProcessWindowFunction<unknown, unknown, unknown> }
  | {
      kind: 'reduce-process';
      reduce: ReduceFunction<unknown>;
      process: ProcessWindowFunction<unknown, unknown, unknown>;
    };

export type TransformationSpec =
  | { kind: 'source'; source: Source<unknown>; watermarks: WatermarkStrategy<unknown> | undefined }
  | { kind: 'map'; fn: MapFunction<unknown, unknown> }
  | { kind: 'flatMap'; fn: FlatMapFunction<unknown, unknown> }
  | { kind: 'filter'; fn: FilterFunction<unknown> }
  | { kind: 'timestamps'; watermarks: WatermarkStrategy<unknown> }
  | { kind: 'reduce'; fn: ReduceFunction<unknown> }
  | { kind: 'process'; fn: KeyedProcessFunction<unknown, unknown, unknown> }
  | { kind: 'non-keyed-process'; fn: ProcessFunction<unknown, unknown> }
  | {
      kind: 'window';
      assigner: WindowAssigner;
      fn: WindowFunctionSpec;
      allowedLatenessMs: number;
      /** Set by `.trigger(...)`; else the assigner's default trigger. */
      trigger?: Trigger | undefined;
      /** Keep only the last n elements of a window (`countWindow(size, slide)`). */
      keepLast?: number | undefined;
      /** Where elements beyond the allowed lateness go (`sideOutputLateData`); dropped when unset. */
      lateDataTag?: OutputTag<unknown> | undefined;
    }
  | { kind: 'sink'; sink: Sink<unknown> }
  | {
      kind: 'async';
      fn: AsyncFunction<unknown, unknown>;
      mode: AsyncOutputMode;
      timeoutMs: number;
      capacity: number;
      retry: AsyncRetryStrategy<unknown> | undefined;
    }
  | TwoInputSpec
  // virtual
  | { kind: 'partition'; partitioning: Exclude<Partitioning, 'hash'> }
  | { kind: 'keyBy'; keySelector: KeySelector<unknown, unknown> }
  | { kind: 'union' }
  | { kind: 'sideOutput'; tag: OutputTag<unknown> };

export type TransformationKind = TransformationSpec['kind'];

export const VIRTUAL_KINDS: ReadonlySet<TransformationKind> = new Set([
  'partition',
  'keyBy',
  'union',
  'sideOutput',
]);

export class Transformation {
  readonly id: number;
  readonly spec: TransformationSpec;
  readonly inputs: Transformation[];
  name: string;
  uid: string | undefined;
  /** undefined: the environment's default parallelism. */
  parallelism: number | undefined;
  maxParallelism: number | undefined;

  constructor(id: number, name: string, spec: TransformationSpec, inputs: Transformation[]) {
    this.id = id;
    this.name = name;
    this.spec = spec;
    this.inputs = inputs;
  }
}

/**
 * What a DataStream needs of the environment that created it: record a transformation, run the program
 * for executeAndCollect(). StreamExecutionEnvironment implements it; DataStream depends on this interface
 * only, so the two modules do not import each other.
 */
export interface StreamEnvironment {
  /** @internal Records a transformation of the program. */
  addTransformation(name: string, spec: TransformationSpec, inputs: Transformation[]): Transformation;
  /** @internal Runs the job and returns what its collect sinks received. */
  executeCollecting(jobName?: string): Promise<unknown[]>;
}
