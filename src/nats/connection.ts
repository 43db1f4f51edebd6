/**
 * Opens the NATS connection of a Sluice process from its configuration: servers, user/password, token,
 * NKey seed file or credentials file, TLS. Connection problems become one clear SluiceError.
 *
 * Liveness: a server cut off the network does not close the socket, it goes silent. The client pings it every
 * `nats.ping-interval` and leaves it after `nats.max-pings-out` unanswered pings; it then dials the server of
 * its pool it tried longest ago (`pickServerToDial`), never straight back the one it just left — the NATS
 * client's own rotation would retry that one first and wait the whole connect timeout on it.
 */
import { readFileSync } from 'node:fs';
import {
  type Authenticator,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  type Server,
} from '@nats-io/transport-node';
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';

export interface ConnectOptions {
  /** Connection name shown by the server (e.g. `sluice-jobmanager-<id>`). */
  name: string;
  log?: Logger;
  /** Long-lived processes reconnect forever; a client command gives up with the first failure. */
  reconnect?: boolean;
}

export function natsConnectionOptions(
  nats: SluiceConfig['nats'],
  options: ConnectOptions,
): ConnectionOptions {
  const authenticators: Authenticator[] = [];
  if (nats.credsFile) {
    const creds = readAuthFile(nats.credsFile, 'nats.creds-file');
    authenticators.push(credsAuthenticator(creds));
  }
  if (nats.nkeySeedFile) {
    const seed = new TextEncoder().encode(
      new TextDecoder().decode(readAuthFile(nats.nkeySeedFile, 'nats.nkey-seed-file')).trim(),
    );
    authenticators.push(nkeyAuthenticator(seed));
  }
  const opts: ConnectionOptions = {
    servers: nats.servers,
    name: options.name,
    timeout: nats.connectTimeoutMs,
    reconnect: options.reconnect ?? true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // A server cut off the network is silent, not closed: only missed pongs reveal it (nats.ping-interval).
    pingInterval: nats.pingIntervalMs,
    maxPingOut: nats.maxPingsOut,
    reconnectToServer: pickServerToDial,
  };
  if (nats.user !== undefined) opts.user = nats.user;
  if (nats.password !== undefined) opts.pass = nats.password;
  if (nats.token !== undefined) opts.token = nats.token;
  if (authenticators.length > 0) opts.authenticator = authenticators;
  if (nats.tls) {
    opts.tls = {
      ...(nats.tls.caFile ? { caFile: nats.tls.caFile } : {}),
      ...(nats.tls.certFile ? { certFile: nats.tls.certFile } : {}),
      ...(nats.tls.keyFile ? { keyFile: nats.tls.keyFile } : {}),
    };
  }
  return opts;
}

/**
 * Which server of the pool to dial next: the one whose last connection attempt is the oldest (never tried
 * first; ties keep the pool's order, which the client randomises). After a stale connection that is another
 * server, not the silent one just left.
 */
export function pickServerToDial(pool: ReadonlyArray<Server>): Server | null {
  let best: Server | null = null;
  for (const server of pool) {
    if (best === null || server.lastConnect < best.lastConnect) best = server;
  }
  return best;
}

export async function connectNats(
  nats: SluiceConfig['nats'],
  options: ConnectOptions,
): Promise<NatsConnection> {
  const opts = natsConnectionOptions(nats, options);
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new SluiceError(
      ErrorCode.ConnectionFailed,
      `cannot connect to NATS at ${nats.servers.join(', ')}: ${reason} (set nats.servers or --nats)`,
      { cause: err },
    );
  }
  if (options.log) void logStatus(nc, options.log);
  return nc;
}

async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const status of nc.status()) {
    switch (status.type) {
      case 'disconnect':
        if (nc.isDraining() || nc.isClosed()) break;
        log.warn({ server: status.server }, 'disconnected from NATS');
        break;
      case 'reconnect':
        log.info({ server: status.server }, 'reconnected to NATS');
        break;
      case 'slowConsumer':
        log.error({ subject: status.sub.getSubject() }, 'NATS slow consumer: messages were dropped');
        break;
      case 'error':
        log.error({ err: status.error }, 'NATS connection error');
        break;
      default:
        break;
    }
  }
}

function readAuthFile(path: string, key: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new SluiceError(ErrorCode.InvalidConfig, `${key}: cannot read ${path}: ${(err as Error).message}`);
  }
}
