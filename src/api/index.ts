/**
 * Sluice's DataStream API: `import { StreamExecutionEnvironment } from 'sluice'`.
 */

export { JobStatus } from '../runtime/job-status.js';
export type { ListState, MapState, ValueState } from '../runtime/state/keyed-state-backend.js';
export { BroadcastConnectedStream, BroadcastStream } from './broadcast.js';
export type {
  BroadcastContext,
  BroadcastProcessFunction,
  BroadcastReadOnlyContext,
  BroadcastState,
  CoFlatMapFunction,
  CoGroupFunction,
  CoMapFunction,
  CoProcessContext,
  CoProcessFunction,
  JoinFunction,
  KeyedBroadcastContext,
  KeyedBroadcastOnTimerContext,
  KeyedBroadcastProcessFunction,
  KeyedBroadcastReadOnlyContext,
  KeyedCoProcessFunction,
  ProcessJoinContext,
  ProcessJoinFunction,
  ReadOnlyBroadcastState,
} from './co-functions.js';
export { ConnectedStreams } from './connected-streams.js';
export type { ConnectorContext, Sink, SinkWriter, Source, SourceContext } from './connector.js';
export { DataStream, DataStreamSink, KeyedStream, WindowedStream } from './datastream.js';
export { type RemoteEnvironmentOptions, StreamExecutionEnvironment } from './environment.js';
export {
  type AggregateFunction,
  type Collector,
  type FilterFunction,
  type FlatMapFunction,
  type KeyedProcessContext,
  type KeyedProcessFunction,
  type KeySelector,
  ListStateDescriptor,
  type MapFunction,
  MapStateDescriptor,
  type OnTimerContext,
  type ReduceFunction,
  type RuntimeContext,
  type TimerServiceApi,
  ValueStateDescriptor,
} from './functions.js';
export { type JobClient, JobExecutionError, type JobExecutionResult } from './job-client.js';
export { CoGroupedStreams, IntervalJoin, IntervalJoined, JoinedStreams, WindowedJoin } from './joins.js';
export { CollectSink } from './sinks/collect-sink.js';
export { JetStreamSink, type JetStreamSinkOptions } from './sinks/jetstream-sink.js';
export { PrintSink } from './sinks/print-sink.js';
export { TextFileSink } from './sinks/text-file-sink.js';
export { CollectionSource } from './sources/collection-source.js';
export { GeneratorSource, type GeneratorSourceOptions } from './sources/generator-source.js';
export { JetStreamSource, type JetStreamSourceOptions } from './sources/jetstream-source.js';
export { TextFileSource } from './sources/text-file-source.js';
export { Time } from './time.js';
export { type TimestampAssigner, WatermarkStrategy } from './watermarks.js';
export {
  type ProcessWindowContext,
  type ProcessWindowFunction,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  WindowAssigner,
} from './windows.js';
