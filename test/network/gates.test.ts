/**
 * Output and input gates against a real nats-server, producers and consumers on separate connections:
 * exactly-once in-order delivery, watermarks in band, buffer timeout, credit-based backpressure, connecting
 * before the receiver exists, and robustness against strangers' messages. The common cases run over each
 * kind of channel: NATS, local (same thread), and thread channels (producers and consumers on two hubs
 * joined by a real MessageChannel, as two slot worker threads are).
 */
import { MessageChannel } from 'node:worker_threads';
import { connect, type NatsConnection, type Status } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Subjects } from '../../src/actors/subjects.js';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { decodeCredit, encodeConnect, encodeCredit } from '../../src/runtime/network/control.js';
import { END_OF_PARTITION, record, watermark } from '../../src/runtime/network/elements.js';
import { encodeFrame } from '../../src/runtime/network/frame.js';
import { type InputFrame, InputGate, type InputGateOptions } from '../../src/runtime/network/input-gate.js';
import { OutputGate, type OutputGateOptions } from '../../src/runtime/network/output-gate.js';
import { ThreadChannelHub } from '../../src/runtime/network/thread-channels.js';

const subjects = new Subjects('nettest');
let server: NatsServerHandle;
const connections: NatsConnection[] = [];
const gates: Array<{ close(): void }> = [];
let jobCounter = 0;
/** Whether the gates of the running block may connect locally (both ends are in this process). */
let localChannels = false;
/** Thread channels of the running block: producers on `hubs[0]`, consumers on `hubs[1]`. */
let hubs: [ThreadChannelHub, ThreadChannelHub] | undefined;

/** Two hubs of one "TaskManager", slots 0 and 1, joined by a MessageChannel. */
function threadHubs(): [ThreadChannelHub, ThreadChannelHub] {
  const a = new ThreadChannelHub({ process: 'test-tm', slot: 0 });
  const b = new ThreadChannelHub({ process: 'test-tm', slot: 1 });
  const { port1, port2 } = new MessageChannel();
  a.addPeer(1, port1);
  b.addPeer(0, port2);
  return [a, b];
}

/** A fresh job id per test, so tests never see each other's channels. */
function newJobId(): string {
  jobCounter++;
  return `job${jobCounter.toString().padStart(4, '0')}${'0'.repeat(21)}`;
}

async function conn(): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  return nc;
}

async function openOutput(options: OutputGateOptions): Promise<OutputGate> {
  const gate = await OutputGate.open({ localChannels, threadChannels: hubs?.[0] ?? null, ...options });
  gates.push(gate);
  return gate;
}

function openInput(options: InputGateOptions): InputGate {
  const gate = InputGate.open({ localChannels, threadChannels: hubs?.[1] ?? null, ...options });
  gates.push(gate);
  return gate;
}

/** Collects every frame until the gate reports the end. */
async function drain(
  gate: InputGate,
  onFrame?: (f: InputFrame) => Promise<void> | void,
): Promise<InputFrame[]> {
  const frames: InputFrame[] = [];
  for (;;) {
    const f = await gate.next();
    if (f === null) return frames;
    frames.push(f);
    if (onFrame) await onFrame(f);
  }
}

function watchStatus(nc: NatsConnection): Status[] {
  const events: Status[] = [];
  void (async () => {
    for await (const s of nc.status()) events.push(s);
  })();
  return events;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

beforeAll(async () => {
  // A small max_pending: were the gates to push more than the consumers take, the server would cut them
  // off as slow consumers. With credits they never get near it.
  server = await startNatsServer({ jetstream: false, extraConfig: 'max_pending: 2MB' });
});

afterEach(() => {
  for (const g of gates.splice(0)) g.close();
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  await server?.stop();
});

describe.each([
  { channels: 'remote', local: false, thread: false },
  { channels: 'local', local: true, thread: false },
  { channels: 'thread', local: false, thread: true },
])('gates over $channels channels', ({ local, thread }) => {
  beforeAll(() => {
    localChannels = local;
    hubs = thread ? threadHubs() : undefined;
  });
  afterAll(() => {
    hubs?.forEach((h) => h.close());
    hubs = undefined;
  });

  it('delivers 100 000 records from 2 producers to 3 consumers exactly once, in order, watermarks in band', async () => {
    const jobId = newJobId();
    const N = 50_000; // per producer
    const P = 2;
    const Q = 3;
    const WM_EVERY = 5_000;
    const route = (i: number) => (Math.imul(i, 2654435761) >>> 0) % Q;
    const base = { subjects, jobId, attempt: 1 };

    const consumerConns = await Promise.all([conn(), conn(), conn()]);
    const statuses = consumerConns.map(watchStatus);
    const inputs = consumerConns.map((nc, q) =>
      openInput({
        ...base,
        nc,
        targetSubtask: q,
        inputs: [{ edgeId: 'e1', sourceParallelism: P, inputIndex: 0 }],
      }),
    );
    const producerConns = await Promise.all([conn(), conn()]);
    const outputs = await Promise.all(
      producerConns.map((nc, p) =>
        openOutput({
          ...base,
          nc,
          edgeId: 'e1',
          sourceSubtask: p,
          targetParallelism: Q,
          bufferTimeoutMs: 20,
        }),
      ),
    );

    const produce = async (gate: OutputGate, p: number) => {
      for (let i = 0; i < N; i++) {
        gate.emit(route(i), record({ p, i, pad: 'abcdefghij' }, 1_000_000 + i));
        if (i % WM_EVERY === WM_EVERY - 1) gate.broadcast(watermark(1_000_000 + i + 1));
        if (!gate.writable) await gate.ready();
      }
      await gate.finish();
    };

    const [received] = await Promise.all([
      Promise.all(inputs.map((g) => drain(g))),
      ...outputs.map((g, p) => produce(g, p)),
    ]);

    let total = 0;
    for (let q = 0; q < Q; q++) {
      for (let p = 0; p < P; p++) {
        const expected: number[] = [];
        for (let i = 0; i < N; i++) if (route(i) === q) expected.push(i);
        const got: number[] = [];
        const marks: number[] = [];
        const problems: string[] = [];
        let ended = 0;
        for (const f of received[q]!.filter((fr) => fr.sourceSubtask === p)) {
          expect([f.inputIndex, f.channel, f.inputChannel, f.edgeId]).toEqual([0, p, p, 'e1']);
          for (const e of f.elements) {
            if (ended > 0) problems.push(`element after the end: ${JSON.stringify(e)}`);
            if (e.kind === 0) {
              const v = e.value as { p: number; i: number };
              if (v.p !== p || e.timestamp !== 1_000_000 + v.i)
                problems.push(`bad record ${JSON.stringify(e)}`);
              got.push(v.i);
            } else if (e.kind === 1) {
              // every record before the watermark's time has arrived, none after it
              const before = expected.filter((i) => 1_000_000 + i < e.watermark).length;
              if (got.length !== before)
                problems.push(`watermark ${e.watermark} after ${got.length} records`);
              marks.push(e.watermark);
            } else {
              ended++;
            }
          }
        }
        expect(problems).toEqual([]);
        expect(got).toEqual(expected);
        expect(marks).toEqual(Array.from({ length: N / WM_EVERY }, (_, k) => 1_000_000 + (k + 1) * WM_EVERY));
        expect(ended).toBe(1);
        total += got.length;
      }
    }
    expect(total).toBe(N * P);
    expect(outputs.reduce((s, g) => s + g.stats.recordsOut, 0)).toBe(N * P);
    expect(inputs.reduce((s, g) => s + g.stats.recordsIn, 0)).toBe(N * P);
    for (const g of inputs) expect(g.stats.dropped).toBe(0);
    // Local: every channel in memory, nothing encoded; thread: every frame encoded, over the port;
    // remote: every frame through NATS.
    for (const g of outputs) {
      expect([g.localChannelCount, g.stats.localFramesOut === g.stats.framesOut]).toEqual([
        local ? Q : 0,
        local,
      ]);
      expect([g.threadChannelCount, g.stats.threadFramesOut === g.stats.framesOut]).toEqual([
        thread ? Q : 0,
        thread,
      ]);
      expect(g.stats.bytesOut > 0).toBe(!local);
    }
    for (const g of inputs) {
      expect(g.localChannelCount).toBe(local || thread ? P : 0);
      expect(g.stats.threadFramesIn === g.stats.framesIn).toBe(thread);
    }
    for (const s of statuses) expect(s.filter((e) => e.type !== 'ping')).toEqual([]);
  });

  it('with bufferTimeoutMs 0 sends each record at once; with 100 ms a lone record still goes (timer)', async () => {
    for (const bufferTimeoutMs of [0, 100]) {
      const jobId = newJobId();
      const input = openInput({
        nc: await conn(),
        subjects,
        jobId,
        attempt: 1,
        targetSubtask: 0,
        inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
      });
      const output = await openOutput({
        nc: await conn(),
        subjects,
        jobId,
        attempt: 1,
        edgeId: 'e',
        sourceSubtask: 0,
        targetParallelism: 1,
        bufferTimeoutMs,
      });
      output.emit(0, record('lone', 5));
      // 0: published inside emit; 100: waiting in the frame for the timer
      expect(output.stats.framesOut).toBe(bufferTimeoutMs === 0 ? 1 : 0);
      const f = await input.next();
      expect(f?.elements).toEqual([{ kind: 0, value: 'lone', timestamp: 5 }]);
      expect(output.stats.framesOut).toBe(1);
      await output.finish();
      expect(await input.next()).toEqual(expect.objectContaining({ elements: [{ kind: 2 }] }));
      expect(await input.next()).toBeNull();
    }
  });

  it('numbers channels over several input edges; finish can wait for consumption', async () => {
    const jobId = newJobId();
    const base = { subjects, jobId, attempt: 4 };
    const input = openInput({
      ...base,
      nc: await conn(),
      targetSubtask: 0,
      inputs: [
        { edgeId: 'left', sourceParallelism: 2, inputIndex: 0 },
        { edgeId: 'right', sourceParallelism: 1, inputIndex: 1 },
      ],
    });
    expect(input.channelCount).toBe(3);
    expect([input.inputChannelCount(0), input.inputChannelCount(1)]).toEqual([2, 1]);
    const producerNc = await conn();
    const outputs = await Promise.all([
      openOutput({ ...base, nc: producerNc, edgeId: 'left', sourceSubtask: 0, targetParallelism: 1 }),
      openOutput({ ...base, nc: producerNc, edgeId: 'left', sourceSubtask: 1, targetParallelism: 1 }),
      openOutput({ ...base, nc: producerNc, edgeId: 'right', sourceSubtask: 0, targetParallelism: 1 }),
    ]);
    outputs.forEach((o, k) => {
      o.emit(0, record(`from ${k}`));
    });
    let finished = false;
    const finishing = Promise.all(outputs.map((o) => o.finish({ waitForConsumption: true }))).then(() => {
      finished = true;
    });
    const seen: Array<[number, number, number, string, number, unknown]> = [];
    for (let k = 0; k < 3; k++) {
      const f = (await input.next())!;
      const first = f.elements[0]!;
      seen.push([
        f.channel,
        f.inputIndex,
        f.inputChannel,
        f.edgeId,
        f.sourceSubtask,
        first.kind === 0 && first.value,
      ]);
      expect(f.elements.at(-1)).toEqual({ kind: 2 });
    }
    await sleep(100);
    expect(finished).toBe(false); // the last frames are handed out but not released yet
    expect(await input.next()).toBeNull();
    await finishing;
    expect(seen.sort()).toEqual([
      [0, 0, 0, 'left', 0, 'from 0'],
      [1, 0, 1, 'left', 1, 'from 1'],
      [2, 1, 0, 'right', 0, 'from 2'],
    ]);
  });

  it('holds a fast producer back to a slow consumer: bounded queues, nothing lost, no slow consumer', async () => {
    const jobId = newJobId();
    const consumerNc = await conn();
    const status = watchStatus(consumerNc);
    const credits = 4;
    const maxFrameBytes = 16 * 1024;
    const input = openInput({
      nc: consumerNc,
      subjects,
      jobId,
      attempt: 3,
      targetSubtask: 0,
      inputs: [{ edgeId: 'slow', sourceParallelism: 1, inputIndex: 0 }],
      creditsPerChannel: credits,
    });
    const output = await openOutput({
      nc: await conn(),
      subjects,
      jobId,
      attempt: 3,
      edgeId: 'slow',
      sourceSubtask: 0,
      targetParallelism: 1,
      maxFrameBytes,
    });
    const N = 40_000;
    const pad = 'p'.repeat(100);
    let peakQueued = 0;
    const produce = async () => {
      for (let i = 0; i < N; i++) {
        output.emit(0, record({ i, pad }));
        peakQueued = Math.max(peakQueued, output.queuedBytes);
        if (!output.writable) await output.ready();
      }
      await output.finish();
    };
    let next = 0;
    const [frames] = await Promise.all([
      drain(input, async (f) => {
        for (const e of f.elements) if (e.kind === 0) expect((e.value as { i: number }).i).toBe(next++);
        await sleep(1);
      }),
      produce(),
    ]);
    expect(next).toBe(N);
    expect(frames.length).toBeGreaterThan(200); // ~120 bytes a record: several hundred frames
    // Producer: what one emit can seal plus the frame the buffer timer may seal meanwhile.
    expect(peakQueued).toBeLessThanOrEqual(output.stats.peakQueuedBytes);
    expect(output.stats.peakQueuedBytes).toBeLessThanOrEqual(2 * maxFrameBytes);
    expect(output.stats.backpressuredMs).toBeGreaterThan(0);
    // Consumer: never more frames buffered than the credit window allows.
    expect(input.stats.peakBufferedFrames).toBeLessThanOrEqual(credits);
    expect(
      status.filter((e) => e.type === 'slowConsumer' || e.type === 'disconnect' || e.type === 'error'),
    ).toEqual([]);
  });

  it('connects a sender started before its receiver once the receiver appears', async () => {
    const jobId = newJobId();
    const opening = openOutput({
      nc: await conn(),
      subjects,
      jobId,
      attempt: 1,
      edgeId: 'late',
      sourceSubtask: 1,
      targetParallelism: 2,
      connectTimeoutMs: 10_000,
    });
    let opened = false;
    void opening.then(() => {
      opened = true;
    });
    await sleep(300);
    expect(opened).toBe(false);
    const nc = await conn();
    const inputs = [0, 1].map((q) =>
      openInput({
        nc,
        subjects,
        jobId,
        attempt: 1,
        targetSubtask: q,
        inputs: [{ edgeId: 'late', sourceParallelism: 2, inputIndex: 0 }],
      }),
    );
    const output = await opening;
    output.emit(0, record('to 0'));
    output.emit(1, record('to 1'));
    await output.finish();
    for (const [q, input] of inputs.entries()) {
      const f = await input.next();
      expect(f).toMatchObject({ sourceSubtask: 1, channel: 1, elements: [record(`to ${q}`), { kind: 2 }] });
    }
    // the other source (subtask 0) never ends: the gates are closed by afterEach
  });

  it('fails clearly when the receiver never appears', async () => {
    const started = Date.now();
    const err = await OutputGate.open({
      nc: await conn(),
      subjects,
      jobId: newJobId(),
      attempt: 2,
      edgeId: 'nowhere',
      sourceSubtask: 0,
      targetParallelism: 1,
      connectTimeoutMs: 400,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe(ErrorCode.Timeout);
    expect((err as SluiceError).message).toMatch(
      /could not connect edge nowhere subtask 0 -> 0 \(job \w+ attempt 2\): the receiving subtask did not answer within 400 ms \(nobody subscribes sluice\.nettest\.data\.\w+\.2\.nowhere\.0\)/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  });

  it('stops connecting at once when its signal is aborted', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const opening = OutputGate.open({
      nc: await conn(),
      subjects,
      jobId: newJobId(),
      attempt: 1,
      edgeId: 'never',
      sourceSubtask: 0,
      targetParallelism: 1,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 200);
    await expect(opening).rejects.toMatchObject({
      code: ErrorCode.IllegalState,
      message: 'output gate closed',
    });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('refuses the first record at emit when it cannot be encoded (it is measured)', async () => {
    const jobId = newJobId();
    openInput({
      nc: await conn(),
      subjects,
      jobId,
      attempt: 1,
      targetSubtask: 0,
      inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
    });
    const output = await openOutput({
      nc: await conn(),
      subjects,
      jobId,
      attempt: 1,
      edgeId: 'e',
      sourceSubtask: 0,
      targetParallelism: 1,
    });
    expect(() => output.emitRecord(0, { f: () => 1 }, undefined)).toThrow(
      /^record cannot be serialized: value of type object: it contains a function 'f'/,
    );
  });
});

// The wire protocol itself: NATS connection loss, encoding at seal, max_payload, strangers, gaps, re-sends.
describe('gates over NATS', () => {
  beforeAll(() => {
    localChannels = false;
  });

  it('fails both gates when their NATS connection drops (in-flight frames may be lost)', async () => {
    const jobId = newJobId();
    const consumerNc = await conn();
    const producerNc = await conn();
    const input = openInput({
      nc: consumerNc,
      subjects,
      jobId,
      attempt: 1,
      targetSubtask: 0,
      inputs: [{ edgeId: 'd', sourceParallelism: 1, inputIndex: 0 }],
    });
    const output = await openOutput({
      nc: producerNc,
      subjects,
      jobId,
      attempt: 1,
      edgeId: 'd',
      sourceSubtask: 0,
      targetParallelism: 1,
      bufferTimeoutMs: 0,
    });
    output.emit(0, record('before'));
    expect((await input.next())?.elements).toEqual([record('before')]);
    const pending = input.next();
    await consumerNc.reconnect();
    await expect(pending).rejects.toMatchObject({
      code: ErrorCode.ConnectionFailed,
      message: expect.stringMatching(/NATS connection (disconnect|forceReconnect).*may have been lost/),
    });
    await producerNc.reconnect();
    await expect.poll(() => output.writable).toBe(false);
    await expect(output.ready()).rejects.toMatchObject({ code: ErrorCode.ConnectionFailed });
    expect(() => output.emit(0, record('after'))).toThrow(/NATS connection/);
  });

  it('fails the gate, naming the value, on a record msgpackr cannot encode (at emit or when its frame is sealed)', async () => {
    for (const bufferTimeoutMs of [0, 100]) {
      const jobId = newJobId();
      const input = openInput({
        nc: await conn(),
        subjects,
        jobId,
        attempt: 1,
        targetSubtask: 0,
        inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
      });
      const output = await openOutput({
        nc: await conn(),
        subjects,
        jobId,
        attempt: 1,
        edgeId: 'e',
        sourceSubtask: 0,
        targetParallelism: 1,
        bufferTimeoutMs,
      });
      expect(() => output.emit(0, record(1, 'soon' as unknown as number))).toThrow(
        /timestamp must be a number/,
      );
      output.emit(0, record(1));
      if (bufferTimeoutMs > 0) output.flush();
      expect((await input.next())?.elements).toEqual([{ kind: 0, value: 1, timestamp: undefined }]);
      const bad = record({ when: new Date(0), notify: function notify() {} });
      const err = (() => {
        try {
          output.emit(0, bad);
          // buffered: encoded when its frame is sealed
          output.flush();
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(SluiceError);
      expect((err as SluiceError).code).toBe(ErrorCode.InvalidMessage);
      expect((err as SluiceError).message).toMatch(
        /^record cannot be serialized: value of type object: .*'notify'/,
      );
      // the gate has failed: nothing more goes out, every later call says why
      expect(() => output.emit(0, record(2))).toThrow(/cannot be serialized/);
      await expect(output.ready()).rejects.toThrow(/cannot be serialized/);
      await expect(output.finish()).rejects.toThrow(/cannot be serialized/);
      expect(output.stats.recordsOut).toBe(2);
    }
  });

  it('splits frames that come out over max_payload, and refuses a single record over it', async () => {
    const jobId = newJobId();
    const input = openInput({
      nc: await conn(),
      subjects,
      jobId,
      attempt: 1,
      targetSubtask: 0,
      inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
    });
    const nc = await conn();
    const maxPayload = nc.info!.max_payload;
    const output = await openOutput({
      nc,
      subjects,
      jobId,
      attempt: 1,
      edgeId: 'e',
      sourceSubtask: 0,
      targetParallelism: 1,
      maxFrameBytes: maxPayload,
    });
    // Tiny first records make the estimate small; then records of 100 KB (the sampling catches up)
    const N = 80;
    output.emit(0, record('a'));
    for (let i = 1; i < N; i++) output.emit(0, record({ i, pad: 'x'.repeat(100_000) }));
    const finished = output.finish();
    const values: unknown[] = [];
    const frames = await drain(input, (f) => {
      for (const e of f.elements) if (e.kind === 0) values.push(e.value);
    });
    await finished;
    expect(values).toHaveLength(N);
    expect(values.slice(1).map((v) => (v as { i: number }).i)).toEqual([...Array(N).keys()].slice(1));
    expect(frames.length).toBeGreaterThan(5);

    const jobId2 = newJobId();
    openInput({
      nc: await conn(),
      subjects,
      jobId: jobId2,
      attempt: 1,
      targetSubtask: 0,
      inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
    });
    const output2 = await openOutput({
      nc: await conn(),
      subjects,
      jobId: jobId2,
      attempt: 1,
      edgeId: 'e',
      sourceSubtask: 0,
      targetParallelism: 1,
    });
    output2.emit(0, record('small'));
    output2.emit(0, record('y'.repeat(maxPayload + 10)));
    expect(() => output2.flush()).toThrow(/over the NATS server's max_payload/);
  });

  it('counts and drops strangers’ messages on data and credit subjects', async () => {
    const jobId = newJobId();
    const stranger = await conn();
    const input = openInput({
      nc: await conn(),
      subjects,
      jobId,
      attempt: 1,
      targetSubtask: 0,
      inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
    });
    const output = await openOutput({
      nc: await conn(),
      subjects,
      jobId,
      attempt: 1,
      edgeId: 'e',
      sourceSubtask: 0,
      targetParallelism: 1,
      bufferTimeoutMs: 0,
    });
    const data = subjects.dataSubject(jobId, 1, 'e', 0);
    const credit = subjects.creditSubject(jobId, 1, 'e', 0);
    stranger.publish(data, new Uint8Array([0xc1, 0xff, 0x00]));
    stranger.publish(data, new TextEncoder().encode('{"hello":"world"}'));
    stranger.publish(data, encodeFrame(7, 1, [record('from nobody')])); // unknown source subtask
    const reply = await stranger.request(data, new TextEncoder().encode('connect me'));
    expect(reply.data.byteLength).toBeGreaterThan(0); // an error reply, not silence
    const badConnect = await stranger.request(data, encodeConnect(5));
    expect(badConnect.data.byteLength).toBeGreaterThan(0);
    stranger.publish(credit, new Uint8Array([0xc1]));
    stranger.publish(credit, encodeCredit(9, 3)); // no such target
    stranger.publish(credit, encodeCredit(0, 1_000_000)); // more than the receiver could grant
    await stranger.flush();

    output.emit(0, record('real'));
    await output.finish();
    const values = (await drain(input)).flatMap((f) =>
      f.elements.flatMap((e) => (e.kind === 0 ? [e.value] : [])),
    );
    expect(values).toEqual(['real']);
    expect(input.stats.dropped).toBe(5);
    expect(output.stats.dropped).toBe(3);
  });

  it('fails the input gate on a gap (lost frames) with a clear error', async () => {
    const jobId = newJobId();
    const nc = await conn();
    const inputNc = await conn();
    const input = openInput({
      nc: inputNc,
      subjects,
      jobId,
      attempt: 1,
      targetSubtask: 0,
      inputs: [{ edgeId: 'g', sourceParallelism: 2, inputIndex: 0 }],
    });
    await inputNc.flush(); // the data subscription is registered
    const data = subjects.dataSubject(jobId, 1, 'g', 0);
    await nc.request(data, encodeConnect(1));
    nc.publish(data, encodeFrame(1, 1, [record('a')]));
    expect((await input.next())?.elements).toEqual([record('a')]);
    nc.publish(data, encodeFrame(1, 3, [record('c')])); // frame 2 never came
    const err = await input.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).message).toMatch(/edge g subtask 1 -> 0 .*: frames 2\.\.2 were lost/);
    await expect(input.next()).rejects.toBe(err);
  });

  it('re-sends its grant to a sender that used up its credit, until frames come again', async () => {
    const jobId = newJobId();
    const nc = await conn();
    const inputNc = await conn();
    const input = openInput({
      nc: inputNc,
      subjects,
      jobId,
      attempt: 1,
      targetSubtask: 0,
      inputs: [{ edgeId: 'r', sourceParallelism: 1, inputIndex: 0 }],
      creditsPerChannel: 2,
      creditResendMs: 100,
    });
    await inputNc.flush(); // the data subscription is registered
    const grants: number[] = [];
    nc.subscribe(subjects.creditSubject(jobId, 1, 'r', 0), {
      callback: (_err, msg) => {
        grants.push(decodeCredit(msg.data).grant);
      },
    });
    const data = subjects.dataSubject(jobId, 1, 'r', 0);
    await nc.request(data, encodeConnect(0)); // grant 2
    nc.publish(data, encodeFrame(0, 1, [record(1)]));
    nc.publish(data, encodeFrame(0, 2, [record(2)])); // used up grant 2
    await nc.flush();
    await input.next();
    await input.next(); // frame 1 consumed: grant 3 sent at once (batch of 1)
    await expect.poll(() => grants[0]).toBe(3);
    // The sender (us) stays silent as if grant 3 was lost: the receiver repeats it.
    await sleep(450);
    expect(grants.length).toBeGreaterThanOrEqual(3);
    expect(new Set(grants)).toEqual(new Set([3]));
    // Frame 3 uses grant 3, and frame 2 is still being processed: the sender is rightly waiting for the
    // consumer, nothing to repeat.
    nc.publish(data, encodeFrame(0, 3, [END_OF_PARTITION]));
    await nc.flush();
    await sleep(50);
    const count = grants.length;
    await sleep(300);
    expect(grants.length).toBe(count);
    // consuming frame 2 grants 4; consuming frame 3 (the end) sends the final grant 5 at once
    expect((await input.next())?.elements).toEqual([{ kind: 2 }]);
    expect(await input.next()).toBeNull();
    await sleep(50);
    expect(grants.slice(count)).toEqual([4, 5]);
  });
});
