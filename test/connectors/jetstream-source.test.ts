/**
 * JetStreamSource on the local environment against a real nats-server.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  JetStreamSource,
  type JetStreamSourceOptions,
  JobExecutionError,
  type ProcessWindowFunction,
  StreamExecutionEnvironment,
  Time,
  TumblingEventTimeWindows,
  WatermarkStrategy,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { RecordingSink, sorted } from '../api/recording-sink.js';
import { consumerCount, createStream, publishJson, until } from './jetstream-helpers.js';

interface Rec {
  i: number;
}

const COUNT = 1_000;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

describe('JetStreamSource', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let publishedFrom = 0;
  let publishedTo = 0;
  const env = (p = 1) => StreamExecutionEnvironment.createLocalEnvironment(p, nats.url);
  const read = (p: number, options: Partial<JetStreamSourceOptions<Rec>> = {}) =>
    env(p)
      .fromSource(new JetStreamSource<Rec>({ stream: 'input', ...options }))
      .map((r) => r.i)
      .executeAndCollect();

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await createStream(nc, 'input', ['in.>']);
    await createStream(nc, 'garbage', ['bad.>']);
    await createStream(nc, 'empty', ['empty.>']);
    publishedFrom = Date.now();
    // Record i has stream sequence i + 1; even records on in.even, odd ones on in.odd.
    await publishJson<Rec>(
      nc,
      range(0, COUNT).map((i) => ({ i })),
      (r) => (r.i % 2 === 0 ? 'in.even' : 'in.odd'),
    );
    publishedTo = Date.now();
    await publishJson(nc, [{ i: 0 }], () => 'bad.x');
    await jetstream(nc).publish('bad.x', new TextEncoder().encode('{not json'));
  });

  afterAll(async () => {
    await closeLocalCluster();
    await nc?.close();
    await nats?.stop();
  });

  it('reads exactly the messages of the stream, in order at parallelism 1, the same multiset at 3', async () => {
    const expected = range(0, COUNT);
    expect(await read(1)).toEqual(expected);
    expect(sorted(await read(3))).toEqual(sorted(expected));
    // Each subtask deleted its ordered consumer when it ended.
    await until(async () => (await consumerCount(nc, 'input')) === 0);
  });

  it('starts at startSequence', async () => {
    expect(await read(1, { startSequence: 991 })).toEqual(range(990, COUNT));
    expect(sorted(await read(2, { startSequence: 501 }))).toEqual(sorted(range(500, COUNT)));
    expect(await read(1, { startSequence: COUNT + 1 })).toEqual([]);
  });

  it('reads only the subject filter, and ends at once when nothing matches', async () => {
    const odd = await read(1, { subject: 'in.odd' });
    expect(odd).toEqual(range(0, COUNT).filter((i) => i % 2 === 1));
    expect(sorted(await read(3, { subject: 'in.even' }))).toEqual(
      sorted(range(0, COUNT).filter((i) => i % 2 === 0)),
    );
    expect(await read(2, { subject: 'in.none' })).toEqual([]);
    expect(
      await env()
        .fromSource(new JetStreamSource<Rec>({ stream: 'empty' }))
        .executeAndCollect(),
    ).toEqual([]);
  });

  it('bounded: ends at the last sequence as of the start, despite later publishes and deleted messages', async () => {
    await createStream(nc, 'growing', ['g.>']);
    await publishJson<Rec>(
      nc,
      range(0, 300).map((i) => ({ i })),
      () => 'g.a',
    );
    const jsm = await jetstreamManager(nc);
    await jsm.streams.deleteMessage('growing', 10);
    await jsm.streams.deleteMessage('growing', 300);
    const sink = new RecordingSink<Rec>({ delayEvery: 5, delayMs: 10 });
    const e = env(2);
    e.fromSource(new JetStreamSource<Rec>({ stream: 'growing', batchSize: 16 })).sinkTo(sink);
    const client = await e.executeAsync();
    await until(() => sink.records.length > 0);
    await publishJson<Rec>(
      nc,
      range(300, 600).map((i) => ({ i })),
      () => 'g.a',
    );
    // The later messages were there before the job ended.
    expect(await client.getJobStatus()).toBe('RUNNING');
    await client.getJobExecutionResult();
    expect(sorted(sink.values().map((r) => r.i))).toEqual(
      sorted(range(0, 300).filter((i) => i !== 9 && i !== 299)),
    );
  });

  it('attaches the stream timestamps as event times when asked', async () => {
    const sink = new RecordingSink<Rec>();
    const e = env(2);
    e.fromSource(new JetStreamSource<Rec>({ stream: 'input', useMessageTimestamps: true })).sinkTo(sink);
    await e.execute();
    expect(sink.records).toHaveLength(COUNT);
    for (const r of sink.records) {
      expect(r.timestamp).toBeGreaterThanOrEqual(publishedFrom - 1);
      expect(r.timestamp).toBeLessThanOrEqual(publishedTo + 1);
    }
    const plain = new RecordingSink<Rec>();
    const f = env();
    f.fromSource(new JetStreamSource<Rec>({ stream: 'input', startSequence: COUNT })).sinkTo(plain);
    await f.execute();
    expect(plain.records).toEqual([{ subtask: 0, value: { i: COUNT - 1 }, timestamp: undefined }]);
  });

  it('feeds event-time windows (out-of-order events, a bounded watermark) at parallelism 3', async () => {
    await createStream(nc, 'events', ['ev.>']);
    const events = range(0, 3_000).map((k) => ({
      user: `u${k % 7}`,
      amount: (k * 13) % 100,
      // Out of order by up to 1.9 s.
      ts: 1_000_000 + k * 20 - ((k * 37) % 1_900),
    }));
    await publishJson(nc, events, (e) => `ev.${e.user}`);
    const expected = new Map<string, number>();
    for (const e of events) {
      const key = `${e.user}@${e.ts - (e.ts % 10_000) + 10_000}`;
      expected.set(key, (expected.get(key) ?? 0) + e.amount);
    }
    type Ev = (typeof events)[number];
    const windowTotal: ProcessWindowFunction<Ev, [string, number], string> = {
      process(user, ctx, [sum], collector) {
        collector.collect([`${user}@${ctx.window.end}`, sum!.amount]);
      },
    };
    const out = await env(3)
      .fromSource(
        new JetStreamSource<Ev>({ stream: 'events' }),
        WatermarkStrategy.forBoundedOutOfOrderness<Ev>(2_000).withTimestampAssigner((e) => e.ts),
      )
      .keyBy((e) => e.user)
      .window(TumblingEventTimeWindows.of(Time.seconds(10)))
      .reduce((a, b) => ({ user: a.user, amount: a.amount + b.amount, ts: a.ts }), windowTotal)
      .executeAndCollect();
    expect(new Map(out)).toEqual(expected);
    expect(out).toHaveLength(expected.size);
  });

  it('fails the job clearly on a missing stream and on a payload it cannot decode', async () => {
    const missing = await env()
      .fromSource(new JetStreamSource({ stream: 'nope' }))
      .executeAndCollect()
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(JobExecutionError);
    expect((missing as Error).message).toContain("JetStream stream 'nope' not found");

    const bad = await env()
      .fromSource(new JetStreamSource({ stream: 'garbage' }))
      .executeAndCollect()
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(JobExecutionError);
    expect((bad as Error).message).toContain(
      "cannot decode the message at sequence 2 of JetStream stream 'garbage' (subject 'bad.x')",
    );
    // A deserializer of one's own gets the payload and the subject.
    const custom = await env()
      .fromSource(
        new JetStreamSource<string>({
          stream: 'garbage',
          deserialize: (data, subject) => `${subject}:${new TextDecoder().decode(data)}`,
        }),
      )
      .executeAndCollect();
    expect(custom).toEqual(['bad.x:{"i":0}', 'bad.x:{not json']);
  });

  it('unbounded: reads what is published while it runs, under backpressure, until cancelled', async () => {
    await createStream(nc, 'live', ['live.>']);
    await publishJson<Rec>(
      nc,
      range(0, 100).map((i) => ({ i })),
      () => 'live.a',
    );
    // A slow sink: the source must pause pulling rather than buffer.
    const sink = new RecordingSink<Rec>({ delayEvery: 50, delayMs: 5 });
    const e = env(2);
    e.fromSource(new JetStreamSource<Rec>({ stream: 'live', bounded: false, batchSize: 32 })).sinkTo(sink);
    const client = await e.executeAsync('live');
    await until(() => sink.records.length === 100);
    await publishJson<Rec>(
      nc,
      range(100, 2_000).map((i) => ({ i })),
      () => 'live.b',
    );
    await until(() => sink.records.length === 2_000);
    expect(sorted(sink.values().map((r) => r.i))).toEqual(sorted(range(0, 2_000)));
    // Subtask s emitted the sequences ≡ s (mod 2); record i has sequence i + 1.
    for (const [subtask, values] of sink.bySubtask()) {
      expect(values.every((r) => (r.i + 1) % 2 === subtask)).toBe(true);
    }
    await client.cancel();
    const result = await client.getJobExecutionResult().catch((err: unknown) => err);
    expect(result).toMatchObject({ status: 'CANCELED' });
    await until(async () => (await consumerCount(nc, 'live')) === 0);
  });

  it('reads from other NATS servers than the cluster runs on', async () => {
    const other = await startNatsServer();
    const onOther = await connect({ servers: other.url });
    try {
      await createStream(onOther, 'elsewhere', ['x.>']);
      await publishJson<Rec>(
        onOther,
        range(0, 50).map((i) => ({ i })),
        () => 'x.y',
      );
      const out = await env(2)
        .fromSource(new JetStreamSource<Rec>({ stream: 'elsewhere', servers: [other.url] }))
        .map((r) => r.i)
        .executeAndCollect();
      expect(sorted(out)).toEqual(sorted(range(0, 50)));
      // The stream exists only there.
      const err = await env()
        .fromSource(new JetStreamSource<Rec>({ stream: 'elsewhere' }))
        .executeAndCollect()
        .catch((x: unknown) => x);
      expect((err as Error).message).toContain("JetStream stream 'elsewhere' not found");
    } finally {
      await onOther.close();
      await other.stop();
    }
  });

  it('refuses bad options', () => {
    expect(() => new JetStreamSource({ stream: '' })).toThrow('stream must be a non-empty string');
    expect(() => new JetStreamSource({ stream: 's', startSequence: 0 })).toThrow(
      'startSequence must be an integer >= 1',
    );
  });
});
