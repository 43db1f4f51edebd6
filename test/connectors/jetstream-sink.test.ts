/**
 * JetStreamSink on the local environment against a real nats-server.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/log.js';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  type ConnectorContext,
  GeneratorSource,
  JetStreamSink,
  JetStreamSource,
  JobExecutionError,
  StreamExecutionEnvironment,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { sorted } from '../api/recording-sink.js';
import { createStream, json, readStream } from './jetstream-helpers.js';

interface Rec {
  i: number;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

describe('JetStreamSink', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  const env = (p = 1) => StreamExecutionEnvironment.createLocalEnvironment(p, nats.url);

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await closeLocalCluster();
    await nc?.close();
    await nats?.stop();
  });

  it('publishes every record once, with message ids <jobId>-<subtask>-<n>', async () => {
    await createStream(nc, 'out', ['out.>']);
    const e = env(2);
    e.fromSource(new GeneratorSource(2_000, (i) => ({ i })))
      .rebalance()
      .sinkTo(new JetStreamSink<Rec>({ subject: 'out.records', maxInFlight: 16 }));
    const { jobId } = await e.execute('to jetstream');
    const msgs = await readStream(nc, 'out');
    expect(msgs).toHaveLength(2_000);
    expect(sorted(msgs.map((m) => json<Rec>(m).i))).toEqual(sorted(range(0, 2_000)));
    expect(msgs.every((m) => m.subject === 'out.records')).toBe(true);
    // Per subtask, n counts its records from 1.
    const bySubtask = new Map<string, number[]>();
    for (const m of msgs) {
      const id = m.headers?.get('Nats-Msg-Id') ?? '';
      const match = /^(.+)-(\d+)-(\d+)$/.exec(id);
      expect(match?.[1]).toBe(jobId);
      bySubtask.set(match![2]!, [...(bySubtask.get(match![2]!) ?? []), Number(match![3])]);
    }
    expect([...bySubtask.keys()].sort()).toEqual(['0', '1']);
    for (const ns of bySubtask.values()) expect(sorted(ns)).toEqual(sorted(range(1, ns.length + 1)));
  });

  it('keeps at most maxInFlight publishes unacknowledged, and routes by a subject function', async () => {
    await createStream(nc, 'bounded', ['b.>']);
    const sink = new JetStreamSink<Rec>({
      subject: (r) => (r.i % 2 === 0 ? 'b.even' : 'b.odd'),
      maxInFlight: 4,
    });
    const e = env(1);
    e.fromSource(new GeneratorSource(3_000, (i) => ({ i }))).sinkTo(sink);
    await e.execute();
    expect(sink.peakInFlight).toBe(4);
    const msgs = await readStream(nc, 'bounded');
    expect(msgs).toHaveLength(3_000);
    expect(msgs.every((m) => m.subject === (json<Rec>(m).i % 2 === 0 ? 'b.even' : 'b.odd'))).toBe(true);
    // One subtask with one in-flight window of acks: the stream keeps the write order.
    expect(msgs.map((m) => json<Rec>(m).i)).toEqual(range(0, 3_000));
  });

  it('writer: not writable at maxInFlight, finish waits for the acks, a replay is de-duplicated', async () => {
    await createStream(nc, 'direct', ['d.>']);
    const ctx: ConnectorContext = {
      jobId: 'job1',
      clusterId: 'test',
      subtaskIndex: 3,
      parallelism: 4,
      log: silentLogger(),
      signal: new AbortController().signal,
      nats: nc,
      checkpointing: false,
      restoredState: undefined,
    };
    const writeAll = async () => {
      const writer = await new JetStreamSink<Rec>({ subject: 'd.x', maxInFlight: 8 }).createWriter(ctx);
      const writable: boolean[] = [];
      for (let i = 0; i < 20; i++) {
        writer.write({ i }, undefined);
        writable.push(writer.writable!);
      }
      expect(writable.indexOf(false)).toBe(7);
      await writer.ready!();
      expect(writer.writable).toBe(true);
      await writer.finish!();
      await writer.close?.();
    };
    await writeAll();
    // The same records again (as after a restart): JetStream drops them as duplicates.
    await writeAll();
    const msgs = await readStream(nc, 'direct');
    expect(msgs.map((m) => json<Rec>(m).i)).toEqual(range(0, 20));
    expect(msgs.map((m) => m.headers?.get('Nats-Msg-Id'))).toEqual(range(1, 21).map((n) => `job1-3-${n}`));
  });

  it('fails the job clearly when no stream captures the subject', async () => {
    const e = env();
    e.fromElements(1, 2, 3).sinkTo(new JetStreamSink<number>({ subject: 'nowhere.x' }));
    const err = await e.execute().catch((x: unknown) => x);
    expect(err).toBeInstanceOf(JobExecutionError);
    expect((err as Error).message).toContain("no JetStream stream captures subject 'nowhere.x'");
  });

  it('moves a stream to another NATS: source here, sink there', async () => {
    await createStream(nc, 'here', ['here.>']);
    const other = await startNatsServer();
    const onOther = await connect({ servers: other.url });
    try {
      await createStream(onOther, 'there', ['there.>']);
      const fill = env(2);
      fill
        .fromSource(new GeneratorSource(500, (i) => ({ i })))
        .sinkTo(new JetStreamSink<Rec>({ subject: 'here.in' }));
      await fill.execute();
      const copy = env(3);
      copy
        .fromSource(new JetStreamSource<Rec>({ stream: 'here' }))
        .map((r) => ({ i: r.i * 10 }))
        .sinkTo(new JetStreamSink<Rec>({ subject: 'there.out', servers: other.url }));
      await copy.execute();
      const msgs = await readStream(onOther, 'there');
      expect(sorted(msgs.map((m) => json<Rec>(m).i))).toEqual(sorted(range(0, 500).map((i) => i * 10)));
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info('here')).state.messages).toBe(500);
    } finally {
      await onOther.close();
      await other.stop();
    }
  });

  it('refuses bad options', () => {
    expect(() => new JetStreamSink({ subject: '' })).toThrow('subject must be a non-empty string');
    expect(() => new JetStreamSink({ subject: 'a', maxInFlight: 0 })).toThrow(
      'maxInFlight must be an integer >= 1',
    );
  });
});
