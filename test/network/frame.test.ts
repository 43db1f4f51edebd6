/**
 * Data frames and control messages: round trips, strict decoding, clear errors for values msgpackr cannot
 * encode; and the watermark tracker. Pure functions: no server needed.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { decodeCredit, encodeCredit } from '../../src/runtime/network/control.js';
import {
  barrier,
  END_OF_PARTITION,
  record,
  type StreamElement,
  watermark,
} from '../../src/runtime/network/elements.js';
import {
  decodeFrame,
  encodeFrame,
  encodeValue,
  FRAME_HEADER_BYTES,
  FrameBatch,
  FrameBuilder,
} from '../../src/runtime/network/frame.js';
import { WatermarkTracker } from '../../src/runtime/network/watermark-tracker.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

function errorOf(fn: () => unknown): SluiceError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SluiceError);
    return err as SluiceError;
  }
  throw new Error('expected an error');
}

describe('data frames', () => {
  it('round-trips records, watermarks and the end of partition in order', () => {
    const elements: StreamElement[] = [
      record({ a: 1, s: 'x', nested: [1, 2, { b: null }] }, 1_700_000_000_123),
      record('plain'),
      record(undefined, -5),
      watermark(42),
      record(new Uint8Array([1, 2, 3]), 0.5),
      watermark(Number.NEGATIVE_INFINITY),
      record(2 ** 60),
      END_OF_PARTITION,
    ];
    const bytes = encodeFrame(3, 2 ** 40 + 7, elements);
    const frame = decodeFrame(bytes);
    expect(frame.sourceSubtask).toBe(3);
    expect(frame.seq).toBe(2 ** 40 + 7);
    expect(frame.records).toBe(5);
    expect(frame.end).toBe(true);
    expect(frame.elements).toHaveLength(elements.length);
    expect(frame.elements[0]).toEqual(elements[0]);
    expect(frame.elements[1]).toEqual({ kind: 0, value: 'plain', timestamp: undefined });
    expect(frame.elements[2]).toEqual({ kind: 0, value: undefined, timestamp: -5 });
    expect(frame.elements[3]).toEqual({ kind: 1, watermark: 42 });
    const bin = frame.elements[4]!;
    expect(Array.from(bin.kind === 0 ? (bin.value as Uint8Array) : [])).toEqual([1, 2, 3]);
    expect(frame.elements[5]).toEqual({ kind: 1, watermark: Number.NEGATIVE_INFINITY });
    expect(frame.elements[7]).toEqual({ kind: 2 });
  });

  it('knows the exact encoded size while building', () => {
    const builder = new FrameBuilder(1024);
    expect(builder.size).toBe(FRAME_HEADER_BYTES);
    builder.addRecord(encodeValue({ k: 'v' }), undefined);
    builder.addRecord(encodeValue([1, 2, 3]), 17);
    builder.addWatermark(9);
    const expected = builder.size;
    const frame = builder.build(0, 1);
    expect(frame.byteLength).toBe(expected);
    expect(builder.isEmpty).toBe(true);
    expect(decodeFrame(frame).elements).toHaveLength(3);
  });

  it('gives an oversized element a frame of its own', () => {
    const builder = new FrameBuilder(100);
    const big = encodeValue('x'.repeat(500));
    expect(builder.fits(big.byteLength + 2)).toBe(true);
    builder.addRecord(big, undefined);
    expect(builder.fits(3)).toBe(false);
    const frame = builder.build(1, 1);
    expect(decodeFrame(frame).elements[0]).toEqual({ kind: 0, value: 'x'.repeat(500), timestamp: undefined });
    builder.addRecord(encodeValue(1), undefined);
    expect(decodeFrame(builder.build(1, 2)).elements).toHaveLength(1);
  });

  it('reads any msgpack encoding of the same array', () => {
    const bytes = packr.pack([1, 0, 1, 0, null, 'v', 1, 5, 2]);
    expect(decodeFrame(bytes).elements).toEqual([
      { kind: 0, value: 'v', timestamp: undefined },
      { kind: 1, watermark: 5 },
      { kind: 2 },
    ]);
  });

  it('refuses garbage and unknown element kinds with BAD_ENVELOPE', () => {
    const cases: Uint8Array[] = [
      new Uint8Array([0xc1]),
      new TextEncoder().encode('hello'),
      packr.pack({ v: 1 }),
      packr.pack([1, 0]),
      packr.pack([1, -1, 1]),
      packr.pack([1, 0, 0]),
      packr.pack([1, 0, 1, 3, 'barrier?']),
      packr.pack([1, 0, 1, 4, 'newer kind']),
      packr.pack([1, 0, 1, 3, 0, 'target']),
      packr.pack([1, 0, 1, 3, 1, 5]),
      packr.pack([1, 0, 1, 9]),
      packr.pack([1, 0, 1, 0, 'ts', 'v']),
      packr.pack([1, 0, 1, 0, null]),
      packr.pack([1, 0, 1, 1, 'x']),
      packr.pack([1, 0, 1, 2, 0, null, 'after end']),
    ];
    for (const bytes of cases) expect(errorOf(() => decodeFrame(bytes)).code).toBe(ErrorCode.BadEnvelope);
    expect(errorOf(() => decodeFrame(packr.pack([1, 0, 1, 4, 'x']))).message).toMatch(/unknown kind 4/);
    expect(errorOf(() => decodeFrame(packr.pack([2, 0, 1]))).code).toBe(ErrorCode.UnsupportedVersion);
  });

  it('carries checkpoint barriers in order with records', () => {
    const frame = decodeFrame(
      encodeFrame(0, 1, [record('a'), barrier(7, 'checkpoints/j/chk-7'), record('b')]),
    );
    expect(frame.elements).toEqual([
      { kind: 0, value: 'a', timestamp: undefined },
      { kind: 3, checkpointId: 7, target: 'checkpoints/j/chk-7' },
      { kind: 0, value: 'b', timestamp: undefined },
    ]);
    expect(frame.records).toBe(2);
  });

  it('names the type of a value that cannot be serialized', () => {
    const fn = errorOf(() => encodeValue({ id: 1, callback: function onDone() {} }));
    expect(fn.code).toBe(ErrorCode.InvalidMessage);
    expect(fn.message).toMatch(
      /^record cannot be serialized: value of type object: it contains a function 'onDone'/,
    );

    class Order {
      self: unknown = this;
    }
    const circular = errorOf(() => encodeValue(new Order()));
    expect(circular.message).toMatch(
      /record cannot be serialized: value of type object \(Order\): .*circular/,
    );

    expect(errorOf(() => encodeValue(2n ** 70n)).message).toMatch(/value of type bigint: .*64-bit/);
    expect(errorOf(() => encodeValue(Symbol('s'))).message).toMatch(/value of type symbol: it is a symbol/);
    expect(errorOf(() => encodeValue(() => 1)).message).toMatch(/value of type function: it is an anonymous/);
    // still usable afterwards
    expect(decodeFrame(encodeFrame(0, 1, [record({ ok: true })])).elements[0]).toEqual(record({ ok: true }));
  });

  it('encodes repeated shapes as records, each frame decodable on its own, in any order', () => {
    const batch = new FrameBatch();
    const frames: Uint8Array[] = [];
    for (let f = 0; f < 3; f++) {
      for (let i = 0; i < 50; i++) batch.addRecord({ id: f * 50 + i, key: `user-${i}`, amount: i / 4 }, i);
      batch.addWatermark(f);
      frames.push(...batch.build(1, f + 1));
    }
    // A frame of plain maps (no record extension) of the same records is larger: keys repeated per record.
    const plain = packr.pack([
      1,
      1,
      1,
      ...Array.from({ length: 50 }, (_, i) => [0, i, { id: i, key: `user-${i}`, amount: i / 4 }]).flat(),
    ]);
    expect(frames[0]!.byteLength).toBeLessThan(plain.byteLength * 0.8);
    for (const f of [2, 0, 1]) {
      const frame = decodeFrame(frames[f]!);
      expect(frame.seq).toBe(f + 1);
      expect(frame.records).toBe(50);
      expect(frame.elements[49]).toEqual({
        kind: 0,
        value: { id: f * 50 + 49, key: 'user-49', amount: 49 / 4 },
        timestamp: 49,
      });
      expect(frame.elements[50]).toEqual({ kind: 1, watermark: f });
    }
  });

  it('round-trips a frame of many different shapes, maps and nested records', () => {
    const batch = new FrameBatch();
    const values: unknown[] = [];
    for (let i = 0; i < 300; i++) {
      const v = { [`k${i}`]: i, common: { nested: [i, { deep: `d${i % 7}` }] } };
      values.push(v);
      batch.addRecord(v, undefined);
    }
    values.push(new Map([['m', 1]]));
    batch.addRecord(values.at(-1), undefined);
    const [bytes] = batch.build(0, 1);
    const got = decodeFrame(bytes!).elements.map((e) => (e.kind === 0 ? e.value : e));
    expect(got.slice(0, 300)).toEqual(values.slice(0, 300));
    expect(got[300]).toEqual({ m: 1 }); // maps come back as plain objects, as without records
  });

  it('never throws anything but a SluiceError on damaged frames (truncated, bytes flipped)', () => {
    const batch = new FrameBatch();
    for (let i = 0; i < 20; i++) batch.addRecord({ id: i, s: `v${i}`, tags: ['a', i] }, i);
    batch.addBarrier(3, 'chk-3');
    const [good] = batch.build(0, 1);
    let refused = 0;
    let accepted = 0;
    const check = (bytes: Uint8Array) => {
      try {
        decodeFrame(bytes);
        accepted++;
      } catch (err) {
        expect(err).toBeInstanceOf(SluiceError);
        expect([ErrorCode.BadEnvelope, ErrorCode.UnsupportedVersion]).toContain((err as SluiceError).code);
        refused++;
      }
    };
    for (let cut = 0; cut < good!.byteLength; cut++) check(good!.subarray(0, cut));
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (let k = 0; k < 2_000; k++) {
      const bytes = Uint8Array.from(good!);
      for (let flips = 1 + (rnd() % 3); flips > 0; flips--) bytes[rnd() % bytes.length] = rnd() & 0xff;
      check(bytes);
    }
    expect(refused).toBeGreaterThan(good!.byteLength); // every truncation, and many flips
    expect(refused + accepted).toBe(good!.byteLength + 2_000);
  });

  it('round-trips credit messages and refuses others', () => {
    expect(decodeCredit(encodeCredit(2, 17))).toEqual({ targetSubtask: 2, grant: 17 });
    for (const bad of [packr.pack([1, 2]), packr.pack([1, -1, 3]), packr.pack('x'), new Uint8Array([0xc1])]) {
      expect(errorOf(() => decodeCredit(bad)).code).toBe(ErrorCode.BadEnvelope);
    }
  });
});

describe('WatermarkTracker', () => {
  it('advances with the minimum over the open channels', () => {
    const t = new WatermarkTracker(3);
    expect(t.current).toBe(Number.NEGATIVE_INFINITY);
    expect(t.update(0, 10)).toBeUndefined();
    expect(t.update(1, 5)).toBeUndefined();
    expect(t.update(2, 7)).toBe(5);
    expect(t.update(0, 20)).toBeUndefined(); // channel 0 was not the minimum
    expect(t.update(1, 30)).toBe(7);
    expect(t.update(1, 25)).toBeUndefined(); // going back is ignored
    expect(t.update(2, 7)).toBeUndefined();
    expect(t.update(2, 40)).toBe(20);
    expect(t.current).toBe(20);
  });

  it('lets an ended channel stop holding the minimum back, and ends at +Infinity', () => {
    const t = new WatermarkTracker(3);
    t.update(0, 10);
    t.update(1, 50);
    expect(t.endChannel(2)).toBe(10);
    expect(t.endChannel(0)).toBe(50);
    expect(t.endChannel(0)).toBeUndefined();
    expect(t.update(0, 100)).toBeUndefined();
    expect(t.endChannel(1)).toBe(Number.POSITIVE_INFINITY);
    expect(() => t.update(3, 1)).toThrow(RangeError);
  });
});
