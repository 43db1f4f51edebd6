/**
 * The actor runtime against a real nats-server: one message at a time, typed replies and errors, retries
 * only for idempotent asks, size limits both ways, and a graceful stop.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Actor, type ActorContext } from '../../src/actors/actor.js';
import { Rpc } from '../../src/actors/rpc.js';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/log.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';

class Recorder extends Actor {
  readonly events: string[] = [];
  active = 0;
  maxActive = 0;

  constructor(ctx: ActorContext, address: string) {
    super(ctx, 'Recorder', address);
    this.onAsk('slow', z.object({ id: z.number(), ms: z.number() }), async ({ id, ms }) => {
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      this.events.push(`start ${id}`);
      await new Promise((r) => setTimeout(r, ms));
      this.events.push(`end ${id}`);
      this.active--;
      return { id };
    });
    this.onAsk('fail', z.object({}), () => {
      throw new SluiceError(ErrorCode.UnknownJob, 'no such job here');
    });
    this.onAsk('big', z.object({ bytes: z.number() }), ({ bytes }) => ({ pad: 'x'.repeat(bytes) }));
    this.onTell('note', z.object({ text: z.string() }), ({ text }) => {
      this.events.push(text);
    });
  }
}

describe('actor runtime', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let rpc: Rpc;
  let ctx: ActorContext;
  const MAX = 64 * 1024;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    rpc = new Rpc(nc, { maxMessageBytes: MAX, askTimeoutMs: 2_000, askRetries: 4 });
    ctx = { nc, rpc, log: silentLogger(), clusterId: 't', maxMessageBytes: MAX };
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('handles one message at a time, in arrival order', async () => {
    const actor = new Recorder(ctx, 'test.order');
    actor.start();
    const replies = await Promise.all(
      [1, 2, 3, 4].map((id) => rpc.ask('test.order.slow', 'slow', { id, ms: 20 - id * 4 })),
    );
    expect(replies).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]);
    expect(actor.maxActive).toBe(1);
    expect(actor.events).toEqual([
      'start 1',
      'end 1',
      'start 2',
      'end 2',
      'start 3',
      'end 3',
      'start 4',
      'end 4',
    ]);
    await actor.stop();
  });

  it('brings a handler error back to the asker as the same code', async () => {
    const actor = new Recorder(ctx, 'test.err');
    actor.start();
    const err = await rpc.ask('test.err.fail', 'fail', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe(ErrorCode.UnknownJob);
    expect((err as SluiceError).message).toBe('no such job here');
    expect(actor.stats.rejected.UNKNOWN_JOB).toBe(1);
    await actor.stop();
  });

  it('retries idempotent asks through "no responders" until the actor appears, and only those', async () => {
    const plain = await rpc.ask('test.late.note', 'note', { text: 'x' }).catch((e: unknown) => e);
    expect((plain as SluiceError).code).toBe(ErrorCode.NoResponders);

    const late = new Recorder(ctx, 'test.late');
    const started = setTimeout(() => late.start(), 250);
    const reply = await rpc.ask('test.late.slow', 'slow', { id: 7, ms: 0 }, { idempotent: true });
    clearTimeout(started);
    expect(reply).toEqual({ id: 7 });
    await late.stop();
  });

  it('refuses to send a message over the limit, and answers an oversized reply with MESSAGE_TOO_LARGE', async () => {
    const actor = new Recorder(ctx, 'test.big');
    actor.start();
    const out = await rpc
      .ask('test.big.slow', 'slow', { id: 1, ms: 0, pad: 'x'.repeat(MAX) })
      .catch((e) => e);
    expect((out as SluiceError).code).toBe(ErrorCode.MessageTooLarge);
    const back = await rpc.ask('test.big.big', 'big', { bytes: MAX }).catch((e: unknown) => e);
    expect((back as SluiceError).code).toBe(ErrorCode.MessageTooLarge);
    expect(await rpc.ask('test.big.big', 'big', { bytes: 10 })).toEqual({ pad: 'xxxxxxxxxx' });
    await actor.stop();
  });

  it('validates reply bodies when the asker gives a schema', async () => {
    const actor = new Recorder(ctx, 'test.reply');
    actor.start();
    const err = await rpc
      .ask('test.reply.slow', 'slow', { id: 1, ms: 0 }, { reply: z.object({ id: z.string() }) })
      .catch((e: unknown) => e);
    expect((err as SluiceError).code).toBe(ErrorCode.InvalidMessage);
    await actor.stop();
  });

  it('finishes queued messages before stop() resolves, then takes no more', async () => {
    const actor = new Recorder(ctx, 'test.stop');
    actor.start();
    const pending = [1, 2, 3].map((id) => rpc.ask('test.stop.slow', 'slow', { id, ms: 30 }));
    await new Promise((r) => setTimeout(r, 10));
    await actor.stop();
    expect(actor.events.filter((e) => e.startsWith('end'))).toHaveLength(3);
    await expect(Promise.all(pending)).resolves.toHaveLength(3);
    const after = await rpc.ask('test.stop.slow', 'slow', { id: 9, ms: 0 }).catch((e: unknown) => e);
    expect((after as SluiceError).code).toBe(ErrorCode.NoResponders);
    expect(actor.state).toBe('STOPPED');
  });
});
