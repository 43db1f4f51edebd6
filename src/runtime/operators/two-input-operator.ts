/**
 * The contract of operators with two logical inputs (as Flink's TwoInputStreamOperator): the task calls
 * `processElement1` for records of input 0 and `processElement2` for records of input 1, one record at a
 * time, never concurrently; `processElement` is `processElement1` (so the chain treats the operator like
 * any other). Keyed two-input operators get the current key set from the key selector of the record's
 * input before each call (input 1 of a broadcast connect has none: no current key is set for it).
 *
 * Event time: the task hands a two-input operator the minimum of the watermarks of all channels of both
 * inputs; checkpoint barriers are aligned over all channels of both inputs. The operator itself refuses
 * nothing of this: it only sees which input a record came from.
 */
import type { Output, StreamOperator } from './operator.js';

export interface TwoInputStreamOperator<IN1 = unknown, IN2 = unknown, OUT = unknown>
  extends StreamOperator<IN1, OUT> {
  processElement1(value: IN1, timestamp: number | undefined): void;
  processElement2(value: IN2, timestamp: number | undefined): void;
}

export function isTwoInputOperator(operator: StreamOperator): operator is TwoInputStreamOperator {
  return typeof (operator as Partial<TwoInputStreamOperator>).processElement2 === 'function';
}

/** The Output that feeds a two-input operator's second input (the task's first input path feeds input 0). */
export function secondInput(
  operator: TwoInputStreamOperator,
  keyed: { setCurrentKey(key: unknown): void; clearCurrentKey(): void } | undefined,
  keySelector: ((value: unknown) => unknown) | undefined,
  counted: () => void,
): Pick<Output<unknown>, 'collect'> {
  if (keyed && keySelector) {
    return {
      collect: (value, timestamp) => {
        counted();
        keyed.setCurrentKey(keySelector(value));
        operator.processElement2(value, timestamp);
      },
    };
  }
  if (keyed) {
    // A keyed operator's unkeyed input (broadcast): no key is current while it runs.
    return {
      collect: (value, timestamp) => {
        counted();
        keyed.clearCurrentKey();
        operator.processElement2(value, timestamp);
      },
    };
  }
  return {
    collect: (value, timestamp) => {
      counted();
      operator.processElement2(value, timestamp);
    },
  };
}
