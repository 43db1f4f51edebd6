/**
 * Thread channels: an OutputGate on one hub and an InputGate on another, the two joined by a real
 * MessageChannel as two slot worker threads of a TaskManager are. Frames and credits go through the port
 * (nothing on the NATS data subjects), with the credit window; a receiver that goes away fails its sender
 * at once; a thread that dies (its port closes) fails the channels through it that have not ended, on
 * both sides, and leaves an ended one alone; a receiver of another TaskManager process is reached over
 * NATS. A real nats-server: the gates still connect over it, only the frames skip it.
 */
import { MessageChannel } from 'node:worker_threads';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Subjects } from '../../src/actors/subjects.js';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { record } from '../../src/runtime/network/elements.js';
import { InputGate, type InputGateOptions } from '../../src/runtime/network/input-gate.js';
import { OutputGate, type OutputGateOptions } from '../../src/runtime/network/output-gate.js';
import { ThreadChannelHub } from '../../src/runtime/network/thread-channels.js';

const subjects = new Subjects('threadtest');
let server: NatsServerHandle;
let nc: NatsConnection;
const closers: Array<{ close(): void }> = [];
let jobCounter = 0;

function newJobId(): string {
  jobCounter++;
  return `thr${jobCounter.toString().padStart(4, '0')}${'0'.repeat(21)}`;
}

/** Two slot threads of one TaskManager process: hubs of slots 0 and 1 joined by a port. */
function pair(process = 'tm-a'): { sender: ThreadChannelHub; receiver: ThreadChannelHub } {
  const sender = new ThreadChannelHub({ process, slot: 0 });
  const receiver = new ThreadChannelHub({ process, slot: 1 });
  const { port1, port2 } = new MessageChannel();
  sender.addPeer(1, port1);
  receiver.addPeer(0, port2);
  closers.push(sender, receiver);
  return { sender, receiver };
}

async function openOutput(
  hub: ThreadChannelHub,
  options: Omit<OutputGateOptions, 'subjects' | 'attempt' | 'nc'>,
): Promise<OutputGate> {
  const gate = await OutputGate.open({
    nc,
    subjects,
    attempt: 1,
    localChannels: false,
    threadChannels: hub,
    ...options,
  });
  closers.push(gate);
  return gate;
}

function openInput(
  hub: ThreadChannelHub,
  options: Omit<InputGateOptions, 'subjects' | 'attempt' | 'nc'>,
): InputGate {
  const gate = InputGate.open({
    nc,
    subjects,
    attempt: 1,
    localChannels: false,
    threadChannels: hub,
    ...options,
  });
  closers.push(gate);
  return gate;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

beforeAll(async () => {
  server = await startNatsServer({ jetstream: false });
  nc = await connect({ servers: server.url });
});

afterEach(() => {
  for (const c of closers.splice(0)) c.close();
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe('thread channels', () => {
  it('carry frames and credits over the port, nothing over the NATS data subjects, with the credit window', async () => {
    const { sender, receiver } = pair();
    const jobId = newJobId();
    const onData: Msg[] = [];
    const watcher = await connect({ servers: server.url });
    watcher.subscribe(`sluice.threadtest.data.${jobId}.>`, {
      callback: (_e, m) => {
        onData.push(m);
      },
    });
    watcher.subscribe(`sluice.threadtest.credit.${jobId}.>`, {
      callback: (_e, m) => {
        onData.push(m);
      },
    });
    await watcher.flush();
    try {
      const input = openInput(receiver, {
        jobId,
        targetSubtask: 0,
        inputs: [{ edgeId: 'bp', sourceParallelism: 1, inputIndex: 0 }],
        creditsPerChannel: 2,
      });
      const output = await openOutput(sender, {
        jobId,
        edgeId: 'bp',
        sourceSubtask: 0,
        targetParallelism: 1,
        bufferTimeoutMs: 0, // a frame per record
      });
      expect([output.threadChannelCount, output.localChannelCount]).toEqual([1, 0]);
      output.emitRecord(0, 1, undefined);
      output.emitRecord(0, 2, undefined);
      expect(output.writable).toBe(true); // frames 1 and 2: the window
      output.emitRecord(0, 3, undefined);
      expect(output.writable).toBe(false); // frame 3 waits for credit
      let ready = false;
      const readying = output.ready().then(() => {
        ready = true;
      });
      expect((await input.next())?.elements).toEqual([record(1)]); // handed out, not yet consumed
      await sleep(50);
      expect(ready).toBe(false);
      expect((await input.next())?.elements).toEqual([record(2)]); // frame 1 consumed: grant 3
      await readying;
      expect(output.writable).toBe(true);

      const N = 5_000;
      const produce = async () => {
        for (let i = 0; i < N; i++) {
          output.emitRecord(0, { i, pad: 'x'.repeat(50) }, 1_000 + i);
          if (!output.writable) await output.ready();
        }
        await output.finish({ waitForConsumption: true });
      };
      const seen: number[] = [];
      const consume = async () => {
        for (;;) {
          const f = await input.next();
          if (f === null) return;
          for (const e of f.elements) {
            if (e.kind === 0 && typeof e.value === 'object') {
              seen.push((e.value as { i: number }).i);
              expect(e.timestamp).toBe(1_000 + (e.value as { i: number }).i);
            }
          }
        }
      };
      await Promise.all([produce(), consume()]);
      expect(seen).toEqual([...Array(N).keys()]);
      expect(input.stats.peakBufferedFrames).toBeLessThanOrEqual(2);
      expect(output.stats.backpressuredMs).toBeGreaterThan(0);
      expect(output.stats.threadFramesOut).toBe(output.stats.framesOut);
      expect(input.stats.threadFramesIn).toBe(input.stats.framesIn);
      expect(input.stats.bytesIn).toBe(output.stats.bytesOut);
      await watcher.flush();
      // Only the connect request (with its reply subject) crossed NATS: no frame, no credit.
      expect(onData.filter((m) => !m.reply)).toEqual([]);
      expect(onData.filter((m) => m.reply).length).toBe(1);
      await sleep(20);
      expect(sender.channelCount + receiver.channelCount).toBe(0); // both ends let go
    } finally {
      await watcher.close();
    }
  });

  it('a receiver that is cancelled fails its sender at once, not after a wait for credit', async () => {
    const { sender, receiver } = pair();
    const jobId = newJobId();
    const input = openInput(receiver, {
      jobId,
      targetSubtask: 0,
      inputs: [{ edgeId: 'c', sourceParallelism: 1, inputIndex: 0 }],
      creditsPerChannel: 1,
    });
    const output = await openOutput(sender, {
      jobId,
      edgeId: 'c',
      sourceSubtask: 0,
      targetParallelism: 1,
      bufferTimeoutMs: 0,
    });
    output.emitRecord(0, 'a', undefined);
    output.emitRecord(0, 'b', undefined);
    expect(output.writable).toBe(false);
    const waiting = output.ready();
    input.close(); // the consuming task is cancelled
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).message).toMatch(
      /edge c subtask 0 -> 0 .*: the receiving subtask of edge c subtask 0 -> 0 .* stopped before the end of the channel: input gate closed/,
    );
    expect(receiver.receiver(`sluice.threadtest.data.${jobId}.1.c.0`)).toBeUndefined();
  });

  it('a thread that dies fails the channels through it that have not ended, on both sides', async () => {
    // The sending thread dies: its receiver fails instead of waiting for frames that never come.
    {
      const { sender, receiver } = pair();
      const jobId = newJobId();
      const input = openInput(receiver, {
        jobId,
        targetSubtask: 0,
        inputs: [{ edgeId: 'd', sourceParallelism: 1, inputIndex: 0 }],
      });
      const output = await openOutput(sender, {
        jobId,
        edgeId: 'd',
        sourceSubtask: 0,
        targetParallelism: 1,
        bufferTimeoutMs: 0,
      });
      output.emitRecord(0, 'x', undefined);
      expect((await input.next())?.elements).toEqual([record('x')]);
      const next = input.next();
      sender.close(); // as the port closes when the worker thread exits
      const err = await next.catch((e: unknown) => e);
      expect((err as SluiceError).code).toBe(ErrorCode.ConnectionFailed);
      expect((err as SluiceError).message).toMatch(
        /edge d subtask 0 -> 0 .*: the sending thread is gone: the worker thread of slot 0 is gone/,
      );
    }
    // The receiving thread dies: its sender, out of credit, fails at once.
    {
      const { sender, receiver } = pair();
      const jobId = newJobId();
      openInput(receiver, {
        jobId,
        targetSubtask: 0,
        inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
        creditsPerChannel: 1,
      });
      const output = await openOutput(sender, {
        jobId,
        edgeId: 'e',
        sourceSubtask: 0,
        targetParallelism: 1,
        bufferTimeoutMs: 0,
      });
      output.emitRecord(0, 'a', undefined);
      output.emitRecord(0, 'b', undefined);
      const waiting = output.ready();
      receiver.close();
      const err = await waiting.catch((e: unknown) => e);
      expect((err as SluiceError).code).toBe(ErrorCode.ConnectionFailed);
      expect((err as SluiceError).message).toMatch(/edge e subtask 0 -> 0 .*: .*thread/);
    }
    // A channel whose end came before the sending thread died is complete: its receiver reads it to the end.
    {
      const { sender, receiver } = pair();
      const jobId = newJobId();
      const input = openInput(receiver, {
        jobId,
        targetSubtask: 0,
        inputs: [{ edgeId: 'f', sourceParallelism: 1, inputIndex: 0 }],
      });
      const output = await openOutput(sender, {
        jobId,
        edgeId: 'f',
        sourceSubtask: 0,
        targetParallelism: 1,
      });
      output.emitRecord(0, 'last', undefined);
      await output.finish();
      await sleep(20);
      sender.close();
      await sleep(20);
      expect((await input.next())?.elements).toEqual([record('last'), { kind: 2 }]);
      expect(await input.next()).toBeNull();
    }
  });

  it('decides per target from where it runs: a receiver of another TaskManager process is reached over NATS', async () => {
    const here = pair('tm-a');
    const elsewhere = new ThreadChannelHub({ process: 'tm-b', slot: 1 });
    closers.push(elsewhere);
    const jobId = newJobId();
    const inputs = [here.receiver, elsewhere].map((hub, q) =>
      openInput(hub, {
        jobId,
        targetSubtask: q,
        inputs: [{ edgeId: 'g', sourceParallelism: 1, inputIndex: 0 }],
      }),
    );
    const output = await openOutput(here.sender, {
      jobId,
      edgeId: 'g',
      sourceSubtask: 0,
      targetParallelism: 2,
    });
    expect(output.threadChannelCount).toBe(1);
    output.emitRecord(0, 'to 0', undefined);
    output.emitRecord(1, 'to 1', undefined);
    await output.finish();
    for (const [q, input] of inputs.entries()) {
      expect((await input.next())?.elements).toEqual([record(`to ${q}`), { kind: 2 }]);
      expect(input.stats.threadFramesIn).toBe(q === 0 ? 1 : 0);
    }
  });

  it('refuses a second receiver for the same channel in one hub, and unregisters on close', () => {
    const { receiver } = pair();
    const jobId = newJobId();
    const options = {
      jobId,
      targetSubtask: 0,
      inputs: [{ edgeId: 'h', sourceParallelism: 1, inputIndex: 0 }],
    };
    const first = openInput(receiver, options);
    expect(() => openInput(receiver, options)).toThrow(/already registered in this thread/);
    first.close();
    expect(receiver.receiver(`sluice.threadtest.data.${jobId}.1.h.0`)).toBeUndefined();
    openInput(receiver, options);
  });
});
