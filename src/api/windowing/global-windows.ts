/**
 * GlobalWindows (as Flink's): one window per key holding every element of the key. Its default trigger
 * never fires: give it one with `.trigger(...)` (CountTrigger, PurgingTrigger, ...); `countWindow` is
 * built on it. Never late (it is not an event-time assigner), so allowed lateness does not apply.
 */
import { GlobalWindow, WindowAssigner } from '../windows.js';
import { NeverTrigger, type Trigger } from './triggers.js';

export class GlobalWindows extends WindowAssigner<GlobalWindow> {
  readonly eventTime = false;
  private constructor() {
    super();
  }
  static create(): GlobalWindows {
    return new GlobalWindows();
  }
  assignWindows(): GlobalWindow[] {
    return [GlobalWindow.get()];
  }
  getDefaultTrigger(): Trigger<GlobalWindow> {
    return new NeverTrigger();
  }
  toString(): string {
    return 'GlobalWindows()';
  }
}
