/**
 * Options every command takes (`--nats`, `--cluster-id`, `--config`, `-D key=value`) and how they turn
 * into a validated configuration.
 */
import type { Command } from 'commander';
import { createLogger, type Logger } from '../common/log.js';
import { type ConfigSources, loadConfig, type SluiceConfig } from '../config/config.js';

export interface GlobalOptions {
  nats?: string;
  clusterId?: string;
  config?: string;
  define?: string[];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function withGlobalOptions(command: Command): Command {
  return command
    .option('--nats <url>', 'NATS server URL(s), comma separated (nats.servers)')
    .option('--cluster-id <id>', 'cluster id (cluster.id)')
    .option('--config <file>', 'configuration file (YAML, Flink-style keys)')
    .option('-D, --define <key=value>', 'set a configuration key (repeatable)', collect);
}

/**
 * Loads and validates the configuration; `extra` are command-specific overrides (e.g. --slots);
 * `jobSubmission` for `sluice run` to a session cluster (see {@link ConfigSources}).
 */
export function configFrom(
  options: GlobalOptions,
  extra: ConfigSources['overrides'] = {},
  jobSubmission = false,
): SluiceConfig {
  const sources: ConfigSources = {
    jobSubmission,
    env: process.env,
    dynamic: options.define ?? [],
    overrides: { 'nats.servers': options.nats, 'cluster.id': options.clusterId, ...extra },
  };
  if (options.config !== undefined) sources.file = options.config;
  return loadConfig(sources);
}

/** The argv that gives a child process the same configuration sources. */
export function globalArgs(options: GlobalOptions): string[] {
  const args: string[] = [];
  if (options.nats !== undefined) args.push('--nats', options.nats);
  if (options.clusterId !== undefined) args.push('--cluster-id', options.clusterId);
  if (options.config !== undefined) args.push('--config', options.config);
  for (const d of options.define ?? []) args.push('-D', d);
  return args;
}

/** Logger of a server process: JSON lines to stdout (pretty on a TTY). */
export function processLogger(config: SluiceConfig): Logger {
  return createLogger({ level: config.log.level, format: config.log.format });
}

/** Logger of a client command: only warnings and errors, on stderr, so stdout stays for results. */
export function clientLogger(config: SluiceConfig): Logger {
  return createLogger({
    level: config.log.level === 'info' ? 'warn' : config.log.level,
    format: 'json',
    destination: 2,
  });
}
