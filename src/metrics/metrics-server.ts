/**
 * The Prometheus endpoint of a Sluice process: `GET /metrics` in the text exposition format, on the
 * first free port of `metrics.port` (a port, a range `9249-9299` as Flink's reporter, or 0 for any).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

export function parsePortRange(text: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(text);
  const from = m ? Number(m[1]) : Number.NaN;
  const to = m?.[2] === undefined ? from : Number(m[2]);
  if (!m || from > 65_535 || to > 65_535 || to < from) {
    throw new Error(
      `metrics.port: '${text}' is not a port or a port range (e.g. 9249 or 9249-9299, 0 for any)`,
    );
  }
  return [from, to];
}

function listen(server: Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

export async function startMetricsServer(
  registry: Registry,
  options: { host: string; ports: string },
  log: Logger,
): Promise<MetricsServer> {
  const [from, to] = parsePortRange(options.ports);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  for (let port = from; port <= to; port++) {
    if (await listen(server, options.host, port)) {
      const { port: bound } = server.address() as AddressInfo;
      return {
        url: `http://${options.host}:${bound}/metrics`,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
  }
  throw new Error(`metrics.port: no free port in ${options.ports} on ${options.host}`);
}
