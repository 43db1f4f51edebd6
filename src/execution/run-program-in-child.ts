/**
 * Running a program's main in a child process: a `sluice run` of the job file against a cluster. REST
 * jar runs and application mode both use it, so no other module builds a `sluice run` command line.
 *
 * Promises: the child gets the cluster's connection settings as `SLUICE_*` variables (a password or
 * token never appears on its command line, where `ps` would show it); `exited` settles only on 'close',
 * when everything the child wrote has come through its pipes; `kill()` is safe to call at any time.
 * Refuses: nothing itself — a spawn failure rejects `exited`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { SluiceConfig } from '../config/config.js';
import { envVarName } from '../config/options.js';

/** Set for a child that must exit with its parent: the parent's pid (see `exitWithParent`). */
export const EXIT_WITH_PARENT_VARIABLE = 'SLUICE_EXIT_WITH_PARENT';

const SLUICE_BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export interface ProgramRunSpec {
  /** The job file (or bundle) whose main runs. */
  entry: string;
  args: string[];
  /** `-d`: each execute() returns once its job is submitted; the child ends when main does. */
  detached: boolean;
  /**
   * The cluster to submit to, passed in the environment. Omit it when `clientArgs` carry the
   * configuration (application mode passes on the arguments it was started with).
   */
  config?: SluiceConfig;
  /** Configuration arguments for the child's `sluice run` (`--config`, `-D`, `--nats`, `--cluster-id`). */
  clientArgs?: string[];
  parallelism?: number;
  /** `sluice run -s`: the jobs start from this savepoint. */
  savepoint?: { path: string; allowNonRestoredState: boolean };
  /** Jobs submitted by this main belong to this application (application mode). */
  applicationId?: string;
  /**
   * The child exits when this process dies (it watches its parent pid): a JobManager that is killed
   * leaves no main behind to submit jobs for a leadership it no longer holds.
   */
  exitWithParent?: boolean;
}

export interface ProgramChild {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The child's exit status (1 when a signal ended it); rejects when it could not be started. */
  readonly exited: Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

export function runProgramInChild(spec: ProgramRunSpec): ProgramChild {
  const args = [SLUICE_BIN, 'run'];
  if (spec.detached) args.push('-d');
  args.push(...(spec.clientArgs ?? []));
  if (spec.config) {
    args.push('--cluster-id', spec.config.clusterId);
    // Server URLs with a password go through the environment only.
    const servers = spec.config.nats.servers;
    if (!servers.some((s) => s.includes('@'))) args.push('--nats', servers.join(','));
  }
  if (spec.parallelism !== undefined) args.push('-p', String(spec.parallelism));
  if (spec.savepoint) {
    args.push('-s', spec.savepoint.path);
    if (spec.savepoint.allowNonRestoredState) args.push('--allow-non-restored-state');
  }
  args.push(spec.entry, ...spec.args);
  const child: ChildProcess = spawn(process.execPath, args, {
    env: {
      ...process.env,
      ...(spec.config ? clientEnvironment(spec.config) : {}),
      ...(spec.applicationId ? { SLUICE_APPLICATION_ID: spec.applicationId } : {}),
      ...(spec.exitWithParent ? { [EXIT_WITH_PARENT_VARIABLE]: String(process.pid) } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    // 'close', not 'exit': only then has everything the main wrote come through the pipes.
    child.once('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  return {
    stdout: child.stdout!,
    stderr: child.stderr!,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** A cluster's connection settings as `SLUICE_*` variables for a child's `sluice run`. */
function clientEnvironment(config: SluiceConfig): Record<string, string> {
  const { nats } = config;
  const entries: Array<[string, string | number | undefined]> = [
    ['nats.servers', nats.servers.join(',')],
    ['nats.user', nats.user],
    ['nats.password', nats.password],
    ['nats.token', nats.token],
    ['nats.nkey-seed-file', nats.nkeySeedFile],
    ['nats.creds-file', nats.credsFile],
    ['nats.tls.ca-file', nats.tls?.caFile],
    ['nats.tls.cert-file', nats.tls?.certFile],
    ['nats.tls.key-file', nats.tls?.keyFile],
    ['nats.connect-timeout', nats.connectTimeoutMs],
    ['rpc.ask.timeout', config.rpc.askTimeoutMs],
    ['rpc.ask.retries', config.rpc.askRetries],
    ['rpc.max-message-size', config.rpc.maxMessageBytes],
    ['parallelism.default', config.parallelismDefault],
    ['execution.buffer-timeout', config.bufferTimeoutMs],
  ];
  const env: Record<string, string> = { SLUICE_LOG_FORMAT: 'json' };
  for (const [key, value] of entries) if (value !== undefined) env[envVarName(key)] = String(value);
  return env;
}
