/**
 * The sending side of one job edge in one producer subtask: a channel to every target subtask, each with a
 * frame being built, a credit grant and a queue of sealed frames waiting for credit.
 *
 * - `open` subscribes the credit subject, then connects to every target (a NATS request on its data
 *   subject, retried through "no responders" until `connectTimeoutMs`); the reply is the initial grant.
 * - `emit` adds a record to its channel's frame; the frame is encoded in one go when it is sealed: when the
 *   next element would take it over `maxFrameBytes` (estimated from the sizes of earlier records), when the
 *   buffer timeout fires, on `flush`, and at once for every element when `bufferTimeoutMs` is 0. A value
 *   msgpackr cannot encode fails the gate when its frame is sealed (the gate's first record is encoded
 *   at `emit`, to measure it), with a message naming the value.
 * - A sealed frame is published if the channel's cumulative grant covers its sequence number, else it is
 *   queued and the gate is not `writable` until credit comes; callers `await ready()` then. Memory per
 *   channel: one frame being built plus the queue, which holds what was emitted since `writable` turned
 *   false (one burst); the receiver holds at most its window.
 * - Watermarks and the end of partition go to every channel through the same frames, so they arrive after
 *   everything emitted before them. The end of partition seals the frame at once and is a channel's last
 *   element.
 * - Local channels (see local-channels.ts): a target whose input gate is registered in this thread's
 *   channel registry (looked up at every connect attempt) is connected by a call, and its frames are
 *   sealed without encoding and handed over in memory; everything else (credit, queue, ordering,
 *   `writable`, end of partition) is the same. A local receiver that goes away before consuming the
 *   channel's end fails the gate (a remote one would leave it waiting for credit).
 * - Thread channels (see thread-channels.ts): a receiver whose connect reply says it runs in another slot
 *   thread of this TaskManager is connected again through the thread's hub; its frames are encoded as for
 *   NATS and moved over a MessagePort, its credit comes back through the port. A receiver that goes away
 *   or whose thread dies before consuming the channel's end fails the gate, as for a local channel.
 *
 * Size: one side of the credit protocol; its channels, frames in the making, credits and local/remote
 * hand-over share state and are read together.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeReply } from '../../actors/envelope.js';
import { mapRequestError } from '../../actors/rpc.js';
import type { Subjects } from '../../actors/subjects.js';
import { ErrorCode, SluiceError, toSluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { channelName, checkIndex, checkPositive, checkToken, logDrop, watchConnection } from './channel.js';
import {
  type ConnectReply,
  checkConnectReply,
  decodeCredit,
  encodeConnect,
  MAX_CONTROL_BYTES,
} from './control.js';
import { ElementKind, type StreamElement } from './elements.js';
import {
  BARRIER_BYTES,
  checkBarrier,
  checkWatermark,
  type DecodedFrame,
  describeType,
  END_BYTES,
  encodeValue,
  FRAME_HEADER_BYTES,
  FrameBatch,
  recordOverhead,
  WATERMARK_BYTES,
} from './frame.js';
import {
  findLocalReceiver,
  type LocalEndpoint,
  type LocalSender,
  localChannelsEnabled,
} from './local-channels.js';
import {
  defaultThreadChannelHub,
  type ThreadChannelHub,
  type ThreadLocation,
  type ThreadSenderLink,
} from './thread-channels.js';

export const DEFAULT_BUFFER_TIMEOUT_MS = 100;
export const DEFAULT_MAX_FRAME_BYTES = 32 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

export interface OutputGateOptions {
  nc: NatsConnection;
  subjects: Subjects;
  jobId: string;
  attempt: number;
  edgeId: string;
  sourceSubtask: number;
  targetParallelism: number;
  /** Longest a record waits in a partly filled frame. 0: every element is sent at once. Default 100. */
  bufferTimeoutMs?: number;
  /** A frame is sealed before it would grow over this (a larger single element goes alone). Default 32 KiB. */
  maxFrameBytes?: number;
  /** How long `open` waits for every receiver to appear. Default 30 s. */
  connectTimeoutMs?: number;
  /** Aborting closes the gate (and ends a pending `open` promptly). */
  signal?: AbortSignal;
  /** Hand frames over in memory to receivers in this thread. Default: on unless
   * `SLUICE_LOCAL_CHANNELS=off`. */
  localChannels?: boolean;
  /**
   * Connect to receivers in other slot threads of this TaskManager through this hub. Default: the
   * thread's installed hub (a slot worker's), see `defaultThreadChannelHub`; null: none.
   */
  threadChannels?: ThreadChannelHub | null;
  log?: Logger;
}

export interface FinishOptions {
  /**
   * Also wait until every receiver has consumed the last frame (its credit grant says so). Default false:
   * `finish` resolves once every frame is published and the server has it.
   */
  waitForConsumption?: boolean;
}

export interface OutputGateStats {
  recordsOut: number;
  framesOut: number;
  bytesOut: number;
  /** Time spent not writable (some channel out of credit), ms. */
  backpressuredMs: number;
  /** Highest amount of sealed frames ever waiting for credit, bytes. */
  peakQueuedBytes: number;
  /** Malformed or implausible credit messages dropped. */
  dropped: number;
  /** Frames handed over in memory to receivers in this thread (counted in framesOut too, not in bytesOut). */
  localFramesOut: number;
  /** Frames sent over thread channels to other slot threads (counted in framesOut and bytesOut too). */
  threadFramesOut: number;
}

interface OutChannel {
  readonly target: number;
  readonly subject: string;
  readonly name: string;
  readonly batch: FrameBatch;
  /** Sequence number of the next frame to seal (frames are numbered from 1). */
  nextSeq: number;
  /** Highest sequence number published; queued frames are sentSeq+1, sentSeq+2, … */
  sentSeq: number;
  /** Cumulative grant: frames up to this sequence number may be published. */
  grant: number;
  /** The receiver's window (frames), from the connect reply; 0 until connected. */
  window: number;
  /** Encoded frames (remote) or frames handed over as they are (local), waiting for credit. */
  readonly queue: Array<Uint8Array | DecodedFrame>;
  /** Estimated sizes of the local frames in `queue`, in order (for queuedBytes). */
  readonly localQueueBytes: number[];
  ended: boolean;
  /** The receiver, when it is in this thread (a local channel). */
  local: LocalEndpoint | undefined;
  /** The link to the receiver, when it is in another slot thread (a thread channel). */
  thread: ThreadSenderLink | undefined;
}

type State = 'connecting' | 'open' | 'finishing' | 'finished' | 'closed' | 'failed';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class OutputGate {
  readonly stats: OutputGateStats = {
    recordsOut: 0,
    framesOut: 0,
    bytesOut: 0,
    backpressuredMs: 0,
    peakQueuedBytes: 0,
    dropped: 0,
    localFramesOut: 0,
    threadFramesOut: 0,
  };
  readonly jobId: string;
  readonly attempt: number;
  readonly edgeId: string;
  readonly sourceSubtask: number;
  readonly targetParallelism: number;

  readonly #nc: NatsConnection;
  readonly #log: Logger | undefined;
  readonly #bufferTimeoutMs: number;
  readonly #maxFrameBytes: number;
  readonly #connectTimeoutMs: number;
  readonly #channels: OutChannel[];
  /** The server's max_payload: no frame may be larger. */
  readonly #maxPayload: number;
  /**
   * Estimated encoded bytes of a record value: measured on the first record, then the average of the last
   * sealed frame's records (exact for records of one shape). Frames are sealed on the estimate and split
   * if they come out over max_payload.
   */
  #valueBytes = -1;
  readonly #creditSubject: string;
  #creditSub: Subscription | undefined;
  #state: State = 'connecting';
  #failure: SluiceError | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Channels with a non-empty queue. */
  #blocked = 0;
  #blockedSince = 0;
  #queuedBytes = 0;
  #readyWaiters: Waiter[] = [];
  /** Waiters for "every channel's grant covers its last frame + window" (finish with waitForConsumption). */
  #consumedWaiters: Waiter[] = [];
  #finishing: Promise<void> | undefined;
  #unwatch: (() => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #local: boolean;
  readonly #hub: ThreadChannelHub | undefined;
  readonly #onAbort = () => this.close();
  /** Resolves when the gate is released (closed, failed or finished): ends waits in `open`. */
  readonly #released: Promise<undefined>;
  #resolveReleased: (value: undefined) => void = () => {};

  private constructor(options: OutputGateOptions) {
    checkToken('job id', options.jobId);
    checkToken('edge id', options.edgeId);
    checkIndex('attempt', options.attempt);
    checkIndex('source subtask', options.sourceSubtask);
    checkIndex('target parallelism', options.targetParallelism, 1);
    checkPositive('bufferTimeoutMs', options.bufferTimeoutMs, true);
    checkPositive('maxFrameBytes', options.maxFrameBytes);
    checkPositive('connectTimeoutMs', options.connectTimeoutMs);
    this.#nc = options.nc;
    this.#log = options.log;
    this.#signal = options.signal;
    this.#local = options.localChannels ?? localChannelsEnabled();
    this.#hub =
      options.threadChannels === undefined
        ? defaultThreadChannelHub()
        : (options.threadChannels ?? undefined);
    this.#released = new Promise((resolve) => {
      this.#resolveReleased = resolve;
    });
    this.jobId = options.jobId;
    this.attempt = options.attempt;
    this.edgeId = options.edgeId;
    this.sourceSubtask = options.sourceSubtask;
    this.targetParallelism = options.targetParallelism;
    this.#bufferTimeoutMs = options.bufferTimeoutMs ?? DEFAULT_BUFFER_TIMEOUT_MS;
    const maxPayload = this.#nc.info?.max_payload ?? 1024 * 1024;
    this.#maxPayload = this.#nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
    this.#maxFrameBytes = Math.max(
      FRAME_HEADER_BYTES + 64,
      Math.min(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, maxPayload),
    );
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#creditSubject = options.subjects.creditSubject(
      options.jobId,
      options.attempt,
      options.edgeId,
      options.sourceSubtask,
    );
    this.#channels = [];
    for (let target = 0; target < options.targetParallelism; target++) {
      this.#channels.push({
        target,
        subject: options.subjects.dataSubject(options.jobId, options.attempt, options.edgeId, target),
        name: channelName(options.jobId, options.attempt, options.edgeId, options.sourceSubtask, target),
        batch: new FrameBatch(),
        nextSeq: 1,
        sentSeq: 0,
        grant: 0,
        window: 0,
        queue: [],
        localQueueBytes: [],
        ended: false,
        local: undefined,
        thread: undefined,
      });
    }
  }

  /**
   * Subscribes the credit subject and connects to every target subtask; resolves once all have answered.
   * @throws SluiceError TIMEOUT naming the channel when a receiver did not appear within connectTimeoutMs
   */
  static async open(options: OutputGateOptions): Promise<OutputGate> {
    const gate = new OutputGate(options);
    try {
      await gate.#open();
    } catch (err) {
      gate.#fail(toSluiceError(err));
      throw err;
    }
    return gate;
  }

  /** True when every channel is within its credit: emitting more will not grow a queue. */
  get writable(): boolean {
    return this.#blocked === 0 && this.#failure === undefined && this.#state !== 'closed';
  }

  /** Bytes of sealed frames waiting for credit, over all channels. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** The frame size limit in effect (the option, capped by the server's max_payload). */
  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  /** Channels connected to a receiver in this thread. */
  get localChannelCount(): number {
    let n = 0;
    for (const ch of this.#channels) if (ch.local !== undefined) n++;
    return n;
  }

  /** Channels connected to a receiver in another slot thread of this TaskManager. */
  get threadChannelCount(): number {
    let n = 0;
    for (const ch of this.#channels) if (ch.thread !== undefined) n++;
    return n;
  }

  /**
   * Adds an element to the channel of one target subtask. Records are encoded here.
   * @throws SluiceError INVALID_MESSAGE for a record that cannot be serialized or a bad timestamp,
   * MESSAGE_TOO_LARGE for one over the server's max_payload, ILLEGAL_STATE after the end of the channel or
   * once the gate is closed (or its failure)
   */
  emit(targetSubtask: number, element: StreamElement): void {
    if (element.kind === ElementKind.Record) {
      this.emitRecord(targetSubtask, element.value, element.timestamp);
      return;
    }
    if (this.#state !== 'open') this.#throwNotOpen();
    const ch = this.#channel(targetSubtask);
    this.#appendControl(ch, element);
    if (this.#bufferTimeoutMs === 0) this.#seal(ch);
    else if (this.#timer === undefined) this.#armTimer();
  }

  /**
   * {@link emit} of a record without an element object: the task's hot path. The value is encoded when its
   * frame is sealed (full, on the buffer timeout, on flush; at once with buffer timeout 0): a value that
   * cannot be serialized fails the gate then, with a message naming it.
   */
  emitRecord(targetSubtask: number, value: unknown, timestamp: number | undefined): void {
    if (this.#state !== 'open') this.#throwNotOpen();
    const ch = this.#channels[targetSubtask] ?? this.#channel(targetSubtask);
    if (timestamp !== undefined && (typeof timestamp !== 'number' || Number.isNaN(timestamp)))
      badTimestamp(timestamp);
    if (ch.ended) this.#throwEnded(ch);
    const batch = ch.batch;
    const size =
      (batch.records & 63) === 63
        ? this.#sample(batch, value, timestamp)
        : this.#recordSize(value, timestamp);
    if (!batch.isEmpty && batch.estimate + size > this.#maxFrameBytes) this.#seal(ch);
    batch.addRecord(value, timestamp);
    batch.estimate += size;
    this.stats.recordsOut++;
    if (this.#bufferTimeoutMs === 0) this.#seal(ch);
    else if (this.#timer === undefined) this.#armTimer();
  }

  /**
   * Adds an element to every channel (watermarks, the end of partition; records too, encoded once). The end
   * of partition skips channels that already ended.
   */
  broadcast(element: StreamElement): void {
    if (this.#state !== 'open') this.#throwNotOpen();
    if (element.kind === ElementKind.Record) {
      const ts = element.timestamp;
      if (ts !== undefined && (typeof ts !== 'number' || Number.isNaN(ts))) badTimestamp(ts);
      for (const ch of this.#channels) if (ch.ended) this.#throwEnded(ch);
      const size = this.#recordSize(element.value, ts);
      for (const ch of this.#channels) {
        if (!ch.batch.isEmpty && ch.batch.estimate + size > this.#maxFrameBytes) this.#seal(ch);
        ch.batch.addRecord(element.value, ts);
        ch.batch.estimate += size;
        this.stats.recordsOut++;
      }
    } else if (element.kind === ElementKind.EndOfPartition) {
      for (const ch of this.#channels) if (!ch.ended) this.#appendControl(ch, element);
    } else {
      for (const ch of this.#channels) if (ch.ended) this.#throwEnded(ch);
      for (const ch of this.#channels) this.#appendControl(ch, element);
    }
    if (this.#bufferTimeoutMs === 0) this.flush();
    else if (this.#timer === undefined) this.#armTimer();
  }

  /** Seals and sends (or queues, without credit) every channel's partly filled frame. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#state !== 'open' && this.#state !== 'finishing') return;
    for (const ch of this.#channels) if (!ch.batch.isEmpty) this.#seal(ch);
  }

  /** Resolves when the gate is writable; rejects when it failed or was closed. */
  ready(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#state === 'closed') return Promise.reject(closedError());
    if (this.#blocked === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /**
   * Ends every channel (EndOfPartition), sends everything, waits until the server has every frame (and,
   * with `waitForConsumption`, until the receivers consumed them), then releases the gate. Idempotent.
   */
  finish(options: FinishOptions = {}): Promise<void> {
    this.#finishing ??= this.#finish(options);
    return this.#finishing;
  }

  /** Aborts: stops the timer, unsubscribes, rejects waiters. Frames not yet sent are dropped. Idempotent. */
  close(): void {
    if (this.#state === 'closed' || this.#state === 'failed' || this.#state === 'finished') return;
    this.#state = 'closed';
    this.#release(closedError());
  }

  // -------------------------------------------------------------------------------------------------------

  async #open(): Promise<void> {
    if (this.#signal?.aborted) throw closedError();
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#unwatch = watchConnection(this.#nc, (event) => {
      // Local channels never touch NATS: only a gate with a remote channel (or not connected yet) cares.
      if (
        this.#state !== 'connecting' &&
        this.#channels.every((ch) => ch.local !== undefined || ch.thread !== undefined)
      )
        return;
      this.#fail(
        new SluiceError(
          ErrorCode.ConnectionFailed,
          `NATS connection ${event} (edge ${this.edgeId} subtask ${this.sourceSubtask}): frames or credits may have been lost`,
        ),
      );
    });
    this.#creditSub = this.#nc.subscribe(this.#creditSubject, {
      callback: (err, msg) => this.#onCredit(err, msg),
    });
    const deadline = Date.now() + this.#connectTimeoutMs;
    await Promise.all(this.#channels.map((ch) => this.#connect(ch, deadline)));
    if (this.#state !== 'connecting') this.#throwNotOpen();
    this.#state = 'open';
    this.#log?.debug({ edge: this.edgeId, subtask: this.sourceSubtask }, 'output gate connected');
  }

  async #connect(ch: OutChannel, deadline: number): Promise<void> {
    const request = encodeConnect(this.sourceSubtask);
    let backoff = 20;
    let last: SluiceError | undefined;
    for (;;) {
      if (this.#state !== 'connecting') this.#throwNotOpen();
      if (this.#local && this.#connectLocal(ch)) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        const why =
          last?.code === ErrorCode.NoResponders
            ? `nobody subscribes ${ch.subject}`
            : `last error: ${last?.message ?? 'none'}`;
        throw new SluiceError(
          ErrorCode.Timeout,
          `could not connect ${ch.name}: the receiving subtask did not answer within ${this.#connectTimeoutMs} ms (${why})`,
          { cause: last },
        );
      }
      const timeout = Math.max(1, Math.min(left, 2_000));
      let reply: Msg | undefined;
      try {
        reply = await Promise.race([this.#nc.request(ch.subject, request, { timeout }), this.#released]);
        if (reply === undefined) this.#throwNotOpen();
      } catch (err) {
        if (this.#state !== 'connecting') this.#throwNotOpen();
        last = mapRequestError(err, ch.subject, timeout);
        if (this.#nc.isClosed()) {
          throw new SluiceError(
            ErrorCode.ConnectionFailed,
            `could not connect ${ch.name}: NATS connection closed`,
            {
              cause: err,
            },
          );
        }
        if (last.code !== ErrorCode.NoResponders && last.code !== ErrorCode.Timeout) throw last;
        await Promise.race([sleep(Math.min(backoff, Math.max(0, deadline - Date.now()))), this.#released]);
        backoff = Math.min(backoff * 2, 500);
        continue;
      }
      // The receiver answered over NATS; if it is in this thread it registered before subscribing.
      if (this.#local && this.#connectLocal(ch)) return;
      let granted: ConnectReply;
      try {
        granted = checkConnectReply(decodeReply(reply.data, MAX_CONTROL_BYTES));
      } catch (err) {
        const e = toSluiceError(err);
        throw new SluiceError(e.code, `could not connect ${ch.name}: ${e.message}`, { cause: err });
      }
      // In another slot thread of this TaskManager: connect through the port between the two threads.
      if (this.#hub?.reaches(granted.thread)) {
        await this.#connectThread(ch, this.#hub, granted.thread);
        return;
      }
      ch.window = granted.window;
      if (granted.grant > ch.grant) ch.grant = granted.grant;
      return;
    }
  }

  /** Connects `ch` to a receiver in this thread, if there is one. */
  #connectLocal(ch: OutChannel): boolean {
    const receiver = findLocalReceiver(ch.subject);
    if (receiver === undefined) return false;
    const sender: LocalSender = {
      onGrant: (grant) => this.#onLocalGrant(ch, grant),
      onReceiverClosed: (error) => {
        if (this.#state === 'closed' || this.#state === 'failed' || this.#state === 'finished') return;
        this.#fail(error);
      },
    };
    let granted: { grant: number; window: number; endpoint: LocalEndpoint };
    try {
      granted = receiver.connectLocal(this.sourceSubtask, sender);
    } catch (err) {
      const e = toSluiceError(err);
      throw new SluiceError(e.code, `could not connect ${ch.name}: ${e.message}`, { cause: err });
    }
    ch.local = granted.endpoint;
    ch.window = granted.window;
    if (granted.grant > ch.grant) ch.grant = granted.grant;
    return true;
  }

  async #connectThread(ch: OutChannel, hub: ThreadChannelHub, location: ThreadLocation): Promise<void> {
    const sender: LocalSender = {
      onGrant: (grant) => this.#onLocalGrant(ch, grant),
      onReceiverClosed: (error) => {
        if (this.#state === 'closed' || this.#state === 'failed' || this.#state === 'finished') return;
        this.#fail(
          new SluiceError(error.code, `${ch.name}: ${error.message}`, {
            cause: error,
          }),
        );
      },
    };
    const connecting = hub.connect(location, ch.subject, this.sourceSubtask, sender);
    // A gate released while connecting lets go of a link that comes later.
    connecting.then(
      (c) => {
        if (ch.thread !== c.link && this.#state !== 'connecting') c.link.close();
      },
      () => undefined,
    );
    let connected: { grant: number; window: number; link: ThreadSenderLink };
    try {
      connected = await Promise.race([connecting, this.#released.then(() => this.#throwNotOpen())]);
    } catch (err) {
      const e = toSluiceError(err);
      throw new SluiceError(e.code, `could not connect ${ch.name}: ${e.message}`, { cause: err });
    }
    if (this.#state !== 'connecting') {
      connected.link.close();
      this.#throwNotOpen();
    }
    ch.thread = connected.link;
    ch.window = connected.window;
    if (connected.grant > ch.grant) ch.grant = connected.grant;
  }

  #onLocalGrant(ch: OutChannel, grant: number): void {
    if (this.#state === 'closed' || this.#state === 'failed' || this.#state === 'finished') return;
    if (grant <= ch.grant) return;
    ch.grant = grant;
    if (ch.queue.length > 0) {
      try {
        this.#drain(ch);
      } catch (e) {
        this.#fail(toSluiceError(e));
        return;
      }
    }
    if (this.#consumedWaiters.length > 0 && this.#allConsumed()) {
      const waiters = this.#consumedWaiters;
      this.#consumedWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  #channel(targetSubtask: number): OutChannel {
    const ch = this.#channels[targetSubtask];
    if (ch === undefined) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `target subtask ${targetSubtask} is out of range 0..${this.targetParallelism - 1} (edge ${this.edgeId})`,
      );
    }
    return ch;
  }

  /** Estimated encoded size of a record (measures the first value, which also checks it at once). */
  #recordSize(value: unknown, timestamp: number | undefined): number {
    if (this.#valueBytes < 0) {
      const bytes = encodeValue(value).byteLength;
      if (bytes + recordOverhead(timestamp) + FRAME_HEADER_BYTES > this.#maxPayload) {
        this.#checkOversized(bytes + recordOverhead(timestamp));
      }
      this.#valueBytes = bytes;
    }
    return this.#valueBytes + recordOverhead(timestamp);
  }

  /**
   * Measures every 64th record of a frame: records much larger than estimated (a first record smaller than
   * the rest, a change of shape) raise the estimate before the frame grows far past its size.
   */
  #sample(batch: FrameBatch, value: unknown, timestamp: number | undefined): number {
    const bytes = encodeValue(value).byteLength;
    if (bytes > 2 * this.#valueBytes) {
      this.#valueBytes = bytes;
      const estimate = FRAME_HEADER_BYTES + batch.fixedBytes + batch.records * bytes;
      if (estimate > batch.estimate) batch.estimate = estimate;
    }
    return this.#recordSize(value, timestamp);
  }

  #appendControl(ch: OutChannel, element: StreamElement): void {
    if (ch.ended) this.#throwEnded(ch);
    const batch = ch.batch;
    switch (element.kind) {
      case ElementKind.Watermark:
        checkWatermark(element.watermark);
        if (!batch.isEmpty && batch.estimate + WATERMARK_BYTES > this.#maxFrameBytes) this.#seal(ch);
        batch.addWatermark(element.watermark);
        batch.estimate += WATERMARK_BYTES;
        return;
      case ElementKind.EndOfPartition:
        batch.addEnd();
        batch.estimate += END_BYTES;
        ch.ended = true;
        this.#seal(ch);
        return;
      case ElementKind.Barrier:
        checkBarrier(element.checkpointId, element.target);
        batch.addBarrier(element.checkpointId, element.target);
        batch.estimate += BARRIER_BYTES + element.target.length;
        // A barrier ends its frame: the receiver blocks the channel right after it (alignment).
        this.#seal(ch);
        return;
      default:
        throw new SluiceError(
          ErrorCode.InvalidMessage,
          `unknown stream element kind ${String((element as { kind?: unknown }).kind)}`,
        );
    }
  }

  #checkOversized(size: number): void {
    const maxPayload = this.#maxPayload;
    if (size + FRAME_HEADER_BYTES > maxPayload) {
      throw new SluiceError(
        ErrorCode.MessageTooLarge,
        `record of ${size} bytes is over the NATS server's max_payload of ${maxPayload} bytes (edge ${this.edgeId})`,
      );
    }
  }

  /**
   * Seals (encodes) the channel's frame and publishes it, or queues it when the channel is out of credit.
   * A frame that cannot be encoded fails the gate (and throws).
   */
  #seal(ch: OutChannel): void {
    const batch = ch.batch;
    if (batch.isEmpty) return;
    if (ch.local !== undefined) {
      this.#sealLocal(ch);
      return;
    }
    const records = batch.records;
    const fixedBytes = batch.fixedBytes;
    let frames: Uint8Array[];
    try {
      frames = batch.build(this.sourceSubtask, ch.nextSeq, this.#maxPayload);
    } catch (err) {
      const error = toSluiceError(err);
      const failure =
        error.code === ErrorCode.MessageTooLarge
          ? new SluiceError(error.code, `${error.message} (edge ${this.edgeId})`, { cause: err })
          : error;
      this.#fail(failure);
      throw failure;
    }
    if (records > 0) {
      let total = 0;
      for (const f of frames) total += f.byteLength;
      const perRecord = (total - FRAME_HEADER_BYTES * frames.length - fixedBytes) / records;
      if (perRecord > 0) this.#valueBytes = perRecord;
    }
    for (const frame of frames) {
      const seq = ch.nextSeq++;
      if (ch.queue.length === 0 && seq <= ch.grant) {
        this.#publish(ch, frame);
        continue;
      }
      if (ch.queue.length === 0 && this.#blocked++ === 0) this.#blockedSince = performance.now();
      // A copy of its own: the encoder's buffer holds several frames, not worth keeping alive while waiting.
      ch.queue.push(Uint8Array.prototype.slice.call(frame));
      this.#queuedBytes += frame.byteLength;
      if (this.#queuedBytes > this.stats.peakQueuedBytes) this.stats.peakQueuedBytes = this.#queuedBytes;
    }
  }

  /** {@link seal} for a local channel: no encoding, the frame is handed over (or queued) as it is. */
  #sealLocal(ch: OutChannel): void {
    const bytes = ch.batch.estimate;
    const seq = ch.nextSeq++;
    const frame = ch.batch.take(this.sourceSubtask, seq);
    if (ch.queue.length === 0 && seq <= ch.grant) {
      this.#handOver(ch, frame);
      return;
    }
    if (ch.queue.length === 0 && this.#blocked++ === 0) this.#blockedSince = performance.now();
    ch.queue.push(frame);
    ch.localQueueBytes.push(bytes);
    this.#queuedBytes += bytes;
    if (this.#queuedBytes > this.stats.peakQueuedBytes) this.stats.peakQueuedBytes = this.#queuedBytes;
  }

  #handOver(ch: OutChannel, frame: DecodedFrame): void {
    ch.sentSeq++;
    this.stats.framesOut++;
    this.stats.localFramesOut++;
    ch.local!.deliver(frame);
  }

  #publish(ch: OutChannel, frame: Uint8Array): void {
    const bytes = frame.byteLength;
    try {
      if (ch.thread !== undefined) {
        ch.thread.send(frame);
        this.stats.threadFramesOut++;
      } else this.#nc.publish(ch.subject, frame);
    } catch (err) {
      const error = new SluiceError(
        ErrorCode.ConnectionFailed,
        `could not publish on ${ch.name}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
      this.#fail(error);
      throw error;
    }
    ch.sentSeq++;
    this.stats.framesOut++;
    this.stats.bytesOut += bytes;
  }

  #armTimer(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.flush();
      } catch (err) {
        this.#fail(toSluiceError(err));
      }
    }, this.#bufferTimeoutMs);
  }

  #onCredit(err: Error | null, msg: Msg): void {
    if (err) {
      this.#fail(
        new SluiceError(ErrorCode.ConnectionFailed, `credit subscription failed: ${err.message}`, {
          cause: err,
        }),
      );
      return;
    }
    if (this.#state === 'closed' || this.#state === 'failed' || this.#state === 'finished') return;
    let target: number;
    let grant: number;
    try {
      ({ targetSubtask: target, grant } = decodeCredit(msg.data));
    } catch (e) {
      this.#drop(msg.subject, (e as Error).message);
      return;
    }
    const ch = this.#channels[target];
    if (ch === undefined) {
      this.#drop(msg.subject, `credit for unknown target subtask ${target}`);
      return;
    }
    // A grant beyond what the receiver could have given (it never gives more than what it consumed, at most
    // every frame sealed, plus its window) is not from our receiver.
    if (ch.window > 0 && grant > ch.nextSeq - 1 + ch.window) {
      this.#drop(msg.subject, `implausible credit ${grant} on ${ch.name}`);
      return;
    }
    if (grant <= ch.grant) return;
    ch.grant = grant;
    try {
      this.#drain(ch);
    } catch (e) {
      this.#fail(toSluiceError(e));
      return;
    }
    if (this.#consumedWaiters.length > 0 && this.#allConsumed()) {
      const waiters = this.#consumedWaiters;
      this.#consumedWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  #drain(ch: OutChannel): void {
    if (ch.queue.length === 0) return;
    let sent = 0;
    while (sent < ch.queue.length && ch.sentSeq < ch.grant) {
      const frame = ch.queue[sent++]!;
      if (frame instanceof Uint8Array) {
        this.#queuedBytes -= frame.byteLength;
        this.#publish(ch, frame);
      } else {
        this.#queuedBytes -= ch.localQueueBytes.shift() ?? 0;
        this.#handOver(ch, frame);
      }
    }
    ch.queue.splice(0, sent);
    if (ch.queue.length === 0 && --this.#blocked === 0) {
      this.stats.backpressuredMs += performance.now() - this.#blockedSince;
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  #allConsumed(): boolean {
    for (const ch of this.#channels) if (ch.grant < ch.sentSeq + ch.window) return false;
    return true;
  }

  async #finish(options: FinishOptions): Promise<void> {
    if (this.#state !== 'open') this.#throwNotOpen();
    this.broadcast({ kind: ElementKind.EndOfPartition });
    this.#state = 'finishing';
    this.flush();
    await this.ready();
    await this.#nc.flush();
    if (options.waitForConsumption && !this.#allConsumed()) {
      await new Promise<void>((resolve, reject) => this.#consumedWaiters.push({ resolve, reject }));
    }
    if (this.#state !== 'finishing') this.#throwNotOpen();
    this.#state = 'finished';
    this.#release(closedError());
  }

  #drop(subject: string, reason: string): void {
    this.stats.dropped++;
    logDrop(this.#log, this.stats.dropped, { subject, reason }, 'dropped a malformed credit message');
  }

  #fail(error: SluiceError): void {
    if (this.#state === 'closed' || this.#state === 'failed' || this.#state === 'finished') return;
    this.#state = 'failed';
    this.#failure = error;
    this.#log?.error({ err: error, edge: this.edgeId, subtask: this.sourceSubtask }, 'output gate failed');
    this.#release(error);
  }

  #release(error: SluiceError): void {
    this.#resolveReleased(undefined);
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#blocked > 0) this.stats.backpressuredMs += performance.now() - this.#blockedSince;
    this.#blocked = 0;
    for (const ch of this.#channels) {
      ch.queue.length = 0;
      ch.localQueueBytes.length = 0;
      ch.thread?.close();
    }
    this.#queuedBytes = 0;
    this.#creditSub?.unsubscribe();
    this.#creditSub = undefined;
    const waiters = [...this.#readyWaiters, ...this.#consumedWaiters];
    this.#readyWaiters = [];
    this.#consumedWaiters = [];
    for (const w of waiters) w.reject(error);
  }

  #throwNotOpen(): never {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state === 'connecting') {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `output gate of edge ${this.edgeId} is not connected yet`,
      );
    }
    if (this.#state === 'finishing' || this.#state === 'finished') {
      throw new SluiceError(ErrorCode.IllegalState, `output gate of edge ${this.edgeId} is finished`);
    }
    throw closedError();
  }

  #throwEnded(ch: OutChannel): never {
    throw new SluiceError(ErrorCode.IllegalState, `${ch.name} has already ended (EndOfPartition was sent)`);
  }
}

function closedError(): SluiceError {
  return new SluiceError(ErrorCode.IllegalState, 'output gate closed');
}

function badTimestamp(ts: unknown): never {
  throw new SluiceError(
    ErrorCode.InvalidMessage,
    `record timestamp must be a number or undefined, got ${describeType(ts)}`,
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
