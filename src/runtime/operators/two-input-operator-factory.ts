/**
 * Turns a two-input StreamNode (connect, interval join, broadcast connect) into its operator instance.
 */
import type { ConnectorContext } from '../../api/connector.js';
import type { TwoInputSpec } from '../../api/two-input-specs.js';
import {
  CoBroadcastWithKeyedOperator,
  CoBroadcastWithNonKeyedOperator,
} from './broadcast-process-operators.js';
import {
  CoProcessOperator,
  CoStreamFlatMap,
  CoStreamMap,
  KeyedCoProcessOperator,
} from './co-process-operators.js';
import { IntervalJoinOperator } from './interval-join-operator.js';
import type { TwoInputStreamOperator } from './two-input-operator.js';

export function createTwoInputOperator(
  spec: TwoInputSpec,
  connector: ConnectorContext,
): TwoInputStreamOperator {
  switch (spec.kind) {
    case 'coMap':
      return new CoStreamMap(spec.fn);
    case 'coFlatMap':
      return new CoStreamFlatMap(spec.fn);
    case 'coProcess':
      return new CoProcessOperator(spec.fn);
    case 'keyedCoProcess':
      return new KeyedCoProcessOperator(spec.fn);
    case 'intervalJoin':
      return new IntervalJoinOperator(spec);
    case 'broadcastProcess':
      return new CoBroadcastWithNonKeyedOperator(spec, connector.restoredState);
    case 'keyedBroadcastProcess':
      return new CoBroadcastWithKeyedOperator(spec, connector.restoredState);
  }
}
