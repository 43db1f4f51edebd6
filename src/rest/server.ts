/**
 * The JobManager's REST API (Flink's v1 paths where they fit; see docs/rest-api.md): a node:http server
 * whose handlers ask the Dispatcher over the JobManager's own NATS connection, the way the CLI does. Every
 * answer is JSON; every failure is `{ "errors": ["message"] }` with its status (`errors.ts`). Paths may carry
 * Flink's `/v1` prefix.
 *
 * With high availability a standby JobManager serves the same API but answers with a redirect to the
 * leader (or 503) before the dashboard and the router see the request (`handlers/leader.ts`).
 *
 * A body refused before it is fully read (413, or a 4xx decided from the headers) is not read into
 * memory: after the answer the server half-closes the connection and reads and drops what still comes for
 * at most LINGER_MS (a lingering close, so the client reads the answer instead of a reset connection), then
 * closes it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import { ClusterClient } from '../client/cluster-client.js';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import type { Leadership } from '../ha/leadership.js';
import { toRestError } from './errors.js';
import { clusterRoutes } from './handlers/cluster.js';
import { jarRoutes } from './handlers/jars.js';
import { jobRoutes } from './handlers/jobs.js';
import { leaderRoutes, standbyAnswer } from './handlers/leader.js';
import { resourceRequirementRoutes } from './handlers/resource-requirements.js';
import { withDashboard } from './handlers/web.js';
import { JarStore } from './jar-store.js';
import { Router } from './router.js';

export interface RestServer {
  /** `http://host:port`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, lets requests in flight finish (at most `graceMs`, then closes them). Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface RestServerOptions {
  config: SluiceConfig;
  nc: NatsConnection;
  log: Logger;
  /**
   * Leadership of the JobManager that serves the API. With high availability a standby answers every
   * request but `GET /leader` with a 307 to the leader's REST URL, or 503 while that is unknown
   * (`handlers/leader.ts`). Without it (tests of the handlers alone) the server always serves.
   */
  leadership?: Leadership;
}

/** How long the rest of a refused body is read and dropped before the connection is closed. */
const LINGER_MS = 2_000;

export async function startRestServer(options: RestServerOptions): Promise<RestServer> {
  const { config, nc } = options;
  const log = options.log.child({ component: 'rest' });
  const client = ClusterClient.on(nc, config, log);
  const jars = JarStore.create(config, nc, log);
  let url = '';

  const router = new Router();
  clusterRoutes(router, client, config);
  jobRoutes(router, client);
  resourceRequirementRoutes(router, client);
  jarRoutes(router, jars, () => url, config.rest.maxUploadBytes);
  if (options.leadership) leaderRoutes(router, options.leadership, () => url);

  const served = withDashboard((req, res) => void handle(req, res));
  const server = createServer((req, res) => void front(req, res));

  /** A standby redirects to the leader (or answers 503) before the dashboard and the router see anything. */
  async function front(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { leadership } = options;
    if (leadership === undefined || leadership.isLeader()) return void served(req, res);
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    let answer: Awaited<ReturnType<typeof standbyAnswer>>;
    try {
      answer = await standbyAnswer(leadership, method, target, url);
    } catch (err) {
      log.error({ err, method, url: target }, 'REST request failed on a standby');
      answer = { status: 500, body: { errors: ['internal server error'] }, headers: {} };
    }
    if (answer === undefined) return void served(req, res);
    send(req, res, answer.status, answer.body, answer.headers);
    log.debug({ method, url: target, status: answer.status }, 'REST request (standby)');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    let status = 500;
    try {
      const target = req.url ?? '/';
      const q = target.indexOf('?');
      const pathname = q < 0 ? target : target.slice(0, q);
      const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
      const path = pathname.replace(/^\/v1(?=\/|$)/, '').replace(/\/+$/, '') || '/';
      const { handler, params } = router.match(method, path);
      const reply = await handler({ req, method, path, params, query });
      status = reply.status;
      send(req, res, status, reply.body);
    } catch (err) {
      const error = toRestError(err);
      status = error.status;
      if (status >= 500) log.error({ err, method, url: req.url, status }, 'REST request failed');
      send(req, res, status, { errors: [error.message] }, error.headers);
    } finally {
      log.debug(
        { method, url: req.url, status, ms: Math.round(performance.now() - started) },
        'REST request',
      );
    }
  }

  // Requests Node's parser refuses (not HTTP, headers too large, too slow) never reach a handler.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const [status, reason] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : [400, 'Bad Request'];
    const body = JSON.stringify({ errors: [`${reason.toLowerCase()}: ${err.message}`] });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  const { bindAddress, port } = config.rest;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        new SluiceError(
          ErrorCode.InvalidConfig,
          `cannot serve the REST API on ${bindAddress}:${port}: ${err.code ?? err.message} (set rest.port, 0 for a free port, rest.bind-address or rest.enabled=false)`,
          { cause: err },
        ),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, bindAddress);
  }).catch(async (err: unknown) => {
    await jars.close();
    throw err;
  });
  const bound = (server.address() as AddressInfo).port;
  url = `http://${urlHost(bindAddress)}:${bound}`;

  let stopping: Promise<void> | undefined;
  return {
    url,
    port: bound,
    stop: (graceMs = 5_000) => {
      stopping ??= (async () => {
        // Jar runs in flight finish first (bounded by RUN_TIMEOUT_MS): their requests wait for them.
        await closeServer(server, graceMs, () => jars.idle());
        await jars.close();
      })();
      return stopping;
    },
  };
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return; // the client left, or the server stopped waiting for this request
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  if (!req.complete) {
    // The body was refused before its end (see the module comment). No `Connection: close`: Node would
    // then close the socket at once, and a reset can overtake the answer on its way to the client.
    const { socket } = req; // detached from the request once the answer is out
    res.once('finish', () => {
      req.removeAllListeners('data');
      req.resume();
      socket.end();
      const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
      socket.once('close', () => clearTimeout(timer));
    });
  }
  res.end(text);
}

/**
 * Stops accepting; idle keep-alive connections close now; once `work` (long requests the server knows
 * of) is done, busy connections close when their answer is sent or after `graceMs`.
 */
async function closeServer(server: Server, graceMs: number, work: () => Promise<void>): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const idle = setInterval(() => server.closeIdleConnections(), 100);
  let force: NodeJS.Timeout | undefined;
  try {
    await work();
    force = setTimeout(() => server.closeAllConnections(), graceMs);
    await closed;
  } finally {
    clearInterval(idle);
    clearTimeout(force);
  }
}

/** The host part of the URL: the bind address, or this host's name for a wildcard address. */
function urlHost(bindAddress: string): string {
  if (bindAddress === '0.0.0.0' || bindAddress === '::') return hostname();
  return bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress;
}
