/**
 * Choosing the checkpoint to restore, against a real nats-server: the latest retained checkpoint when it
 * is intact; the previous one (with a warning naming the damage) when an object of the latest is missing
 * or corrupted; a clear CORRUPTED_STATE error when none is usable; a store that is only unavailable for a
 * while (its server down) is waited out, never taken for damage; a restore of a job that ended meanwhile
 * (suspended) is abandoned without judging any checkpoint. Also the state store's own checks.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import type { JobId } from '../../src/common/ids.js';
import { DEFAULT_CHECKPOINTING } from '../../src/config/checkpointing-config.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { CheckpointCoordinator } from '../../src/runtime/checkpoint/checkpoint-coordinator.js';
import {
  type CheckpointMetadata,
  checkpointTarget,
  type RetainedCheckpoint,
  subtaskObjectName,
} from '../../src/runtime/checkpoint/protocol.js';
import { StateStore } from '../../src/runtime/checkpoint/state-store.js';

const JOB = 'ab'.repeat(16) as JobId;

describe('restore: which checkpoint', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let store: StateStore;
  const warnings: string[] = [];

  const coordinator = (on = store, restoreUnavailableWaitMs?: number) =>
    new CheckpointCoordinator({
      jobId: JOB,
      jobName: 'test',
      epoch: 1,
      log: pino(
        { level: 'warn' },
        { write: (line: string) => void warnings.push(JSON.parse(line).msg as string) },
      ),
      store: on,
      config: DEFAULT_CHECKPOINTING,
      runningTasks: () => undefined,
      tellTaskExecutor: () => undefined,
      runInMailbox: async (fn) => fn(),
      ...(restoreUnavailableWaitMs !== undefined ? { restoreUnavailableWaitMs } : {}),
    });

  /** Stores checkpoint `id` with one subtask object; returns its pointer entry. */
  const storeCheckpoint = async (id: number, store_ = store): Promise<RetainedCheckpoint> => {
    const store = store_;
    const target = checkpointTarget(JOB, id);
    const object = await store.put(
      subtaskObjectName(target, 'v0', 0),
      new TextEncoder().encode(`state ${id}`),
    );
    const metadata: CheckpointMetadata = {
      version: 1,
      jobId: JOB,
      jobName: 'test',
      checkpointId: id,
      kind: 'checkpoint',
      target,
      timestamp: Date.now(),
      durationMs: 1,
      sizeBytes: object.sizeBytes,
      handles: [
        {
          vertexId: 'v0',
          subtaskIndex: 0,
          parallelism: 1,
          object,
          operators: [{ uid: 'op', maxParallelism: 128, keyed: true, connector: false }],
        },
      ],
    };
    const ref = await store.putMetadata(metadata);
    return {
      checkpointId: id,
      metadata: ref,
      timestamp: metadata.timestamp,
      durationMs: 1,
      sizeBytes: object.sizeBytes,
    };
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    store = await StateStore.open(nc, 'restore-test');
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('takes the latest intact checkpoint, falls back past a damaged one, and fails clearly when none is left', async () => {
    const c1 = await storeCheckpoint(1);
    const c2 = await storeCheckpoint(2);
    await store.writePointer(1, JOB, { checkpoints: [c1, c2], maxCheckpointId: 2 });

    expect((await coordinator().latestRestore())?.checkpointId).toBe(2);

    // Checkpoint 2's state object is overwritten with other bytes: restore falls back to 1.
    await store.put(
      subtaskObjectName(checkpointTarget(JOB, 2), 'v0', 0),
      new TextEncoder().encode('garbage'),
    );
    expect(await store.check((await store.getMetadata(c2.metadata)).handles[0]!.object!)).toBe('corrupted');
    warnings.length = 0;
    const fallback = await coordinator().latestRestore();
    expect(fallback?.checkpointId).toBe(1);
    expect(warnings).toContain('checkpoint 2 cannot be restored');
    expect(warnings).toContain('falling back to checkpoint 1: newer checkpoints are damaged');

    // Checkpoint 1's object is deleted too: nothing is usable.
    await store.delete(subtaskObjectName(checkpointTarget(JOB, 1), 'v0', 0));
    const err = await coordinator()
      .latestRestore()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe(ErrorCode.CorruptedState);
    expect((err as SluiceError).message).toMatch(
      /no retained checkpoint of job .* can be restored \(checkpoint 2: .*corrupted; checkpoint 1: .*missing\)/,
    );
  });

  it('abandons the restore of a job that ended meanwhile, judging no checkpoint (whose objects a new leader may have deleted)', async () => {
    const c7 = await storeCheckpoint(7);
    await store.writePointer(1, JOB, { checkpoints: [c7], maxCheckpointId: 7 });
    await store.delete(c7.metadata.name); // what a new leader's subsuming commit does to an old checkpoint
    warnings.length = 0;
    const ended = coordinator();
    ended.shutdown('job SUSPENDED');
    const err = await ended.latestRestore().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe(ErrorCode.IllegalState);
    expect((err as SluiceError).message).toMatch(/abandoned: the job ended here meanwhile \(job SUSPENDED\)/);
    expect(warnings).toEqual([]);
    // The control: a running job's coordinator judges that checkpoint unusable, and says so.
    await expect(coordinator().latestRestore()).rejects.toMatchObject({ code: ErrorCode.CorruptedState });
    expect(warnings).toContain('checkpoint 7 cannot be restored');
  });

  it('waits out a state store that is unavailable for a while, and never takes that for damage', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-restore-unavailable-'));
    let server = await startNatsServer({ storeDir: dir });
    const port = server.port;
    const conn = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    try {
      const own = await StateStore.open(conn, 'restore-unavailable', { timeoutMs: 500, retries: 1 });
      const c1 = await storeCheckpoint(1, own);
      const c2 = await storeCheckpoint(2, own);
      await own.writePointer(1, JOB, { checkpoints: [c1, c2], maxCheckpointId: 2 });

      // Down for 2 s (longer than the store's own retries) while the restore reads: it waits, then
      // restores the latest checkpoint, not an older one.
      server.kill('SIGKILL');
      await server.exited;
      await server.stop();
      warnings.length = 0;
      const restoring = coordinator(own, 30_000).latestRestore();
      await new Promise((r) => setTimeout(r, 2_000));
      server = await startNatsServer({ port, storeDir: dir });
      expect((await restoring)?.checkpointId).toBe(2);
      expect(warnings.filter((w) => /cannot be restored|falling back/.test(w))).toEqual([]);
      expect(warnings.some((w) => /the state store is unavailable; waiting/.test(w))).toBe(true);

      // Down for longer than the wait: the retryable error itself, neither a fallback nor CORRUPTED_STATE.
      server.kill('SIGKILL');
      await server.exited;
      const err = await coordinator(own, 1_500)
        .latestRestore()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(SluiceError);
      expect((err as SluiceError).retryable).toBe(true);
      expect((err as SluiceError).code).not.toBe(ErrorCode.CorruptedState);
    } finally {
      await conn.close().catch(() => {});
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('a reader gets STATE_NOT_FOUND or CORRUPTED_STATE, never wrong bytes', async () => {
    const ref = await store.put('some/object', new TextEncoder().encode('hello'));
    expect(new TextDecoder().decode(await store.get(ref))).toBe('hello');
    await store.put('some/object', new TextEncoder().encode('HELLO'));
    await expect(store.get(ref)).rejects.toMatchObject({ code: ErrorCode.CorruptedState });
    await store.delete('some/object');
    await expect(store.get(ref)).rejects.toMatchObject({ code: ErrorCode.StateNotFound });
    // A savepoint path that does not exist.
    await expect(store.getMetadata('savepoints/none')).rejects.toMatchObject({
      code: ErrorCode.StateNotFound,
    });
  });

  it('numbers new checkpoints above every id ever notified (savepoints included)', async () => {
    const job = 'cd'.repeat(16) as JobId;
    await store.writePointer(1, job, { checkpoints: [], maxCheckpointId: 41 });
    const c = new CheckpointCoordinator({
      jobId: job,
      jobName: 'test',
      epoch: 1,
      log: pino({ level: 'silent' }),
      store,
      config: DEFAULT_CHECKPOINTING,
      runningTasks: () => ({
        attempt: 0,
        all: [
          {
            task: { jobId: job, vertexId: 'v0', subtaskIndex: 0, attempt: 0 },
            taskManagerId: 'tm',
            source: true,
          },
        ],
      }),
      tellTaskExecutor: () => undefined,
      runInMailbox: async (fn) => fn(),
    });
    expect(await c.latestRestore()).toBeUndefined();
    void c.triggerSavepoint('savepoints/x', false).catch(() => undefined);
    expect(c.stats().history[0]?.id).toBe(42);
    c.shutdown('test over');
  });
});
