/**
 * Session windows (as Flink's, static gap): each element opens a window [timestamp, timestamp + gap); a
 * key's windows that overlap or touch are merged, so a session ends after `gap` ms without elements of
 * its key. Event time (watermarks close sessions) or processing time (the wall clock does).
 *
 * Refuses a gap that is not a finite number of milliseconds > 0 (INVALID_JOB, at graph building).
 */
import { checkPositiveMs, TimeWindow, WindowAssigner } from '../windows.js';
import { EventTimeTrigger, ProcessingTimeTrigger, type Trigger } from './triggers.js';

abstract class SessionWindows extends WindowAssigner<TimeWindow> {
  protected constructor(readonly gapMs: number) {
    super();
    checkPositiveMs('session gap', gapMs);
  }

  override get isMerging(): boolean {
    return true;
  }

  assignWindows(timestamp: number): TimeWindow[] {
    return [new TimeWindow(timestamp, timestamp + this.gapMs)];
  }
}

export class EventTimeSessionWindows extends SessionWindows {
  readonly eventTime = true;
  static withGap(gapMs: number): EventTimeSessionWindows {
    return new EventTimeSessionWindows(gapMs);
  }
  getDefaultTrigger(): Trigger<TimeWindow> {
    return EventTimeTrigger.create();
  }
  toString(): string {
    return `EventTimeSessionWindows(${this.gapMs})`;
  }
}

export class ProcessingTimeSessionWindows extends SessionWindows {
  readonly eventTime = false;
  static withGap(gapMs: number): ProcessingTimeSessionWindows {
    return new ProcessingTimeSessionWindows(gapMs);
  }
  getDefaultTrigger(): Trigger<TimeWindow> {
    return ProcessingTimeTrigger.create();
  }
  toString(): string {
    return `ProcessingTimeSessionWindows(${this.gapMs})`;
  }
}
