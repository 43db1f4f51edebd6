import type {
  ListStateDescriptor,
  MapStateDescriptor,
  RuntimeContext,
  TimerServiceApi,
  ValueStateDescriptor,
} from '../../api/functions.js';
import {
  KeyedStateBackend,
  type ListState,
  type MapState,
  type ValueState,
} from '../state/keyed-state-backend.js';
import type { OperatorContext } from './operator.js';

/**
 * The RuntimeContext user functions see: where they run, and keyed state after keyBy.
 *
 * State handles route each call to the backend of the subtask that is processing right now (see
 * `KeyedStateBackend.active`), so one function instance shared by the subtasks of a TaskManager still
 * reads and writes the state of the record's own subtask and key.
 */
export function runtimeContext(ctx: OperatorContext): RuntimeContext {
  if (!ctx.keyedState) {
    const fail = (): never => {
      throw new Error(`keyed state is only available after keyBy() (operator '${ctx.operatorName}')`);
    };
    return { ...where(ctx), getState: fail, getListState: fail, getMapState: fail };
  }
  const backend = () => {
    const active = KeyedStateBackend.active;
    if (!active) throw new Error('keyed state accessed outside of a keyed context');
    return active;
  };
  return {
    ...where(ctx),
    getState: <T>(d: ValueStateDescriptor<T>): ValueState<T> => ({
      value: () => backend().valueState<T>(d.name, d.defaultValue).value(),
      update: (v) => backend().valueState<T>(d.name, d.defaultValue).update(v),
      clear: () => backend().valueState<T>(d.name).clear(),
    }),
    getListState: <T>(d: ListStateDescriptor<T>): ListState<T> => ({
      get: () => backend().listState<T>(d.name).get(),
      add: (v) => backend().listState<T>(d.name).add(v),
      update: (vs) => backend().listState<T>(d.name).update(vs),
      clear: () => backend().listState<T>(d.name).clear(),
    }),
    getMapState: <K, V>(d: MapStateDescriptor<K, V>): MapState<K, V> => {
      const m = () => backend().mapState<K, V>(d.name);
      return {
        get: (k) => m().get(k),
        put: (k, v) => m().put(k, v),
        remove: (k) => m().remove(k),
        contains: (k) => m().contains(k),
        entries: () => m().entries(),
        keys: () => m().keys(),
        values: () => m().values(),
        isEmpty: () => m().isEmpty(),
        clear: () => m().clear(),
      };
    },
  };
}

function where(ctx: OperatorContext) {
  return {
    subtaskIndex: ctx.subtaskIndex,
    parallelism: ctx.parallelism,
    maxParallelism: ctx.maxParallelism,
    taskName: ctx.operatorName,
  };
}

/** The timer service a keyed function sees: the operator's keyed timers and the task's clocks. */
export function keyedTimerService(ctx: OperatorContext): TimerServiceApi {
  const timers = ctx.timers;
  return {
    currentProcessingTime: () => ctx.processingTime(),
    currentWatermark: () => timers.currentWatermark,
    registerEventTimeTimer: (t) => timers.registerEventTimeTimer(t),
    registerProcessingTimeTimer: (t) => timers.registerProcessingTimeTimer(t),
    deleteEventTimeTimer: (t) => timers.deleteEventTimeTimer(t),
    deleteProcessingTimeTimer: (t) => timers.deleteProcessingTimeTimer(t),
  };
}
