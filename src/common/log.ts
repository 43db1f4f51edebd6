/**
 * Structured logging with pino: JSON lines in production (and whenever stdout is not a TTY), pretty
 * output on a terminal. Every logger carries `cluster` and a component field; actors add `actor`, job
 * work adds `job`.
 */
import { type Logger, pino, destination as pinoDestination, stdTimeFunctions } from 'pino';

export type { Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Base fields on every line, e.g. `{ cluster: 'default', process: 'jobmanager' }`. */
  base?: Record<string, unknown>;
  /** Where lines go; default stdout (fd 1). Pretty output always goes to stdout. */
  destination?: number | string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const base = { pid: process.pid, ...options.base };
  if (pretty) {
    return pino({
      level,
      base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  const destination = pinoDestination({ dest: options.destination ?? 1, sync: true });
  return pino({ level, base, timestamp: stdTimeFunctions.isoTime }, destination);
}

/** A logger that writes nothing: for library use where the caller passed none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
