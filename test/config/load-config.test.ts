import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isSluiceError, SluiceError } from '../../src/common/errors.js';
import { type ConfigSources, defaultConfig, loadConfig, suggestKey } from '../../src/config/index.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeYaml(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function loadError(sources: ConfigSources): SluiceError {
  try {
    loadConfig(sources);
  } catch (err) {
    if (isSluiceError(err)) return err;
    throw err;
  }
  throw new Error('expected loadConfig to throw');
}

function problemsOf(err: SluiceError): string[] {
  const problems = err.details?.problems;
  expect(Array.isArray(problems)).toBe(true);
  return problems as string[];
}

describe('defaults', () => {
  it('has the documented default of every option', () => {
    const config = defaultConfig();
    expect(config).toEqual({
      clusterId: 'default',
      runDir: join(homedir(), '.sluice', 'clusters'),
      nats: {
        servers: ['nats://127.0.0.1:4222'],
        connectTimeoutMs: 5_000,
        pingIntervalMs: 1_000,
        maxPingsOut: 2,
      },
      rpc: { askTimeoutMs: 10_000, askRetries: 3, maxMessageBytes: 512 * 1024 },
      heartbeat: { intervalMs: 1_000, timeoutMs: 5_000 },
      slotRequestTimeoutMs: 60_000,
      taskManagerIdleTimeoutMs: 30_000,
      scheduler: { mode: 'default', stabilizationTimeoutMs: 1_000, cooldownAfterRescalingMs: 5_000 },
      taskmanager: {
        numberOfTaskSlots: 1,
        registrationTimeoutMs: 300_000,
        slotIsolation: 'thread',
        cancellationTimeoutMs: 10_000,
        localRecovery: { enabled: true, maxBytes: 512 * 1024 * 1024 },
      },
      jobmanager: {},
      parallelismDefault: 1,
      bufferTimeoutMs: 100,
      checkpointing: {
        intervalMs: 0,
        mode: 'EXACTLY_ONCE',
        timeoutMs: 600_000,
        minPauseMs: 0,
        maxConcurrent: 1,
        retained: 2,
        savepointsDir: 'savepoints',
      },
      autoscaler: {
        enabled: false,
        scalingEnabled: true,
        controlLoopIntervalMs: 10_000,
        metricsWindowMs: 900_000,
        stabilizationIntervalMs: 300_000,
        targetUtilization: 0.7,
        targetUtilizationBoundary: 0.3,
        catchUpDurationMs: 1_800_000,
        scaleUpMaxFactor: 100_000,
        scaleDownMaxFactor: 0.6,
        scaleDownIntervalMs: 3_600_000,
        effectivenessDetection: true,
        effectivenessThreshold: 0.1,
        vertexMinParallelism: 1,
        vertexMaxParallelism: 200,
      },
      restartStrategy: {
        type: undefined,
        fixedDelay: { attempts: 1, delayMs: 1_000 },
        exponentialDelay: {
          initialBackoffMs: 1_000,
          maxBackoffMs: 60_000,
          multiplier: 1.5,
          resetBackoffThresholdMs: 3_600_000,
          jitterFactor: 0.1,
          attemptsBeforeReset: 2_147_483_647,
        },
        failureRate: { maxFailuresPerInterval: 1, intervalMs: 60_000, delayMs: 1_000 },
      },
      rest: { enabled: true, port: 8081, bindAddress: '127.0.0.1', maxUploadBytes: 64 * 1024 * 1024 },
      metrics: { enabled: true, ports: '9249-9299', bindAddress: '127.0.0.1' },
      log: { level: 'info', format: 'auto' },
      highAvailability: { type: 'none', leaseMs: 3_000, replicas: 1 },
      effective: expect.any(Object),
    });
    expect(config.nats.tls).toBeUndefined();
    expect(config.nats.user).toBeUndefined();
    expect(config.taskmanager.id).toBeUndefined();
  });

  it('is the same as loading with no sources, and a fresh object every call', () => {
    const a = defaultConfig();
    const b = defaultConfig();
    expect(a).toEqual(loadConfig());
    expect(a).not.toBe(b);
    a.nats.servers.push('nats://other:4222');
    a.taskmanager.numberOfTaskSlots = 99;
    expect(defaultConfig().nats.servers).toEqual(['nats://127.0.0.1:4222']);
    expect(defaultConfig().taskmanager.numberOfTaskSlots).toBe(1);
  });

  it('lists the effective value of every key that has one, in the syntax the parsers accept', () => {
    const { effective } = defaultConfig();
    expect(effective).toMatchObject({
      'cluster.id': 'default',
      'cluster.run-dir': join(homedir(), '.sluice', 'clusters'),
      'nats.servers': 'nats://127.0.0.1:4222',
      'nats.connect-timeout': '5 s',
      'rpc.ask.timeout': '10 s',
      'rpc.ask.retries': '3',
      'rpc.max-message-size': '512 kb',
      'heartbeat.interval': '1 s',
      'heartbeat.timeout': '5 s',
      'slot.request.timeout': '1 min',
      'taskmanager.numberOfTaskSlots': '1',
      'taskmanager.registration.timeout': '5 min',
      'parallelism.default': '1',
      'log.level': 'info',
      'log.format': 'auto',
      'rest.enabled': 'true',
      'rest.port': '8081',
      'rest.bind-address': '127.0.0.1',
      'rest.max-upload-size': '64 mb',
    });
    expect(effective).not.toHaveProperty('nats.user');
    // Feeding the effective values back in gives the same configuration.
    const again = loadConfig({ dynamic: Object.entries(effective).map(([k, v]) => `${k}=${v}`) });
    expect(again).toEqual(defaultConfig());
  });

  it('does not read process.env unless given', () => {
    process.env.SLUICE_CLUSTER_ID = 'from-process-env';
    try {
      expect(loadConfig({}).clusterId).toBe('default');
      expect(loadConfig({ env: process.env }).clusterId).toBe('from-process-env');
    } finally {
      delete process.env.SLUICE_CLUSTER_ID;
    }
  });
});

describe('precedence: defaults < file < env < -D < overrides', () => {
  const file = () =>
    writeYaml(
      'conf.yaml',
      [
        'cluster.id: from-file',
        'rpc.ask.retries: 5',
        'parallelism.default: 2',
        'log.level: debug',
        'taskmanager.numberOfTaskSlots: 2',
      ].join('\n'),
    );
  const env = {
    SLUICE_RPC_ASK_RETRIES: '6',
    SLUICE_PARALLELISM_DEFAULT: '3',
    SLUICE_TASKMANAGER_NUMBEROFTASKSLOTS: '3',
    SLUICE_LOG_LEVEL: 'warn',
  };
  const dynamic = ['parallelism.default=4', 'taskmanager.numberOfTaskSlots=4', 'log.level=error'];
  const overrides = { 'taskmanager.numberOfTaskSlots': '5', 'log.level': undefined };

  it('takes each key from the highest source that sets it', () => {
    const config = loadConfig({ file: file(), env, dynamic, overrides });
    expect(config.heartbeat.intervalMs).toBe(1_000); // default
    expect(config.clusterId).toBe('from-file'); // file
    expect(config.rpc.askRetries).toBe(6); // env over file
    expect(config.parallelismDefault).toBe(4); // -D over env and file
    expect(config.taskmanager.numberOfTaskSlots).toBe(5); // override over everything
    expect(config.log.level).toBe('error'); // undefined override skipped
  });

  it('lets each layer win on its own', () => {
    expect(loadConfig({ file: file() }).parallelismDefault).toBe(2);
    expect(loadConfig({ file: file(), env }).parallelismDefault).toBe(3);
    expect(loadConfig({ file: file(), env, dynamic }).parallelismDefault).toBe(4);
    expect(loadConfig({ env, overrides: { 'parallelism.default': 9 } }).parallelismDefault).toBe(9);
  });

  it('reads the file named by SLUICE_CONFIG_FILE unless a file is given', () => {
    const named = writeYaml('named.yaml', 'cluster.id: named-by-env\n');
    expect(loadConfig({ env: { SLUICE_CONFIG_FILE: named } }).clusterId).toBe('named-by-env');
    expect(loadConfig({ file: file(), env: { SLUICE_CONFIG_FILE: named } }).clusterId).toBe('from-file');
  });

  it('ignores empty env values and SLUICE_ variables that are no key', () => {
    const config = loadConfig({
      env: { SLUICE_CLUSTER_ID: '', SLUICE_SOMETHING_ELSE: 'x', SLUICE_HOME: '/x', OTHER: 'y' },
    });
    expect(config.clusterId).toBe('default');
  });

  it('maps env variables with dots and dashes to underscores', () => {
    const config = loadConfig({
      env: {
        SLUICE_NATS_SERVERS: 'nats://a:4222, tls://b:4443,c:4222',
        SLUICE_RPC_MAX_MESSAGE_SIZE: '1 mb',
        SLUICE_NATS_TLS_CA_FILE: '/etc/ca.pem',
        SLUICE_NATS_CONNECT_TIMEOUT: '2s',
      },
    });
    expect(config.nats.servers).toEqual(['nats://a:4222', 'tls://b:4443', 'c:4222']);
    expect(config.rpc.maxMessageBytes).toBe(1024 * 1024);
    expect(config.nats.tls).toEqual({ caFile: '/etc/ca.pem' });
    expect(config.nats.connectTimeoutMs).toBe(2_000);
  });

  it('accepts typed overrides: numbers, lists and strings', () => {
    const config = loadConfig({
      overrides: {
        'nats.servers': ['nats://x:1', 'nats://y:2'],
        'rpc.ask.timeout': 1234,
        'cluster.id': 'flag',
        'taskmanager.numberOfTaskSlots': 8,
      },
    });
    expect(config.nats.servers).toEqual(['nats://x:1', 'nats://y:2']);
    expect(config.rpc.askTimeoutMs).toBe(1234);
    expect(config.clusterId).toBe('flag');
    expect(config.taskmanager.numberOfTaskSlots).toBe(8);
  });

  it('splits -D on the first = only, and an empty value unsets an optional key', () => {
    const conf = writeYaml('c.yaml', 'nats.token: from-file\n');
    const config = loadConfig({ file: conf, dynamic: ['nats.password=a=b=c', 'nats.token='] });
    expect(config.nats.password).toBe('a=b=c');
    expect(config.nats.token).toBeUndefined();
  });
});

describe('YAML files', () => {
  it('flattens nested maps with dots and mixes them with flat keys', () => {
    const file = writeYaml(
      'nested.yaml',
      `
cluster:
  id: prod
nats:
  servers:
    - nats://n1:4222
    - nats://n2:4222
  tls:
    ca-file: /etc/sluice/ca.pem
    cert-file: /etc/sluice/cert.pem
  connect-timeout: 3 s
rpc.ask:
  timeout: 30 s
  retries: 0
taskmanager:
  numberOfTaskSlots: 4
  registration.timeout: 1 min
heartbeat.interval: 500 ms
rpc.max-message-size: 1048576
log:
  level: DEBUG
  format: json
`,
    );
    const config = loadConfig({ file });
    expect(config.clusterId).toBe('prod');
    expect(config.nats.servers).toEqual(['nats://n1:4222', 'nats://n2:4222']);
    expect(config.nats.tls).toEqual({ caFile: '/etc/sluice/ca.pem', certFile: '/etc/sluice/cert.pem' });
    expect(config.nats.connectTimeoutMs).toBe(3_000);
    expect(config.rpc).toEqual({ askTimeoutMs: 30_000, askRetries: 0, maxMessageBytes: 1_048_576 });
    expect(config.taskmanager.numberOfTaskSlots).toBe(4);
    expect(config.taskmanager.registrationTimeoutMs).toBe(60_000);
    expect(config.heartbeat.intervalMs).toBe(500);
    expect(config.log).toEqual({ level: 'debug', format: 'json' });
  });

  it('accepts an empty file and keys without a value', () => {
    expect(loadConfig({ file: writeYaml('empty.yaml', '# nothing yet\n') })).toEqual(defaultConfig());
    expect(
      loadConfig({ file: writeYaml('null.yaml', 'nats.user:\ncluster.id: x\n') }).nats.user,
    ).toBeUndefined();
  });

  it('expands ~/ in paths', () => {
    const config = loadConfig({ dynamic: ['cluster.run-dir=~/runs', 'nats.creds-file=~/my.creds'] });
    expect(config.runDir).toBe(join(homedir(), 'runs'));
    expect(config.nats.credsFile).toBe(join(homedir(), 'my.creds'));
  });

  it('reports a missing file by name', () => {
    const missing = join(dir, 'nope.yaml');
    const err = loadError({ file: missing });
    expect(err).toBeInstanceOf(SluiceError);
    expect(err.code).toBe(ErrorCode.InvalidConfig);
    expect(err.message).toBe(`invalid configuration: config file ${missing} does not exist`);
  });

  it('says which variable named a missing file', () => {
    const missing = join(dir, 'gone.yaml');
    const err = loadError({ env: { SLUICE_CONFIG_FILE: missing } });
    expect(err.message).toContain(`config file ${missing} (named by SLUICE_CONFIG_FILE) does not exist`);
  });

  it('reports a directory and an unreadable file', () => {
    expect(loadError({ file: dir }).message).toContain(`config file ${dir} is a directory`);
    if (process.getuid?.() !== 0) {
      const locked = writeYaml('locked.yaml', 'cluster.id: x\n');
      chmodSync(locked, 0o000);
      expect(loadError({ file: locked }).message).toContain(`config file ${locked} cannot be read`);
    }
  });

  it('reports unparsable YAML with the file and the position', () => {
    const file = writeYaml('bad.yaml', 'cluster.id: x\nnats.servers: [a\n');
    const err = loadError({ file });
    expect(err.message).toMatch(new RegExp(`config file ${file} is not valid YAML: .*line \\d+`));
  });

  it('reports a file that is not a map', () => {
    const file = writeYaml('list.yaml', '- a\n- b\n');
    expect(loadError({ file }).message).toContain(`config file ${file} must be a map of keys to values`);
  });

  it('reports a key set both flat and nested', () => {
    const file = writeYaml('twice.yaml', 'cluster.id: a\ncluster:\n  id: b\n');
    expect(loadError({ file }).message).toContain('cluster.id: set more than once');
  });

  it('names the file as the source of a bad value', () => {
    const file = writeYaml('values.yaml', 'rpc.ask.retries: lots\n');
    expect(loadError({ file }).message).toBe(
      `invalid configuration: rpc.ask.retries: 'lots' (from file ${file}) is not an integer (expected at least 0)`,
    );
  });
});

describe('validation', () => {
  it('reports a bad duration naming key, source, value and the expected form', () => {
    const err = loadError({ dynamic: ['heartbeat.timeout=5 parsecs'] });
    expect(problemsOf(err)).toEqual([
      "heartbeat.timeout: '5 parsecs' (from -D) is not a duration: unknown unit 'parsecs' " +
        '(use e.g. 500 ms, 10 s, 1 min; units: ms, s, min, h, d)',
    ]);
  });

  it('suggests the closest key for an unknown key from every source', () => {
    const file = writeYaml('typo.yaml', 'heartbeat.intervall: 2 s\n');
    const err = loadError({
      file,
      dynamic: ['nats.server=nats://x:4222', 'taskmanager.numberofTaskSlots=2', 'totally.unrelated=1'],
      overrides: { 'cluster-id': 'x' },
    });
    expect(problemsOf(err)).toEqual([
      `heartbeat.intervall: unknown key (from file ${file}); did you mean 'heartbeat.interval'?`,
      "nats.server: unknown key (from -D); did you mean 'nats.servers'?",
      "taskmanager.numberofTaskSlots: unknown key (from -D); did you mean 'taskmanager.numberOfTaskSlots'?",
      'totally.unrelated: unknown key (from -D); see docs/configuration.md for the keys',
      "cluster-id: unknown key (from command-line flag); did you mean 'cluster.id'?",
    ]);
  });

  it('suggestKey finds typos but not unrelated words', () => {
    expect(suggestKey('log.lvel')).toBe('log.level');
    expect(suggestKey('slot.request.timout')).toBe('slot.request.timeout');
    expect(suggestKey('parallelism')).toBeUndefined();
    expect(suggestKey('foo')).toBeUndefined();
  });

  it('rejects -D without = or without a key', () => {
    const err = loadError({ dynamic: ['cluster.id', '=x'] });
    expect(problemsOf(err)).toEqual([
      "-D 'cluster.id': expected key=value (e.g. -D taskmanager.numberOfTaskSlots=4)",
      "-D '=x': the key is missing; expected key=value",
    ]);
  });

  it('reports several bad values together in one error', () => {
    const err = loadError({
      env: { SLUICE_TASKMANAGER_NUMBEROFTASKSLOTS: '0', SLUICE_LOG_LEVEL: 'loud' },
      dynamic: ['rpc.max-message-size=1 gb', 'cluster.id=my cluster', 'nats.connect-timeout=-1 s', 'broken'],
      overrides: { 'nats.servers': 'http://x:80,ok:4222,nohost', 'parallelism.default': 2.5 },
    });
    const problems = problemsOf(err);
    expect(problems).toEqual([
      "-D 'broken': expected key=value (e.g. -D taskmanager.numberOfTaskSlots=4)",
      "cluster.id: 'my cluster' (from -D) is not valid (expected 1 to 64 letters, digits, _ or -; it is used in NATS subjects)",
      "nats.servers: 'http://x:80,ok:4222,nohost' (from command-line flag) has invalid servers 'http://x:80', 'nohost' " +
        '(expected nats://host:port, tls://host:port or host:port)',
      "nats.connect-timeout: '-1 s' (from -D) is negative (a duration must be >= 0)",
      "rpc.max-message-size: '1 gb' (from -D) is out of range (expected between 1 kb and 64 mb)",
      "taskmanager.numberOfTaskSlots: '0' (from env SLUICE_TASKMANAGER_NUMBEROFTASKSLOTS) is out of range " +
        '(expected between 1 and 1024)',
      'parallelism.default: 2.5 (from command-line flag) is not an integer (expected between 1 and 32768)',
      "log.level: 'loud' (from env SLUICE_LOG_LEVEL) is not valid (expected one of trace, debug, info, warn, error, fatal, silent)",
    ]);
    expect(err.code).toBe(ErrorCode.InvalidConfig);
    expect(err.message.split('\n')).toEqual([
      `invalid configuration (${problems.length} problems):`,
      ...problems.map((p) => `  - ${p}`),
    ]);
  });

  it('validates the effective value only: a bad lower layer that is overridden is fine', () => {
    const config = loadConfig({
      env: { SLUICE_RPC_ASK_RETRIES: 'many' },
      dynamic: ['rpc.ask.retries=1'],
    });
    expect(config.rpc.askRetries).toBe(1);
  });

  it('checks ids used in NATS subjects', () => {
    expect(loadConfig({ dynamic: ['taskmanager.id=tm_1-a', 'jobmanager.id=JM2'] }).taskmanager.id).toBe(
      'tm_1-a',
    );
    const err = loadError({
      dynamic: ['taskmanager.id=tm.1', 'jobmanager.id=jm>', `cluster.id=${'x'.repeat(65)}`],
    });
    expect(problemsOf(err).map((p) => p.split(':')[0])).toEqual([
      'cluster.id',
      'taskmanager.id',
      'jobmanager.id',
    ]);
  });

  it('accepts nats://, tls:// and host:port servers', () => {
    const config = loadConfig({
      dynamic: ['nats.servers=nats://127.0.0.1:4222,tls://nats.example.com:4443,[::1]:4222,localhost:4222'],
    });
    expect(config.nats.servers).toHaveLength(4);
    expect(loadError({ dynamic: ['nats.servers=localhost:99999'] }).message).toContain(
      "invalid server 'localhost:99999'",
    );
    expect(loadError({ dynamic: ['nats.servers= , '] }).message).toContain(
      'is empty (expected at least one value',
    );
  });
});

describe('rest.*', () => {
  it('reads the REST keys from -D and the environment', () => {
    const config = loadConfig({
      env: { SLUICE_REST_ENABLED: 'FALSE', SLUICE_REST_BIND_ADDRESS: '0.0.0.0' },
      dynamic: ['rest.port=0', 'rest.max-upload-size=1 mb'],
    });
    expect(config.rest).toEqual({
      enabled: false,
      port: 0,
      bindAddress: '0.0.0.0',
      maxUploadBytes: 1024 * 1024,
    });
  });

  it('rejects a port out of range, a non-boolean and an upload limit out of range', () => {
    const err = loadError({ dynamic: ['rest.port=70000', 'rest.enabled=yes', 'rest.max-upload-size=2 gb'] });
    expect(problemsOf(err)).toEqual([
      "rest.enabled: 'yes' (from -D) is not a boolean (expected true or false)",
      "rest.port: '70000' (from -D) is out of range (expected between 0 and 65535)",
      "rest.max-upload-size: '2 gb' (from -D) is out of range (expected between 1 kb and 1 gb)",
    ]);
  });
});

describe('heartbeat cross-check', () => {
  it('requires heartbeat.timeout to be greater than heartbeat.interval', () => {
    const err = loadError({ dynamic: ['heartbeat.interval=10 s'] });
    expect(problemsOf(err)).toEqual([
      "heartbeat.timeout: '5 s' (default) must be greater than heartbeat.interval '10 s' (from -D)",
    ]);
    expect(loadError({ dynamic: ['heartbeat.interval=2s', 'heartbeat.timeout=2000'] }).message).toContain(
      "heartbeat.timeout: '2000' (from -D) must be greater than heartbeat.interval '2s' (from -D)",
    );
  });

  it('accepts a timeout above the interval', () => {
    const config = loadConfig({
      env: { SLUICE_HEARTBEAT_INTERVAL: '10 s', SLUICE_HEARTBEAT_TIMEOUT: '30 s' },
    });
    expect(config.heartbeat).toEqual({ intervalMs: 10_000, timeoutMs: 30_000 });
  });
});

describe('secrets', () => {
  it('masks password and token in effective but keeps them in the config', () => {
    const config = loadConfig({
      dynamic: ['nats.user=alice', 'nats.password=s3cret', 'nats.token=t0ken'],
      overrides: { 'nats.servers': 'nats://bob:hunter2@h:4222' },
    });
    expect(config.nats).toMatchObject({ user: 'alice', password: 's3cret', token: 't0ken' });
    expect(config.effective['nats.user']).toBe('alice');
    expect(config.effective['nats.password']).toBe('******');
    expect(config.effective['nats.token']).toBe('******');
    expect(config.effective['nats.servers']).toBe('nats://bob:******@h:4222');
    expect(JSON.stringify(config.effective)).not.toMatch(/s3cret|t0ken|hunter2/);
  });

  it('does not print secrets in error messages', () => {
    const err = loadError({
      dynamic: ['nats.servers=nats://bob:hunter2@h:99999', 'nats.passwrd=s3cret'],
    });
    expect(err.message).not.toMatch(/hunter2|s3cret/);
    expect(err.message).toContain("'nats://bob:******@h:99999'");
  });
});

describe('the error', () => {
  it('is a SluiceError whose message stands alone', () => {
    const err = loadError({ dynamic: ['nope=1'] });
    expect(err).toBeInstanceOf(SluiceError);
    expect(err.name).toBe('SluiceError');
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      'invalid configuration: nope: unknown key (from -D); see docs/configuration.md for the keys',
    );
  });
});

describe('scheduler-mode', () => {
  it('takes reactive with the adaptive scheduler timings, and refuses an unknown mode naming the values', () => {
    const reactive = loadConfig({
      dynamic: [
        'scheduler-mode=reactive',
        'jobmanager.adaptive-scheduler.resource-stabilization-timeout=250 ms',
        'jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling=2 s',
      ],
    });
    expect(reactive.scheduler).toEqual({
      mode: 'reactive',
      stabilizationTimeoutMs: 250,
      cooldownAfterRescalingMs: 2_000,
    });
    expect(() => loadConfig({ dynamic: ['scheduler-mode=adaptive'] })).toThrow(
      /scheduler-mode.*default, reactive/s,
    );
  });
});
