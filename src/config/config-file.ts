/**
 * Reading a configuration file: YAML like Flink's `config.yaml`, with flat dotted keys and/or nested maps.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { expandHome } from './values.js';

/** The YAML parser, loaded with the first config file read (most commands read none: it costs ~80 ms). */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

export interface ConfigFileContents {
  /** `from file /absolute/path.yaml`, for messages. */
  source: string;
  /** Flattened `[key, value]` pairs in file order; keys are not checked against the options table. */
  entries: Array<[string, unknown]>;
  /** The file cannot be read or parsed, or a key is set twice. */
  problems: string[];
}

/**
 * Reads a YAML configuration file into `[key, value]` entries, nested maps flattened with dots. `namedBy`
 * is the environment variable that named the file, if one did. Problems are reported, not thrown.
 */
export function readConfigFile(path: string, namedBy?: string): ConfigFileContents {
  const file = resolve(expandHome(path));
  const source = `from file ${file}`;
  const entries: Array<[string, unknown]> = [];
  const problems: string[] = [];
  const done = () => ({ source, entries, problems });
  const what = namedBy === undefined ? `config file ${file}` : `config file ${file} (named by ${namedBy})`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${what} ${describeFsError(err)}`);
    return done();
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]?.replace(/:$/, '');
    problems.push(`${what} is not valid YAML: ${reason}`);
    return done();
  }
  if (document === null || document === undefined) return done();
  if (!isPlainObject(document)) {
    problems.push(
      `${what} must be a map of keys to values (e.g. 'cluster.id: prod'), not a ${typeName(document)}`,
    );
    return done();
  }
  const seen = new Set<string>();
  for (const [key, raw] of flatten(document, '')) {
    if (seen.has(key)) {
      problems.push(`${key}: set more than once (${source}), both as a dotted key and in a nested map`);
      continue;
    }
    seen.add(key);
    // `key:` with nothing after it: no value, the key keeps the value of a lower source.
    if (raw === null) continue;
    entries.push([key, raw]);
  }
  return done();
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  return Array.isArray(value) ? 'list' : typeof value;
}

/** Nested maps become dotted keys; everything else (scalars, lists) is a value. */
function flatten(node: Record<string, unknown>, prefix: string): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [name, value] of Object.entries(node)) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    if (isPlainObject(value)) out.push(...flatten(value, key));
    else out.push([key, value]);
  }
  return out;
}
