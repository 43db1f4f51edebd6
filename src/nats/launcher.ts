/**
 * Starts real `nats-server` child processes: one JetStream node, or a JetStream cluster on loopback. Used by
 * the tests and by the product's local mode.
 *
 * How a server is started (in the manner of nats.js's own test launcher):
 * - a private temp dir (`mkdtemp` under `os.tmpdir()`) holds the generated config file, the ports-file dir
 *   and, unless `storeDir` is given, the JetStream store; `stop()` removes it;
 * - the config listens on `host:port` with port -1 by default (a free port chosen by the server), and
 *   `--ports_file_dir` makes the server write `<exe>_<pid>.ports` (JSON, `{"nats":["nats://h:p"],...}`)
 *   once it listens: that is how the actual port is learned;
 * - ready means: the ports file is there, a TCP connect to the client port succeeds and, with JetStream,
 *   `$JS.API.INFO` answers (retried with a short per-try timeout);
 * - it fails fast: if the process exits first, or `startTimeoutMs` passes, the child is killed and the
 *   promise rejects with a {@link NatsServerStartError} whose message has the server's last output.
 *
 * Not outliving the parent: every running server is killed with SIGKILL from a `process.on('exit')` hook
 * (synchronously; its temp dir is removed too). This is best effort: the hook runs on a normal exit and on
 * `process.exit()`, but not when the parent is killed by a signal it does not handle (SIGKILL, or SIGTERM /
 * SIGHUP without a handler). On Ctrl-C in a terminal the child gets SIGINT from the terminal itself, as it
 * shares the foreground process group. Callers that handle signals should call `stop()` from their handler.
 *
 * Size: one concept, starting real nats-server processes; single nodes and clusters share the config,
 * readiness and cleanup code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

export interface NatsServerOptions {
  /** Interface to listen on. Default '127.0.0.1': nothing else is ever bound by default. */
  host?: string;
  /** Client port. Default -1: a free port picked by the server, read back from its ports file. */
  port?: number;
  /** JetStream store dir. Default: a fresh temp dir, removed on `stop()`. A given dir is never removed. */
  storeDir?: string;
  /** Default true. */
  jetstream?: boolean;
  serverName?: string;
  /** Cluster block for multi-node clusters; `routes` are `nats-route://host:port` URLs of the other nodes. */
  cluster?: { name: string; port: number; routes: string[] };
  /** Also start the HTTP monitoring endpoint on `host` and a free port (see `monitorUrl`). Default false. */
  monitoring?: boolean;
  /** Appended verbatim to the generated config file. */
  extraConfig?: string;
  /** Default: `$NATS_SERVER_BIN`, else `nats-server` on PATH, else /usr/sbin/nats-server. */
  binary?: string;
  /** Default 10_000. */
  startTimeoutMs?: number;
  /** Where the server's stdout/stderr go (appended). Default: kept in memory (last 64 KiB) for errors. */
  logFile?: string;
  /**
   * Whether "ready" includes JetStream answering `$JS.API.INFO`. Default: `jetstream && !cluster` (a lone
   * cluster node cannot answer before its peers are up; {@link startNatsCluster} waits cluster-wide).
   */
  waitForJetStream?: boolean;
}

export interface NatsServerHandle {
  /** `nats://<host>:<port>` (127.0.0.1 when listening on all interfaces). */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly storeDir: string;
  /** The configured `serverName` (cluster nodes: `<clusterName>-n<i>`). */
  readonly serverName: string | undefined;
  /** `http://host:port` of the monitoring endpoint when `monitoring` was set. */
  readonly monitorUrl: string | undefined;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove the temp dir it created. Idempotent. */
  stop(): Promise<void>;
  /** Sends a raw signal (default SIGKILL) for chaos tests; call `stop()` later to clean up. */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the exit code (null when ended by a signal) once the process has exited. Never rejects. */
  readonly exited: Promise<number | null>;
  /** The last ~64 KiB the server printed (empty when `logFile` was given). */
  output(): string;
}

export interface NatsClusterOptions {
  /** Default 'sluice'. Servers are named `<clusterName>-n1`, `-n2`, ... */
  clusterName?: string;
  host?: string;
  binary?: string;
  extraConfig?: string;
  monitoring?: boolean;
  /** Per-server start timeout; default 10_000. */
  startTimeoutMs?: number;
  /** How long to wait for the JetStream meta leader once all servers run; default 30_000. */
  readyTimeoutMs?: number;
  /** When set, server i logs to `<logDir>/n<i>.log`. */
  logDir?: string;
}

export interface NatsCluster {
  readonly servers: NatsServerHandle[];
  readonly urls: string[];
  /** Stops every server; idempotent. */
  stop(): Promise<void>;
}

/** A server that could not be started; `output` is the server's last output. */
export class NatsServerStartError extends Error {
  override readonly name = 'NatsServerStartError';
  readonly output: string;
  constructor(message: string, output: string) {
    super(output.trim() === '' ? message : `${message}\n--- nats-server output ---\n${output.trimEnd()}`);
    this.output = output;
  }
}

const NOT_FOUND = 'nats-server not found: install it (apt-get install -y nats-server) or set NATS_SERVER_BIN';
const OUTPUT_LIMIT = 64 * 1024;
const STOP_GRACE_MS = 5_000;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The nats-server executable: `explicit`, else `$NATS_SERVER_BIN`, else `nats-server` on PATH, else
 * /usr/sbin/nats-server (Debian's, often not on a non-root PATH). Throws when none is executable.
 */
export function findNatsServerBinary(explicit?: string): string {
  const wanted = explicit ?? (process.env.NATS_SERVER_BIN || undefined);
  if (wanted !== undefined) {
    const found = wanted.includes('/')
      ? isExecutable(wanted)
        ? resolve(wanted)
        : undefined
      : onPath(wanted);
    if (found === undefined) throw new Error(`${NOT_FOUND} (${JSON.stringify(wanted)} is not an executable)`);
    return found;
  }
  const found =
    onPath('nats-server') ?? (isExecutable('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : undefined);
  if (found === undefined) throw new Error(NOT_FOUND);
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// Killing children when the parent exits.

interface LiveServer {
  child: ChildProcess;
  tempRoot: string;
}
const live = new Set<LiveServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) {
      try {
        server.child.kill('SIGKILL');
      } catch {
        // best effort
      }
      try {
        rmSync(server.tempRoot, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
    live.clear();
  });
}

// ---------------------------------------------------------------------------------------------------------

/** A config string literal; nats-server's parser takes JSON-style double-quoted strings. */
function q(value: string): string {
  return JSON.stringify(value);
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function buildConfig(o: {
  host: string;
  port: number;
  storeDir: string;
  jetstream: boolean;
  serverName: string | undefined;
  cluster: NatsServerOptions['cluster'];
  monitoring: boolean;
  extraConfig: string | undefined;
}): string {
  const lines = ['# generated by sluice src/nats/launcher.ts', `listen: ${q(hostPort(o.host, o.port))}`];
  if (o.serverName !== undefined) lines.push(`server_name: ${q(o.serverName)}`);
  if (o.monitoring) lines.push(`http: ${q(hostPort(o.host, -1))}`);
  if (o.jetstream) lines.push(`jetstream {`, `  store_dir: ${q(o.storeDir)}`, `}`);
  if (o.cluster !== undefined) {
    lines.push(
      'cluster {',
      `  name: ${q(o.cluster.name)}`,
      `  listen: ${q(hostPort(o.host, o.cluster.port))}`,
      `  routes: [${o.cluster.routes.map(q).join(', ')}]`,
      '}',
    );
  }
  if (o.extraConfig !== undefined) lines.push(o.extraConfig);
  return `${lines.join('\n')}\n`;
}

interface PortsFile {
  nats?: string[];
  monitoring?: string[];
  cluster?: string[];
}

async function readPortsFile(dir: string): Promise<PortsFile | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const name = names.find((n) => n.endsWith('.ports'));
  if (name === undefined) return undefined;
  try {
    const parsed = JSON.parse(await readFile(join(dir, name), 'utf8')) as PortsFile;
    return parsed.nats !== undefined && parsed.nats.length > 0 ? parsed : undefined;
  } catch {
    return undefined; // partly written: try again
  }
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Retries `$JS.API.INFO` (account info) on `url` until it answers or `deadline` passes or `aborted()`.
 * Returns the last error when it never answered.
 */
/** Creates and deletes a probe stream with `replicas` until that works; the last error, or undefined. */
async function waitForPlacement(url: string, replicas: number, deadline: number): Promise<unknown> {
  let lastError: unknown = new Error('no stream could be placed');
  let nc: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    nc = await connect({ servers: url, timeout: 2_000, name: 'sluice-launcher' });
    const jsm = await jetstreamManager(nc, { timeout: 2_000, checkAPI: false });
    const name = `sluice_launcher_probe_${process.pid}_${Date.now()}`;
    while (Date.now() < deadline) {
      try {
        await jsm.streams.add({
          name,
          subjects: [`${name}.>`],
          num_replicas: replicas,
          storage: StorageType.Memory,
        });
        await jsm.streams.delete(name).catch(() => undefined);
        return undefined;
      } catch (err) {
        lastError = err;
        await sleep(100);
      }
    }
  } catch (err) {
    lastError = err;
  } finally {
    await nc?.close().catch(() => {});
  }
  return lastError;
}

async function waitForJetStream(url: string, deadline: number, aborted: () => boolean): Promise<unknown> {
  let lastError: unknown = new Error('JetStream did not answer');
  while (!aborted() && Date.now() < deadline) {
    const left = deadline - Date.now();
    try {
      const nc = await connect({
        servers: url,
        timeout: Math.max(100, Math.min(2_000, left)),
        reconnect: false,
        name: 'sluice-launcher',
      });
      try {
        while (!aborted() && Date.now() < deadline) {
          try {
            const jsm = await jetstreamManager(nc, { timeout: 1_000, checkAPI: false });
            await jsm.getAccountInfo();
            return undefined;
          } catch (err) {
            lastError = err;
            if (nc.isClosed()) break;
            await sleep(100);
          }
        }
      } finally {
        await nc.close().catch(() => {});
      }
    } catch (err) {
      lastError = err;
      await sleep(100);
    }
  }
  return lastError;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function tailOfFile(path: string): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const length = Math.min(size, OUTPUT_LIMIT);
      const buf = Buffer.alloc(length);
      await fh.read(buf, 0, length, size - length);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/** Starts one nats-server and resolves once it is ready; see the module comment. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = findNatsServerBinary(options.binary);
  const host = options.host ?? '127.0.0.1';
  const jetstream = options.jetstream ?? true;
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const wantJetStream = options.waitForJetStream ?? (jetstream && options.cluster === undefined);
  const deadline = Date.now() + startTimeoutMs;

  const tempRoot = await mkdtemp(join(tmpdir(), 'sluice-nats-'));
  const portsDir = join(tempRoot, 'ports');
  const storeDir = options.storeDir !== undefined ? resolve(options.storeDir) : join(tempRoot, 'store');
  const configPath = join(tempRoot, 'nats-server.conf');
  const config = buildConfig({
    host,
    port: options.port ?? -1,
    storeDir,
    jetstream,
    serverName: options.serverName,
    cluster: options.cluster,
    monitoring: options.monitoring ?? false,
    extraConfig: options.extraConfig,
  });
  let child: ChildProcess;
  try {
    await mkdir(portsDir);
    if (jetstream) await mkdir(storeDir, { recursive: true });
    await writeFile(configPath, config);

    let logFd: number | undefined;
    if (options.logFile !== undefined) logFd = openSync(options.logFile, 'a');
    try {
      child = spawn(binary, ['-c', configPath, '--ports_file_dir', portsDir], {
        stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
      });
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
  } catch (err) {
    await rm(tempRoot, { recursive: true, force: true });
    throw err;
  }

  const entry: LiveServer = { child, tempRoot };
  installExitHook();
  live.add(entry);

  // Output: the last OUTPUT_LIMIT bytes, in memory.
  const chunks: Buffer[] = [];
  let buffered = 0;
  const collect = (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    while (buffered > OUTPUT_LIMIT && chunks.length > 1) buffered -= chunks.shift()!.length;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const output = () => {
    const all = Buffer.concat(chunks).toString('utf8');
    return all.length > OUTPUT_LIMIT ? all.slice(-OUTPUT_LIMIT) : all;
  };
  const outputForError = async () => (options.logFile !== undefined ? tailOfFile(options.logFile) : output());

  let hasExited = false;
  let spawnError: Error | undefined;
  let exitDescription = '';
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      exitDescription = signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
      resolveExit(code);
    });
    child.on('error', (err) => {
      // Spawn failures (ENOENT, EACCES) emit 'error' and no 'exit'.
      if (child.pid === undefined) {
        hasExited = true;
        spawnError = err;
        exitDescription = `could not be spawned: ${err.message}`;
        resolveExit(null);
      }
    });
  });

  // 'close' comes after 'exit' once stdout/stderr are drained: wait for it before quoting the output.
  const closed = new Promise<void>((r) => child.once('close', () => r()));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!hasExited) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const graceful = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(false), STOP_GRACE_MS);
          }),
        ]);
        clearTimeout(timer);
        if (!graceful) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      live.delete(entry);
      await rm(tempRoot, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopping;
  };

  // Wait for ready, racing the process's exit and the start timeout.
  let aborted = false;
  const ready = async (): Promise<PortsFile> => {
    let ports = await readPortsFile(portsDir);
    while (!aborted && ports === undefined) {
      await sleep(20);
      ports = await readPortsFile(portsDir);
    }
    if (ports === undefined) throw new Error('aborted');
    const port = Number(new URL(ports.nats![0]!).port);
    const probeHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    while (!aborted && !(await tcpProbe(probeHost, port, 1_000))) await sleep(20);
    if (wantJetStream && !aborted) {
      const err = await waitForJetStream(`nats://${hostPort(probeHost, port)}`, deadline, () => aborted);
      if (err !== undefined && !aborted) throw new Error(`JetStream did not become ready: ${errorText(err)}`);
    }
    return ports;
  };

  let timer: NodeJS.Timeout | undefined;
  let ports: PortsFile;
  try {
    ports = await Promise.race([
      ready(),
      exited.then(() => {
        throw new Error(`nats-server ${exitDescription} before it was ready`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`nats-server was not ready within ${startTimeoutMs} ms`)),
          Math.max(0, deadline - Date.now()),
        );
      }),
    ]);
  } catch (err) {
    aborted = true;
    clearTimeout(timer);
    if (!hasExited) child.kill('SIGKILL');
    await exited;
    await Promise.race([closed, sleep(1_000)]);
    const text = await outputForError();
    live.delete(entry);
    await rm(tempRoot, { recursive: true, force: true, maxRetries: 3 });
    const cause = spawnError ?? err;
    const logNote = options.logFile !== undefined ? `; log ${options.logFile}` : '';
    throw Object.assign(
      new NatsServerStartError(
        `${errorText(cause)} (binary ${binary}; config:\n${config.trimEnd()}\n)${logNote}`,
        text,
      ),
      { cause },
    );
  }
  clearTimeout(timer);

  const port = Number(new URL(ports.nats![0]!).port);
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const monitorPort = ports.monitoring?.[0] !== undefined ? new URL(ports.monitoring[0]).port : undefined;
  return {
    url: `nats://${hostPort(urlHost, port)}`,
    port,
    pid: child.pid!,
    storeDir,
    serverName: options.serverName,
    monitorUrl: monitorPort !== undefined ? `http://${hostPort(urlHost, Number(monitorPort))}` : undefined,
    stop,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (!hasExited) child.kill(signal);
    },
    exited,
    output,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Clusters.

/** `count` distinct free TCP ports on `host` (held together while picking, so they differ). */
async function freePorts(host: string, count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((ok, fail) => {
          const s = createServer();
          s.once('error', fail);
          s.listen(0, host, () => ok(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/**
 * Starts a `size`-node JetStream cluster on loopback (distinct ports and store dirs, full-mesh routes) and
 * resolves once JetStream answers through every server (meta leader elected). Cluster ports are picked
 * free up front (the nodes need each other's route URLs before starting); should one be taken in the
 * meantime, the whole cluster is started again with fresh ports (3 attempts).
 */
export async function startNatsCluster(size: number, options: NatsClusterOptions = {}): Promise<NatsCluster> {
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`cluster size must be a positive integer, got ${size}`);
  const host = options.host ?? '127.0.0.1';
  const name = options.clusterName ?? 'sluice';
  for (let attempt = 1; ; attempt++) {
    const clusterPorts = await freePorts(host, size);
    const routes = clusterPorts.map((p) => `nats-route://${hostPort(host, p)}`);
    const results = await Promise.allSettled(
      clusterPorts.map((clusterPort, i) =>
        startNatsServer({
          host,
          serverName: `${name}-n${i + 1}`,
          cluster: { name, port: clusterPort, routes: routes.filter((_, j) => j !== i) },
          binary: options.binary,
          extraConfig: options.extraConfig,
          monitoring: options.monitoring,
          startTimeoutMs: options.startTimeoutMs,
          logFile: options.logDir !== undefined ? join(options.logDir, `n${i + 1}.log`) : undefined,
          waitForJetStream: false,
        }),
      ),
    );
    const servers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(servers.map((s) => s.stop()));
      const reason: unknown = failed.reason;
      if (attempt < 3 && /address already in use/i.test(errorText(reason))) continue;
      throw reason;
    }

    let stopping: Promise<void> | undefined;
    const cluster: NatsCluster = {
      servers,
      urls: servers.map((s) => s.url),
      stop: () => {
        stopping ??= Promise.all(servers.map((s) => s.stop())).then(() => undefined);
        return stopping;
      },
    };
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    const errors: unknown[] = await Promise.all(
      servers.map((s) => waitForJetStream(s.url, deadline, () => false)),
    );
    // A meta leader answers before every peer has joined the meta group: until then a stream with one
    // replica per server cannot be placed ("no suitable peers for placement"). Ready means it can.
    if (!errors.some((e) => e !== undefined)) {
      const placement = await waitForPlacement(servers[0]!.url, size, deadline);
      if (placement !== undefined) errors[0] = placement;
    }
    const notReady = errors.findIndex((e) => e !== undefined);
    if (notReady >= 0) {
      const outputs = servers.map((s, i) => `--- n${i + 1} ---\n${s.output().slice(-4_000)}`).join('\n');
      await cluster.stop();
      throw new NatsServerStartError(
        `JetStream cluster of ${size} did not become ready: n${notReady + 1}: ${errorText(errors[notReady])}`,
        outputs,
      );
    }
    return cluster;
  }
}

/** Servers this process started and has not stopped yet; for leak checks in tests. */
export function liveServerCount(): number {
  return live.size;
}
