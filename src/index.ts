/**
 * The package entry: `import { StreamExecutionEnvironment } from 'sluice'`. Everything exported here is
 * public API (checked by `npm run check:api`); nothing else is reachable from outside the package.
 * Importing it registers how a program run directly with node/tsx reaches a cluster.
 */
import { registerDefaultExecutionTargets } from './minicluster/default-execution-targets.js';

registerDefaultExecutionTargets();

export {
  AsyncDataStream,
  type AsyncFunction,
  type AsyncFunctionLike,
  type AsyncOutputMode,
  type AsyncResult,
  AsyncRetryStrategies,
  type AsyncRetryStrategy,
  AsyncRetryStrategyBuilder,
  type ResultFuture,
  RetryPredicates,
} from './api/async-data-stream.js';
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
} from './api/co-functions.js';
export type { ConnectorContext, Sink, SinkWriter, Source, SourceContext } from './api/connector.js';
export {
  BroadcastConnectedStream,
  BroadcastStream,
  CoGroupedStreams,
  ConnectedStreams,
  DataStream,
  DataStreamSink,
  IntervalJoin,
  IntervalJoined,
  JoinedStreams,
  KeyedStream,
  SingleOutputStreamOperator,
  WindowedJoin,
  WindowedStream,
} from './api/datastream.js';
export { type RemoteEnvironmentOptions, StreamExecutionEnvironment } from './api/environment.js';
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
} from './api/functions.js';
export { type JobClient, JobExecutionError, type JobExecutionResult } from './api/job-client.js';
export { JobStatus } from './api/job-status.js';
export { OutputTag } from './api/output-tag.js';
export type { ProcessContext, ProcessFunction } from './api/process-function.js';
export { CollectSink } from './api/sinks/collect-sink.js';
export { JetStreamSink, type JetStreamSinkOptions } from './api/sinks/jetstream-sink.js';
export { PrintSink } from './api/sinks/print-sink.js';
export {
  IDEMPOTENT_REDIS_COMMANDS,
  RedisCommand,
  RedisCommandDescription,
  type RedisDeliveryGuarantee,
  type RedisMapper,
  RedisSink,
  type RedisSinkOptions,
  type RedisSinkState,
  type RedisTransaction,
} from './api/sinks/redis-sink.js';
export { TextFileSink } from './api/sinks/text-file-sink.js';
export { CollectionSource } from './api/sources/collection-source.js';
export { GeneratorSource, type GeneratorSourceOptions } from './api/sources/generator-source.js';
export { JetStreamSource, type JetStreamSourceOptions } from './api/sources/jetstream-source.js';
export { TextFileSource } from './api/sources/text-file-source.js';
export type { ListState, MapState, ValueState } from './api/state.js';
export { Time } from './api/time.js';
export { type TimestampAssigner, WatermarkStrategy } from './api/watermarks.js';
export { GlobalWindows } from './api/windowing/global-windows.js';
export { EventTimeSessionWindows, ProcessingTimeSessionWindows } from './api/windowing/session-windows.js';
export {
  CountTrigger,
  EventTimeTrigger,
  type OnMergeContext,
  ProcessingTimeTrigger,
  PurgingTrigger,
  Trigger,
  type TriggerContext,
  TriggerResult,
} from './api/windowing/triggers.js';
export {
  GlobalWindow,
  type ProcessWindowContext,
  type ProcessWindowFunction,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  type Window,
  WindowAssigner,
} from './api/windows.js';
export { ErrorCode, isSluiceError, SluiceError } from './common/errors.js';
