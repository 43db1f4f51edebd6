/**
 * The data frame: a batch of stream elements from one source subtask on one channel, as ONE msgpack array
 *
 *   [version, sourceSubtask, seq, tag, fields…, tag, fields…, …]
 *
 * with the elements laid out flat (no nested array per element, so decoding allocates nothing extra):
 *
 *   record          0, timestamp | nil, value
 *   watermark       1, watermark
 *   end of channel  2                           (the last element of the last frame of a channel)
 *   barrier         3, checkpointId, target     (the gate flushes after it: a barrier ends its frame)
 *   (an unknown tag fails decoding)
 *
 * The gates' writer ({@link FrameBatch}) keeps a frame's elements as the flat item list and encodes the
 * whole array with one msgpackr call when the frame is sealed (msgpackr writes integers beyond 32 bits as
 * float64, so no sequence number or timestamp comes back as a BigInt), using msgpackr's record extension:
 * the first object of each shape in a frame carries its key list, later ones only their values (smaller
 * frames, and decoding builds objects of one hidden class instead of growing each one key by key). Every
 * frame is self-contained (no structure shared between frames: frames can be lost, reordered or dropped
 * as strangers' without breaking the next). The gate seals on an estimate of the size and splits a frame
 * that comes out over the server's max_payload. A value that cannot be encoded fails the seal, naming the
 * value. {@link FrameBuilder} encodes each record at once, without records, into a buffer with a
 * fixed-width 20-byte header (exact size at every moment; tests and tools). The reader takes any msgpack
 * encoding of the same array, with or without the record extension; anything else is refused (never a
 * crash): not msgpack, not an array of this layout, an unknown tag.
 *
 * Size: one concept, the frame format: its encoder, decoder and their validation stay together so the
 * two sides cannot drift apart.
 */
import { Packr } from 'msgpackr';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import { ElementKind, type StreamElement } from './elements.js';

export const FRAME_VERSION = 1;

/** Bytes of the header the builder writes: 0xdd+u32 count, version, 0xce+u32 source, 0xcb+f64 seq. */
export const FRAME_HEADER_BYTES = 20;

/** Wire tags of the elements (the same numbers as {@link ElementKind}). */
const TAG_RECORD = ElementKind.Record;
const TAG_WATERMARK = ElementKind.Watermark;
const TAG_END = ElementKind.EndOfPartition;
const TAG_BARRIER = ElementKind.Barrier;

/** Encoded bytes of a record besides its value: the tag and a nil or float64 timestamp. */
export function recordOverhead(timestamp: number | undefined): number {
  return timestamp === undefined ? 2 : 10;
}
export const WATERMARK_BYTES = 10;
export const END_BYTES = 1;
/** Encoded bytes of a barrier besides its target string. */
export const BARRIER_BYTES = 12;

class FunctionNotSerializable extends Error {
  constructor(fn: (...args: never[]) => unknown) {
    super(fn.name ? `a function '${fn.name}'` : 'an anonymous function');
  }
}

// As the envelope codec: plain maps as objects, no records extension. Functions, which msgpackr would
// silently turn into `undefined`, are refused instead: losing a field without a word is worse than failing.
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  // typed `() => any` in msgpackr's declarations, called with the function
  writeFunction: ((fn: (...args: never[]) => unknown) => {
    throw new FunctionNotSerializable(fn);
  }) as () => never,
});
// The frame encoder: the same, with msgpackr's record extension for repeated object shapes (inline record
// definitions, no shared structures: each frame decodes on its own).
const framePackr = new Packr({
  useRecords: true,
  mapsAsObjects: true,
  moreTypes: false,
  writeFunction: ((fn: (...args: never[]) => unknown) => {
    throw new FunctionNotSerializable(fn);
  }) as () => never,
});
// Binary values are copied out of the message buffer: records outlive the NATS callback that brought them.
const unpackr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, copyBuffers: true });

/** A short description of a value's type for error messages: `number`, `function 'f'`, `object (Order)`. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return value.name ? `function '${value.name}'` : 'function';
  if (typeof value !== 'object') return typeof value;
  if (Array.isArray(value)) return 'array';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `object (${name})` : 'object';
}

/**
 * Encodes one record value with msgpackr. The result is a view into msgpackr's own buffer: copy it before
 * the next call.
 * @throws SluiceError INVALID_MESSAGE "record cannot be serialized: …" naming the value's type
 */
export function encodeValue(value: unknown): Uint8Array {
  try {
    return packr.pack(value);
  } catch (err) {
    throw serializationError(value, err);
  }
}

function serializationError(value: unknown, err: unknown): SluiceError {
  const text = err instanceof Error ? err.message : String(err);
  let reason: string;
  if (err instanceof FunctionNotSerializable) {
    reason = `it ${typeof value === 'function' ? 'is' : 'contains'} ${text}; functions cannot be sent between subtasks`;
  } else if (err instanceof RangeError && /call stack/i.test(text)) {
    reason = 'it contains a circular reference (or is nested too deeply)';
  } else if (/Unknown type: symbol/.test(text)) {
    reason = `it ${typeof value === 'symbol' ? 'is' : 'contains'} a symbol`;
  } else if (/too large to fit in MessagePack 64-bit/.test(text)) {
    reason = 'it contains a BigInt outside the signed/unsigned 64-bit range';
  } else {
    reason = text;
  }
  return new SluiceError(
    ErrorCode.InvalidMessage,
    `record cannot be serialized: value of type ${describeType(value)}: ${reason}`,
    { cause: err },
  );
}

/**
 * Accumulates the elements of one channel's next frame in a reusable buffer. Not tied to a channel: the
 * source subtask and sequence number are written by {@link build}.
 */
export class FrameBuilder {
  /** Target frame size; an element bigger than this on its own still gets a frame (grown to fit). */
  readonly capacity: number;
  #buf: Buffer | undefined;
  #view: DataView | undefined;
  #pos = FRAME_HEADER_BYTES;
  /** msgpack items after the header (a record is 3, a watermark 2, the end 1). */
  #items = 0;
  /** Elements in the frame being built. */
  elements = 0;
  /** Records in the frame being built. */
  records = 0;

  constructor(capacity: number) {
    if (!(capacity > FRAME_HEADER_BYTES)) throw new RangeError(`frame capacity ${capacity} is too small`);
    this.capacity = capacity;
  }

  /** Encoded size of the frame so far, header included. */
  get size(): number {
    return this.#pos;
  }

  get isEmpty(): boolean {
    return this.elements === 0;
  }

  /** Whether an element of `bytes` still fits (always true when empty: an oversized element goes alone). */
  fits(bytes: number): boolean {
    return this.elements === 0 || this.#pos + bytes <= this.capacity;
  }

  /** Appends a record whose value is already encoded (see {@link encodeValue}). */
  addRecord(value: Uint8Array, timestamp: number | undefined): void {
    const n = recordOverhead(timestamp) + value.byteLength;
    const buf = this.#reserve(n);
    let p = this.#pos;
    buf[p++] = TAG_RECORD;
    if (timestamp === undefined) {
      buf[p++] = 0xc0;
    } else {
      buf[p++] = 0xcb;
      this.#view!.setFloat64(p, timestamp);
      p += 8;
    }
    buf.set(value, p);
    this.#pos = p + value.byteLength;
    this.#items += 3;
    this.elements++;
    this.records++;
  }

  addWatermark(watermark: number): void {
    const buf = this.#reserve(WATERMARK_BYTES);
    const p = this.#pos;
    buf[p] = TAG_WATERMARK;
    buf[p + 1] = 0xcb;
    this.#view!.setFloat64(p + 2, watermark);
    this.#pos = p + WATERMARK_BYTES;
    this.#items += 2;
    this.elements++;
  }

  addEnd(): void {
    const buf = this.#reserve(END_BYTES);
    buf[this.#pos++] = TAG_END;
    this.#items += 1;
    this.elements++;
  }

  addBarrier(checkpointId: number, target: string): void {
    const tail = packr.pack([checkpointId, target]).subarray(1); // the two items without the array header
    const buf = this.#reserve(1 + tail.byteLength);
    buf[this.#pos++] = TAG_BARRIER;
    buf.set(tail, this.#pos);
    this.#pos += tail.byteLength;
    this.#items += 3;
    this.elements++;
  }

  /** Seals the frame: returns its bytes (a fresh buffer of exactly its size) and starts the next one. */
  build(sourceSubtask: number, seq: number): Uint8Array {
    const buf = this.#reserve(0);
    const view = this.#view!;
    buf[0] = 0xdd;
    view.setUint32(1, 3 + this.#items);
    buf[5] = FRAME_VERSION;
    buf[6] = 0xce;
    view.setUint32(7, sourceSubtask);
    buf[11] = 0xcb;
    view.setFloat64(12, seq);
    const out = Buffer.allocUnsafe(this.#pos);
    buf.copy(out, 0, 0, this.#pos);
    if (buf.length > this.capacity) {
      // grown for an oversized element: do not keep the big buffer around
      this.#buf = undefined;
      this.#view = undefined;
    }
    this.#pos = FRAME_HEADER_BYTES;
    this.#items = 0;
    this.elements = 0;
    this.records = 0;
    return out;
  }

  #reserve(n: number): Buffer {
    const need = this.#pos + n;
    let buf = this.#buf;
    if (buf === undefined || need > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.capacity, need));
      if (buf !== undefined) buf.copy(grown, 0, 0, this.#pos);
      buf = this.#buf = grown;
      this.#view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
    }
    return buf;
  }
}

/** Index of the first element item in a frame's msgpack array (after version, source, seq). */
export const FRAME_ITEMS_START = 3;

/**
 * The gates' frame writer: keeps the elements of one channel's next frame as the flat item list of the
 * frame array (values not encoded yet) and encodes the whole frame with ONE msgpackr call when sealed, which
 * costs far less than a `pack` per record plus a copy. The caller estimates the size (see OutputGate); a
 * value that cannot be encoded fails {@link build}, which names it.
 */
export class FrameBatch {
  #items: unknown[] = [FRAME_VERSION, 0, 0];
  #end = false;
  /** Elements in the frame being built. */
  elements = 0;
  /** Records in the frame being built. */
  records = 0;
  /** Estimated encoded size (kept by the caller). */
  estimate = FRAME_HEADER_BYTES;
  /** Bytes of the elements besides record values (tags, timestamps, watermarks, end): exact. */
  fixedBytes = 0;

  get isEmpty(): boolean {
    return this.elements === 0;
  }

  addRecord(value: unknown, timestamp: number | undefined): void {
    if (timestamp === undefined) {
      this.#items.push(TAG_RECORD, null, value);
      this.fixedBytes += 2;
    } else {
      this.#items.push(TAG_RECORD, timestamp, value);
      this.fixedBytes += 10;
    }
    this.elements++;
    this.records++;
  }

  addWatermark(watermark: number): void {
    this.#items.push(TAG_WATERMARK, watermark);
    this.fixedBytes += WATERMARK_BYTES;
    this.elements++;
  }

  addEnd(): void {
    this.#items.push(TAG_END);
    this.fixedBytes += END_BYTES;
    this.elements++;
    this.#end = true;
  }

  addBarrier(checkpointId: number, target: string): void {
    this.#items.push(TAG_BARRIER, checkpointId, target);
    this.fixedBytes += BARRIER_BYTES + target.length;
    this.elements++;
  }

  /**
   * Encodes the frame and starts the next one. The result is never overwritten by later encodings.
   * `maxBytes`: a frame that encodes larger is split into frames of fewer elements (numbered from `seq` on);
   * returns the frames. On an error the batch is left as it was.
   * @throws SluiceError INVALID_MESSAGE naming the first record that cannot be serialized,
   * MESSAGE_TOO_LARGE for a single element over `maxBytes`
   */
  build(sourceSubtask: number, seq: number, maxBytes = Number.POSITIVE_INFINITY): Uint8Array[] {
    const items = this.#items;
    items[1] = sourceSubtask;
    items[2] = seq;
    let bytes: Uint8Array;
    try {
      bytes = framePackr.pack(items);
    } catch (err) {
      throw batchError(items, err);
    }
    let out: Uint8Array[];
    if (bytes.byteLength <= maxBytes) out = [bytes];
    else out = splitFrame(items, sourceSubtask, seq, maxBytes);
    this.#reset();
    return out;
  }

  /**
   * Seals the frame WITHOUT encoding it, for a local channel: its item list becomes the frame the receiver
   * reads (the same layout as a decoded frame), and the batch starts a fresh list.
   */
  take(sourceSubtask: number, seq: number): DecodedFrame {
    const items = this.#items;
    items[1] = sourceSubtask;
    items[2] = seq;
    const frame = new Decoded(sourceSubtask, seq, items, this.records, this.#end);
    this.#reset();
    return frame;
  }

  #reset(): void {
    this.#items = [FRAME_VERSION, 0, 0];
    this.#end = false;
    this.elements = 0;
    this.records = 0;
    this.estimate = FRAME_HEADER_BYTES;
    this.fixedBytes = 0;
  }
}

/** Items one element takes in a frame array, from its tag. */
function itemsOf(tag: unknown): number {
  return tag === TAG_RECORD || tag === TAG_BARRIER ? 3 : tag === TAG_WATERMARK ? 2 : 1;
}

/** Encodes the elements of `items` as several frames, none over `maxBytes` (halving until they fit). */
function splitFrame(items: unknown[], source: number, seq: number, maxBytes: number): Uint8Array[] {
  const starts: number[] = [];
  for (let i = FRAME_ITEMS_START; i < items.length; i += itemsOf(items[i])) starts.push(i);
  const out: Uint8Array[] = [];
  const encode = (from: number, to: number): void => {
    // elements starts[from] .. starts[to - 1]
    const end = to < starts.length ? starts[to]! : items.length;
    const frame = [FRAME_VERSION, source, seq + out.length, ...items.slice(starts[from], end)];
    const bytes = framePackr.pack(frame);
    if (bytes.byteLength <= maxBytes) {
      out.push(bytes);
      return;
    }
    if (to - from === 1) {
      throw new SluiceError(
        ErrorCode.MessageTooLarge,
        `record of ${bytes.byteLength - FRAME_HEADER_BYTES} bytes is over the NATS server's max_payload of ${maxBytes} bytes`,
      );
    }
    const mid = (from + to) >>> 1;
    encode(from, mid);
    encode(mid, to);
  };
  encode(0, starts.length);
  return out;
}

/** The error for a frame msgpackr refused: names the first record value that cannot be encoded alone. */
function batchError(items: unknown[], err: unknown): SluiceError {
  for (let i = FRAME_ITEMS_START; i < items.length; i += itemsOf(items[i])) {
    if (items[i] !== TAG_RECORD) continue;
    const value = items[i + 2];
    try {
      packr.pack(value);
    } catch (e) {
      return serializationError(value, e);
    }
  }
  return serializationError(items, err);
}

/**
 * Encodes a whole frame at once (tests, tools). The gates build frames incrementally with a FrameBuilder.
 * @throws SluiceError INVALID_MESSAGE for a value that cannot be serialized or an invalid element
 */
export function encodeFrame(
  sourceSubtask: number,
  seq: number,
  elements: readonly StreamElement[],
): Uint8Array {
  const builder = new FrameBuilder(64 * 1024);
  for (const element of elements) appendElement(builder, element);
  return builder.build(sourceSubtask, seq);
}

/** Checks and appends one element (encoding a record's value). */
export function appendElement(builder: FrameBuilder, element: StreamElement): void {
  switch (element.kind) {
    case ElementKind.Record:
      checkTimestamp(element.timestamp);
      builder.addRecord(encodeValue(element.value), element.timestamp);
      return;
    case ElementKind.Watermark:
      checkWatermark(element.watermark);
      builder.addWatermark(element.watermark);
      return;
    case ElementKind.EndOfPartition:
      builder.addEnd();
      return;
    case ElementKind.Barrier:
      checkBarrier(element.checkpointId, element.target);
      builder.addBarrier(element.checkpointId, element.target);
      return;
    default:
      throw new SluiceError(
        ErrorCode.InvalidMessage,
        `unknown stream element kind ${String((element as { kind?: unknown }).kind)}`,
      );
  }
}

export function checkTimestamp(timestamp: unknown): asserts timestamp is number | undefined {
  if (timestamp !== undefined && (typeof timestamp !== 'number' || Number.isNaN(timestamp))) {
    throw new SluiceError(
      ErrorCode.InvalidMessage,
      `record timestamp must be a number or undefined, got ${describeType(timestamp)}`,
    );
  }
}

export function checkWatermark(watermark: unknown): asserts watermark is number {
  if (typeof watermark !== 'number' || Number.isNaN(watermark)) {
    throw new SluiceError(
      ErrorCode.InvalidMessage,
      `watermark must be a number, got ${describeType(watermark)}`,
    );
  }
}

export function checkBarrier(checkpointId: unknown, target: unknown): void {
  if (!isIndex(checkpointId) || checkpointId < 1 || typeof target !== 'string' || target.length > 1_024) {
    throw new SluiceError(
      ErrorCode.InvalidMessage,
      'a barrier needs a checkpoint id >= 1 and a target string of at most 1024 characters',
    );
  }
}

export interface DecodedFrame {
  sourceSubtask: number;
  seq: number;
  /**
   * The frame's msgpack array as decoded: elements laid out flat from {@link FRAME_ITEMS_START} on
   * (checked). Consumers that can walk it avoid an object per element.
   */
  items: unknown[];
  /** The elements as objects (built on first access). */
  readonly elements: StreamElement[];
  /** Records among the elements. */
  records: number;
  /** Whether the frame ends with EndOfPartition. */
  end: boolean;
}

/** The elements of a checked frame array as objects. */
export function elementsOf(items: readonly unknown[]): StreamElement[] {
  const elements: StreamElement[] = [];
  const n = items.length;
  let i = FRAME_ITEMS_START;
  while (i < n) {
    const tag = items[i];
    if (tag === TAG_RECORD) {
      const ts = items[i + 1] as number | null;
      elements.push({ kind: 0, value: items[i + 2], timestamp: ts === null ? undefined : ts });
      i += 3;
    } else if (tag === TAG_WATERMARK) {
      elements.push({ kind: 1, watermark: items[i + 1] as number });
      i += 2;
    } else if (tag === TAG_BARRIER) {
      elements.push({ kind: 3, checkpointId: items[i + 1] as number, target: items[i + 2] as string });
      i += 3;
    } else {
      elements.push({ kind: 2 });
      i += 1;
    }
  }
  return elements;
}

class Decoded implements DecodedFrame {
  #elements: StreamElement[] | undefined;
  constructor(
    readonly sourceSubtask: number,
    readonly seq: number,
    readonly items: unknown[],
    readonly records: number,
    readonly end: boolean,
  ) {}
  get elements(): StreamElement[] {
    this.#elements ??= elementsOf(this.items);
    return this.#elements;
  }
}

/**
 * Decodes and checks a frame.
 * @throws SluiceError BAD_ENVELOPE for anything that is not a well-formed frame, UNSUPPORTED_VERSION for a
 * frame of another version
 */
export function decodeFrame(data: Uint8Array): DecodedFrame {
  let arr: unknown;
  try {
    arr = unpackr.unpack(data);
  } catch (err) {
    throw new SluiceError(ErrorCode.BadEnvelope, `not a msgpack data frame: ${(err as Error).message}`);
  }
  if (!Array.isArray(arr) || arr.length < 3) {
    throw new SluiceError(
      ErrorCode.BadEnvelope,
      'not a data frame: expected an array [version, source, seq, …]',
    );
  }
  const version: unknown = arr[0];
  if (version !== FRAME_VERSION) {
    if (typeof version === 'number') {
      throw new SluiceError(
        ErrorCode.UnsupportedVersion,
        `data frame version ${version} is not supported (this process speaks version ${FRAME_VERSION})`,
      );
    }
    throw new SluiceError(ErrorCode.BadEnvelope, 'not a data frame: no version');
  }
  const sourceSubtask: unknown = arr[1];
  const seq: unknown = arr[2];
  if (!isIndex(sourceSubtask))
    throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has an invalid source');
  if (!isIndex(seq) || seq < 1) {
    throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has an invalid sequence number');
  }
  let records = 0;
  let end = false;
  const n = arr.length;
  let i = FRAME_ITEMS_START;
  while (i < n) {
    if (end)
      throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has elements after the end of partition');
    const tag: unknown = arr[i];
    switch (tag) {
      case TAG_RECORD: {
        if (i + 2 >= n) throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has a truncated record');
        const ts: unknown = arr[i + 1];
        if (ts !== null && typeof ts !== 'number') {
          throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has a record with an invalid timestamp');
        }
        records++;
        i += 3;
        break;
      }
      case TAG_WATERMARK: {
        const wm: unknown = arr[i + 1];
        if (typeof wm !== 'number') {
          throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has a watermark that is not a number');
        }
        i += 2;
        break;
      }
      case TAG_END:
        end = true;
        i += 1;
        break;
      case TAG_BARRIER: {
        if (i + 2 >= n) throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has a truncated barrier');
        const id: unknown = arr[i + 1];
        const target: unknown = arr[i + 2];
        if (!isIndex(id) || id < 1 || typeof target !== 'string' || target.length > 1_024) {
          throw new SluiceError(ErrorCode.BadEnvelope, 'data frame has an invalid checkpoint barrier');
        }
        i += 3;
        break;
      }
      default:
        throw new SluiceError(
          ErrorCode.BadEnvelope,
          `data frame has an element of unknown kind ${showTag(tag)} (a newer sender?)`,
        );
    }
  }
  return new Decoded(sourceSubtask, seq, arr, records, end);
}

/** A tag for an error message: whatever a damaged frame holds (a BigInt, an object) must not throw here. */
function showTag(tag: unknown): string {
  if (typeof tag === 'number' || typeof tag === 'boolean' || tag === null) return String(tag);
  if (typeof tag === 'string') return JSON.stringify(tag.length > 20 ? `${tag.slice(0, 20)}…` : tag);
  return `(${describeType(tag)})`;
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
