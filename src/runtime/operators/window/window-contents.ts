/**
 * What a window holds for its function, and how it becomes the window's result: the reduced value
 * (reduce, reduce-process), the accumulator (aggregate) or the list of elements (process). With
 * `keepLast` (countWindow(size, slide)) a window holds its last `keepLast` elements instead, and the
 * function runs over them when the window fires (Flink's evicting window with a CountEvictor).
 * Merging session windows combines contents: reduce, the aggregate's `merge`, or the lists concatenated.
 */
import type { WindowFunctionSpec } from '../../../api/transformation.js';

export class WindowContents {
  constructor(
    readonly fn: WindowFunctionSpec,
    readonly keepLast: number | undefined,
  ) {}

  /** The contents after adding `value` to `current` (undefined: the window is empty). */
  add(current: unknown, value: unknown): unknown {
    if (this.keepLast !== undefined) {
      const elements = current === undefined ? [] : (current as unknown[]);
      elements.push(value);
      if (elements.length > this.keepLast) elements.splice(0, elements.length - this.keepLast);
      return elements;
    }
    const fn = this.fn;
    switch (fn.kind) {
      case 'reduce':
      case 'reduce-process':
        return current === undefined ? value : fn.reduce(current, value);
      case 'aggregate':
        return fn.aggregate.add(value, current === undefined ? fn.aggregate.createAccumulator() : current);
      case 'process': {
        const elements = current === undefined ? [] : (current as unknown[]);
        elements.push(value);
        return elements;
      }
    }
  }

  /** Contents of two windows being merged (`a` the earlier one). */
  merge(a: unknown, b: unknown): unknown {
    if (a === undefined) return b;
    if (b === undefined) return a;
    const fn = this.fn;
    switch (fn.kind) {
      case 'reduce':
      case 'reduce-process':
        return fn.reduce(a, b);
      case 'aggregate': {
        const merge = fn.aggregate.merge;
        if (!merge) throw new Error('merging windows need an AggregateFunction with merge()');
        return merge(a, b);
      }
      case 'process':
        return [...(a as unknown[]), ...(b as unknown[])];
    }
  }

  /**
   * What the window function gets: the single value (reduce, aggregate result) or the element list, for
   * `process` (reduce-process: the reduced value as a one-element list).
   */
  evaluate(contents: unknown): { value: unknown } | { elements: unknown[] } {
    const fn = this.fn;
    if (this.keepLast !== undefined) {
      const elements = contents as unknown[];
      switch (fn.kind) {
        case 'reduce':
          return { value: elements.reduce((a, b) => fn.reduce(a, b)) };
        case 'reduce-process':
          return { elements: [elements.reduce((a, b) => fn.reduce(a, b))] };
        case 'aggregate': {
          let acc = fn.aggregate.createAccumulator();
          for (const e of elements) acc = fn.aggregate.add(e, acc);
          return { value: fn.aggregate.getResult(acc) };
        }
        case 'process':
          return { elements: [...elements] };
      }
    }
    switch (fn.kind) {
      case 'reduce':
        return { value: contents };
      case 'aggregate':
        return { value: fn.aggregate.getResult(contents) };
      case 'process':
        return { elements: [...(contents as unknown[])] };
      case 'reduce-process':
        return { elements: [contents] };
    }
  }
}
