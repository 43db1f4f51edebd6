/**
 * The actor runtime against a real nats-server: one message at a time, typed replies and errors, retries
 * only for idempotent asks, size limits both ways, and a graceful stop. Declared protocols: every declared
 * message needs a handler, a typed gateway calls them, `fenced` messages are checked against the leader
 * epoch by the base class, and asks declared `json` take JSON (Content-Type header) and answer in JSON,
 * with coded JSON errors for malformed JSON, wrong shapes and oversized payloads.
 */
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Actor, type ActorContext } from '../../src/actors/actor.js';
import { ask, defineProtocol, gateway, tell } from '../../src/actors/protocol.js';
import { Rpc } from '../../src/actors/rpc.js';
import { Subjects } from '../../src/actors/subjects.js';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/log.js';
import { EpochFence } from '../../src/ha/fencing.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';

const RecorderProtocol = defineProtocol({
  role: 'Recorder',
  subject: '<address>',
  address: (_subjects, address: string) => address,
  clientFacing: false,
  messages: {
    slow: ask(z.object({ id: z.number(), ms: z.number() }), z.object({ id: z.number() }), {
      description: 'records its start and end',
      idempotent: true,
      json: true,
    }),
    fail: ask(z.object({}), z.object({}), { description: 'fails' }),
    big: ask(z.object({ bytes: z.number() }), z.object({ pad: z.string() }), {
      description: 'a reply of that size',
      json: true,
    }),
    note: tell(z.object({ text: z.string() }), { description: 'records a note' }),
    command: ask(z.object({ text: z.string() }), z.object({ done: z.boolean() }), {
      description: 'a leader command',
      fenced: 'leader-epoch',
    }),
    'fenced-note': tell(z.object({ text: z.string() }), {
      description: 'a leader command as a tell',
      fenced: 'leader-epoch',
    }),
    report: tell(z.object({ text: z.string(), epoch: z.number().optional() }), {
      description: 'a report of a task of some epoch',
      fenced: 'own-epoch',
    }),
  },
});

class Recorder extends Actor {
  readonly events: string[] = [];
  readonly fence = new EpochFence();
  active = 0;
  maxActive = 0;

  constructor(ctx: ActorContext, address: string, ownEpoch?: number) {
    super(ctx, 'Recorder', address);
    this.serve(
      RecorderProtocol,
      {
        slow: async ({ id, ms }) => {
          this.active++;
          this.maxActive = Math.max(this.maxActive, this.active);
          this.events.push(`start ${id}`);
          await new Promise((r) => setTimeout(r, ms));
          this.events.push(`end ${id}`);
          this.active--;
          return { id };
        },
        fail: () => {
          throw new SluiceError(ErrorCode.UnknownJob, 'no such job here');
        },
        big: ({ bytes }) => ({ pad: 'x'.repeat(bytes) }),
        note: ({ text }) => {
          this.events.push(text);
        },
        command: ({ text }, { epoch }) => {
          this.events.push(`${text}@${epoch}`);
          return { done: true };
        },
        'fenced-note': ({ text }, { epoch }) => {
          this.events.push(`${text}@${epoch}`);
        },
        report: ({ text }) => {
          this.events.push(text);
        },
      },
      { require: (epoch) => this.fence.require(epoch), own: ownEpoch },
    );
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

  it('calls an actor through its typed gateway; the reply is validated by the declared schema', async () => {
    const actor = new Recorder(ctx, 'test.gateway');
    actor.start();
    const recorder = gateway(rpc, new Subjects('t'), RecorderProtocol, 'test.gateway');
    expect(await recorder.ask('slow', { id: 3, ms: 0 })).toEqual({ id: 3 });
    recorder.tell('note', { text: 'hello' });
    await recorder.ask('slow', { id: 4, ms: 0 });
    expect(actor.events).toContain('hello');
    await actor.stop();
  });

  it('refuses to build an actor that lacks a handler for a declared message', () => {
    class Incomplete extends Actor {
      constructor() {
        super(ctx, 'Incomplete', 'test.incomplete');
        // @ts-expect-error: the handlers object must cover every declared message
        this.serve(RecorderProtocol, { slow: () => ({ id: 1 }) });
      }
    }
    expect(() => new Incomplete()).toThrow(/has no handler for its declared 'fail'/);
  });

  it('fences leader-epoch messages in the base class: an older epoch gets LEADERSHIP_LOST or is a counted drop', async () => {
    const actor = new Recorder(ctx, 'test.fence');
    actor.start();
    const recorder = gateway(rpc, new Subjects('t'), RecorderProtocol, 'test.fence');
    expect(await recorder.ask('command', { text: 'a' }, { epoch: 5 })).toEqual({ done: true });
    expect(await recorder.ask('command', { text: 'b' }, { epoch: 7 })).toEqual({ done: true });
    const stale = await recorder.ask('command', { text: 'c' }, { epoch: 6 }).catch((e: unknown) => e);
    expect((stale as SluiceError).code).toBe(ErrorCode.LeadershipLost);
    expect((stale as SluiceError).message).toMatch(/epoch 6 is superseded by epoch 7/);
    recorder.tell('fenced-note', { text: 'old' }, { epoch: 2 });
    recorder.tell('fenced-note', { text: 'new' }, { epoch: 7 });
    // Without HA (no epoch) nothing is fenced.
    expect(await recorder.ask('command', { text: 'd' })).toEqual({ done: true });
    expect(actor.events).toEqual(['a@5', 'b@7', 'new@7', 'd@undefined']);
    expect(actor.stats.rejected.LEADERSHIP_LOST).toBe(1);
    expect(actor.stats.dropped.LEADERSHIP_LOST).toBe(1);
    expect(actor.fence.current).toBe(7);
    await actor.stop();
  });

  it("fences own-epoch reports: another leader's are counted drops (epoch in the envelope, or only in the body)", async () => {
    const actor = new Recorder(ctx, 'test.own', 3);
    actor.start();
    const recorder = gateway(rpc, new Subjects('t'), RecorderProtocol, 'test.own');
    recorder.tell('report', { text: 'mine' }, { epoch: 3 });
    recorder.tell('report', { text: 'former leader' }, { epoch: 2 });
    recorder.tell('report', { text: 'mine, body only', epoch: 3 });
    recorder.tell('report', { text: 'former, body only', epoch: 2 });
    recorder.tell('report', { text: 'no epoch' });
    await recorder.ask('slow', { id: 1, ms: 0 });
    expect(actor.events.filter((e) => !e.startsWith('start') && !e.startsWith('end'))).toEqual([
      'mine',
      'mine, body only',
    ]);
    expect(actor.stats.dropped.LEADERSHIP_LOST).toBe(3);
    await actor.stop();
  });

  describe('JSON', () => {
    const json = (subject: string, payload: string | Uint8Array, contentType = 'application/json') => {
      const h = headers();
      h.set('Content-Type', contentType);
      return nc.request(subject, payload, { timeout: 2_000, headers: h });
    };
    const parse = (data: Uint8Array) => JSON.parse(new TextDecoder().decode(data));

    it('answers a JSON ask in JSON, with the JSON content type', async () => {
      const actor = new Recorder(ctx, 'test.json');
      actor.start();
      const reply = await json('test.json.slow', '{"id": 42, "ms": 0}');
      expect(reply.headers?.get('Content-Type')).toBe('application/json');
      expect(parse(reply.data)).toEqual({ v: 1, type: 'ok', body: { id: 42 } });
      // The header's case and parameters do not matter.
      const h = headers();
      h.set('content-type', 'Application/JSON; charset=utf-8');
      const again = await nc.request('test.json.slow', '{"id": 43, "ms": 0}', { timeout: 2_000, headers: h });
      expect(parse(again.data).body).toEqual({ id: 43 });
      // msgpack still works on the same subject.
      expect(await rpc.ask('test.json.slow', 'slow', { id: 44, ms: 0 })).toEqual({ id: 44 });
      await actor.stop();
    });

    it('answers bad JSON, a wrong shape, an oversized payload, a msgpack-only ask and an unknown type with coded JSON errors', async () => {
      const actor = new Recorder(ctx, 'test.badjson');
      actor.start();
      const cases: Array<[string, string | Uint8Array, string, RegExp]> = [
        ['slow', '{"id": 1, "ms": ', 'BAD_ENVELOPE', /not JSON/],
        ['slow', new Uint8Array([0xff, 0xfe, 0x00]), 'BAD_ENVELOPE', /not UTF-8/],
        ['slow', '{"id": "one", "ms": 0}', 'INVALID_MESSAGE', /invalid 'slow'/],
        ['slow', '[1, 2, 3]', 'INVALID_MESSAGE', /invalid 'slow'/],
        ['slow', `{"pad": "${'x'.repeat(MAX)}"}`, 'MESSAGE_TOO_LARGE', /over the limit/],
        ['fail', '{}', 'BAD_ENVELOPE', /takes msgpack envelopes only/],
        ['frobnicate', '{}', 'UNKNOWN_MESSAGE_TYPE', /no handler for 'frobnicate'/],
      ];
      for (const [type, payload, code, message] of cases) {
        const reply = parse((await json(`test.badjson.${type}`, payload)).data);
        expect(reply.type, `${type} ${String(payload).slice(0, 20)}`).toBe('error');
        expect(reply.error.code, reply.error.message).toBe(code);
        expect(reply.error.message).toMatch(message);
      }
      // A reply over the limit is refused in JSON too.
      const big = parse((await json('test.badjson.big', `{"bytes": ${MAX}}`)).data);
      expect(big.error.code).toBe('MESSAGE_TOO_LARGE');
      // An empty payload is {}: here a wrong shape, answered, not a crash.
      expect(parse((await json('test.badjson.slow', '')).data).error.code).toBe('INVALID_MESSAGE');
      // It still serves.
      expect(parse((await json('test.badjson.slow', '{"id":5,"ms":0}')).data).body).toEqual({ id: 5 });
      await actor.stop();
    });
  });
});
