/**
 * Durations and memory sizes written the way Flink writes them: `500 ms`, `10 s`, `1 min`, `512 kb`,
 * `64mb`. A plain integer is milliseconds (durations) or bytes (memory sizes). Units are
 * case-insensitive; memory units are binary multiples (1 kb = 1024 bytes), as in Flink.
 */

/** The outcome of parsing without throwing: the value, or what is wrong with the text. */
export type ParseResult = { ok: true; value: number } | { ok: false; problem: string };

const MS = 1;
const SECOND = 1000 * MS;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const DURATION_UNITS: ReadonlyMap<string, number> = new Map([
  ...['ms', 'milli', 'millis', 'millisecond', 'milliseconds'].map((u) => [u, MS] as const),
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u) => [u, SECOND] as const),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u) => [u, MINUTE] as const),
  ...['h', 'hour', 'hours'].map((u) => [u, HOUR] as const),
  ...['d', 'day', 'days'].map((u) => [u, DAY] as const),
]);

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const TIB = 1024 * GIB;

const MEMORY_UNITS: ReadonlyMap<string, number> = new Map([
  ...['b', 'bytes'].map((u) => [u, 1] as const),
  ...['k', 'kb', 'kib'].map((u) => [u, KIB] as const),
  ...['m', 'mb', 'mib'].map((u) => [u, MIB] as const),
  ...['g', 'gb', 'gib'].map((u) => [u, GIB] as const),
  ...['t', 'tb', 'tib'].map((u) => [u, TIB] as const),
]);

const DURATION_HINT = 'use e.g. 500 ms, 10 s, 1 min';
const MEMORY_HINT = 'use e.g. 1024, 512 kb, 64 mb, 1 gb';

/** A sign, a non-negative decimal number, optional space, optional unit letters. */
const QUANTITY = /^([+-]?)(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i;

interface Quantity {
  what: string;
  baseUnit: string;
  hint: string;
  units: ReadonlyMap<string, number>;
  unitList: string;
}

const DURATION: Quantity = {
  what: 'a duration',
  baseUnit: 'milliseconds',
  hint: DURATION_HINT,
  units: DURATION_UNITS,
  unitList: 'ms, s, min, h, d',
};

const MEMORY: Quantity = {
  what: 'a memory size',
  baseUnit: 'bytes',
  hint: MEMORY_HINT,
  units: MEMORY_UNITS,
  unitList: 'b, kb, mb, gb, tb',
};

function tryParse(text: string, q: Quantity): ParseResult {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: false, problem: `is empty (expected ${q.what}; ${q.hint})` };
  const match = QUANTITY.exec(trimmed);
  if (!match) return { ok: false, problem: `is not ${q.what} (${q.hint})` };
  const [, sign, digits = '', unitText = ''] = match;
  const unit = unitText.toLowerCase();
  const multiplier = unit === '' ? 1 : q.units.get(unit);
  if (multiplier === undefined) {
    return {
      ok: false,
      problem: `is not ${q.what}: unknown unit '${unitText}' (${q.hint}; units: ${q.unitList})`,
    };
  }
  const value = Number(digits) * multiplier;
  if (sign === '-' && value !== 0) return { ok: false, problem: `is negative (${q.what} must be >= 0)` };
  // Decimal fractions are fine as long as they come out whole (`1.5 s`), `0.5 ms` is not.
  const rounded = Math.round(value);
  if (Math.abs(value - rounded) > 1e-6) {
    return { ok: false, problem: `is not a whole number of ${q.baseUnit}` };
  }
  if (!Number.isSafeInteger(rounded)) return { ok: false, problem: `is too large to be ${q.what}` };
  return { ok: true, value: rounded };
}

/** Parses a duration into milliseconds, reporting a problem instead of throwing. */
export function tryParseDuration(text: string): ParseResult {
  return tryParse(text, DURATION);
}

/** Parses a memory size into bytes, reporting a problem instead of throwing. */
export function tryParseMemorySize(text: string): ParseResult {
  return tryParse(text, MEMORY);
}

/**
 * Milliseconds from `500`, `500 ms`, `10s`, `10 sec`, `1 min`, `1m`, `2 h`, `1 d` (and long forms such as
 * `seconds`, `minutes`, `hours`, `days`). Throws an Error saying what is wrong.
 */
export function parseDuration(text: string): number {
  const result = tryParseDuration(text);
  if (!result.ok) throw new Error(`'${text}' ${result.problem}`);
  return result.value;
}

/**
 * Bytes from `1024`, `100 b`, `512 kb`, `512k`, `64 mib`, `1 g`, `1 tb`. Binary multiples: 1 kb = 1024.
 * Throws an Error saying what is wrong.
 */
export function parseMemorySize(text: string): number {
  const result = tryParseMemorySize(text);
  if (!result.ok) throw new Error(`'${text}' ${result.problem}`);
  return result.value;
}

function format(value: number, units: ReadonlyArray<readonly [string, number]>, base: string): string {
  if (!Number.isSafeInteger(value) || value <= 0) return `${value} ${base}`;
  for (const [unit, size] of units) {
    if (value % size === 0) return `${value / size} ${unit}`;
  }
  return `${value} ${base}`;
}

/** `90000` → `90 s`, `60000` → `1 min`, `1500` → `1500 ms`: the largest unit that divides exactly. */
export function formatDuration(ms: number): string {
  return format(
    ms,
    [
      ['d', DAY],
      ['h', HOUR],
      ['min', MINUTE],
      ['s', SECOND],
    ],
    'ms',
  );
}

/** `524288` → `512 kb`, `1536` → `1536 b`: the largest binary unit that divides exactly. */
export function formatMemorySize(bytes: number): string {
  return format(
    bytes,
    [
      ['tb', TIB],
      ['gb', GIB],
      ['mb', MIB],
      ['kb', KIB],
    ],
    'b',
  );
}
