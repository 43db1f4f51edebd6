/**
 * The configuration loader: merges defaults, a YAML file, `SLUICE_*` environment variables, `-D key=value`
 * and command-line flags (in that order, later wins), validates the result against the options table and
 * compiles it into a typed `SluiceConfig`. Every problem is collected and reported in one SluiceError.
 */

import { homedir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../common/errors.js';
import {
  AUTOSCALER_OPTIONS,
  type AutoscalerConfig,
  type AutoscalerOptionKey,
  autoscalerRangeProblems,
} from './autoscaler-config.js';
import type { CheckpointingConfig } from './checkpointing-config.js';
import { readConfigFile } from './config-file.js';
import { envVarName, isOptionKey, OPTION_KEYS, OPTIONS, type OptionKey, type OptionSpec } from './options.js';
import type { RestartStrategyConfig } from './restart-strategy-config.js';
import { suggestKey } from './suggest.js';
import { formatDuration, formatMemorySize } from './units.js';
import { compileValue, MASK, maskUrlPassword, showRaw, showValue, type Value } from './values.js';

export type ConfigLogLevel = (typeof OPTIONS)['log.level']['values'][number];
export type ConfigLogFormat = (typeof OPTIONS)['log.format']['values'][number];

export interface SluiceConfig {
  clusterId: string;
  runDir: string;
  nats: {
    servers: string[];
    user?: string;
    password?: string;
    token?: string;
    nkeySeedFile?: string;
    credsFile?: string;
    tls?: { caFile?: string; certFile?: string; keyFile?: string };
    connectTimeoutMs: number;
    pingIntervalMs: number;
    maxPingsOut: number;
  };
  rpc: { askTimeoutMs: number; askRetries: number; maxMessageBytes: number };
  heartbeat: { intervalMs: number; timeoutMs: number };
  slotRequestTimeoutMs: number;
  /** resourcemanager.taskmanager-timeout: an idle TaskManager of a pool is stopped after this long. */
  taskManagerIdleTimeoutMs: number;
  taskmanager: {
    numberOfTaskSlots: number;
    registrationTimeoutMs: number;
    id?: string;
    host?: string;
    memoryProcessBytes?: number;
    /** `thread`: a worker thread per slot; `none`: every slot on the main event loop. */
    slotIsolation: 'thread' | 'none';
    /** task.cancellation.timeout: a slot worker still busy this long after a cancel is terminated. */
    cancellationTimeoutMs: number;
    /** `state.backend.local-recovery` and its `.max-size` (bytes). */
    localRecovery: { enabled: boolean; maxBytes: number };
  };
  jobmanager: { id?: string; memoryProcessBytes?: number };
  /** `scheduler-mode` and `jobmanager.adaptive-scheduler.*` (reactive mode). */
  scheduler: {
    mode: 'default' | 'reactive';
    stabilizationTimeoutMs: number;
    cooldownAfterRescalingMs: number;
  };
  parallelismDefault: number;
  /** execution.buffer-timeout */
  bufferTimeoutMs: number;
  restartStrategy: RestartStrategyConfig;
  /** `execution.checkpointing.*`, `state.*`: intervalMs 0 means off. */
  checkpointing: CheckpointingConfig;
  /** `job.autoscaler.*`: the autoscaler the JobManager runs for each job (when enabled). */
  autoscaler: AutoscalerConfig;
  /** The JobManager's REST API (`rest.*`). */
  rest: { enabled: boolean; port: number; bindAddress: string; maxUploadBytes: number };
  metrics: { enabled: boolean; ports: string; bindAddress: string };
  log: { level: ConfigLogLevel; format: ConfigLogFormat };
  /** `high-availability.*`: `none` runs one JobManager; `nats` elects a leader among several. */
  highAvailability: {
    type: 'none' | 'nats';
    leaseMs: number;
    renewIntervalMs?: number;
    pollIntervalMs?: number;
    replicas: number;
  };
  /** Every key that has a value, with its effective value as a string; secrets masked as '******'. */
  effective: Record<string, string>;
}

export type OverrideValue = string | number | boolean | string[] | undefined;

export interface ConfigSources {
  /** A YAML file: flat `a.b: v` keys and/or nested maps (flattened with dots), like Flink's config.yaml. */
  file?: string;
  /**
   * Environment: `SLUICE_<KEY>` with the key upper-cased and `.`/`-` turned into `_` (e.g.
   * `SLUICE_NATS_SERVERS`). `SLUICE_CONFIG_FILE` names the file when `file` is not given. Empty values and
   * `SLUICE_*` variables that match no key are ignored.
   */
  env?: Record<string, string | undefined>;
  /** `-D key=value` strings, as given on the command line. */
  dynamic?: string[];
  /** From specific command-line flags (`--nats`, `--cluster-id`, `--slots`); undefined entries are skipped. */
  overrides?: Record<string, OverrideValue>;
  /**
   * A client submitting jobs to a session cluster (`sluice run`): its `job.autoscaler.*` keys are the jobs'
   * own and are checked key by key only; how they fit together is checked by the Dispatcher, merged with
   * the JobManager's (a job's window against the JobManager's control-loop interval, not the client's).
   */
  jobSubmission?: boolean;
}

export const CONFIG_FILE_ENV = 'SLUICE_CONFIG_FILE';

/** Where a value came from, as shown in error messages: `default`, `from -D`, `from env SLUICE_X`, … */
type SourceLabel = string;

interface Setting {
  raw: unknown;
  source: SourceLabel;
}

/** Loads, merges and validates the configuration. Throws one SluiceError(InvalidConfig) listing every problem. */
export function loadConfig(sources: ConfigSources = {}): SluiceConfig {
  const problems: string[] = [];
  const settings = new Map<OptionKey, Setting>();

  for (const key of OPTION_KEYS) {
    const spec: OptionSpec = OPTIONS[key];
    if (spec.default !== undefined) settings.set(key, { raw: spec.default, source: 'default' });
  }

  const env = sources.env ?? {};
  const fileFromEnv = nonEmpty(env[CONFIG_FILE_ENV]);
  const file =
    sources.file !== undefined
      ? readConfigFile(sources.file)
      : fileFromEnv !== undefined
        ? readConfigFile(fileFromEnv, CONFIG_FILE_ENV)
        : undefined;
  if (file) {
    problems.push(...file.problems);
    for (const [key, raw] of file.entries) setKnown(key, raw, file.source, settings, problems);
  }

  for (const key of OPTION_KEYS) {
    const name = envVarName(key);
    const value = nonEmpty(env[name]);
    if (value !== undefined) settings.set(key, { raw: value, source: `from env ${name}` });
  }

  for (const definition of sources.dynamic ?? []) {
    const eq = definition.indexOf('=');
    if (eq < 0) {
      problems.push(`-D '${definition}': expected key=value (e.g. -D taskmanager.numberOfTaskSlots=4)`);
      continue;
    }
    const key = definition.slice(0, eq).trim();
    if (key === '') {
      problems.push(`-D '${definition}': the key is missing; expected key=value`);
      continue;
    }
    setKnown(key, definition.slice(eq + 1), 'from -D', settings, problems);
  }

  for (const [key, value] of Object.entries(sources.overrides ?? {})) {
    if (value !== undefined) setKnown(key, value, 'from command-line flag', settings, problems);
  }

  const values = new Map<OptionKey, Value>();
  for (const key of OPTION_KEYS) {
    const setting = settings.get(key);
    if (setting === undefined) continue;
    const compiled = compileValue(OPTIONS[key], setting.raw);
    if (!compiled.ok) {
      problems.push(`${key}: ${showValue(key, setting.raw)} (${setting.source}) ${compiled.problem}`);
    } else if (compiled.value !== undefined) {
      values.set(key, compiled.value);
    }
  }

  crossCheck(values, settings, problems, sources.jobSubmission !== true);

  if (problems.length > 0) {
    const message =
      problems.length === 1
        ? `invalid configuration: ${problems[0]}`
        : `invalid configuration (${problems.length} problems):\n${problems.map((p) => `  - ${p}`).join('\n')}`;
    throw new SluiceError(ErrorCode.InvalidConfig, message, { details: { problems } });
  }
  return build(values);
}

/** The configuration with every option at its default; a fresh object on every call. */
export function defaultConfig(): SluiceConfig {
  return loadConfig({});
}

// ---------------------------------------------------------------------------------------------------------
// Sources

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function setKnown(
  key: string,
  raw: unknown,
  source: SourceLabel,
  settings: Map<OptionKey, Setting>,
  problems: string[],
): void {
  if (isOptionKey(key)) {
    settings.set(key, { raw, source });
  } else {
    problems.push(unknownKey(key, source));
  }
}

function unknownKey(key: string, source: SourceLabel): string {
  const suggestion = suggestKey(key);
  const hint =
    suggestion === undefined ? 'see docs/configuration.md for the keys' : `did you mean '${suggestion}'?`;
  return `${key}: unknown key (${source}); ${hint}`;
}

function crossCheck(
  values: Map<OptionKey, Value>,
  settings: Map<OptionKey, Setting>,
  problems: string[],
  autoscaler: boolean,
): void {
  if (autoscaler) crossCheckAutoscaler(values, settings, problems);
  const interval = values.get('heartbeat.interval');
  const timeout = values.get('heartbeat.timeout');
  const intervalSetting = settings.get('heartbeat.interval');
  const timeoutSetting = settings.get('heartbeat.timeout');
  if (typeof interval !== 'number' || typeof timeout !== 'number' || !intervalSetting || !timeoutSetting)
    return;
  if (timeout <= interval) {
    problems.push(
      `heartbeat.timeout: ${showRaw(timeoutSetting.raw)} (${timeoutSetting.source}) must be greater than ` +
        `heartbeat.interval ${showRaw(intervalSetting.raw)} (${intervalSetting.source})`,
    );
  }
}

/** The autoscaler needs two samples in a window, and a parallelism range that is not empty. */
function crossCheckAutoscaler(
  values: Map<OptionKey, Value>,
  settings: Map<OptionKey, Setting>,
  problems: string[],
): void {
  const value = (key: AutoscalerOptionKey) => {
    const v = values.get(key);
    return typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
  };
  const shown = (key: AutoscalerOptionKey) => {
    const setting = settings.get(key);
    return setting ? `${showRaw(setting.raw)} (${setting.source})` : '';
  };
  problems.push(...autoscalerRangeProblems(value, shown));
}

// ---------------------------------------------------------------------------------------------------------
// The typed form

function build(values: Map<OptionKey, Value>): SluiceConfig {
  const str = (key: OptionKey): string | undefined => {
    const value = values.get(key);
    return typeof value === 'string' ? value : undefined;
  };
  const optNum = (key: OptionKey): number | undefined => {
    const value = values.get(key);
    return typeof value === 'number' ? value : undefined;
  };
  const num = (key: OptionKey): number => {
    const value = values.get(key);
    if (typeof value !== 'number') throw new Error(`internal: configuration key ${key} has no number`);
    return value;
  };
  const list = (key: OptionKey): string[] => {
    const value = values.get(key);
    return Array.isArray(value) ? [...value] : [];
  };

  const runDir = str('cluster.run-dir') ?? join(homedir(), '.sluice', 'clusters');
  const tls = compact({
    caFile: str('nats.tls.ca-file'),
    certFile: str('nats.tls.cert-file'),
    keyFile: str('nats.tls.key-file'),
  });
  const nats: SluiceConfig['nats'] = compact({
    servers: list('nats.servers'),
    user: str('nats.user'),
    password: str('nats.password'),
    token: str('nats.token'),
    nkeySeedFile: str('nats.nkey-seed-file'),
    credsFile: str('nats.creds-file'),
    connectTimeoutMs: num('nats.connect-timeout'),
    pingIntervalMs: num('nats.ping-interval'),
    maxPingsOut: num('nats.max-pings-out'),
  });
  if (Object.keys(tls).length > 0) nats.tls = tls;

  return {
    clusterId: str('cluster.id') ?? 'default',
    runDir,
    nats,
    rpc: {
      askTimeoutMs: num('rpc.ask.timeout'),
      askRetries: num('rpc.ask.retries'),
      maxMessageBytes: num('rpc.max-message-size'),
    },
    heartbeat: { intervalMs: num('heartbeat.interval'), timeoutMs: num('heartbeat.timeout') },
    slotRequestTimeoutMs: num('slot.request.timeout'),
    taskManagerIdleTimeoutMs: num('resourcemanager.taskmanager-timeout'),
    taskmanager: compact({
      numberOfTaskSlots: num('taskmanager.numberOfTaskSlots'),
      registrationTimeoutMs: num('taskmanager.registration.timeout'),
      id: str('taskmanager.id'),
      host: str('taskmanager.host'),
      memoryProcessBytes: optNum('taskmanager.memory.process.size'),
      slotIsolation: oneOf(OPTIONS['taskmanager.slot-isolation'].values, str('taskmanager.slot-isolation')),
      cancellationTimeoutMs: num('task.cancellation.timeout'),
      localRecovery: {
        enabled: values.get('state.backend.local-recovery') === true,
        maxBytes: num('state.backend.local-recovery.max-size'),
      },
    }),
    jobmanager: compact({
      id: str('jobmanager.id'),
      memoryProcessBytes: optNum('jobmanager.memory.process.size'),
    }),
    scheduler: {
      mode: oneOf(OPTIONS['scheduler-mode'].values, str('scheduler-mode')),
      stabilizationTimeoutMs: num('jobmanager.adaptive-scheduler.resource-stabilization-timeout'),
      cooldownAfterRescalingMs: num('jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling'),
    },
    parallelismDefault: num('parallelism.default'),
    bufferTimeoutMs: num('execution.buffer-timeout'),
    checkpointing: {
      intervalMs: num('execution.checkpointing.interval'),
      mode: oneOf(OPTIONS['execution.checkpointing.mode'].values, str('execution.checkpointing.mode')),
      timeoutMs: num('execution.checkpointing.timeout'),
      ackTimeoutMs: optNum('execution.checkpointing.ack-timeout'),
      minPauseMs: num('execution.checkpointing.min-pause'),
      maxConcurrent: num('execution.checkpointing.max-concurrent-checkpoints'),
      retained: num('state.checkpoints.num-retained'),
      savepointsDir: str('state.savepoints.dir') ?? 'savepoints',
    },
    autoscaler: autoscalerConfigOf((key) => values.get(key)),
    restartStrategy: {
      type: optOneOf(OPTIONS['restart-strategy.type'].values, str('restart-strategy.type')),
      fixedDelay: {
        attempts: num('restart-strategy.fixed-delay.attempts'),
        delayMs: num('restart-strategy.fixed-delay.delay'),
      },
      exponentialDelay: {
        initialBackoffMs: num('restart-strategy.exponential-delay.initial-backoff'),
        maxBackoffMs: num('restart-strategy.exponential-delay.max-backoff'),
        multiplier: num('restart-strategy.exponential-delay.backoff-multiplier'),
        resetBackoffThresholdMs: num('restart-strategy.exponential-delay.reset-backoff-threshold'),
        jitterFactor: num('restart-strategy.exponential-delay.jitter-factor'),
        attemptsBeforeReset: num('restart-strategy.exponential-delay.attempts-before-reset-backoff'),
      },
      failureRate: {
        maxFailuresPerInterval: num('restart-strategy.failure-rate.max-failures-per-interval'),
        intervalMs: num('restart-strategy.failure-rate.failure-rate-interval'),
        delayMs: num('restart-strategy.failure-rate.delay'),
      },
    },
    metrics: {
      enabled: values.get('metrics.enabled') === true,
      ports: str('metrics.port') ?? '9249-9299',
      bindAddress: str('metrics.bind-address') ?? '127.0.0.1',
    },
    rest: {
      enabled: values.get('rest.enabled') === true,
      port: num('rest.port'),
      bindAddress: str('rest.bind-address') ?? '127.0.0.1',
      maxUploadBytes: num('rest.max-upload-size'),
    },
    highAvailability: compact({
      type: oneOf(OPTIONS['high-availability.type'].values, str('high-availability.type')),
      leaseMs: num('high-availability.lease'),
      renewIntervalMs: optNum('high-availability.renew-interval'),
      pollIntervalMs: optNum('high-availability.poll-interval'),
      replicas: num('high-availability.replicas'),
    }),
    log: {
      level: oneOf(OPTIONS['log.level'].values, str('log.level')),
      format: oneOf(OPTIONS['log.format'].values, str('log.format')),
    },
    effective: effective(values, runDir),
  };
}

/** The same object without its undefined properties. */
function compact<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as T;
}

function optOneOf<V extends string>(values: readonly V[], value: string | undefined): V | undefined {
  return value === undefined ? undefined : oneOf(values, value);
}

function oneOf<V extends string>(values: readonly V[], value: string | undefined): V {
  const found = values.find((v) => v === value);
  if (found === undefined) throw new Error(`internal: '${value}' is not one of ${values.join(', ')}`);
  return found;
}

function effective(values: Map<OptionKey, Value>, runDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of OPTION_KEYS) {
    const spec: OptionSpec = OPTIONS[key];
    const value = key === 'cluster.run-dir' ? runDir : values.get(key);
    if (value === undefined) continue;
    if (spec.secret) out[key] = MASK;
    else if (Array.isArray(value)) out[key] = value.map(maskUrlPassword).join(',');
    else if (spec.type === 'duration' && typeof value === 'number') out[key] = formatDuration(value);
    else if (spec.type === 'memory' && typeof value === 'number') out[key] = formatMemorySize(value);
    else out[key] = String(value);
  }
  return out;
}

/** `job.autoscaler.*` compiled into the typed form (every key has a default, so each has a value). */
export function autoscalerConfigOf(value: (key: AutoscalerOptionKey) => Value | undefined): AutoscalerConfig {
  const config: Record<string, number | boolean> = {};
  for (const [key, field] of Object.entries(AUTOSCALER_OPTIONS) as Array<[AutoscalerOptionKey, string]>) {
    const v = value(key);
    if (typeof v !== 'number' && typeof v !== 'boolean') {
      throw new Error(`internal: configuration key ${key} has no value`);
    }
    config[field] = v;
  }
  return config as AutoscalerConfig;
}
