/**
 * In-process fixtures for the JobMaster's execution graph and scheduler: a small job graph, a logger that
 * keeps its lines (to assert what was logged), a manual clock, and actions that record what the scheduler
 * asked the outside world to do. No NATS.
 */

import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { JobId } from '../../src/common/ids.js';
import { ManualClock } from '../../src/ha/clock.js';
import type { JobGraph } from '../../src/jobgraph/job-graph.js';
import { ExecutionGraph } from '../../src/runtime/jobmaster/execution-graph.js';
import { ExecutionReconciler } from '../../src/runtime/jobmaster/execution-reconciler.js';
import { createRestartStrategy } from '../../src/runtime/jobmaster/restart-strategy.js';
import { Scheduler, type SchedulerActions } from '../../src/runtime/jobmaster/scheduler.js';
import type { TaskId } from '../../src/runtime/taskexecutor/protocol.js';

export const JOB = '0000000000000000000000000000a0b1' as JobId;
export const OTHER_JOB = '0000000000000000000000000000ffff' as JobId;
export const HEARTBEAT_MS = 1_000;
export const CANCEL_TIMEOUT_MS = 3_000;
export const RESTART_DELAY_MS = 500;

/** `src` (parallelism 2) → `sink` (parallelism 1): three executions. */
export function jobGraph(): JobGraph {
  const chain = (uid: string) => ({ kind: 'chain' as const, operators: [{ uid, name: uid, kind: 'map' }] });
  return {
    jobId: JOB,
    name: 'two vertices',
    vertices: [
      { id: 'src', name: 'Source', parallelism: 2, maxParallelism: 128, operator: chain('src') },
      { id: 'sink', name: 'Sink', parallelism: 1, maxParallelism: 128, operator: chain('sink') },
    ],
    edges: [{ id: 'e0', source: 'src', target: 'sink', partitioner: 'rebalance' }],
    bufferTimeoutMs: 100,
  };
}

/** A pino logger whose lines are kept as parsed objects. */
export function recordingLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

export type Recorded =
  | { kind: 'cancelTasksOn'; taskManagerId: string }
  | { kind: 'cancelExecutions'; taskManagerId: string; tasks: TaskId[] }
  | { kind: 'publish'; message: string | undefined }
  | { kind: 'allRunning' }
  | { kind: 'stopping'; status: string }
  | { kind: 'releaseSlots' }
  | { kind: 'scheduleAttempt' }
  | { kind: 'terminated'; status: string };

export function setup(options: { restartAttempts?: number; epoch?: number } = {}) {
  const clock = new ManualClock(0);
  const { log, lines } = recordingLogger();
  const graph = new ExecutionGraph(jobGraph(), { log, wallClock: () => clock.now() });
  const recorded: Recorded[] = [];
  let leading = true;
  const actions: SchedulerActions = {
    cancelTasksOn: (taskManagerId) => recorded.push({ kind: 'cancelTasksOn', taskManagerId }),
    cancelExecutions: (taskManagerId, tasks) =>
      recorded.push({ kind: 'cancelExecutions', taskManagerId, tasks }),
    publish: (message) => recorded.push({ kind: 'publish', message }),
    allRunning: () => recorded.push({ kind: 'allRunning' }),
    stopping: (status) => recorded.push({ kind: 'stopping', status }),
    releaseSlots: () => recorded.push({ kind: 'releaseSlots' }),
    scheduleAttempt: () => recorded.push({ kind: 'scheduleAttempt' }),
    terminated: (status) => recorded.push({ kind: 'terminated', status }),
    inMailbox: (fn) => fn(),
    leading: () => leading,
  };
  const scheduler = new Scheduler({
    graph,
    reconciler: new ExecutionReconciler({
      jobId: JOB,
      clock,
      graceMs: HEARTBEAT_MS,
      silenceMs: 3 * HEARTBEAT_MS,
      epoch: options.epoch,
    }),
    restartStrategy: createRestartStrategy({
      type: 'fixed-delay',
      fixedDelay: { attempts: options.restartAttempts ?? 1, delayMs: RESTART_DELAY_MS },
      exponentialDelay: {
        initialBackoffMs: 1,
        maxBackoffMs: 1,
        multiplier: 1,
        resetBackoffThresholdMs: 1,
        jitterFactor: 0,
        attemptsBeforeReset: 1,
      },
      failureRate: { maxFailuresPerInterval: 1, intervalMs: 1, delayMs: 1 },
    }),
    clock,
    log,
    cancelTimeoutMs: CANCEL_TIMEOUT_MS,
    epoch: options.epoch,
    actions,
  });
  const kinds = () => recorded.map((r) => r.kind);
  const setLeading = (value: boolean) => {
    leading = value;
  };
  return { clock, graph, scheduler, recorded, kinds, lines, setLeading };
}

/** Slots by subtask index (slot sharing): src/0 and sink/0 on tm-1, src/1 on tm-2. */
export const SLOTS = [
  { taskManagerId: 'tm-1', slotIndex: 0 },
  { taskManagerId: 'tm-2', slotIndex: 0 },
];

export const task = (vertexId: string, subtaskIndex: number, attempt = 0, jobId = JOB): TaskId => ({
  jobId,
  vertexId,
  subtaskIndex,
  attempt,
});
