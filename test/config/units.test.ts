import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatMemorySize,
  parseDuration,
  parseMemorySize,
  tryParseDuration,
} from '../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['250', 250],
    ['500 ms', 500],
    ['500ms', 500],
    ['10 s', 10_000],
    ['10s', 10_000],
    ['10 sec', 10_000],
    ['10 seconds', 10_000],
    ['1 min', 60_000],
    ['1m', 60_000],
    ['2 minutes', 120_000],
    ['2 h', 7_200_000],
    ['3 hours', 10_800_000],
    ['1 d', 86_400_000],
    ['1.5 s', 1_500],
    ['  7 S  ', 7_000],
    ['1 MIN', 60_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['', /'' is empty/],
    ['   ', /is empty/],
    ['-5 s', /'-5 s' is negative/],
    ['NaN', /'NaN' is not a duration/],
    ['abc', /'abc' is not a duration \(use e\.g\. 500 ms, 10 s, 1 min\)/],
    ['5 parsecs', /'5 parsecs' is not a duration: unknown unit 'parsecs'/],
    ['10 kb', /unknown unit 'kb'/],
    ['1.5', /not a whole number of milliseconds/],
    ['0.5 ms', /not a whole number of milliseconds/],
    ['1e3', /'1e3' is not a duration/],
    ['s', /'s' is not a duration/],
    ['99999999999999999999 d', /too large/],
  ])('rejects %j', (text, message) => {
    expect(() => parseDuration(text)).toThrow(message);
  });

  it('throws a plain Error', () => {
    expect(() => parseDuration('x')).toThrow(Error);
    const result = tryParseDuration('x');
    expect(result.ok).toBe(false);
  });
});

describe('parseMemorySize', () => {
  it.each([
    ['0', 0],
    ['1024', 1024],
    ['100 b', 100],
    ['100b', 100],
    ['1k', 1024],
    ['1 kb', 1024],
    ['1 KiB', 1024],
    ['512 kb', 524_288],
    ['1m', 1_048_576],
    ['64 mb', 67_108_864],
    ['64 MiB', 67_108_864],
    ['1 g', 1_073_741_824],
    ['1 GB', 1_073_741_824],
    ['2 gib', 2_147_483_648],
    ['1 t', 1_099_511_627_776],
    ['1 tb', 1_099_511_627_776],
    ['1.5 kb', 1_536],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseMemorySize(text)).toBe(bytes);
  });

  it.each([
    ['', /is empty/],
    ['-1 kb', /'-1 kb' is negative/],
    ['NaN', /'NaN' is not a memory size/],
    ['lots', /is not a memory size/],
    ['10 pb', /unknown unit 'pb'/],
    ['10 s', /unknown unit 's'/],
    ['0.5 b', /not a whole number of bytes/],
  ])('rejects %j', (text, message) => {
    expect(() => parseMemorySize(text)).toThrow(message);
  });
});

describe('formatting', () => {
  it('formats durations with the largest exact unit', () => {
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(1)).toBe('1 ms');
    expect(formatDuration(1_500)).toBe('1500 ms');
    expect(formatDuration(5_000)).toBe('5 s');
    expect(formatDuration(90_000)).toBe('90 s');
    expect(formatDuration(60_000)).toBe('1 min');
    expect(formatDuration(7_200_000)).toBe('2 h');
    expect(formatDuration(86_400_000)).toBe('1 d');
  });

  it('formats memory sizes with the largest exact binary unit', () => {
    expect(formatMemorySize(0)).toBe('0 b');
    expect(formatMemorySize(1_536)).toBe('1536 b');
    expect(formatMemorySize(524_288)).toBe('512 kb');
    expect(formatMemorySize(67_108_864)).toBe('64 mb');
    expect(formatMemorySize(1_073_741_824)).toBe('1 gb');
    expect(formatMemorySize(1_099_511_627_776)).toBe('1 tb');
  });

  it('round-trips through the parsers', () => {
    for (const ms of [0, 1, 999, 1_000, 61_000, 3_600_000, 90_061_001]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
    for (const bytes of [0, 1, 1_023, 1_024, 1_048_577, 5 * 1024 ** 3]) {
      expect(parseMemorySize(formatMemorySize(bytes))).toBe(bytes);
    }
  });
});
