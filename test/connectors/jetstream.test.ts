/**
 * The JetStream source and sink on the local environment against a real nats-server.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GeneratorSource,
  JetStreamSink,
  JetStreamSource,
  JobExecutionError,
  StreamExecutionEnvironment,
} from '../../src/api/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { closeLocalCluster } from '../../src/runtime/local-runner.js';
import { sorted } from '../api/recording-sink.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('JetStream connectors', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  const env = (p = 1) => StreamExecutionEnvironment.createLocalEnvironment(p, nats.url);

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'input', subjects: ['in.>'] });
    await jsm.streams.add({ name: 'output', subjects: ['out.>'], duplicate_window: 60_000_000_000 });
    await jsm.streams.add({ name: 'garbage', subjects: ['bad.>'] });
    const js = jetstream(nc);
    for (let i = 0; i < 1_000; i++) {
      await js.publish(i % 2 === 0 ? 'in.even' : 'in.odd', enc.encode(JSON.stringify({ i })));
    }
    await js.publish('bad.x', enc.encode('{not json'));
  });

  afterAll(async () => {
    await closeLocalCluster();
    await nc?.close();
    await nats?.stop();
  });

  it('reads exactly the stream, at parallelism 1 and 3', async () => {
    const expected = [...Array(1_000).keys()];
    for (const p of [1, 3]) {
      const out = await env(p)
        .fromSource(new JetStreamSource<{ i: number }>({ stream: 'input' }))
        .map((r) => r.i)
        .executeAndCollect();
      expect(sorted(out)).toEqual(sorted(expected));
    }
    const single = await env(1)
      .fromSource(new JetStreamSource<{ i: number }>({ stream: 'input' }))
      .map((r) => r.i)
      .executeAndCollect();
    expect(single).toEqual(expected);
  });

  it('starts at a sequence and filters by subject', async () => {
    const fromSeq = await env()
      .fromSource(new JetStreamSource<{ i: number }>({ stream: 'input', startSequence: 991 }))
      .map((r) => r.i)
      .executeAndCollect();
    expect(fromSeq).toEqual([990, 991, 992, 993, 994, 995, 996, 997, 998, 999]);
    const odd = await env()
      .fromSource(new JetStreamSource<{ i: number }>({ stream: 'input', subject: 'in.odd' }))
      .map((r) => r.i)
      .executeAndCollect();
    expect(odd).toHaveLength(500);
    expect(odd.every((i) => i % 2 === 1)).toBe(true);
  });

  it('fails clearly on a missing stream and on a payload it cannot decode', async () => {
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
    expect((bad as Error).message).toContain("cannot decode message 1 of JetStream stream 'garbage'");
  });

  it('publishes every record once with message ids, and fails clearly without a stream', async () => {
    const e = env(2);
    e.fromSource(new GeneratorSource(2_000, (i) => ({ i })))
      .rebalance()
      .sinkTo(new JetStreamSink<{ i: number }>({ subject: 'out.records', maxInFlight: 16 }));
    await e.execute('to jetstream');
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('output')).state.messages).toBe(2_000);
    const seen: number[] = [];
    const ids = new Set<string>();
    const consumer = await jetstream(nc).consumers.get('output');
    const batch = await consumer.fetch({ max_messages: 2_000, expires: 2_000 });
    for await (const m of batch) {
      seen.push((JSON.parse(dec.decode(m.data)) as { i: number }).i);
      ids.add(m.headers?.get('Nats-Msg-Id') ?? '');
      if (seen.length === 2_000) break;
    }
    expect(sorted(seen)).toEqual(sorted([...Array(2_000).keys()]));
    expect(ids.size).toBe(2_000);
    expect([...ids].every((id) => /^[0-9a-f]{32}-[01]-\d+$/.test(id))).toBe(true);

    const f = env();
    f.fromElements(1).sinkTo(new JetStreamSink<number>({ subject: 'nowhere.x' }));
    const err = await f.execute().catch((x: unknown) => x);
    expect((err as Error).message).toContain("no JetStream stream captures subject 'nowhere.x'");
  });
});
