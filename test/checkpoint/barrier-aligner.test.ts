/**
 * Barrier alignment over a task's input channels: exactly-once blocks each channel from its barrier until
 * all have it (ended channels count as aligned); at-least-once blocks nothing; newer barriers abandon an
 * older alignment; late and repeated barriers are ignored. Then the same over real gates, remote (NATS),
 * local (in memory) and thread channels (a MessagePort between two hubs, as between two slot worker
 * threads): a blocked channel's records stay in the input gate until alignment.
 */
import { MessageChannel } from 'node:worker_threads';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Subjects } from '../../src/actors/subjects.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { barrier } from '../../src/runtime/network/elements.js';
import { FRAME_ITEMS_START } from '../../src/runtime/network/frame.js';
import { InputGate } from '../../src/runtime/network/input-gate.js';
import { OutputGate } from '../../src/runtime/network/output-gate.js';
import { ThreadChannelHub } from '../../src/runtime/network/thread-channels.js';
import { BarrierAligner } from '../../src/runtime/task/barrier-aligner.js';

function setup(channels: number, exactlyOnce: boolean) {
  const events: string[] = [];
  const blocked = new Set<number>();
  const aligner = new BarrierAligner(
    channels,
    exactlyOnce,
    {
      block: (c) => {
        blocked.add(c);
        events.push(`block ${c}`);
      },
      unblockAll: () => {
        blocked.clear();
        events.push('unblock');
      },
    },
    (id, target) => events.push(`snapshot ${id} ${target}`),
  );
  return { aligner, events, blocked };
}

describe('BarrierAligner', () => {
  it('exactly-once: blocks each channel at its barrier, snapshots once all have it, then unblocks', () => {
    const { aligner, events, blocked } = setup(3, true);
    aligner.onBarrier(0, 1, 't1');
    aligner.onBarrier(2, 1, 't1');
    expect([...blocked].sort()).toEqual([0, 2]);
    expect(events).not.toContain('snapshot 1 t1');
    expect(aligner.pending).toBe(1);
    aligner.onBarrier(1, 1, 't1');
    expect(events.slice(-2)).toEqual(['snapshot 1 t1', 'unblock']);
    expect(blocked.size).toBe(0);
    expect(aligner.pending).toBeUndefined();
  });

  it('at-least-once: never blocks, snapshots at the last barrier', () => {
    const { aligner, events } = setup(2, false);
    aligner.onBarrier(1, 4, 't4');
    aligner.onBarrier(0, 4, 't4');
    expect(events).toEqual(['snapshot 4 t4']);
  });

  it('an ended channel counts as aligned, before or after the other barriers', () => {
    const a = setup(2, true);
    a.aligner.onEnd(1);
    a.aligner.onBarrier(0, 1, 't');
    expect(a.events).toContain('snapshot 1 t');
    const b = setup(2, true);
    b.aligner.onBarrier(0, 2, 't');
    expect(b.events).not.toContain('snapshot 2 t');
    b.aligner.onEnd(1);
    expect(b.events).toContain('snapshot 2 t');
  });

  it('a newer barrier abandons an older alignment; older and repeated barriers are ignored', () => {
    const { aligner, events } = setup(2, true);
    aligner.onBarrier(0, 1, 'old');
    aligner.onBarrier(0, 2, 'new');
    expect(events).toEqual(['block 0', 'unblock', 'block 0']);
    aligner.onBarrier(1, 1, 'old'); // checkpoint 1 was abandoned: its late barrier does nothing
    expect(events).not.toContain('snapshot 1 old');
    aligner.onBarrier(1, 2, 'new');
    expect(events).toContain('snapshot 2 new');
    const count = events.length;
    aligner.onBarrier(0, 2, 'new'); // checkpoint 2 is done
    aligner.onBarrier(1, 1, 'old');
    expect(events.length).toBe(count);
  });
});

describe.each([
  { channels: 'remote', local: false, thread: false },
  { channels: 'local', local: true, thread: false },
  { channels: 'thread', local: false, thread: true },
])('BarrierAligner over real gates, $channels channels', ({ local, thread }) => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  const subjects = new Subjects('aligntest');

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    nc = await connect({ servers: server.url });
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('exactly-once: records behind an early barrier wait in the gate until the last barrier; snapshot first', async () => {
    const jobId = `align${local ? 'l' : thread ? 't' : 'r'}${'0'.repeat(27)}`;
    const base = { nc, subjects, jobId, attempt: 1, localChannels: local };
    // Thread channels: the senders' hub (slot 0) and the receiver's (slot 1), joined by a port.
    const hubs = [0, 1].map((slot) => new ThreadChannelHub({ process: 'align-tm', slot }));
    const { port1, port2 } = new MessageChannel();
    hubs[0]!.addPeer(1, port1);
    hubs[1]!.addPeer(0, port2);
    const input = InputGate.open({
      ...base,
      threadChannels: thread ? hubs[1]! : null,
      targetSubtask: 0,
      inputs: [{ edgeId: 'in', sourceParallelism: 2, inputIndex: 0 }],
    });
    const outputs = await Promise.all(
      [0, 1].map((p) =>
        OutputGate.open({
          ...base,
          threadChannels: thread ? hubs[0]! : null,
          edgeId: 'in',
          sourceSubtask: p,
          targetParallelism: 1,
          bufferTimeoutMs: 0,
        }),
      ),
    );
    try {
      expect(outputs.map((o) => o.localChannelCount)).toEqual(local ? [1, 1] : [0, 0]);
      expect(outputs.map((o) => o.threadChannelCount)).toEqual(thread ? [1, 1] : [0, 0]);
      const log: string[] = [];
      const aligner = new BarrierAligner(2, true, input, (id) => log.push(`snapshot ${id}`));
      // The task's loop: walk each frame's items, records into the log, barriers into the aligner.
      const consuming = (async () => {
        for (;;) {
          const f = await input.next();
          if (f === null) return;
          const items = f.items;
          for (let i = FRAME_ITEMS_START; i < items.length; ) {
            const tag = items[i];
            if (tag === 0) {
              log.push(String(items[i + 2]));
              i += 3;
            } else if (tag === 3) {
              aligner.onBarrier(f.channel, items[i + 1] as number, items[i + 2] as string);
              i += 3;
            } else if (tag === 2) {
              aligner.onEnd(f.channel);
              i += 1;
            } else i += 2;
          }
        }
      })();
      const [p0, p1] = outputs as [OutputGate, OutputGate];
      p0.emitRecord(0, 'p0 before', undefined);
      p1.emitRecord(0, 'p1 before', undefined);
      p0.broadcast(barrier(1, 'chk-1'));
      for (let i = 0; i < 3; i++) p0.emitRecord(0, `p0 after ${i}`, undefined);
      await expect.poll(() => aligner.pending).toBe(1);
      await new Promise((r) => setTimeout(r, 100));
      // channel 0 is blocked: its records after the barrier have not reached the task
      expect(log).toEqual(['p0 before', 'p1 before']);
      p1.broadcast(barrier(1, 'chk-1'));
      p1.emitRecord(0, 'p1 after', undefined);
      await Promise.all([p0.finish(), p1.finish(), consuming]);
      expect(log.slice(0, 3).sort()).toEqual(['p0 before', 'p1 before', 'snapshot 1'].sort());
      expect(log[2]).toBe('snapshot 1');
      expect(log.slice(3).sort()).toEqual(['p0 after 0', 'p0 after 1', 'p0 after 2', 'p1 after']);
      expect(log.filter((l) => l.startsWith('p0 after'))).toEqual(['p0 after 0', 'p0 after 1', 'p0 after 2']);
      if (thread) expect(input.stats.threadFramesIn).toBe(input.stats.framesIn);
    } finally {
      input.close();
      for (const o of outputs) o.close();
      for (const h of hubs) h.close();
    }
  });
});
