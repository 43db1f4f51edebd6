/**
 * Local channels: an OutputGate and an InputGate in the same thread hand frames over in memory, with the
 * remote path's credit window, in-band order of records, watermarks, barriers and the end of partition,
 * and a clear failure (not a hang) when the consumer goes away. A real nats-server: the gates still
 * connect and subscribe as usual, only the frames skip it.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Subjects } from '../../src/actors/subjects.js';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import {
  barrier,
  END_OF_PARTITION,
  record,
  type StreamElement,
  watermark,
} from '../../src/runtime/network/elements.js';
import { InputGate, type InputGateOptions } from '../../src/runtime/network/input-gate.js';
import { localReceiverCount } from '../../src/runtime/network/local-channels.js';
import { OutputGate, type OutputGateOptions } from '../../src/runtime/network/output-gate.js';

const subjects = new Subjects('localtest');
let server: NatsServerHandle;
const connections: NatsConnection[] = [];
const gates: Array<{ close(): void }> = [];
let jobCounter = 0;

function newJobId(): string {
  jobCounter++;
  return `loc${jobCounter.toString().padStart(4, '0')}${'0'.repeat(21)}`;
}

async function conn(): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  return nc;
}

async function openOutput(options: Omit<OutputGateOptions, 'subjects' | 'attempt'>): Promise<OutputGate> {
  const gate = await OutputGate.open({ subjects, attempt: 1, localChannels: true, ...options });
  gates.push(gate);
  return gate;
}

function openInput(options: Omit<InputGateOptions, 'subjects' | 'attempt'>): InputGate {
  const gate = InputGate.open({ subjects, attempt: 1, localChannels: true, ...options });
  gates.push(gate);
  return gate;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

beforeAll(async () => {
  server = await startNatsServer({ jetstream: false });
});

afterEach(() => {
  for (const g of gates.splice(0)) g.close();
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  await server?.stop();
});

describe('local channels', () => {
  it('hand records over by reference, nothing encoded or published; off, the same gates go through NATS', async () => {
    const nc = await conn();
    for (const local of [true, false]) {
      const jobId = newJobId();
      const input = openInput({
        nc,
        jobId,
        targetSubtask: 0,
        inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
      });
      const output = await openOutput({
        nc,
        jobId,
        edgeId: 'e',
        sourceSubtask: 0,
        targetParallelism: 1,
        bufferTimeoutMs: 0,
        localChannels: local,
      });
      const value = { id: 1, tags: ['a'] };
      output.emitRecord(0, value, 5);
      const frame = (await input.next())!;
      const got = frame.elements[0]!;
      expect(got).toEqual({ kind: 0, value, timestamp: 5 });
      // the very object (local), or a copy decoded from the wire (remote)
      expect(got.kind === 0 && got.value === value).toBe(local);
      expect([output.localChannelCount, input.localChannelCount]).toEqual(local ? [1, 1] : [0, 0]);
      expect(output.stats.localFramesOut).toBe(local ? 1 : 0);
      expect(output.stats.bytesOut > 0).toBe(!local);
      expect(input.stats.localFramesIn).toBe(local ? 1 : 0);
      await output.finish();
      expect((await input.next())?.elements).toEqual([{ kind: 2 }]);
      expect(await input.next()).toBeNull();
    }
  });

  it('keeps the credit window: a producer ahead of its consumer stops being writable, and resumes per frame consumed', async () => {
    const nc = await conn();
    const jobId = newJobId();
    const input = openInput({
      nc,
      jobId,
      targetSubtask: 0,
      inputs: [{ edgeId: 'bp', sourceParallelism: 1, inputIndex: 0 }],
      creditsPerChannel: 2,
    });
    const output = await openOutput({
      nc,
      jobId,
      edgeId: 'bp',
      sourceSubtask: 0,
      targetParallelism: 1,
      bufferTimeoutMs: 0, // a frame per record
    });
    output.emitRecord(0, 1, undefined);
    output.emitRecord(0, 2, undefined);
    expect(output.writable).toBe(true); // frames 1 and 2: the window
    output.emitRecord(0, 3, undefined);
    expect(output.writable).toBe(false); // frame 3 waits for credit
    expect(output.queuedBytes).toBeGreaterThan(0);
    let ready = false;
    const readying = output.ready().then(() => {
      ready = true;
    });
    await sleep(50);
    expect(ready).toBe(false);
    expect((await input.next())?.elements).toEqual([record(1)]); // handed out, not yet consumed
    await sleep(20);
    expect(ready).toBe(false);
    expect((await input.next())?.elements).toEqual([record(2)]); // frame 1 consumed: grant 3
    await readying;
    expect(output.writable).toBe(true);
    expect(output.queuedBytes).toBe(0);
    expect(input.stats.peakBufferedFrames).toBeLessThanOrEqual(2);

    // A burst far over the window: the queue holds what was emitted since writable turned false.
    const N = 20_000;
    const produce = async () => {
      for (let i = 0; i < N; i++) {
        output.emitRecord(0, { i, pad: 'x'.repeat(50) }, undefined);
        if (!output.writable) await output.ready();
      }
      await output.finish();
    };
    const seen: number[] = [];
    const consume = async () => {
      for (;;) {
        const f = await input.next();
        if (f === null) return;
        for (const e of f.elements)
          if (e.kind === 0 && typeof e.value === 'object') seen.push((e.value as { i: number }).i);
      }
    };
    await Promise.all([produce(), consume()]);
    expect(seen).toEqual([...Array(N).keys()]);
    expect(input.stats.peakBufferedFrames).toBeLessThanOrEqual(2);
    expect(output.stats.backpressuredMs).toBeGreaterThan(0);
  });

  it('decides per target: a receiver in this thread gets frames in memory, one that is not gets them over NATS', async () => {
    const nc = await conn();
    const jobId = newJobId();
    const inputs = [false, true].map((local, q) =>
      openInput({
        nc,
        jobId,
        targetSubtask: q,
        inputs: [{ edgeId: 'mix', sourceParallelism: 1, inputIndex: 0 }],
        localChannels: local, // target 0 stands for a subtask in another process
      }),
    );
    const output = await openOutput({ nc, jobId, edgeId: 'mix', sourceSubtask: 0, targetParallelism: 2 });
    expect(output.localChannelCount).toBe(1);
    for (let i = 0; i < 1_000; i++) output.emitRecord(i % 2, { i }, i);
    output.broadcast(watermark(2_000));
    const finishing = output.finish();
    for (const [q, input] of inputs.entries()) {
      const values: number[] = [];
      const marks: number[] = [];
      for (;;) {
        const f = await input.next();
        if (f === null) break;
        for (const e of f.elements) {
          if (e.kind === 0) values.push((e.value as { i: number }).i);
          if (e.kind === 1) marks.push(e.watermark);
        }
      }
      expect(values).toEqual([...Array(500).keys()].map((k) => 2 * k + q));
      expect(marks).toEqual([2_000]);
      expect(input.localChannelCount).toBe(q);
      expect(input.stats.localFramesIn > 0).toBe(q === 1);
    }
    await finishing;
  });

  it('a consumer that is cancelled fails its local producer at once (no wait for credit that never comes)', async () => {
    const nc = await conn();
    const jobId = newJobId();
    const input = openInput({
      nc,
      jobId,
      targetSubtask: 0,
      inputs: [{ edgeId: 'c', sourceParallelism: 1, inputIndex: 0 }],
      creditsPerChannel: 1,
    });
    const output = await openOutput({
      nc,
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
      /the receiving subtask of edge c subtask 0 -> 0 .* stopped before the end of the channel: input gate closed/,
    );
    expect(() => output.emitRecord(0, 'c', undefined)).toThrow(/stopped before the end of the channel/);
    expect(localReceiverCount()).toBe(0);

    // A consumer that closes after consuming the end leaves its producer finished, not failed.
    const jobId2 = newJobId();
    const input2 = openInput({
      nc,
      jobId: jobId2,
      targetSubtask: 0,
      inputs: [{ edgeId: 'c', sourceParallelism: 1, inputIndex: 0 }],
    });
    const output2 = await openOutput({
      nc,
      jobId: jobId2,
      edgeId: 'c',
      sourceSubtask: 0,
      targetParallelism: 1,
    });
    output2.emitRecord(0, 'x', undefined);
    const finishing = output2.finish({ waitForConsumption: true });
    expect((await input2.next())?.elements).toEqual([record('x'), { kind: 2 }]);
    expect(await input2.next()).toBeNull();
    input2.close();
    await finishing;
  });

  it('is not failed by a NATS reconnect (no frame crosses NATS), unlike a remote channel', async () => {
    const nc = await conn();
    const jobId = newJobId();
    const input = openInput({
      nc,
      jobId,
      targetSubtask: 0,
      inputs: [{ edgeId: 'r', sourceParallelism: 1, inputIndex: 0 }],
    });
    const output = await openOutput({
      nc,
      jobId,
      edgeId: 'r',
      sourceSubtask: 0,
      targetParallelism: 1,
      bufferTimeoutMs: 0,
    });
    output.emitRecord(0, 'before', undefined);
    expect((await input.next())?.elements).toEqual([record('before')]);
    await nc.reconnect();
    await sleep(100);
    output.emitRecord(0, 'after', undefined);
    expect((await input.next())?.elements).toEqual([record('after')]);
    expect(output.writable).toBe(true);
  });

  it('refuses a second receiver for the same channel in one thread, and unregisters on close', async () => {
    const nc = await conn();
    const jobId = newJobId();
    const before = localReceiverCount();
    const options = {
      nc,
      jobId,
      targetSubtask: 0,
      inputs: [{ edgeId: 'd', sourceParallelism: 1, inputIndex: 0 }],
    };
    const first = openInput(options);
    expect(localReceiverCount()).toBe(before + 1);
    expect(() => openInput(options)).toThrow(
      expect.objectContaining({
        code: ErrorCode.IllegalState,
        message: expect.stringMatching(/already registered/),
      }),
    );
    first.close();
    expect(localReceiverCount()).toBe(before);
  });
});

describe('local channels: order', () => {
  it('delivers records, watermarks, barriers and the end of partition in emission order; a barrier ends its frame', async () => {
    const nc = await conn();
    const jobId = newJobId();
    const input = openInput({
      nc,
      jobId,
      targetSubtask: 0,
      inputs: [{ edgeId: 'ord', sourceParallelism: 1, inputIndex: 0 }],
    });
    const output = await openOutput({
      nc,
      jobId,
      edgeId: 'ord',
      sourceSubtask: 0,
      targetParallelism: 1,
      bufferTimeoutMs: 50,
    });
    const sent: StreamElement[] = [];
    const emit = (e: StreamElement) => {
      sent.push(e);
      output.emit(0, e);
    };
    for (let i = 0; i < 100; i++) {
      emit(record(i, 1_000 + i));
      if (i % 10 === 9) emit(watermark(1_000 + i));
      if (i % 25 === 24) emit(barrier(1 + Math.floor(i / 25), `chk-${i}`));
    }
    const finishing = output.finish();
    sent.push(END_OF_PARTITION);
    const got: StreamElement[] = [];
    for (;;) {
      const f = await input.next();
      if (f === null) break;
      const elements = f.elements;
      // a barrier is the last element of its frame (alignment blocks the channel right after it)
      elements.forEach((e, k) => {
        if (e.kind === 3) expect(k).toBe(elements.length - 1);
      });
      got.push(...elements);
    }
    await finishing;
    expect(got).toEqual(sent.map((e) => (e.kind === 0 ? { ...e } : e)));
    expect(got.at(-1)).toEqual({ kind: 2 });
    expect(output.localChannelCount).toBe(1);
  });
});
