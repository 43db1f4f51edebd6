/**
 * A Sluice process leaves a NATS server that has gone silent (cut off the network: its socket stays open, it
 * just never answers) after `nats.max-pings-out` unanswered pings at `nats.ping-interval`, and reconnects to
 * another server of its list. A stopped server (SIGSTOP) is silent the way a partitioned one is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { connectNats, pickServerToDial } from '../../src/nats/connection.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';

describe('NATS connection liveness', () => {
  let servers: NatsServerHandle[] = [];
  beforeAll(async () => {
    servers = await Promise.all([
      startNatsServer({ jetstream: false }),
      startNatsServer({ jetstream: false }),
    ]);
  });
  afterAll(async () => {
    for (const s of servers) s.kill('SIGCONT');
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('leaves a silent server within a few ping intervals and reconnects to another', async () => {
    const config = loadConfig({
      dynamic: [
        `nats.servers=${servers.map((s) => s.url).join(',')}`,
        'nats.ping-interval=200 ms',
        'nats.max-pings-out=2',
      ],
    });
    expect(config.nats.pingIntervalMs).toBe(200);
    expect(config.nats.maxPingsOut).toBe(2);
    const nc = await connectNats(config.nats, { name: 'liveness-test' });
    try {
      const first = servers.find((s) => nc.getServer().endsWith(`:${s.port}`));
      const other = servers.find((s) => s !== first);
      if (!first || !other) throw new Error(`connected to an unknown server ${nc.getServer()}`);
      const events: { type: string; at: number }[] = [];
      void (async () => {
        for await (const s of nc.status()) events.push({ type: s.type, at: Date.now() });
      })();

      first.kill('SIGSTOP');
      const stoppedAt = Date.now();
      while (!events.some((e) => e.type === 'reconnect') && Date.now() - stoppedAt < 10_000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const disconnect = events.find((e) => e.type === 'disconnect');
      expect(disconnect, 'no disconnect from the silent server').toBeDefined();
      // 2 pings outstanding at 200 ms: left after 400–600 ms plus timer slack (the former fixed 10 s: 20–30 s).
      expect((disconnect?.at ?? Number.POSITIVE_INFINITY) - stoppedAt).toBeLessThan(2_000);
      // ...and dialled the other server at once, not the silent one again (that would cost the 5 s connect
      // timeout: the NATS client's own rotation retries the server it just left first).
      const reconnect = events.find((e) => e.type === 'reconnect');
      expect(reconnect, 'no reconnect to the other server').toBeDefined();
      expect((reconnect?.at ?? Number.POSITIVE_INFINITY) - stoppedAt).toBeLessThan(2_500);
      expect(nc.getServer().endsWith(`:${other.port}`)).toBe(true);
      await nc.flush();
    } finally {
      await nc.close();
    }
  });

  it('dials the server tried longest ago, never-tried ones first, ties in pool order', () => {
    const server = (port: number, lastConnect: number) =>
      ({
        hostname: '127.0.0.1',
        port,
        listen: `127.0.0.1:${port}`,
        src: '',
        tlsName: '',
        reconnects: 0,
        lastConnect,
        gossiped: false,
        didConnect: lastConnect > 0,
      }) as const;
    expect(pickServerToDial([server(1, 500), server(2, 0), server(3, 0)])?.port).toBe(2);
    expect(pickServerToDial([server(1, 500), server(2, 300), server(3, 400)])?.port).toBe(2);
    expect(pickServerToDial([server(1, 0), server(2, 0)])?.port).toBe(1);
    expect(pickServerToDial([])).toBeNull();
  });
});
