/**
 * Throughput of the data plane: 1 producer -> 1 consumer pass-through over an OutputGate and an InputGate,
 * against raw NATS publish/subscribe of the same frames, in one process, on a private nats-server.
 *
 *   npx tsx bench/network.ts [records] [recordBytes]
 *
 * Without tsx (Node 20 cannot run TypeScript by itself), compile first:
 *
 *   npx tsc -p tsconfig.json --outDir node_modules/.cache/sluice-bench
 *   node node_modules/.cache/sluice-bench/bench/network.js [records] [recordBytes]
 *
 * Rows:
 * - raw NATS, pre-encoded frames: the frames are built up front with the gates' encoder (FrameBatch,
 *   32 KiB frames); publish (a flush round trip every 64 frames so the subscriber is not flooded) and count
 *   them on the other connection. Pure transport.
 * - raw NATS + codec: the same, but frames are built from the records while publishing and decoded on
 *   receipt: what the gates do minus flow control and bookkeeping.
 * - gates: emit() each record (await ready() when not writable), next() on the other side, walking the
 *   frame's items as the task does; local channels off (every frame through NATS).
 * - gates, local channel: the same two gates with local channels on (one thread: frames handed over in
 *   memory, no encoding).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '../src/actors/subjects.js';
import { startNatsServer } from '../src/nats/launcher.js';
import { decodeFrame, FRAME_ITEMS_START, FrameBatch } from '../src/runtime/network/frame.js';
import { InputGate } from '../src/runtime/network/input-gate.js';
import { DEFAULT_MAX_FRAME_BYTES, OutputGate } from '../src/runtime/network/output-gate.js';

const RECORDS = Number(process.argv[2] ?? 1_000_000);
const RECORD_BYTES = Number(process.argv[3] ?? 0);
const subjects = new Subjects('bench');
const pad = RECORD_BYTES > 0 ? 'x'.repeat(RECORD_BYTES) : undefined;

function makeValue(i: number): unknown {
  return pad === undefined ? { id: i, key: `user-${i % 1000}`, amount: i * 0.25 } : { id: i, pad };
}

interface Result {
  name: string;
  ms: number;
  /** CPU time of this process (user + system) during the run, ms: robust on a shared machine. */
  cpuMs: number;
  records: number;
  frames: number;
  bytes: number;
}

/** Records per 32 KiB frame as the gates' encoder writes them (measured on the first records). */
const recordsPerFrame = (() => {
  const probe = new FrameBatch();
  for (let i = 0; i < 1_000; i++) probe.addRecord(makeValue(i), 1_700_000_000_000 + i);
  const [probed] = probe.build(0, 1);
  return Math.max(1, Math.floor((1_000 * (DEFAULT_MAX_FRAME_BYTES - 64)) / probed!.byteLength));
})();

async function rawPreEncoded(pub: NatsConnection, sub: NatsConnection): Promise<Result> {
  const frames: Uint8Array[] = [];
  const batch = new FrameBatch();
  let seq = 1;
  for (let i = 0; i < RECORDS; i++) {
    batch.addRecord(makeValue(i), 1_700_000_000_000 + i);
    if (batch.records === recordsPerFrame) frames.push(...batch.build(0, seq++));
  }
  if (!batch.isEmpty) frames.push(...batch.build(0, seq++));
  const subject = 'bench.raw.pre';
  let got = 0;
  let bytes = 0;
  const done = new Promise<void>((resolve) => {
    sub.subscribe(subject, {
      callback: (_err, msg) => {
        bytes += msg.data.byteLength;
        if (++got === frames.length) resolve();
      },
    });
  });
  await sub.flush();
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  for (let f = 0; f < frames.length; f++) {
    pub.publish(subject, frames[f]!);
    if (f % 64 === 63) await pub.flush();
  }
  await done;
  return {
    name: 'raw NATS, pre-encoded frames',
    ms: performance.now() - start,
    cpuMs: cpuSince(cpu0),
    records: RECORDS,
    frames: got,
    bytes,
  };
}

async function rawWithCodec(pub: NatsConnection, sub: NatsConnection): Promise<Result> {
  const subject = 'bench.raw.codec';
  let records = 0;
  let frames = 0;
  let bytes = 0;
  let expectedFrames = -1;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  sub.subscribe(subject, {
    callback: (_err, msg) => {
      const frame = decodeFrame(msg.data);
      records += countRecords(frame.items);
      bytes += msg.data.byteLength;
      if (++frames === expectedFrames) resolveDone();
    },
  });
  await sub.flush();
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const batch = new FrameBatch();
  let seq = 1;
  let sent = 0;
  for (let i = 0; i < RECORDS; i++) {
    batch.addRecord(makeValue(i), 1_700_000_000_000 + i);
    if (batch.records === recordsPerFrame) {
      for (const f of batch.build(0, seq++)) pub.publish(subject, f);
      if (++sent % 64 === 0) await pub.flush();
    }
  }
  if (!batch.isEmpty) {
    for (const f of batch.build(0, seq++)) pub.publish(subject, f);
    sent++;
  }
  expectedFrames = sent;
  if (frames === sent) resolveDone();
  await done;
  return {
    name: 'raw NATS + frame codec',
    ms: performance.now() - start,
    cpuMs: cpuSince(cpu0),
    records,
    frames,
    bytes,
  };
}

async function gates(
  pub: NatsConnection,
  sub: NatsConnection,
  run: number,
  credits: number,
  local = false,
): Promise<Result> {
  const jobId = `benchjob${run}`;
  const input = InputGate.open({
    nc: sub,
    subjects,
    jobId,
    attempt: 1,
    targetSubtask: 0,
    inputs: [{ edgeId: 'e', sourceParallelism: 1, inputIndex: 0 }],
    creditsPerChannel: credits,
    localChannels: local,
  });
  const output = await OutputGate.open({
    nc: pub,
    subjects,
    jobId,
    attempt: 1,
    edgeId: 'e',
    sourceSubtask: 0,
    targetParallelism: 1,
    localChannels: local,
  });
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const consume = async () => {
    let records = 0;
    for (;;) {
      const f = await input.next();
      if (f === null) return records;
      records += countRecords(f.items);
    }
  };
  const produce = async () => {
    for (let i = 0; i < RECORDS; i++) {
      output.emitRecord(0, makeValue(i), 1_700_000_000_000 + i);
      if (!output.writable) await output.ready();
    }
    await output.finish();
  };
  const [records] = await Promise.all([consume(), produce()]);
  const ms = performance.now() - start;
  const cpuMs = cpuSince(cpu0);
  input.close();
  return {
    name: local ? `gates, local (window ${credits})` : `gates (window ${credits} frames)`,
    ms,
    cpuMs,
    records,
    frames: output.stats.framesOut,
    bytes: output.stats.bytesOut,
  };
}

/** Records in a frame's flat items, walked as the task walks them (touching each value). */
function countRecords(items: unknown[]): number {
  let n = 0;
  let i = FRAME_ITEMS_START;
  while (i < items.length) {
    const tag = items[i];
    if (tag === 0) {
      if (items[i + 2] !== undefined) n++;
      i += 3;
    } else i += tag === 1 ? 2 : tag === 2 ? 1 : 3;
  }
  return n;
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

function rate(r: Result): number {
  return (r.records / r.ms) * 1000;
}

function row(r: Result, raw?: Result, codec?: Result): string {
  const mbs = r.bytes / 1024 / 1024 / (r.ms / 1000);
  const vs = (base: Result | undefined, label: string) =>
    base ? `  ${((rate(r) / rate(base)) * 100).toFixed(0)}% of ${label}` : '';
  return (
    `${r.name.padEnd(30)} ${Math.round(rate(r)).toLocaleString('en-US').padStart(11)} records/s` +
    `  ${mbs.toFixed(1).padStart(6)} MiB/s  ${String(r.frames).padStart(5)} frames  ${r.ms.toFixed(0).padStart(5)} ms` +
    `  ${Math.round((r.records / r.cpuMs) * 1000)
      .toLocaleString('en-US')
      .padStart(11)} records/CPU-s` +
    `${vs(raw, 'raw')}${vs(codec, 'raw+codec')}`
  );
}

async function main(): Promise<void> {
  const server = await startNatsServer({ jetstream: false });
  const pub = await connect({ servers: server.url });
  const sub = await connect({ servers: server.url });
  try {
    console.log(
      `${RECORDS.toLocaleString('en-US')} records of ${RECORD_BYTES > 0 ? `~${RECORD_BYTES} bytes` : '{ id, key, amount } (~40 bytes)'}, 1 -> 1, node ${process.version}`,
    );
    // warm-up (JIT, connections)
    await rawWithCodec(pub, sub);
    await gates(pub, sub, 0, 4);
    const raw = await rawPreEncoded(pub, sub);
    console.log(row(raw));
    const codec = await rawWithCodec(pub, sub);
    console.log(row(codec, raw));
    const windows = (process.env.WINDOWS ?? '4,16').split(',').map(Number);
    for (const [k, w] of windows.entries()) console.log(row(await gates(pub, sub, k + 1, w), raw, codec));
    console.log(row(await gates(pub, sub, 99, 4, true), raw, codec));
  } finally {
    await pub.close();
    await sub.close();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
