/**
 * Operators of `connect(broadcastStream)` (as Flink's CoBroadcastWithNonKeyedOperator and
 * CoBroadcastWithKeyedOperator): input 0 is the non-broadcast stream (read-only broadcast state), input 1
 * the broadcast stream (every subtask gets every element; read-write broadcast state). The keyed variant
 * adds keyed state and timers for input 0 and `applyToKeyedState` for input 1.
 *
 * Broadcast state is snapshotted per subtask as the operator's own state and restored at any
 * parallelism (see broadcast-state.ts). Emitted records carry the current element's timestamp (from an
 * event-time timer, the timer's). Refuses: the keyed variant on a stream that is not keyed.
 */
import type {
  AnyStateDescriptor,
  BroadcastContext,
  BroadcastProcessFunction,
  BroadcastReadOnlyContext,
  KeyedBroadcastContext,
  KeyedBroadcastOnTimerContext,
  KeyedBroadcastProcessFunction,
  KeyedBroadcastReadOnlyContext,
  StateOf,
} from '../../api/co-functions.js';
import type { Collector, MapStateDescriptor } from '../../api/functions.js';
import type { TwoInputSpec } from '../../api/two-input-specs.js';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import { BroadcastStates } from './broadcast-state.js';
import type { OperatorContext, Output } from './operator.js';
import { keyedTimerService, runtimeContext } from './runtime-context.js';
import type { TwoInputStreamOperator } from './two-input-operator.js';

type BroadcastSpec = Extract<TwoInputSpec, { kind: 'broadcastProcess' | 'keyedBroadcastProcess' }>;

abstract class BroadcastOperatorBase implements TwoInputStreamOperator {
  readonly broadcastState = true;
  protected ctx!: OperatorContext;
  protected out!: Output<unknown>;
  protected states!: BroadcastStates;
  protected timestamp: number | undefined;
  protected readonly collector: Collector<unknown> = { collect: (v) => this.out.collect(v, this.timestamp) };
  protected readOnlyContext!: BroadcastReadOnlyContext;
  protected broadcastContext!: BroadcastContext;

  constructor(
    readonly spec: BroadcastSpec,
    readonly restoredState: readonly unknown[] | undefined,
  ) {}

  open(ctx: OperatorContext, output: Output<unknown>): void {
    this.ctx = ctx;
    this.out = output;
    this.states = new BroadcastStates(this.spec.descriptors, ctx.operatorName);
    this.states.restore(this.restoredState, ctx.subtaskIndex);
    const common = {
      timestamp: () => this.timestamp,
      currentWatermark: () => ctx.currentWatermark(),
      currentProcessingTime: () => ctx.processingTime(),
    };
    this.readOnlyContext = {
      ...common,
      getBroadcastState: <K, V>(d: MapStateDescriptor<K, V>) => this.states.get(d, false),
    };
    this.broadcastContext = {
      ...common,
      getBroadcastState: <K, V>(d: MapStateDescriptor<K, V>) => this.states.get(d, true),
    };
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    this.processElement1(value, timestamp);
  }

  abstract processElement1(value: unknown, timestamp: number | undefined): void;
  abstract processElement2(value: unknown, timestamp: number | undefined): void;

  snapshotState(): unknown {
    return this.states.snapshot();
  }

  close(): void {
    this.spec.fn.close?.();
  }
}

export class CoBroadcastWithNonKeyedOperator extends BroadcastOperatorBase {
  readonly #fn: BroadcastProcessFunction<unknown, unknown, unknown>;

  constructor(
    spec: Extract<BroadcastSpec, { kind: 'broadcastProcess' }>,
    restored: readonly unknown[] | undefined,
  ) {
    super(spec, restored);
    this.#fn = spec.fn;
  }

  override open(ctx: OperatorContext, output: Output<unknown>): void {
    super.open(ctx, output);
    this.#fn.open?.(runtimeContext(ctx));
  }

  processElement1(value: unknown, timestamp: number | undefined): void {
    this.timestamp = timestamp;
    this.#fn.processElement(value, this.readOnlyContext, this.collector);
  }

  processElement2(value: unknown, timestamp: number | undefined): void {
    this.timestamp = timestamp;
    this.#fn.processBroadcastElement(value, this.broadcastContext, this.collector);
  }
}

type TimeDomain = 'EVENT_TIME' | 'PROCESSING_TIME';

export class CoBroadcastWithKeyedOperator extends BroadcastOperatorBase {
  readonly #fn: KeyedBroadcastProcessFunction<unknown, unknown, unknown, unknown>;
  #keyedReadOnly!: KeyedBroadcastReadOnlyContext<unknown>;
  #keyedBroadcast!: KeyedBroadcastContext;
  #onTimerContext!: KeyedBroadcastOnTimerContext<unknown>;
  #timeDomain: TimeDomain = 'EVENT_TIME';

  constructor(
    spec: Extract<BroadcastSpec, { kind: 'keyedBroadcastProcess' }>,
    restored: readonly unknown[] | undefined,
  ) {
    super(spec, restored);
    this.#fn = spec.fn;
  }

  override open(ctx: OperatorContext, output: Output<unknown>): void {
    if (!ctx.keyedState) {
      throw new Error(
        `process() with a KeyedBroadcastProcessFunction needs a keyed stream: keyBy(...).connect(broadcastStream) (operator '${ctx.operatorName}')`,
      );
    }
    super.open(ctx, output);
    const keyed = ctx.keyedState;
    const timers = ctx.timers;
    const timerService = keyedTimerService(ctx);
    this.#keyedReadOnly = {
      ...this.readOnlyContext,
      getCurrentKey: () => keyed.currentKey,
      timerService: () => timerService,
    };
    this.#onTimerContext = { ...this.#keyedReadOnly, timeDomain: () => this.#timeDomain };
    this.#keyedBroadcast = {
      ...this.broadcastContext,
      applyToKeyedState: <D extends AnyStateDescriptor>(
        d: D,
        fn: (key: unknown, state: StateOf<D>) => void,
      ) => applyToKeyedState(keyed, d, fn),
    };
    timers.setHandler({
      onEventTime: (timestamp) => this.#onTimer(timestamp, 'EVENT_TIME'),
      onProcessingTime: (timestamp) => this.#onTimer(timestamp, 'PROCESSING_TIME'),
    });
    this.#fn.open?.(runtimeContext(ctx));
  }

  processElement1(value: unknown, timestamp: number | undefined): void {
    this.timestamp = timestamp;
    this.#fn.processElement(value, this.#keyedReadOnly, this.collector);
  }

  processElement2(value: unknown, timestamp: number | undefined): void {
    this.timestamp = timestamp;
    this.#fn.processBroadcastElement(value, this.#keyedBroadcast, this.collector);
  }

  processWatermark(watermark: number): void {
    this.ctx.timers.advanceWatermark(watermark);
    this.out.emitWatermark(watermark);
  }

  override close(): void {
    this.ctx?.timers.close();
    super.close();
  }

  #onTimer(timestamp: number, domain: TimeDomain): void {
    if (!this.#fn.onTimer) return;
    this.#timeDomain = domain;
    this.timestamp = domain === 'EVENT_TIME' ? timestamp : undefined;
    this.#fn.onTimer(timestamp, this.#onTimerContext, this.collector);
  }
}

/** Runs `fn` for each key of this subtask holding the state `descriptor` names, that key being current. */
function applyToKeyedState<D extends AnyStateDescriptor>(
  keyed: KeyedStateBackend,
  descriptor: D,
  fn: (key: unknown, state: StateOf<D>) => void,
): void {
  const keys: unknown[] = [];
  for (const e of keyed.entries()) if (e.state === descriptor.name) keys.push(e.key);
  for (const key of keys) {
    keyed.setCurrentKey(key);
    const state =
      descriptor.kind === 'value'
        ? keyed.valueState(descriptor.name, (descriptor as { defaultValue?: unknown }).defaultValue)
        : descriptor.kind === 'list'
          ? keyed.listState(descriptor.name)
          : keyed.mapState(descriptor.name);
    fn(key, state as StateOf<D>);
  }
}
