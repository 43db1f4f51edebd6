import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isSluiceError } from '../../src/common/errors.js';
import {
  envVarName,
  isOptionKey,
  loadConfig,
  OPTION_KEYS,
  OPTIONS,
  type OptionSpec,
} from '../../src/config/index.js';

const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

/** `| \`key\` | type | default | description |` rows of the keys table, by key. */
function docRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of docs.split('\n')) {
    const match = /^\| `([^`]+)` \| (string|int|number|boolean|duration|memory|list|enum) \|/.exec(line);
    if (!match?.[1]) continue;
    rows.set(
      match[1],
      line.split(' | ').map((cell) => cell.replace(/^\| |\|$/g, '').trim()),
    );
  }
  return rows;
}

describe('the options table', () => {
  it('has the keys of the brief', () => {
    expect(OPTION_KEYS).toEqual(
      expect.arrayContaining([
        'cluster.id',
        'cluster.run-dir',
        'nats.servers',
        'nats.user',
        'nats.password',
        'nats.token',
        'nats.nkey-seed-file',
        'nats.creds-file',
        'nats.tls.ca-file',
        'nats.tls.cert-file',
        'nats.tls.key-file',
        'nats.connect-timeout',
        'rpc.ask.timeout',
        'rpc.ask.retries',
        'rpc.max-message-size',
        'heartbeat.interval',
        'heartbeat.timeout',
        'slot.request.timeout',
        'taskmanager.numberOfTaskSlots',
        'taskmanager.id',
        'jobmanager.id',
        'taskmanager.host',
        'parallelism.default',
        'log.level',
        'log.format',
      ]),
    );
    expect(isOptionKey('cluster.id')).toBe(true);
    expect(isOptionKey('toString')).toBe(false);
  });

  it('gives every key its own environment variable', () => {
    const names = OPTION_KEYS.map(envVarName);
    expect(new Set(names).size).toBe(names.length);
    expect(envVarName('taskmanager.numberOfTaskSlots')).toBe('SLUICE_TASKMANAGER_NUMBEROFTASKSLOTS');
    expect(envVarName('rpc.max-message-size')).toBe('SLUICE_RPC_MAX_MESSAGE_SIZE');
    expect(names).not.toContain('SLUICE_CONFIG_FILE');
  });

  it('has a valid default for each key that has one (each checked on its own)', () => {
    for (const key of OPTION_KEYS) {
      const spec: OptionSpec = OPTIONS[key];
      if (spec.default === undefined) continue;
      expect(() => loadConfig({ overrides: { [key]: spec.default } }), key).not.toThrow();
    }
  });

  it('rejects values outside min/max for every bounded key', () => {
    for (const key of OPTION_KEYS) {
      const spec: OptionSpec = OPTIONS[key];
      if (spec.type !== 'int' || spec.max === undefined) continue;
      try {
        loadConfig({ overrides: { [key]: spec.max + 1 } });
        expect.unreachable(`${key} accepted ${spec.max + 1}`);
      } catch (err) {
        expect(isSluiceError(err) && err.message.includes(`${key}: ${spec.max + 1}`), key).toBe(true);
      }
    }
  });
});

describe('docs/configuration.md', () => {
  const rows = docRows();

  it('documents every key with its type and default', () => {
    for (const key of OPTION_KEYS) {
      const spec: OptionSpec = OPTIONS[key];
      expect(docs, key).toContain(`\`${key}\``);
      const row = rows.get(key);
      expect(row, `row of ${key}`).toBeDefined();
      const [, type, defaultCell] = row ?? [];
      expect(type, key).toBe(spec.type);
      if (key === 'cluster.run-dir') expect(defaultCell).toBe('`~/.sluice/clusters`');
      else if (spec.default === undefined) expect(defaultCell, key).toBe('(none)');
      else expect(defaultCell, key).toBe(`\`${spec.default}\``);
      for (const value of spec.values ?? []) expect(row?.join(' '), key).toContain(`\`${value}\``);
    }
  });

  it('documents no key that does not exist', () => {
    for (const key of rows.keys()) expect(isOptionKey(key), key).toBe(true);
  });

  it('shows an error example that matches what the loader says', () => {
    try {
      loadConfig({
        env: { SLUICE_TASKMANAGER_NUMBEROFTASKSLOTS: '0' },
        dynamic: ['nats.servre=nats://x:4222', 'heartbeat.timeout=5 parsecs'],
      });
      expect.unreachable();
    } catch (err) {
      expect(isSluiceError(err)).toBe(true);
      expect(docs).toContain(`\`\`\`\n${(err as Error).message}\n\`\`\``);
    }
  });
});
