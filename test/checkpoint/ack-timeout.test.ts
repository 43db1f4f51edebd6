/**
 * Checkpoints never hang on a lost message: the coordinator on a manual clock (timers and durations), with
 * a real state store on a real nats-server for the commits. A checkpoint whose ack (or trigger) was lost is
 * aborted once no ack has come for the ack timeout — `max(2 × interval, 10 s)` by default, not the 10-minute
 * checkpoint timeout — and the next one is triggered at once and completes. A slow checkpoint whose acks
 * keep coming is not aborted. A commit that lands after the job ended here (suspended: the leadership was
 * lost while the pointer write was under way) stays in the pointer but is announced to no task.
 */

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobId } from '../../src/common/ids.js';
import { silentLogger } from '../../src/common/log.js';
import {
  ackTimeoutMs,
  type CheckpointingConfig,
  DEFAULT_CHECKPOINTING,
} from '../../src/config/checkpointing-config.js';
import { ManualClock } from '../../src/ha/clock.js';
import { liveServerCount, type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { CheckpointCoordinator } from '../../src/runtime/checkpoint/checkpoint-coordinator.js';
import type { CheckpointAck } from '../../src/runtime/checkpoint/protocol.js';
import { StateStore } from '../../src/runtime/checkpoint/state-store.js';
import type { TaskId } from '../../src/runtime/taskexecutor/protocol.js';

let server: NatsServerHandle;
let nc: NatsConnection;
let store: StateStore;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await StateStore.open(nc, `acktimeout_${Math.random().toString(36).slice(2, 8)}`);
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  expect(liveServerCount()).toBe(0);
});

const JOB = '00000000000000000000000000000a11' as JobId;
const source: TaskId = { jobId: JOB, vertexId: 'src', subtaskIndex: 0, attempt: 0 };
const sink: TaskId = { jobId: JOB, vertexId: 'sink', subtaskIndex: 0, attempt: 0 };

function setup(config: Partial<CheckpointingConfig>, jobId: JobId = JOB) {
  const clock = new ManualClock(0);
  const triggers: number[] = [];
  const completes: number[] = [];
  const coordinator = new CheckpointCoordinator({
    jobId,
    jobName: 'ack-timeout',
    epoch: 1,
    log: silentLogger(),
    store,
    config: { ...DEFAULT_CHECKPOINTING, ...config },
    clock,
    runningTasks: () => ({
      attempt: 0,
      all: [
        { task: source, taskManagerId: 'tm-1', source: true },
        { task: sink, taskManagerId: 'tm-1', source: false },
      ],
    }),
    tellTaskExecutor: (_tm, type, body) => {
      const id = (body as { checkpointId: number }).checkpointId;
      (type === 'trigger' ? triggers : completes).push(id);
    },
    runInMailbox: async (fn) => fn(),
  });
  const ack = (task: TaskId, checkpointId: number): CheckpointAck => ({
    task,
    taskManagerId: 'tm-1',
    checkpointId,
    syncMs: 0,
    handle: { vertexId: task.vertexId, subtaskIndex: 0, parallelism: 1, object: null, operators: [] },
  });
  const status = (id: number) => coordinator.stats().history.find((h) => h.id === id);
  return { clock, coordinator, triggers, completes, ack, status };
}

/** The commit writes to the real store: wait for it (real time), the manual clock standing still. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the checkpoint ack timeout', () => {
  it('defaults to max(2 × interval, 10 s), capped by the checkpoint timeout', () => {
    const c = (over: Partial<CheckpointingConfig>) => ackTimeoutMs({ ...DEFAULT_CHECKPOINTING, ...over });
    expect(c({ intervalMs: 1_000 })).toBe(10_000);
    expect(c({ intervalMs: 30_000 })).toBe(60_000);
    expect(c({ intervalMs: 30_000, timeoutMs: 45_000 })).toBe(45_000);
    expect(c({ intervalMs: 1_000, ackTimeoutMs: 3_000 })).toBe(3_000);
  });

  it('a lost ack: aborted within the ack timeout, the next checkpoint is triggered at once and completes', async () => {
    const { clock, coordinator, triggers, completes, ack, status } = setup({ intervalMs: 1_000 });
    coordinator.startPeriodic();
    await clock.advance(1_000);
    expect(triggers).toEqual([1]);
    // The source acks; the sink's ack is lost on the way.
    coordinator.onAck(ack(source, 1));
    await clock.advance(9_999); // the ack timeout runs from the last ack
    expect(status(1)?.status).toBe('IN_PROGRESS');
    expect(triggers).toEqual([1]); // max-concurrent 1: nothing else was triggered meanwhile
    await clock.advance(1);
    expect(status(1)?.status).toBe('FAILED');
    expect(status(1)?.failure).toMatch(/no acknowledgement for 10000 ms \(1\/2 acked\)/);
    // Far inside the 10-minute checkpoint timeout.
    expect(status(1)?.durationMs).toBe(10_000);
    await clock.advance(0);
    expect(triggers).toEqual([1, 2]);
    coordinator.onAck(ack(source, 2));
    coordinator.onAck(ack(sink, 2));
    await until(() => status(2)?.status === 'COMPLETED', 'checkpoint 2 to complete');
    expect(completes).toEqual([2]);
    expect(coordinator.stats().counts).toMatchObject({ completed: 1, failed: 1 });
    coordinator.shutdown('test over');
  });

  it('a lost trigger (no ack at all): aborted after the ack timeout', async () => {
    const { clock, coordinator, triggers, status } = setup({ intervalMs: 20_000 });
    coordinator.startPeriodic();
    await clock.advance(20_000);
    expect(triggers).toEqual([1]);
    await clock.advance(39_999);
    expect(status(1)?.status).toBe('IN_PROGRESS');
    await clock.advance(1);
    expect(status(1)?.status).toBe('FAILED');
    await clock.advance(0);
    expect(triggers).toEqual([1, 2]);
    coordinator.shutdown('test over');
  });

  it('a slow checkpoint whose acks keep coming is not aborted by the ack timeout', async () => {
    const { clock, coordinator, ack, status } = setup({ intervalMs: 1_000, ackTimeoutMs: 5_000 });
    coordinator.startPeriodic();
    await clock.advance(1_000);
    await clock.advance(4_000);
    coordinator.onAck(ack(source, 1)); // progress: the timer starts again
    await clock.advance(4_000);
    expect(status(1)?.status).toBe('IN_PROGRESS');
    coordinator.onAck(ack(sink, 1));
    await until(() => status(1)?.status === 'COMPLETED', 'checkpoint 1 to complete');
    coordinator.shutdown('test over');
  });
});

describe('a commit under way when the job ends here', () => {
  it('lands in the pointer but is announced to no task (the next restore starts from it)', async () => {
    const job = '00000000000000000000000000000a12' as JobId;
    const { clock, coordinator, triggers, completes, ack, status } = setup({ intervalMs: 1_000 }, job);
    const at = (task: TaskId): TaskId => ({ ...task, jobId: job });
    coordinator.startPeriodic();
    await clock.advance(1_000);
    expect(triggers).toEqual([1]);
    coordinator.onAck(ack(at(source), 1));
    coordinator.onAck(ack(at(sink), 1)); // every ack: the commit starts (metadata, then the pointer)
    coordinator.shutdown('job SUSPENDED'); // the leadership is lost while the pointer write is under way
    await coordinator.settle();
    expect(status(1)?.status).toBe('COMPLETED');
    expect(completes).toEqual([]);
    expect((await store.retained(job)).map((c) => c.checkpointId)).toEqual([1]);
  });

  it('is announced when the job still runs (the control case)', async () => {
    const job = '00000000000000000000000000000a13' as JobId;
    const { clock, coordinator, completes, ack, status } = setup({ intervalMs: 1_000 }, job);
    const at = (task: TaskId): TaskId => ({ ...task, jobId: job });
    coordinator.startPeriodic();
    await clock.advance(1_000);
    coordinator.onAck(ack(at(source), 1));
    coordinator.onAck(ack(at(sink), 1));
    await coordinator.settle();
    expect(status(1)?.status).toBe('COMPLETED');
    expect(completes).toEqual([1]);
    coordinator.shutdown('test over');
  });
});
