/**
 * The execution graph's states and transitions, in-process: the tables are the rules (every status has an
 * entry, terminal ones lead nowhere), a legal path is applied, an illegal transition is refused, logged and
 * counted without changing anything, and a new attempt is refused while executions still run.
 */

import { describe, expect, it } from 'vitest';
import { JobStatus, TaskState } from '../../src/api/job-status.js';
import type { JobId } from '../../src/common/ids.js';
import {
  ExecutionGraph,
  JOB_TRANSITIONS,
  TASK_TRANSITIONS,
} from '../../src/runtime/jobmaster/execution-graph.js';
import { jobGraph, recordingLogger } from './fixtures.js';

function setup() {
  const { log, lines } = recordingLogger();
  let now = 1_000;
  const graph = new ExecutionGraph(jobGraph(), { log, wallClock: () => now });
  return { graph, lines, advance: (ms: number) => (now += ms) };
}

describe('execution graph transitions', () => {
  it('has a rule for every status, and terminal ones lead nowhere', () => {
    expect(Object.keys(JOB_TRANSITIONS).sort()).toEqual(Object.values(JobStatus).sort());
    expect(Object.keys(TASK_TRANSITIONS).sort()).toEqual(Object.values(TaskState).sort());
    for (const s of ['FINISHED', 'FAILED', 'CANCELED', 'SUSPENDED'] as const)
      expect(JOB_TRANSITIONS[s]).toEqual([]);
    for (const s of ['FINISHED', 'FAILED', 'CANCELED'] as const) expect(TASK_TRANSITIONS[s]).toEqual([]);
    // Every target is itself a status.
    for (const targets of Object.values(JOB_TRANSITIONS)) {
      for (const t of targets) expect(Object.values(JobStatus)).toContain(t);
    }
  });

  it('applies a legal path: created, running, failing, restarting, running again, finished', () => {
    const { graph, advance } = setup();
    expect(graph.executions.map((e) => `${e.vertexId}/${e.index}#${e.attempt}:${e.state}`)).toEqual([
      'src/0#0:SCHEDULED',
      'src/1#0:SCHEDULED',
      'sink/0#0:SCHEDULED',
    ]);
    for (const to of ['RUNNING', 'FAILING', 'RESTARTING', 'RUNNING'] as const) {
      expect(graph.transitionJob(to)).toBe(true);
      expect(graph.status).toBe(to);
    }
    expect(graph.endTime).toBeNull();
    advance(250);
    expect(graph.transitionJob('FINISHED')).toBe(true);
    expect(graph.endTime).toBe(1_250);
    expect(graph.refusedTransitions).toBe(0);
  });

  it('refuses an illegal job transition: logged, counted, not applied', () => {
    const { graph, lines } = setup();
    graph.transitionJob('RUNNING');
    // A running job never goes back to waiting for its first deployment.
    expect(graph.transitionJob('CREATED')).toBe(false);
    expect(graph.status).toBe('RUNNING');
    graph.transitionJob('CANCELLING');
    graph.transitionJob('CANCELED');
    // Nothing leaves a terminal status.
    expect(graph.transitionJob('RUNNING')).toBe(false);
    expect(graph.status).toBe('CANCELED');
    expect(graph.refusedTransitions).toBe(2);
    const refused = lines.filter((l) => l.msg.startsWith('illegal job transition'));
    expect(refused.map((l) => [l.from, l.to, l.level])).toEqual([
      ['RUNNING', 'CREATED', 40],
      ['CANCELED', 'RUNNING', 40],
    ]);
    // Staying where it is: no change, nothing refused.
    expect(graph.transitionJob('CANCELED')).toBe(false);
    expect(graph.refusedTransitions).toBe(2);
  });

  it('refuses an illegal task transition: a RUNNING task is not deploying again, a FINISHED one not running', () => {
    const { graph, lines } = setup();
    const [src0] = graph.executions;
    expect(graph.assignSlot(src0!, 'tm-1', 3)).toBe(true);
    expect(src0).toMatchObject({ state: 'DEPLOYING', taskManagerId: 'tm-1', slotIndex: 3 });
    expect(graph.transitionTask(src0!, 'RUNNING')).toBe(true);
    expect(graph.transitionTask(src0!, 'DEPLOYING')).toBe(false);
    expect(graph.transitionTask(src0!, 'FINISHED')).toBe(true);
    expect(graph.transitionTask(src0!, 'RUNNING')).toBe(false);
    expect(src0!.state).toBe('FINISHED');
    // A SCHEDULED execution cannot jump to RUNNING (it was never deployed).
    expect(graph.transitionTask(graph.executions[1]!, 'RUNNING')).toBe(false);
    expect(graph.executions[1]!.state).toBe('SCHEDULED');
    expect(graph.refusedTransitions).toBe(3);
    expect(lines.filter((l) => l.msg.startsWith('illegal task transition')).map((l) => l.task)).toEqual([
      'Source (1/2)#0 on tm-1',
      'Source (1/2)#0 on tm-1',
      'Source (2/2)#0',
    ]);
  });

  it('starts a new attempt only once every execution has ended, and forgets the old one', () => {
    const { graph, lines } = setup();
    const old = graph.executions[0]!;
    graph.assignSlot(old, 'tm-1', 0);
    graph.setAccumulators(old, { records: 5 });
    expect(graph.newAttempt()).toBe(false);
    expect(lines.some((l) => l.msg === 'new attempt refused: executions still run')).toBe(true);
    for (const e of graph.executions) graph.transitionTask(e, 'CANCELED');
    expect(graph.newAttempt()).toBe(true);
    expect(graph.attempt).toBe(1);
    expect(graph.restarts).toBe(1);
    expect(
      graph.executions.every((e) => e.attempt === 1 && e.state === 'SCHEDULED' && e.taskManagerId === null),
    ).toBe(true);
    expect(graph.accumulators()).toEqual({});
    // The old attempt's execution is no longer the graph's: changing it is refused loudly.
    expect(graph.isCurrent(old)).toBe(false);
    expect(() => graph.transitionTask(old, 'RUNNING')).toThrow(/not of the current attempt/);
  });

  it('a rescale: a running job goes RESTARTING, the next attempt at the new parallelism, not a restart', () => {
    const { graph } = setup();
    for (const e of graph.executions) graph.assignSlot(e, 'tm-1', e.index);
    graph.transitionJob('RUNNING');
    const old = graph.executions[0]!;
    expect(graph.transitionJob('RESTARTING')).toBe(true);
    const bigger = {
      ...graph.jobGraph,
      vertices: graph.jobGraph.vertices.map((v) => ({ ...v, parallelism: 3 })),
    };
    graph.rescale(bigger, true);
    expect(graph.attempt).toBe(1);
    expect(graph.restarts).toBe(0);
    expect(graph.jobGraph.vertices.map((v) => v.parallelism)).toEqual([3, 3]);
    expect(graph.executions.map((e) => `${e.vertexId}/${e.index}#${e.attempt}:${e.state}`)).toEqual([
      'src/0#1:SCHEDULED',
      'src/1#1:SCHEDULED',
      'src/2#1:SCHEDULED',
      'sink/0#1:SCHEDULED',
      'sink/1#1:SCHEDULED',
      'sink/2#1:SCHEDULED',
    ]);
    // The old attempt's executions are abandoned (their tasks are told to stop), not the graph's any more.
    expect(graph.isCurrent(old)).toBe(false);
    // Sizing an attempt that was never deployed keeps its number.
    graph.rescale(graph.jobGraph, false);
    expect(graph.attempt).toBe(1);
    expect(() => graph.rescale({ ...bigger, jobId: 'f'.repeat(32) as JobId }, true)).toThrow(
      /cannot change the job/,
    );
  });

  it('sums accumulators over subtasks and takes the minimum of watermarks', () => {
    const { graph } = setup();
    const [a, b] = graph.executions;
    graph.setAccumulators(a!, { 'records out': 3, 'src watermark': 70 });
    graph.setAccumulators(b!, { 'records out': 4, 'src watermark': 50 });
    expect(graph.accumulators('src')).toEqual({ 'records out': 7, 'src watermark': 50 });
  });
});
