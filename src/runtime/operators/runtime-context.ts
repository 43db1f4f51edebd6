import type { ListStateDescriptor, MapStateDescriptor, RuntimeContext, ValueStateDescriptor } from '../../api/functions.js';
import type { OperatorContext } from './operator.js';

/** The RuntimeContext user functions see: where they run, and keyed state after keyBy. */
export function runtimeContext(ctx: OperatorContext): RuntimeContext {
  const keyed = () => {
    if (!ctx.keyedState) {
      throw new Error(`keyed state is only available after keyBy() (operator '${ctx.operatorName}')`);
    }
    return ctx.keyedState;
  };
  return {
    subtaskIndex: ctx.subtaskIndex,
    parallelism: ctx.parallelism,
    maxParallelism: ctx.maxParallelism,
    taskName: ctx.operatorName,
    getState: <T>(d: ValueStateDescriptor<T>) => keyed().valueState<T>(d.name, d.defaultValue),
    getListState: <T>(d: ListStateDescriptor<T>) => keyed().listState<T>(d.name),
    getMapState: <K, V>(d: MapStateDescriptor<K, V>) => keyed().mapState<K, V>(d.name),
  };
}
