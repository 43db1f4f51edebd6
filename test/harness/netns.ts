/**
 * Test networks of Linux network namespaces, for partition tests: each process under test runs on its own
 * "test host" (a network namespace), and a test can cut a host off and heal it again.
 *
 * Promises:
 * - {@link TestNetwork.create} builds, per run, a private switch: a namespace `sl<pid>-<label>-sw` with a
 *   bridge, and one veth from the test runner's (root) namespace into it. That root-side veth holds
 *   `rootAddress` (x.x.x.254) and is never cut, so the runner (its NATS admin clients, the launcher's
 *   readiness probes, client commands) always reaches every host that is not cut.
 * - {@link TestNetwork.addHost} adds a namespace `sl<pid>-<label>-<name>` with `lo` up and one interface
 *   `eth0` (a veth whose peer is a port of the bridge) holding `address` in the run's own /24. Its only
 *   routes are that /24 (no default route): a process in it reaches the other hosts and the runner, and
 *   nothing else. `host.wrap(argv)` is the argv that runs `argv` inside it (`ip netns exec`, which execs:
 *   the spawned pid is the program's own, so signals reach it directly).
 * - {@link TestNetwork.partition} cuts a host off (`ip link set eth0 down` on the namespace side, so
 *   established TCP connections see silence, not resets, as in a real partition); {@link TestNetwork.heal}
 *   brings it back and restores every route the host had at creation (taking a link down deletes the
 *   routes through it).
 * - The subnet is 10.222.<k>.0/24 with k claimed atomically by a `blackhole` route in the root namespace
 *   (metric 4000, below the veth's own route): a second run picks another k, and while the run lives no
 *   packet to the subnet can leave through the machine's default route, even after the root veth is gone.
 * - Cleanup: {@link TestNetwork.destroy} (idempotent) deletes the namespaces, the root veth and the route.
 *   It also runs synchronously on process exit and on SIGINT / SIGTERM / SIGHUP (then the signal is
 *   re-raised); what a SIGKILLed runner left behind is swept by the next `create` (a state file per run in
 *   /run/sluice-netns names what it made; a run whose pid is gone is stale).
 *
 * Refuses: running without `ip` or without CAP_NET_ADMIN — {@link netnsSupport} says why, so a test can
 * say so and skip only what needs namespaces. Never touches anything it did not create, never enables IP
 * forwarding, never adds a default route, never uses an address outside its own /24.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  accessSync,
  constants as fsConstants,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const STATE_DIR = '/run/sluice-netns';
const SUBNET_PREFIX = '10.222';
const GUARD_METRIC = '4000';
const MAX_HOSTS = 200;

/** The `ip` binary (iproute2): on PATH, else /usr/sbin or /sbin (root's PATH may lack them). */
function findIp(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'ip'), fsConstants.X_OK);
      return join(dir, 'ip');
    } catch {
      // next
    }
  }
  return undefined;
}

const IP = findIp();

/** The `ip` binary this module uses, if any. */
export function ipBinary(): string | undefined {
  return IP;
}

async function ip(...args: string[]): Promise<string> {
  if (IP === undefined) throw new Error('ip (iproute2) not found');
  try {
    const { stdout } = await run(IP, args, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Best-effort, synchronous (for exit and signal hooks). */
function ipSync(...args: string[]): void {
  if (IP === undefined) return;
  try {
    execFileSync(IP, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // best effort
  }
}

export type NetnsSupport = { ok: true } | { ok: false; reason: string };

let support: Promise<NetnsSupport> | undefined;

/** Whether this machine lets us create namespaces and veths (root with CAP_NET_ADMIN, iproute2). Cached. */
export function netnsSupport(): Promise<NetnsSupport> {
  support ??= (async (): Promise<NetnsSupport> => {
    if (process.platform !== 'linux')
      return { ok: false, reason: `network namespaces need Linux, not ${process.platform}` };
    if (IP === undefined) return { ok: false, reason: 'ip (iproute2) not found on PATH, /usr/sbin or /sbin' };
    const probe = `sl${process.pid}-probe`;
    try {
      await ip('netns', 'add', probe);
      try {
        await ip('-n', probe, 'link', 'add', 'name', 'a', 'type', 'veth', 'peer', 'name', 'b');
        await ip('-n', probe, 'link', 'add', 'name', 'br', 'type', 'bridge');
      } finally {
        await ip('netns', 'del', probe).catch(() => {});
      }
      return { ok: true };
    } catch (err) {
      return {
        ok: false,
        reason: `cannot create network namespaces, veth pairs and bridges (needs root with CAP_NET_ADMIN): ${(err as Error).message}`,
      };
    }
  })();
  return support;
}

export interface NetHost {
  readonly name: string;
  /** The namespace's name (`ip netns list`). */
  readonly netns: string;
  /** Its address in the run's /24. */
  readonly address: string;
  /** The argv that runs `argv` inside this host's namespace. */
  wrap(argv: string[]): string[];
}

interface RunState {
  pid: number;
  subnet: string;
  rootLink: string;
  namespaces: string[];
}

/** Deletes what a run made (best effort, synchronous). */
function teardown(state: RunState): void {
  // Hosts first: their processes keep a namespace alive but, with the switch gone, cut off from everything.
  for (const ns of [...state.namespaces].reverse()) ipSync('netns', 'del', ns);
  ipSync('link', 'del', state.rootLink);
  ipSync('route', 'del', 'blackhole', state.subnet, 'metric', GUARD_METRIC);
  rmSync(join(STATE_DIR, `${state.pid}-${state.rootLink}.json`), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes what runs that no longer exist left behind (a SIGKILLed test runner). */
function sweepStale(): void {
  let files: string[];
  try {
    files = readdirSync(STATE_DIR);
  } catch {
    return;
  }
  for (const file of files) {
    let state: RunState;
    try {
      state = JSON.parse(readFileSync(join(STATE_DIR, file), 'utf8')) as RunState;
    } catch {
      continue;
    }
    if (state.pid !== process.pid && !alive(state.pid)) teardown(state);
  }
}

const liveNetworks = new Set<TestNetwork>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const n of liveNetworks) n.destroySync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = () => {
      for (const n of liveNetworks) n.destroySync();
      process.removeListener(signal, handler);
      process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

export class TestNetwork {
  /** This run's /24, e.g. `10.222.17.0/24`. */
  readonly subnet: string;
  /** The runner's (root namespace) address on the switch: never cut. */
  readonly rootAddress: string;
  /** The runner's veth into the switch (in the root namespace). */
  readonly rootLink: string;
  readonly #base: string;
  readonly #state: RunState;
  readonly #switch: string;
  readonly #hosts = new Map<string, NetHost & { index: number; routes: string[][] }>();
  readonly #cut = new Set<string>();
  #destroyed = false;

  private constructor(base: string, state: RunState, switchNs: string) {
    this.#base = base;
    this.#state = state;
    this.#switch = switchNs;
    this.subnet = state.subnet;
    this.rootAddress = `${base}.254`;
    this.rootLink = state.rootLink;
  }

  /**
   * Builds the switch and the runner's link into it. `label` (letters and digits, ≤ 8) tells runs of one
   * process apart. Throws when {@link netnsSupport} says no.
   */
  static async create(label = 'net'): Promise<TestNetwork> {
    if (!/^[a-z0-9]{1,8}$/.test(label))
      throw new Error(`label must be 1-8 lowercase letters or digits, got '${label}'`);
    const ok = await netnsSupport();
    if (!ok.ok) throw new Error(ok.reason);
    mkdirSync(STATE_DIR, { recursive: true });
    sweepStale();
    // Claim a /24: `ip route add` of the guard fails when another run holds it.
    let k = (process.pid * 7 + liveNetworks.size * 31) % 250;
    let subnet: string | undefined;
    for (let tries = 0; tries < 250 && subnet === undefined; tries++, k = (k + 1) % 250) {
      const candidate = `${SUBNET_PREFIX}.${k + 1}.0/24`;
      try {
        await ip('route', 'add', 'blackhole', candidate, 'metric', GUARD_METRIC);
        subnet = candidate;
      } catch {
        // taken (or overlapping): next
      }
    }
    if (subnet === undefined) throw new Error(`no free /24 under ${SUBNET_PREFIX}.0.0/16`);
    const base = subnet.slice(0, subnet.lastIndexOf('.'));
    const prefix = `sl${process.pid}-${label}`;
    const rootLink = `sl${process.pid.toString(36)}${label}`.slice(0, 15);
    const switchNs = `${prefix}-sw`;
    const state: RunState = { pid: process.pid, subnet, rootLink, namespaces: [] };
    const network = new TestNetwork(base, state, switchNs);
    liveNetworks.add(network);
    installHooks();
    network.#saveState();
    try {
      await ip('netns', 'add', switchNs);
      state.namespaces.push(switchNs);
      network.#saveState();
      await ip('-n', switchNs, 'link', 'add', 'name', 'br0', 'type', 'bridge');
      await ip('-n', switchNs, 'link', 'set', 'br0', 'up');
      await ip('link', 'add', 'name', rootLink, 'type', 'veth', 'peer', 'name', 'up0', 'netns', switchNs);
      await ip('-n', switchNs, 'link', 'set', 'up0', 'master', 'br0', 'up');
      // No IPv6 on the runner's link: nothing of the root namespace's IPv6 (link-local, multicast) is routed there.
      await writeFile(`/proc/sys/net/ipv6/conf/${rootLink}/disable_ipv6`, '1').catch(() => {});
      await ip('addr', 'add', `${network.rootAddress}/24`, 'dev', rootLink);
      await ip('link', 'set', rootLink, 'up');
    } catch (err) {
      await network.destroy();
      throw err;
    }
    return network;
  }

  /** Adds a test host `name` (letters, digits, `-`; ≤ 12) with the next free address. */
  async addHost(name: string): Promise<NetHost> {
    if (this.#destroyed) throw new Error('the test network was destroyed');
    if (!/^[a-z0-9-]{1,12}$/.test(name))
      throw new Error(`host name must be 1-12 of [a-z0-9-], got '${name}'`);
    if (this.#hosts.has(name)) throw new Error(`host '${name}' exists already`);
    const index = this.#hosts.size + 1;
    if (index > MAX_HOSTS) throw new Error(`at most ${MAX_HOSTS} hosts`);
    const netns = `${this.#switch.slice(0, -3)}-${name}`;
    const address = `${this.#base}.${index}`;
    await ip('netns', 'add', netns);
    this.#state.namespaces.push(netns);
    this.#saveState();
    const port = `p${index}`;
    await ip(
      '-n',
      this.#switch,
      'link',
      'add',
      'name',
      port,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      netns,
    );
    await ip('-n', this.#switch, 'link', 'set', port, 'master', 'br0', 'up');
    await ip('-n', netns, 'link', 'set', 'lo', 'up');
    await ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    await ip('-n', netns, 'link', 'set', 'eth0', 'up');
    const routes = await this.#routesOf(netns);
    const ipBin = IP!;
    const host = {
      name,
      netns,
      address,
      index,
      routes,
      wrap: (argv: string[]) => [ipBin, 'netns', 'exec', netns, ...argv],
    };
    this.#hosts.set(name, host);
    return host;
  }

  host(name: string): NetHost {
    const h = this.#hosts.get(name);
    if (h === undefined) throw new Error(`no host '${name}'`);
    return h;
  }

  get hosts(): NetHost[] {
    return [...this.#hosts.values()];
  }

  isCut(name: string): boolean {
    return this.#cut.has(name);
  }

  /** Cuts host `name` off from every other host and from the runner (its `eth0` down). */
  async partition(name: string): Promise<void> {
    const h = this.host(name);
    await ip('-n', h.netns, 'link', 'set', 'eth0', 'down');
    this.#cut.add(name);
  }

  /** Brings host `name` back: `eth0` up, and every route it had at creation restored. */
  async heal(name: string): Promise<void> {
    const h = this.#hosts.get(name);
    if (h === undefined) throw new Error(`no host '${name}'`);
    await ip('-n', h.netns, 'link', 'set', 'eth0', 'up');
    const now = new Set((await this.#routesOf(h.netns)).map((r) => r.join(' ')));
    for (const route of h.routes) {
      if (!now.has(route.join(' '))) await ip('-n', h.netns, 'route', 'add', ...route);
    }
    this.#cut.delete(name);
  }

  /** Deletes every namespace, the runner's veth and the subnet's guard route. Idempotent. */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** {@link destroy}, synchronously (exit and signal hooks). */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    liveNetworks.delete(this);
    teardown(this.#state);
  }

  /** The host's routes in the main table, each as `ip route add` arguments. */
  async #routesOf(netns: string): Promise<string[][]> {
    const out = await ip('-n', netns, '-j', 'route', 'show');
    const parsed = JSON.parse(out || '[]') as Array<{
      dst: string;
      gateway?: string;
      dev?: string;
      prefsrc?: string;
      scope?: string;
    }>;
    return parsed.map((r) => [
      r.dst,
      ...(r.gateway !== undefined ? ['via', r.gateway] : []),
      ...(r.dev !== undefined ? ['dev', r.dev] : []),
      ...(r.scope !== undefined && r.gateway === undefined ? ['scope', r.scope] : []),
      ...(r.prefsrc !== undefined ? ['src', r.prefsrc] : []),
    ]);
  }

  #saveState(): void {
    writeFileSync(
      join(STATE_DIR, `${this.#state.pid}-${this.#state.rootLink}.json`),
      JSON.stringify(this.#state),
    );
  }
}
