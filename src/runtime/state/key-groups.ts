/**
 * Key groups, as in Flink: a key hashes to one of `maxParallelism` key groups; a subtask owns a
 * contiguous range of key groups. The partitioner and the state backend use the same functions, so a
 * key's records and its state always meet in the same subtask, and state can be redistributed by key
 * group when a job is rescaled.
 */

/** Canonical string of a key: keys are compared (and hashed) by this. Strings, numbers, booleans,
 *  bigints and arrays/plain objects of those are allowed. */
export function keyString(key: unknown): string {
  switch (typeof key) {
    case 'string':
      return `s${key}`;
    case 'number':
      return `n${Object.is(key, -0) ? 0 : key}`;
    case 'boolean':
      return key ? 'bt' : 'bf';
    case 'bigint':
      return `i${key}`;
    default:
      if (key === null || key === undefined) throw new TypeError(`a key cannot be ${key}`);
      if (typeof key === 'object') return `j${JSON.stringify(key)}`;
      throw new TypeError(`a key cannot be a ${typeof key}`);
  }
}

const HASH_SEED = 0x9747b28c;

/** One mixing step of {@link hashString} (a UTF-16 code unit). */
function mix(h: number, code: number): number {
  let k = Math.imul(code, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3 32-bit finalizer over a string's UTF-16 code units: fast and well spread. */
export function hashString(text: string): number {
  let h = HASH_SEED;
  for (let i = 0; i < text.length; i++) h = mix(h, text.charCodeAt(i));
  return finish(h, text.length);
}

/** `hashString(prefix + text)` for a one-character prefix, without building the string. */
function hashPrefixed(prefix: number, text: string): number {
  let h = mix(HASH_SEED, prefix);
  for (let i = 0; i < text.length; i++) h = mix(h, text.charCodeAt(i));
  return finish(h, text.length + 1);
}

function finish(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function keyGroupOf(keyStr: string, maxParallelism: number): number {
  return hashString(keyStr) % maxParallelism;
}

const PREFIX_STRING = 's'.charCodeAt(0);
const PREFIX_NUMBER = 'n'.charCodeAt(0);
const CHAR_MINUS = '-'.charCodeAt(0);
const CHAR_ZERO = '0'.charCodeAt(0);
/** Decimal digits of an integer, least significant first (scratch space of {@link hashInteger}). */
const digits = new Uint8Array(24);

/**
 * `hashString(keyString(n))` for an integer `n` whose decimal string has no exponent (|n| < 1e21),
 * without building the string: the same code units (`n`, an optional `-`, the digits) go through the mix.
 */
function hashInteger(n: number): number {
  let h = mix(HASH_SEED, PREFIX_NUMBER);
  let length = 1;
  if (n < 0) {
    h = mix(h, CHAR_MINUS);
    length++;
    n = -n;
  }
  let count = 0;
  do {
    const q = Math.floor(n / 10);
    digits[count++] = n - q * 10;
    n = q;
  } while (n > 0);
  for (let i = count - 1; i >= 0; i--) h = mix(h, CHAR_ZERO + digits[i]!);
  return finish(h, length + count);
}

/**
 * `keyGroupOf(keyString(key), maxParallelism)`, without building the key string for a string key or a
 * safe integer.
 */
export function keyGroupOfKey(key: unknown, maxParallelism: number): number {
  if (typeof key === 'string') return hashPrefixed(PREFIX_STRING, key) % maxParallelism;
  if (typeof key === 'number' && Number.isSafeInteger(key)) return hashInteger(key) % maxParallelism;
  return hashString(keyString(key)) % maxParallelism;
}

/** The subtask that owns a key group (Flink's formula). */
export function subtaskForKeyGroup(keyGroup: number, maxParallelism: number, parallelism: number): number {
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

/** The key groups a subtask owns: [start, end] inclusive. */
export function keyGroupRange(
  subtask: number,
  maxParallelism: number,
  parallelism: number,
): [number, number] {
  const start = Math.ceil((subtask * maxParallelism) / parallelism);
  const end = Math.ceil(((subtask + 1) * maxParallelism) / parallelism) - 1;
  return [start, end];
}
