/**
 * Turning a raw configuration value (a string from env or `-D`, or whatever YAML or a flag gave) into a
 * typed value, or into a problem that says what was expected.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OPTIONS, type OptionKey, type OptionSpec } from './options.js';
import {
  formatDuration,
  formatMemorySize,
  type ParseResult,
  tryParseDuration,
  tryParseMemorySize,
} from './units.js';

/** How secrets are shown. */
export const MASK = '******';

/** A compiled value: strings, numbers (ms for durations, bytes for memory sizes), booleans, lists. */
export type Value = string | number | boolean | string[];

/** A value, `undefined` when the raw value unsets an optional key, or what is wrong with it. */
export type Compiled = { ok: true; value: Value | undefined } | { ok: false; problem: string };

/** `~` and `~/…` point into the home directory. */
export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/** A raw value as shown in a message: quoted strings, secrets masked, passwords in server URLs masked. */
export function showValue(key: OptionKey, raw: unknown): string {
  const spec: OptionSpec = OPTIONS[key];
  if (spec.secret) return `'${MASK}'`;
  return showRaw(raw, spec.item === 'nats-server' ? maskUrlPassword : (text) => text);
}

/** A raw value as shown in a message, strings quoted and passed through `mask`. */
export function showRaw(raw: unknown, mask: (text: string) => string = (text) => text): string {
  if (typeof raw === 'string') return `'${mask(raw)}'`;
  if (Array.isArray(raw)) return `[${raw.map((item) => showRaw(item, mask)).join(', ')}]`;
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  return JSON.stringify(raw) ?? String(raw);
}

function scalarText(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw;
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  return undefined;
}

/** Parses and checks a raw value against its option. */
export function compileValue(spec: OptionSpec, raw: unknown): Compiled {
  switch (spec.type) {
    case 'string':
      return compileString(spec, raw);
    case 'int':
      return compileInt(spec, raw);
    case 'number':
      return compileNumber(spec, raw);
    case 'boolean':
      return compileBoolean(raw);
    case 'duration':
      return compileQuantity(
        spec,
        raw,
        tryParseDuration,
        formatDuration,
        'a duration (use e.g. 500 ms, 10 s, 1 min)',
      );
    case 'memory':
      return compileQuantity(
        spec,
        raw,
        tryParseMemorySize,
        formatMemorySize,
        'a memory size (use e.g. 512 kb, 64 mb)',
      );
    case 'list':
      return compileList(spec, raw);
    case 'enum':
      return compileEnum(spec, raw);
  }
}

function compileString(spec: OptionSpec, raw: unknown): Compiled {
  const text = scalarText(raw);
  if (text === undefined) return { ok: false, problem: 'is not a string' };
  // An empty value unsets an optional key (e.g. `-D nats.token=` drops a token set in the file).
  if (text === '' && spec.default === undefined) return { ok: true, value: undefined };
  if (spec.pattern && !spec.pattern.test(text)) {
    return {
      ok: false,
      problem: `is not valid (expected ${spec.patternHint ?? `to match ${spec.pattern}`})`,
    };
  }
  return { ok: true, value: spec.path ? expandHome(text) : text };
}

function compileInt(spec: OptionSpec, raw: unknown): Compiled {
  let value: number | undefined;
  if (typeof raw === 'number') value = raw;
  else if (typeof raw === 'string' && /^\s*[+-]?\d+\s*$/.test(raw)) value = Number(raw);
  if (value === undefined || !Number.isSafeInteger(value)) {
    return { ok: false, problem: `is not an integer (expected ${describeRange(spec, String)})` };
  }
  return checkRange(spec, value, String);
}

function compileNumber(spec: OptionSpec, raw: unknown): Compiled {
  let value: number | undefined;
  if (typeof raw === 'number') value = raw;
  else if (typeof raw === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$/.test(raw)) value = Number(raw);
  if (value === undefined || !Number.isFinite(value)) {
    return { ok: false, problem: `is not a number (expected ${describeRange(spec, String)})` };
  }
  return checkRange(spec, value, String);
}

function compileBoolean(raw: unknown): Compiled {
  if (typeof raw === 'boolean') return { ok: true, value: raw };
  const text = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  if (text === 'true' || text === 'false') return { ok: true, value: text === 'true' };
  return { ok: false, problem: 'is not a boolean (expected true or false)' };
}

function compileQuantity(
  spec: OptionSpec,
  raw: unknown,
  parse: (text: string) => ParseResult,
  format: (value: number) => string,
  expected: string,
): Compiled {
  const text = typeof raw === 'string' ? raw : typeof raw === 'number' ? String(raw) : undefined;
  if (text === undefined) return { ok: false, problem: `is not ${expected}` };
  const parsed = parse(text);
  if (!parsed.ok) return parsed;
  return checkRange(spec, parsed.value, format);
}

function checkRange(spec: OptionSpec, value: number, format: (value: number) => string): Compiled {
  const tooLow = spec.min !== undefined && value < spec.min;
  const tooHigh = spec.max !== undefined && value > spec.max;
  if (tooLow || tooHigh)
    return { ok: false, problem: `is out of range (expected ${describeRange(spec, format)})` };
  return { ok: true, value };
}

function describeRange(spec: OptionSpec, format: (value: number) => string): string {
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) return `between ${format(min)} and ${format(max)}`;
  if (min !== undefined) return `at least ${format(min)}`;
  if (max !== undefined) return `at most ${format(max)}`;
  return 'a whole number';
}

function compileList(spec: OptionSpec, raw: unknown): Compiled {
  let items: string[];
  if (Array.isArray(raw)) {
    const texts = raw.map(scalarText);
    if (texts.some((t) => t === undefined)) return { ok: false, problem: 'is not a list of strings' };
    items = texts.map((t) => (t ?? '').trim());
  } else {
    const text = scalarText(raw);
    if (text === undefined) return { ok: false, problem: 'is not a list (expected comma separated values)' };
    items = text.split(',').map((t) => t.trim());
  }
  items = items.filter((t) => t !== '');
  const example = spec.item === 'nats-server' ? ', e.g. nats://127.0.0.1:4222' : '';
  if (items.length === 0) return { ok: false, problem: `is empty (expected at least one value${example})` };
  if (spec.item === 'nats-server') {
    const bad = items.filter((item) => !isNatsServer(item));
    if (bad.length > 0) {
      const list = bad.map((b) => `'${maskUrlPassword(b)}'`).join(', ');
      return {
        ok: false,
        problem: `has ${bad.length === 1 ? 'an invalid server' : 'invalid servers'} ${list} (expected nats://host:port, tls://host:port or host:port)`,
      };
    }
  }
  return { ok: true, value: items };
}

function isNatsServer(text: string): boolean {
  if (text.includes('://')) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return false;
    }
    return (url.protocol === 'nats:' || url.protocol === 'tls:') && url.hostname !== '';
  }
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  return match !== null && port >= 1 && port <= 65535;
}

/** `nats://user:secret@host:4222` → `nats://user:******@host:4222`. */
export function maskUrlPassword(text: string): string {
  return text.replace(/((?:^|,)\s*[a-z]+:\/\/[^:@/,]*:)[^@/,]*@/gi, `$1${MASK}@`);
}

function compileEnum(spec: OptionSpec, raw: unknown): Compiled {
  const values = spec.values ?? [];
  // Case-insensitive; the value is the spelling of the table (`exactly_once` → `EXACTLY_ONCE`).
  const text = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  const found = text === undefined ? undefined : values.find((v) => v.toLowerCase() === text);
  if (found !== undefined) return { ok: true, value: found };
  return { ok: false, problem: `is not valid (expected one of ${values.join(', ')})` };
}
