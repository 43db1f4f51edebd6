/**
 * The ResourceManager never hands out a slot of a TaskManager past its heartbeat timeout, even when its
 * periodic check has not run yet: a JobMaster that noticed the loss first (its own reconciliation) and
 * restarted must get the survivors' slots, not the dead TaskManager's (it would deploy there, fail and
 * restart once more). A real nats-server; the ResourceManager's clock is a number the test moves, and its
 * periodic check is set far beyond the test's duration, so only the check before allocation can act.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActorContext } from '../../src/actors/actor.js';
import { gateway } from '../../src/actors/protocol.js';
import { Rpc } from '../../src/actors/rpc.js';
import { Subjects } from '../../src/actors/subjects.js';
import { ErrorCode } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/log.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { ResourceManagerProtocol } from '../../src/runtime/resourcemanager/protocol.js';
import { ResourceManager } from '../../src/runtime/resourcemanager/resource-manager.js';

const TIMEOUT_MS = 400_000;

describe('ResourceManager: TaskManagers past their heartbeat timeout', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let rm: ResourceManager;
  let now = 0;
  const lost: Array<{ taskManagerId: string; reason: string }> = [];
  const report = (taskManagerId: string) => ({
    taskManagerId,
    host: 'localhost',
    pid: 1,
    slots: 2,
    slotReport: [
      { index: 0, jobId: null },
      { index: 1, jobId: null },
    ],
  });

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    const rpc = new Rpc(nc, { maxMessageBytes: 1 << 20, askTimeoutMs: 2_000, askRetries: 2 });
    const ctx: ActorContext = { nc, rpc, log: silentLogger(), clusterId: 'rm', maxMessageBytes: 1 << 20 };
    const subjects = new Subjects('rm');
    // The periodic check runs every min(interval, timeout / 4) = 60 s of real time: never within the test.
    rm = new ResourceManager(ctx, subjects, {
      id: 'rm-test',
      heartbeatIntervalMs: 60_000,
      heartbeatTimeoutMs: TIMEOUT_MS,
      now: () => now,
    });
    rm.onTaskManagerLost((taskManagerId, _jobs, reason) => lost.push({ taskManagerId, reason }));
    rm.start();
    const tms = gateway(rpc, subjects, ResourceManagerProtocol);
    await tms.ask('register', report('tm-dead'));
    await tms.ask('register', report('tm-alive'));
    // Past tm-dead's timeout; tm-alive registers again (as its heartbeat would) and is fresh.
    now = TIMEOUT_MS + 1_000;
    await tms.ask('register', report('tm-alive'));
  });

  afterAll(async () => {
    await rm?.stop();
    await nc?.close();
    await server?.stop();
  });

  it('declares it lost at the slot request and allocates on the survivors only', async () => {
    expect((await rm.taskManagers()).map((tm) => tm.id).sort()).toEqual(['tm-alive', 'tm-dead']);
    const slots = await rm.requestSlots('job-1', 2, 5_000);
    expect(slots.map((s) => s.taskManagerId)).toEqual(['tm-alive', 'tm-alive']);
    expect(lost).toEqual([{ taskManagerId: 'tm-dead', reason: expect.stringMatching(/no heartbeat for/) }]);
    expect((await rm.taskManagers()).map((tm) => tm.id)).toEqual(['tm-alive']);
  });

  it('a request the survivors cannot serve waits and times out instead of taking the lost slots', async () => {
    await expect(rm.requestSlots('job-2', 1, 200)).rejects.toMatchObject({
      code: ErrorCode.NoResourceAvailable,
      message: expect.stringMatching(/0 free of 2 slots in 1 TaskManagers/),
    });
  });
});
