/**
 * Turns a StreamNode of the program's plan into the operator instance that runs it.
 */
import type { ConnectorContext } from '../../api/connector.js';
import type { StreamNode } from '../../jobgraph/stream-graph.js';
import { AsyncWaitOperator } from './async-wait-operator.js';
import {
  FilterOperator,
  FlatMapOperator,
  MapOperator,
  ReduceOperator,
  TimestampsAndWatermarksOperator,
} from './basic-operators.js';
import { KeyedProcessOperator } from './keyed-process-operator.js';
import type { StreamOperator } from './operator.js';
import { ProcessOperator } from './process-operator.js';
import { SinkOperator } from './sink-operator.js';
import { createTwoInputOperator } from './two-input-operator-factory.js';
import { WindowOperator } from './window-operator.js';

export function createOperator(node: StreamNode, connector: ConnectorContext): StreamOperator {
  const spec = node.spec;
  switch (spec.kind) {
    case 'map':
      return new MapOperator(spec.fn);
    case 'flatMap':
      return new FlatMapOperator(spec.fn);
    case 'filter':
      return new FilterOperator(spec.fn);
    case 'reduce':
      return new ReduceOperator(spec.fn);
    case 'timestamps':
      return new TimestampsAndWatermarksOperator(spec.watermarks);
    case 'process':
      return new KeyedProcessOperator(spec.fn);
    case 'non-keyed-process':
      return new ProcessOperator(spec.fn);
    case 'window':
      return new WindowOperator(spec);
    case 'async':
      return new AsyncWaitOperator(spec, {
        restored: connector.restoredState,
        keySelector: node.keySelector,
      });
    case 'sink':
      return new SinkOperator(spec.sink, connector);
    case 'coMap':
    case 'coFlatMap':
    case 'coProcess':
    case 'keyedCoProcess':
    case 'intervalJoin':
    case 'broadcastProcess':
    case 'keyedBroadcastProcess':
      return createTwoInputOperator(spec, connector);
    case 'source':
      throw new Error(`source '${node.name}' can only be the head of a task`);
  }
}
