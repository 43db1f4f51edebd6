/**
 * The partition harness (test/harness/netns.ts): a process in one namespace reaches NATS in another, a
 * partition cuts it off, a heal brings it back with its routes; everything is deleted on destroy, when the
 * creating process is interrupted, and (by the next run's sweep) when it was SIGKILLed.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ipBinary, netnsSupport, TestNetwork } from './netns.js';
import { type NetnsNatsCluster, startNatsClusterOnHosts } from './netns-nats.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IP = ipBinary();

async function namespaces(): Promise<string[]> {
  const { stdout } = await run(IP ?? 'ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n !== '');
}

/**
 * What of a run is left in the root namespace: its veth, routes of its /24 (the guard included). Only that
 * run's own names: other runs (another test file) may create and delete theirs meanwhile.
 */
async function leftInRoot(run_: { rootLink: string; subnet: string }): Promise<string[]> {
  const links = (await run(IP ?? 'ip', ['-o', 'link', 'show'])).stdout;
  const routes = (await run(IP ?? 'ip', ['route', 'show', 'table', 'all'])).stdout;
  const base = run_.subnet.slice(0, run_.subnet.lastIndexOf('.') + 1);
  return [
    ...links.split('\n').filter((l) => l.includes(` ${run_.rootLink}:`) || l.includes(` ${run_.rootLink}@`)),
    ...routes.split('\n').filter((l) => l.includes(base)),
  ];
}

/** Runs a NATS request from inside `argvPrefix` (a host's wrap): the reply, or the error's message. */
async function probe(wrap: (argv: string[]) => string[], url: string): Promise<string> {
  const script = `
    import { connect } from '@nats-io/transport-node';
    try {
      const nc = await connect({ servers: ${JSON.stringify(url)}, timeout: 1500, reconnect: false });
      const r = await nc.request('netns.echo', 'ping', { timeout: 1500 });
      console.log('reply:' + new TextDecoder().decode(r.data));
      await nc.close();
    } catch (err) { console.log('error:' + err.message); }
    process.exit(0); // a connect that timed out leaves a socket in SYN-SENT behind`;
  const [cmd, ...args] = wrap([process.execPath, '--input-type=module', '-e', script]);
  const { stdout } = await run(cmd!, args, { cwd: ROOT, timeout: 15_000 });
  return stdout.trim();
}

describe('test networks of namespaces (test/harness/netns.ts)', () => {
  let network: TestNetwork | undefined;
  let cluster: NetnsNatsCluster | undefined;
  let responder: NatsConnection | undefined;

  afterAll(async () => {
    await responder?.close().catch(() => {});
    await cluster?.stop();
    await network?.destroy();
  });

  it('reaches NATS across namespaces, a partition cuts it, a heal restores it', async (ctx) => {
    const support = await netnsSupport();
    if (!support.ok) {
      console.log(`network namespaces unavailable, partition tests skipped: ${support.reason}`);
      ctx.skip(support.reason);
      return;
    }
    network = await TestNetwork.create('nt');
    const made = { rootLink: network.rootLink, subnet: network.subnet };
    expect((await leftInRoot(made)).length).toBeGreaterThan(0); // the check can see them
    const natsHost = await network.addHost('nats');
    const client = await network.addHost('client');
    expect(natsHost.address).not.toBe(client.address);
    expect(network.subnet).toMatch(/^10\.222\.\d+\.0\/24$/);
    cluster = await startNatsClusterOnHosts([natsHost]);
    expect(cluster.urls).toEqual([`nats://${natsHost.address}:4222`]);

    // The runner reaches it through its own (never cut) link; it answers the probes.
    responder = await connect({ servers: cluster.urls, pingInterval: 1_000, maxPingOut: 2 });
    responder.subscribe('netns.echo', {
      callback: (_err, m) => {
        m.respond(`pong from ${natsHost.name}`);
      },
    });
    await responder.flush();

    expect(await probe(client.wrap, cluster.urls[0]!)).toBe('reply:pong from nats');
    // A process in a namespace has no way out but its /24: no default route.
    const routes = (await run(IP ?? 'ip', ['-n', client.netns, 'route', 'show'])).stdout;
    expect(routes).not.toMatch(/default/);

    await network.partition(client.name);
    expect(network.isCut(client.name)).toBe(true);
    expect(await probe(client.wrap, cluster.urls[0]!)).toMatch(/^error:/);
    await network.heal(client.name);
    expect(network.isCut(client.name)).toBe(false);
    expect((await run(IP ?? 'ip', ['-n', client.netns, 'route', 'show'])).stdout).toBe(routes);
    expect(await probe(client.wrap, cluster.urls[0]!)).toBe('reply:pong from nats');

    // Cutting the server's host cuts everyone off from it, the runner included; its connection survives.
    await network.partition(natsHost.name);
    expect(await probe(client.wrap, cluster.urls[0]!)).toMatch(/^error:/);
    await network.heal(natsHost.name);
    expect(await probe(client.wrap, cluster.urls[0]!)).toBe('reply:pong from nats');

    await responder.close();
    await cluster.stop();
    const names = [natsHost.netns, client.netns];
    await network.destroy();
    const left = await namespaces();
    expect(left.filter((n) => names.includes(n) || n.startsWith(`sl${process.pid}-nt`))).toEqual([]);
    expect(await leftInRoot(made)).toEqual([]);
  }, 60_000);

  it('cleans up when its process is interrupted, and sweeps what a SIGKILLed one left', async (ctx) => {
    const support = await netnsSupport();
    if (!support.ok) {
      ctx.skip(support.reason);
      return;
    }
    const script = `
      import { TestNetwork } from './test/harness/netns.ts';
      const n = await TestNetwork.create('child');
      await n.addHost('a');
      console.log('ready ' + JSON.stringify({ rootLink: n.rootLink, subnet: n.subnet }));
      setInterval(() => {}, 1000);`;
    const start = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      const ready = (async () => {
        for (;;) {
          const line = /^ready (.*)$/m.exec(out);
          if (line) return JSON.parse(line[1]!) as { rootLink: string; subnet: string };
          if (child.exitCode !== null) throw new Error(`child exited: ${out}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      return { child, ready };
    };
    const ours = async (pid: number) => (await namespaces()).filter((n) => n.startsWith(`sl${pid}-child`));

    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const { child, ready } = start();
      const made = await ready;
      expect(await ours(child.pid!)).toHaveLength(2); // the switch and host a
      expect((await leftInRoot(made)).length).toBeGreaterThan(0);
      child.kill(signal);
      await once(child, 'exit');
      expect(await ours(child.pid!), `after ${signal}`).toEqual([]);
      expect(await leftInRoot(made), `after ${signal}`).toEqual([]);
    }

    const { child, ready } = start();
    const made = await ready;
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await ours(child.pid!)).toHaveLength(2);
    expect((await leftInRoot(made)).length).toBeGreaterThan(0);
    const next = await TestNetwork.create('sweep'); // sweeps runs whose pid is gone
    await next.destroy();
    expect(await ours(child.pid!)).toEqual([]);
    expect(await leftInRoot(made)).toEqual([]);
  }, 60_000);
});
