/**
 * Bad input at every Dispatcher and ResourceManager subject: garbage, a wrong envelope version, an
 * unknown type, an invalid body, an oversized message, unknown job ids. Asks get coded error replies,
 * tells are dropped and counted, and the JobManager keeps serving. Plus bad configuration and an
 * unreachable NATS from the CLI.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const CLUSTER = 'badinput';
const packr = new Packr({ useRecords: false });
const UNKNOWN_JOB = '0123456789abcdef0123456789abcdef';

const DISPATCHER = ['submit', 'list', 'status', 'cancel', 'overview'];
const RM = ['register', 'heartbeat', 'unregister'];

describe('bad input to the JobManager', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let common: string[];
  const prefix = `sluice.${CLUSTER}`;

  beforeAll(async () => {
    nats = await startNatsServer();
    common = ['--nats', nats.url, '--cluster-id', CLUSTER];
    jm = new SluiceProcess(['jobmanager', ...common]);
    await jm.waitForMessage('JobManager started');
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '2']);
    await tm.waitForMessage('registered at ResourceManager');
    nc = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await nc?.close();
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
  });

  const ask = async (subject: string, data: Uint8Array) => {
    const reply = await nc.request(subject, data, { timeout: 5_000 });
    return packr.unpack(reply.data) as { type: string; error?: { code: string; message: string } };
  };

  const subjects = [
    ...DISPATCHER.map((t) => ({ actor: 'dispatcher', type: t })),
    ...RM.map((t) => ({ actor: 'rm', type: t })),
  ];

  const cases: Array<{ name: string; code: string; data: (type: string) => Uint8Array }> = [
    {
      name: 'garbage bytes',
      code: 'BAD_ENVELOPE',
      data: () => new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37]),
    },
    { name: 'a non-map value', code: 'BAD_ENVELOPE', data: () => packr.pack([1, 2, 3]) },
    {
      name: 'a wrong envelope version',
      code: 'UNSUPPORTED_VERSION',
      data: (type) => packr.pack({ v: 99, type, body: {} }),
    },
    {
      name: 'an envelope of another type',
      code: 'INVALID_MESSAGE',
      data: () => packr.pack({ v: 1, type: 'frobnicate', body: {} }),
    },
    {
      name: 'an invalid body',
      code: 'INVALID_MESSAGE',
      data: (type) =>
        packr.pack({
          v: 1,
          type,
          body: { jobId: 42, all: 'x', jobGraph: 1, taskManagerId: '..', slots: -1 },
        }),
    },
    {
      name: 'a message over the size limit',
      code: 'MESSAGE_TOO_LARGE',
      data: (type) => packr.pack({ v: 1, type, body: { pad: 'x'.repeat(600 * 1024) } }),
    },
  ];

  for (const c of cases) {
    it(`answers ${c.name} with ${c.code} on every subject`, async () => {
      for (const { actor, type } of subjects) {
        if (c.name === 'an invalid body' && type === 'overview') continue;
        const reply = await ask(`${prefix}.${actor}.${type}`, c.data(type));
        expect(reply.type, `${actor}.${type}`).toBe('error');
        expect(reply.error?.code, `${actor}.${type}: ${reply.error?.message}`).toBe(c.code);
      }
    });
  }

  it('answers a message type nobody handles with UNKNOWN_MESSAGE_TYPE', async () => {
    for (const actor of ['dispatcher', 'rm']) {
      const reply = await ask(
        `${prefix}.${actor}.frobnicate`,
        packr.pack({ v: 1, type: 'frobnicate', body: {} }),
      );
      expect(reply.error?.code).toBe('UNKNOWN_MESSAGE_TYPE');
    }
  });

  it('answers requests naming an unknown job id with UNKNOWN_JOB', async () => {
    for (const type of ['status', 'cancel']) {
      const reply = await ask(
        `${prefix}.dispatcher.${type}`,
        packr.pack({ v: 1, type, body: { jobId: UNKNOWN_JOB } }),
      );
      expect(reply.error?.code).toBe('UNKNOWN_JOB');
    }
    const status = await sluice(['status', ...common, UNKNOWN_JOB]);
    expect(status.code).toBe(1);
    expect(status.stderr.trim()).toBe(`sluice: job ${UNKNOWN_JOB} is not known to this JobManager`);
    const notAnId = await sluice(['cancel', ...common, 'nope']);
    expect(notAnId.code).toBe(1);
    expect(notAnId.stderr).toContain("'nope' is not a job id");
  });

  it('drops and counts bad tells, and keeps serving', async () => {
    const statsOf = async (actor: string) =>
      (await ask(`${prefix}.${actor}.stats`, new Uint8Array())) as unknown as {
        type: string;
        body: { dropped: Record<string, number> };
      };
    const before = {
      dispatcher: (await statsOf('dispatcher')).body.dropped,
      rm: (await statsOf('rm')).body.dropped,
    };
    let sent = 0;
    for (const { actor, type } of subjects) {
      for (const c of cases) {
        if (c.name === 'an invalid body' && type === 'overview') continue;
        nc.publish(`${prefix}.${actor}.${type}`, c.data(type));
        sent++;
      }
    }
    await nc.flush();
    const total = (d: Record<string, number>) => Object.values(d).reduce((a, b) => a + b, 0);
    await expect
      .poll(async () => {
        const after = {
          dispatcher: (await statsOf('dispatcher')).body.dropped,
          rm: (await statsOf('rm')).body.dropped,
        };
        return total(after.dispatcher) - total(before.dispatcher) + total(after.rm) - total(before.rm);
      })
      .toBe(sent);
    const after = (await statsOf('dispatcher')).body.dropped;
    expect((after.MESSAGE_TOO_LARGE ?? 0) - (before.dispatcher.MESSAGE_TOO_LARGE ?? 0)).toBe(
      DISPATCHER.length,
    );

    // Still serving: a job runs to the end.
    const run = await sluice(['run', ...common, '-p', '2', 'builtin:count', '1000']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`sum: ${1000 * 999}`);
    expect(jm.child.exitCode).toBeNull();
  });

  it('rejects a job graph that does not validate with INVALID_JOB', async () => {
    const graph = { jobId: UNKNOWN_JOB, name: 'x', vertices: [], edges: [] };
    const reply = await ask(
      `${prefix}.dispatcher.submit`,
      packr.pack({ v: 1, type: 'submit', body: { jobGraph: graph } }),
    );
    expect(reply.error?.code).toBe('INVALID_JOB');
  });
});

describe('bad configuration and an unreachable NATS', () => {
  it('reports each invalid config value on its own line, without a stack trace', async () => {
    const r = await sluice([
      'jobmanager',
      '-D',
      'heartbeat.timeout=5 parsecs',
      '-D',
      'parallelism.default=0',
      '-D',
      'taskmanager.numberOfTaskSlot=2',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('heartbeat.timeout');
    expect(r.stderr).toContain('parallelism.default');
    expect(r.stderr).toContain("did you mean 'taskmanager.numberOfTaskSlots'");
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('says in one line that NATS cannot be reached, and exits non-zero', async () => {
    const r = await sluice(['list', '--nats', 'nats://127.0.0.1:1', '-D', 'nats.connect-timeout=1 s']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sluice: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });
});
