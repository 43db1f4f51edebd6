/**
 * Reading object-store chunks (src/nats/object-chunks.ts) against a real nats-server: a state object of
 * several chunks comes back byte for byte through Direct Get (no chunk is asked of STREAM.MSG.GET), and
 * from a stream that answers no Direct Get (`allow_direct` off) through the stream API instead.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { StateStore } from '../../src/runtime/checkpoint/state-store.js';

describe('readObjectChunks', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let store: StateStore;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    store = await StateStore.open(nc, 'object-chunks');
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('reads every chunk with Direct Get, and with the stream API where Direct Get is off', async () => {
    // 128 KiB chunks: five of them, the last one partial.
    const bytes = new Uint8Array(randomBytes(600 * 1024));
    const other = new Uint8Array(randomBytes(300 * 1024));
    const ref = await store.put('checkpoints/j/chk-1/v0/0', bytes);
    await store.put('checkpoints/j/chk-1/v0/1', other);

    const spy = await connect({ servers: nats.url });
    const seen = { direct: 0, stream: 0 };
    // Chunk reads ask `next_by_subj` (the object's info is read by `last_by_subj`).
    const chunkRead = (payload: string) => payload.includes('next_by_subj');
    spy.subscribe('$JS.API.DIRECT.GET.>', {
      callback: (_, m) => {
        if (chunkRead(m.string())) seen.direct++;
      },
    });
    spy.subscribe('$JS.API.STREAM.MSG.GET.>', {
      callback: (_, m) => {
        if (chunkRead(m.string())) seen.stream++;
      },
    });
    await spy.flush();
    const viaDirect = await store.get(ref);
    await spy.flush();
    await spy.close();
    expect(Buffer.from(viaDirect).equals(Buffer.from(bytes))).toBe(true);
    expect(seen).toEqual({ direct: 5, stream: 0 });

    const jsm = await jetstreamManager(nc);
    const stream = `OBJ_${store.bucket}`;
    const { config } = await jsm.streams.info(stream);
    await jsm.streams.update(stream, { ...config, allow_direct: false });
    const viaStreamApi = await (await StateStore.open(nc, 'object-chunks')).get(ref);
    expect(Buffer.from(viaStreamApi).equals(Buffer.from(bytes))).toBe(true);
  });
});
