/**
 * JetStreamSink with checkpointing: two-phase commit against a real nats-server.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pack, unpack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/log.js';
import { type ConnectorContext, JetStreamSink, type SinkWriter } from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { createStream, json, readStream } from './jetstream-helpers.js';

interface Rec {
  i: number;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
/** As the runtime stores states: msgpack. */
const stored = (state: unknown): unknown => unpack(pack(state));

interface TxnState {
  transactions: Array<{ checkpointId: number; records: Array<{ subject: string; id: string }> }>;
}

describe('JetStreamSink with checkpointing (exactly-once)', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let streams = 0;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  /** A fresh stream capturing `<name>.>`; returns its name (= subject prefix). */
  const stream = async () => {
    const name = `cp${++streams}`;
    await createStream(nc, name, [`${name}.>`]);
    return name;
  };
  const ctx = (over: Partial<ConnectorContext> = {}): ConnectorContext => ({
    jobId: 'job',
    clusterId: 'test',
    subtaskIndex: 0,
    parallelism: 1,
    log: silentLogger(),
    signal: new AbortController().signal,
    nats: nc,
    checkpointing: true,
    restoredState: undefined,
    ...over,
  });
  const writer = (name: string, c: Partial<ConnectorContext> = {}, maxInFlight = 16) =>
    new JetStreamSink<Rec>({ subject: `${name}.out`, maxInFlight }).createWriter(ctx(c));
  const write = (w: SinkWriter<Rec>, from: number, to: number) => {
    for (const i of range(from, to)) w.write({ i }, undefined);
  };
  const values = (msgs: JsMsg[]) => msgs.map((m) => json<Rec>(m).i);
  const ids = (msgs: JsMsg[]) => msgs.map((m) => m.headers?.get('Nats-Msg-Id'));

  it('publishes a checkpoint’s records only when it completes, with ids <jobId>.<checkpoint>.<subtask>.<i>', async () => {
    const name = await stream();
    const w = await writer(name, { subtaskIndex: 1, parallelism: 2 });
    write(w, 0, 10);
    expect(w.writable).toBe(true);
    const s1 = w.snapshotState!(1) as TxnState;
    expect(s1.transactions.map((t) => [t.checkpointId, t.records.length])).toEqual([[1, 10]]);
    write(w, 10, 15);
    // Pre-committed, not visible.
    expect(await readStream(nc, name)).toEqual([]);
    await w.notifyCheckpointComplete!(1);
    let msgs = await readStream(nc, name);
    expect(values(msgs)).toEqual(range(0, 10));
    expect(ids(msgs)).toEqual(range(0, 10).map((i) => `job.1.1.${i}`));
    // The records after checkpoint 1 wait for checkpoint 2; a snapshot no longer carries transaction 1.
    const s2 = w.snapshotState!(2) as TxnState;
    expect(s2.transactions.map((t) => [t.checkpointId, t.records.length])).toEqual([[2, 5]]);
    expect(values(await readStream(nc, name))).toEqual(range(0, 10));
    await w.notifyCheckpointComplete!(2);
    msgs = await readStream(nc, name);
    expect(values(msgs)).toEqual(range(0, 15));
    // A repeated notification publishes nothing again.
    await w.notifyCheckpointComplete!(2);
    expect(await readStream(nc, name)).toHaveLength(15);
    await w.close!();
  });

  it('a later notification commits the earlier pending transactions too, in order', async () => {
    const name = await stream();
    const w = await writer(name);
    write(w, 0, 5);
    w.snapshotState!(1);
    write(w, 5, 8);
    // Nothing new before checkpoint 2: no empty transaction.
    const s2 = w.snapshotState!(2) as TxnState;
    const s3 = w.snapshotState!(3) as TxnState;
    expect(s2.transactions.map((t) => t.checkpointId)).toEqual([1, 2]);
    expect(s3.transactions.map((t) => t.checkpointId)).toEqual([1, 2]);
    await w.notifyCheckpointComplete!(3);
    const msgs = await readStream(nc, name);
    expect(values(msgs)).toEqual(range(0, 8));
    expect((w.snapshotState!(4) as TxnState).transactions).toEqual([]);
    await w.close!();
  });

  it('close without finish drops what no checkpoint covers; a restored writer commits the pending transactions once', async () => {
    const name = await stream();
    const w = await writer(name, { subtaskIndex: 0, parallelism: 1 });
    write(w, 0, 20);
    const state = stored(w.snapshotState!(7));
    write(w, 20, 30);
    // The task fails before checkpoint 7 completes.
    await w.close!();
    expect(await readStream(nc, name)).toEqual([]);

    // Restored: the pending transaction is committed before the writer takes records.
    const r1 = await writer(name, { restoredState: [state] });
    let msgs = await readStream(nc, name);
    expect(values(msgs)).toEqual(range(0, 20));
    expect(ids(msgs)).toEqual(range(0, 20).map((i) => `job.7.0.${i}`));
    // Nothing pending any more in this writer: the commit was not its own transaction.
    expect((r1.snapshotState!(8) as TxnState).transactions).toEqual([]);
    await r1.close!();

    // Restored again from the same checkpoint (a second failure): JetStream drops the duplicates.
    const r2 = await writer(name, { restoredState: [state] });
    msgs = await readStream(nc, name);
    expect(values(msgs)).toEqual(range(0, 20));
    // The replayed input is written again and, the input ending, published with final ids.
    write(r2, 20, 30);
    await r2.finish!();
    msgs = await readStream(nc, name);
    expect(values(msgs)).toEqual(range(0, 30));
    expect(ids(msgs).slice(20)).toEqual(range(0, 10).map((i) => `job.final.0.${i}`));
    await r2.close!();
  });

  it('finish publishes the pending transactions and the rest', async () => {
    const name = await stream();
    const w = await writer(name, {}, 4);
    write(w, 0, 50);
    w.snapshotState!(1);
    write(w, 50, 120);
    await w.finish!();
    const msgs = await readStream(nc, name);
    expect(values(msgs)).toEqual(range(0, 120));
    expect(ids(msgs)[49]).toBe('job.1.0.49');
    expect(ids(msgs)[50]).toBe('job.final.0.0');
    await w.close!();
  });

  it('rescaled restore: new subtask j commits the transactions of old subtasks k ≡ j (mod p)', async () => {
    const name = await stream();
    const old = await Promise.all(range(0, 3).map((k) => writer(name, { subtaskIndex: k, parallelism: 3 })));
    old.forEach((w, k) => {
      write(w, k * 100, k * 100 + 10);
    });
    const states = old.map((w) => stored(w.snapshotState!(4)));
    await Promise.all(old.map((w) => w.close!()));
    // New parallelism 2: subtask 1 commits old subtask 1's only.
    const one = await writer(name, { subtaskIndex: 1, parallelism: 2, restoredState: states });
    expect(values(await readStream(nc, name))).toEqual(range(100, 110));
    const zero = await writer(name, { subtaskIndex: 0, parallelism: 2, restoredState: states });
    const msgs = await readStream(nc, name);
    expect(values(msgs).sort((a, b) => a - b)).toEqual([
      ...range(0, 10),
      ...range(100, 110),
      ...range(200, 210),
    ]);
    expect(new Set(ids(msgs)).size).toBe(30);
    await Promise.all([one.close!(), zero.close!()]);
  });

  it('applies backpressure while a commit publishes (at most maxInFlight unacknowledged)', async () => {
    const name = await stream();
    const sink = new JetStreamSink<Rec>({ subject: `${name}.out`, maxInFlight: 4 });
    const w = await sink.createWriter(ctx());
    write(w, 0, 500);
    w.snapshotState!(1);
    const commit = w.notifyCheckpointComplete!(1);
    // During the commit, up to maxInFlight more records are taken, then the writer is not writable.
    const writable: boolean[] = [];
    for (const i of range(500, 506)) {
      w.write({ i }, undefined);
      writable.push(w.writable!);
    }
    expect(writable).toEqual([true, true, true, false, false, false]);
    await w.ready!();
    expect(w.writable).toBe(true);
    expect(values(await readStream(nc, name))).toEqual(range(0, 500));
    await commit;
    expect(sink.peakInFlight).toBe(4);
    await w.finish!();
    expect(values(await readStream(nc, name))).toEqual(range(0, 506));
  });

  it('fails the commit clearly when no stream captures the subject', async () => {
    const w = await new JetStreamSink<Rec>({ subject: 'nowhere.x' }).createWriter(ctx());
    write(w, 0, 3);
    w.snapshotState!(1);
    await expect(w.notifyCheckpointComplete!(1)).rejects.toThrow(
      "no JetStream stream captures subject 'nowhere.x'",
    );
    expect(() => w.write({ i: 3 }, undefined)).toThrow("no JetStream stream captures subject 'nowhere.x'");
    await w.close!();
  });
});
