/**
 * Checks a window's definition when the program builds its graph (and again when the operator is made):
 * a merging assigner (session windows) needs a trigger that can merge and, with aggregate(), an
 * AggregateFunction with merge(); allowed lateness is a finite number of milliseconds >= 0; a count
 * evictor keeps at least one element. Errors are SluiceErrors (INVALID_JOB) that name the problem.
 */
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { TransformationSpec } from '../transformation.js';

type WindowSpec = Extract<TransformationSpec, { kind: 'window' }>;

export function checkWindowSpec(spec: WindowSpec): void {
  const fail = (message: string): never => {
    throw new SluiceError(ErrorCode.InvalidJob, message);
  };
  const lateness = spec.allowedLatenessMs;
  if (typeof lateness !== 'number' || Number.isNaN(lateness) || lateness < 0) {
    fail(`allowed lateness must be a number of milliseconds >= 0, got ${String(lateness)}`);
  }
  if (spec.keepLast !== undefined && (!Number.isInteger(spec.keepLast) || spec.keepLast < 1)) {
    fail(`a count window needs a whole size >= 1, got ${String(spec.keepLast)}`);
  }
  const assigner = spec.assigner;
  if (!assigner.isMerging) return;
  const trigger = spec.trigger ?? assigner.getDefaultTrigger();
  if (!trigger.canMerge()) {
    fail(`${trigger.toString()} cannot be used with merging windows (${assigner.toString()})`);
  }
  if (spec.fn.kind === 'aggregate' && typeof spec.fn.aggregate.merge !== 'function') {
    fail(
      `aggregate() on merging windows (${assigner.toString()}) needs an AggregateFunction with merge(a, b)`,
    );
  }
}
