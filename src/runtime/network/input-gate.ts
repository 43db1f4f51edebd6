/**
 * The receiving side of one consumer subtask: a channel from every source subtask of every incoming edge.
 *
 * - `open` subscribes the data subject of each incoming edge at once, so senders can connect; a connect
 *   request is answered with the channel's cumulative grant and the window.
 * - Frames are decoded on arrival, checked (known source, next sequence number, within the credit given,
 *   nothing after the end of partition) and queued per channel. A gap means lost data: the gate fails.
 *   Duplicates are dropped; malformed messages are counted and dropped.
 * - `next` hands out one frame at a time, round-robin over the channels that have one. The frame handed out
 *   by one `next` is consumed when `next` is called again: only then is its credit returned (cumulative
 *   grant = consumed + window), batched until half a window is free, at once for a channel's last frame.
 * - Every `creditResendMs` the gate sends grants not sent yet, and re-sends the current grant on channels
 *   whose sender used all the credit it had and has sent nothing since (it may have missed a grant).
 * - Local channels (see local-channels.ts): `open` also registers each incoming edge in this thread's
 *   channel registry; a sender in the same thread connects there and hands frames over undecoded. They go
 *   through the same checks (sequence, credit, end) and the same queue; credit goes back by a call, at
 *   every consumed frame. Closing the gate tells local senders whose end was not consumed yet.
 * - Thread channels (see thread-channels.ts): in a slot worker thread `open` also registers each incoming
 *   edge with the thread's hub and puts the thread's location in its connect replies; a sender in another
 *   slot thread of the TaskManager then connects through the hub, and its encoded frames come over a
 *   MessagePort. Checked, queued and credited as a local channel's; the gate fails when the sending
 *   thread dies before the channel's end.
 *
 * Size: one side of the credit protocol; its channels, credits and local/remote hand-over share state
 * and are read together.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { encodeError } from '../../actors/envelope.js';
import type { Subjects } from '../../actors/subjects.js';
import { ErrorCode, SluiceError, toSluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { channelName, checkIndex, checkPositive, checkToken, logDrop, watchConnection } from './channel.js';
import { decodeConnect, encodeConnectReply, encodeCredit } from './control.js';
import type { StreamElement } from './elements.js';
import { type DecodedFrame, decodeFrame, FRAME_ITEMS_START } from './frame.js';
import {
  type LocalEndpoint,
  type LocalReceiver,
  type LocalSender,
  localChannelsEnabled,
  registerLocalReceiver,
  unregisterLocalReceiver,
} from './local-channels.js';
import {
  defaultThreadChannelHub,
  type ThreadChannelHub,
  type ThreadEndpoint,
  type ThreadReceiver,
} from './thread-channels.js';

export { FRAME_ITEMS_START };

export const DEFAULT_CREDITS_PER_CHANNEL = 4;
export const DEFAULT_CREDIT_RESEND_MS = 500;

export interface InputGateInput {
  edgeId: string;
  sourceParallelism: number;
  /** The logical input of the consuming operator this edge feeds (several edges may share one: a union). */
  inputIndex: number;
}

export interface InputGateOptions {
  nc: NatsConnection;
  subjects: Subjects;
  jobId: string;
  attempt: number;
  targetSubtask: number;
  inputs: InputGateInput[];
  /** The window: frames a sender may have in flight on one channel. Default 4. */
  creditsPerChannel?: number;
  /** Period of the grant re-send check, ms. Default 500. */
  creditResendMs?: number;
  /** Accept local senders (register in this thread's channel registry). Default: on unless
   * `SLUICE_LOCAL_CHANNELS=off`. */
  localChannels?: boolean;
  /**
   * Accept senders of other slot threads of this TaskManager through this hub. Default: the thread's
   * installed hub (a slot worker's), see `defaultThreadChannelHub`; null: none.
   */
  threadChannels?: ThreadChannelHub | null;
  log?: Logger;
}

export interface InputFrame {
  inputIndex: number;
  /** Index of the channel over the whole gate (inputs in the order given, then source subtask). */
  channel: number;
  /** Index of the channel among the channels of the same `inputIndex`. */
  inputChannel: number;
  edgeId: string;
  sourceSubtask: number;
  /**
   * The frame's elements laid out flat from {@link FRAME_ITEMS_START} on (record: 0, timestamp | null,
   * value; watermark: 1, watermark; end: 2), checked: the task walks this, no object per element.
   */
  items: unknown[];
  /** The elements as objects (built on first access). */
  readonly elements: StreamElement[];
}

export interface InputGateStats {
  recordsIn: number;
  framesIn: number;
  bytesIn: number;
  /** Malformed or foreign messages, duplicates and bad connect requests dropped. */
  dropped: number;
  /** Most frames ever received and not yet handed out (at most the window times the channels). */
  peakBufferedFrames: number;
  /** Frames handed over in memory by senders in the same thread (counted in framesIn too). */
  localFramesIn: number;
  /** Frames that came over thread channels from other slot threads (counted in framesIn and bytesIn). */
  threadFramesIn: number;
}

interface InChannel {
  readonly index: number;
  readonly inputIndex: number;
  readonly inputChannel: number;
  readonly edgeId: string;
  readonly source: number;
  readonly name: string;
  readonly creditSubject: string;
  connected: boolean;
  /** Highest sequence number received (frames are numbered from 1). */
  received: number;
  /** Frames consumed (handed out and then released by the next `next`). */
  consumed: number;
  /** Highest grant sent (connect reply or credit message). */
  grantSent: number;
  /** Grants sent above `received`, ascending: a frame numbered as one of them used up that grant. */
  readonly grantsAhead: number[];
  /** The last frame used up every credit the sender may have known of. */
  exhausted: boolean;
  arrivedSinceTick: boolean;
  readonly frames: DecodedFrame[];
  inRing: boolean;
  /** Held back by checkpoint alignment: its frames stay queued (and its sender runs out of credit). */
  blocked: boolean;
  endReceived: boolean;
  endDelivered: boolean;
  finalGrantSent: boolean;
  /** The sender, when it is in this thread (a local channel) or another slot thread (a thread channel). */
  local: LocalSender | undefined;
}

interface InputSlot {
  readonly edgeId: string;
  readonly sourceParallelism: number;
  readonly firstChannel: number;
  readonly subject: string;
  sub: Subscription | undefined;
  /** Registered in the local channel registry under `subject`. */
  local: LocalReceiver | undefined;
  /** Registered with the thread channel hub under `subject`. */
  thread: ThreadReceiver | undefined;
}

type State = 'open' | 'closed' | 'failed';

export class InputGate {
  readonly stats: InputGateStats = {
    recordsIn: 0,
    framesIn: 0,
    bytesIn: 0,
    dropped: 0,
    peakBufferedFrames: 0,
    localFramesIn: 0,
    threadFramesIn: 0,
  };
  readonly jobId: string;
  readonly attempt: number;
  readonly targetSubtask: number;

  readonly #nc: NatsConnection;
  readonly #log: Logger | undefined;
  readonly #window: number;
  readonly #grantBatch: number;
  readonly #channels: InChannel[] = [];
  readonly #slots: InputSlot[] = [];
  readonly #inputChannelCounts = new Map<number, number>();
  /** Round-robin ring of channels with frames queued; each channel at most once. */
  readonly #ring: Int32Array;
  #ringHead = 0;
  #ringSize = 0;
  #state: State = 'open';
  #failure: SluiceError | undefined;
  #timer: NodeJS.Timeout | undefined;
  #waiter: { resolve: (f: InputFrame | null) => void; reject: (err: Error) => void } | undefined;
  /** The channel of the frame handed out last: its credit is returned by the next `next`. */
  #last: InChannel | undefined;
  #endedChannels = 0;
  #bufferedFrames = 0;
  #unwatch: (() => void) | undefined;
  #hub: ThreadChannelHub | undefined;

  private constructor(options: InputGateOptions) {
    checkToken('job id', options.jobId);
    checkIndex('attempt', options.attempt);
    checkIndex('target subtask', options.targetSubtask);
    checkPositive('creditsPerChannel', options.creditsPerChannel);
    checkPositive('creditResendMs', options.creditResendMs);
    if (!Array.isArray(options.inputs) || options.inputs.length === 0) {
      throw new SluiceError(ErrorCode.InvalidJob, 'an input gate needs at least one input edge');
    }
    this.#nc = options.nc;
    this.#log = options.log;
    this.jobId = options.jobId;
    this.attempt = options.attempt;
    this.targetSubtask = options.targetSubtask;
    this.#window = Math.max(1, Math.floor(options.creditsPerChannel ?? DEFAULT_CREDITS_PER_CHANNEL));
    this.#grantBatch = Math.max(1, Math.floor(this.#window / 2));
    const seen = new Set<string>();
    for (const input of options.inputs) {
      checkToken('edge id', input.edgeId);
      checkIndex('source parallelism', input.sourceParallelism, 1);
      checkIndex('input index', input.inputIndex);
      if (seen.has(input.edgeId)) {
        throw new SluiceError(ErrorCode.InvalidJob, `edge ${input.edgeId} is given twice as an input`);
      }
      seen.add(input.edgeId);
      this.#slots.push({
        edgeId: input.edgeId,
        sourceParallelism: input.sourceParallelism,
        firstChannel: this.#channels.length,
        subject: options.subjects.dataSubject(
          options.jobId,
          options.attempt,
          input.edgeId,
          options.targetSubtask,
        ),
        sub: undefined,
        local: undefined,
        thread: undefined,
      });
      for (let source = 0; source < input.sourceParallelism; source++) {
        const inputChannel = this.#inputChannelCounts.get(input.inputIndex) ?? 0;
        this.#inputChannelCounts.set(input.inputIndex, inputChannel + 1);
        this.#channels.push({
          index: this.#channels.length,
          inputIndex: input.inputIndex,
          inputChannel,
          edgeId: input.edgeId,
          source,
          name: channelName(options.jobId, options.attempt, input.edgeId, source, options.targetSubtask),
          creditSubject: options.subjects.creditSubject(options.jobId, options.attempt, input.edgeId, source),
          connected: false,
          received: 0,
          consumed: 0,
          grantSent: 0,
          grantsAhead: [],
          exhausted: false,
          arrivedSinceTick: false,
          frames: [],
          inRing: false,
          blocked: false,
          endReceived: false,
          endDelivered: false,
          finalGrantSent: false,
          local: undefined,
        });
      }
    }
    this.#ring = new Int32Array(this.#channels.length);
    const resendMs = options.creditResendMs ?? DEFAULT_CREDIT_RESEND_MS;
    this.#timer = setInterval(() => this.#tick(), resendMs);
    this.#timer.unref();
  }

  /** Subscribes the data subject of every input edge at once (senders can connect from now on). */
  static open(options: InputGateOptions): InputGate {
    const gate = new InputGate(options);
    try {
      gate.#unwatch = watchConnection(gate.#nc, (event) => {
        // Frames of local channels never touch NATS: only a gate with a remote (or unknown) sender cares.
        if (gate.#channels.every((ch) => ch.local !== undefined)) return;
        gate.#fail(
          new SluiceError(
            ErrorCode.ConnectionFailed,
            `NATS connection ${event} (input gate of subtask ${gate.targetSubtask}): frames may have been lost`,
          ),
        );
      });
      const local = options.localChannels ?? localChannelsEnabled();
      const hub =
        options.threadChannels === undefined
          ? defaultThreadChannelHub()
          : (options.threadChannels ?? undefined);
      gate.#hub = hub;
      for (const slot of gate.#slots) {
        if (hub !== undefined) {
          const receiver: ThreadReceiver = {
            connectThread: (source, sender) => gate.#connectThread(slot, source, sender),
          };
          hub.registerReceiver(slot.subject, receiver);
          slot.thread = receiver;
        }
        if (local) {
          const receiver: LocalReceiver = {
            connectLocal: (source, sender) => gate.#connectLocal(slot, source, sender),
          };
          registerLocalReceiver(slot.subject, receiver);
          slot.local = receiver;
        }
        slot.sub = gate.#nc.subscribe(slot.subject, {
          callback: (err, msg) => gate.#onMessage(slot, err, msg),
        });
      }
    } catch (err) {
      gate.close();
      throw err;
    }
    return gate;
  }

  /** Channels over all inputs. */
  get channelCount(): number {
    return this.#channels.length;
  }

  /** Channels whose sender connected locally (in this thread) or over a thread channel. */
  get localChannelCount(): number {
    let n = 0;
    for (const ch of this.#channels) if (ch.local !== undefined) n++;
    return n;
  }

  /** Channels of one logical input (for a per-input WatermarkTracker). */
  inputChannelCount(inputIndex: number): number {
    return this.#inputChannelCounts.get(inputIndex) ?? 0;
  }

  /**
   * The next frame (in order per channel, channels taken round-robin), or null once every channel has
   * ended and its frames were handed out. Calling it again releases the previous frame's credit.
   * @throws SluiceError for a protocol failure (lost frames, a sender over its credit, …) or IllegalState
   * when closed or when a `next` is already pending
   */
  next(): Promise<InputFrame | null> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#state === 'closed') return Promise.reject(closedError());
    if (this.#waiter !== undefined) {
      return Promise.reject(
        new SluiceError(ErrorCode.IllegalState, 'next() is already pending on this input gate'),
      );
    }
    const last = this.#last;
    if (last !== undefined) {
      this.#last = undefined;
      this.#consumed(last);
    }
    const frame = this.#take();
    if (frame !== undefined) return Promise.resolve(frame);
    if (this.#endedChannels === this.#channels.length) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /**
   * Holds back a channel (checkpoint alignment): `next` hands out none of its frames until
   * {@link unblockAll}. Its queued frames keep their credit, so its sender stops after the window.
   */
  block(channel: number): void {
    const ch = this.#channels[channel];
    if (ch === undefined || ch.blocked) return;
    ch.blocked = true;
    if (!ch.inRing) return;
    ch.inRing = false;
    const kept: number[] = [];
    for (let k = 0; k < this.#ringSize; k++) {
      const index = this.#ring[(this.#ringHead + k) % this.#ring.length]!;
      if (index !== channel) kept.push(index);
    }
    this.#ringHead = 0;
    this.#ringSize = 0;
    for (const index of kept) this.#ringPushIndex(index);
  }

  /** Lets every blocked channel's frames through again. */
  unblockAll(): void {
    for (const ch of this.#channels) {
      if (!ch.blocked) continue;
      ch.blocked = false;
      if (ch.frames.length > 0 && !ch.inRing) this.#ringPush(ch);
    }
    const waiter = this.#waiter;
    if (waiter !== undefined && this.#ringSize > 0) {
      this.#waiter = undefined;
      waiter.resolve(this.#take()!);
    }
  }

  /** Unsubscribes and stops; a pending `next` rejects. Idempotent. */
  close(): void {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    this.#release(closedError());
  }

  // -------------------------------------------------------------------------------------------------------

  #onMessage(slot: InputSlot, err: Error | null, msg: Msg): void {
    if (err) {
      this.#fail(
        new SluiceError(
          ErrorCode.ConnectionFailed,
          `data subscription ${slot.subject} failed: ${err.message}`,
          {
            cause: err,
          },
        ),
      );
      return;
    }
    if (this.#state !== 'open') return;
    try {
      if (msg.reply) this.#onConnect(slot, msg);
      else this.#onFrame(slot, msg);
    } catch (e) {
      // A bug of ours, not the sender's: do not let it escape into the NATS client.
      this.#fail(toSluiceError(e));
    }
  }

  #onConnect(slot: InputSlot, msg: Msg): void {
    let source: number;
    try {
      source = decodeConnect(msg.data);
      if (source >= slot.sourceParallelism) {
        throw new SluiceError(
          ErrorCode.InvalidMessage,
          `source subtask ${source} is out of range 0..${slot.sourceParallelism - 1} for edge ${slot.edgeId}`,
        );
      }
    } catch (e) {
      const error = toSluiceError(e);
      this.#drop(msg.subject, `bad connect request: ${error.message}`);
      msg.respond(encodeError(error));
      return;
    }
    const ch = this.#channels[slot.firstChannel + source]!;
    ch.connected = true;
    const grant = ch.consumed + this.#window;
    this.#noteGrantSent(ch, grant);
    const hub = this.#hub;
    msg.respond(
      encodeConnectReply(
        hub === undefined
          ? { grant, window: this.#window }
          : { grant, window: this.#window, thread: hub.location },
      ),
    );
  }

  #onFrame(slot: InputSlot, msg: Msg): void {
    const data = msg.data;
    let frame: DecodedFrame;
    try {
      frame = decodeFrame(data);
    } catch (e) {
      this.#drop(msg.subject, (e as Error).message);
      return;
    }
    if (frame.sourceSubtask >= slot.sourceParallelism) {
      this.#drop(msg.subject, `frame from unknown source subtask ${frame.sourceSubtask}`);
      return;
    }
    const ch = this.#channels[slot.firstChannel + frame.sourceSubtask]!;
    if (ch.local !== undefined) {
      this.#drop(msg.subject, `frame over NATS on ${ch.name}, whose sender is local`);
      return;
    }
    this.#accept(ch, frame, data.byteLength, msg.subject);
  }

  #connectLocal(
    slot: InputSlot,
    source: number,
    sender: LocalSender,
  ): { grant: number; window: number; endpoint: LocalEndpoint } {
    const { ch, grant } = this.#attachSender(slot, source, sender);
    const endpoint: LocalEndpoint = {
      deliver: (frame) => {
        if (this.#state !== 'open' || ch.local !== sender) return;
        this.stats.localFramesIn++;
        this.#accept(ch, frame, 0, slot.subject);
      },
    };
    return { grant, window: this.#window, endpoint };
  }

  #connectThread(
    slot: InputSlot,
    source: number,
    sender: LocalSender,
  ): { grant: number; window: number; endpoint: ThreadEndpoint } {
    const { ch, grant } = this.#attachSender(slot, source, sender);
    const endpoint: ThreadEndpoint = {
      deliver: (frame, bytes) => {
        if (this.#state !== 'open' || ch.local !== sender) return;
        if (frame.sourceSubtask !== source) {
          this.#fail(
            new SluiceError(
              ErrorCode.InvalidMessage,
              `${ch.name}: a frame of source subtask ${frame.sourceSubtask} on its thread channel`,
            ),
          );
          return;
        }
        this.stats.threadFramesIn++;
        this.#accept(ch, frame, bytes, slot.subject);
      },
      senderGone: (error) => {
        if (this.#state !== 'open' || ch.local !== sender || ch.endReceived) return;
        this.#fail(
          new SluiceError(error.code, `${ch.name}: the sending thread is gone: ${error.message}`, {
            cause: error,
          }),
        );
      },
    };
    return { grant, window: this.#window, endpoint };
  }

  /** Makes `sender` (a call away: same thread, or a port to another) the sender of a channel. */
  #attachSender(slot: InputSlot, source: number, sender: LocalSender): { ch: InChannel; grant: number } {
    if (this.#state !== 'open') throw this.#failure ?? closedError();
    if (!Number.isSafeInteger(source) || source < 0 || source >= slot.sourceParallelism) {
      throw new SluiceError(
        ErrorCode.InvalidMessage,
        `source subtask ${source} is out of range 0..${slot.sourceParallelism - 1} for edge ${slot.edgeId}`,
      );
    }
    const ch = this.#channels[slot.firstChannel + source]!;
    if (ch.received > 0) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `${ch.name} already carries frames: cannot connect it locally`,
      );
    }
    ch.local = sender;
    ch.connected = true;
    const grant = ch.consumed + this.#window;
    this.#noteGrantSent(ch, grant);
    return { ch, grant };
  }

  /** Checks a frame (decoded, or handed over locally) against its channel and queues it. */
  #accept(ch: InChannel, frame: DecodedFrame, bytes: number, subject: string): void {
    const seq = frame.seq;
    if (seq <= ch.received) {
      this.#drop(subject, `duplicate frame ${seq} on ${ch.name}`);
      return;
    }
    if (ch.endReceived) {
      this.#fail(
        new SluiceError(ErrorCode.InvalidMessage, `${ch.name}: frame ${seq} after the end of partition`),
      );
      return;
    }
    if (seq !== ch.received + 1) {
      this.#fail(
        new SluiceError(
          ErrorCode.InvalidMessage,
          `${ch.name}: frames ${ch.received + 1}..${seq - 1} were lost (got frame ${seq} after ${ch.received}); records are missing`,
        ),
      );
      return;
    }
    if (seq > ch.consumed + this.#window) {
      this.#fail(
        new SluiceError(
          ErrorCode.InvalidMessage,
          `${ch.name}: frame ${seq} is beyond the credit granted (up to ${ch.consumed + this.#window})`,
        ),
      );
      return;
    }
    ch.connected = true;
    ch.received = seq;
    ch.arrivedSinceTick = true;
    const ahead = ch.grantsAhead;
    while (ahead.length > 0 && ahead[0]! < seq) ahead.shift();
    ch.exhausted = ahead.length > 0 && ahead[0] === seq;
    if (frame.end) ch.endReceived = true;
    this.stats.framesIn++;
    this.stats.recordsIn += frame.records;
    this.stats.bytesIn += bytes;
    ch.frames.push(frame);
    if (++this.#bufferedFrames > this.stats.peakBufferedFrames)
      this.stats.peakBufferedFrames = this.#bufferedFrames;
    if (!ch.inRing && !ch.blocked) this.#ringPush(ch);
    const waiter = this.#waiter;
    if (waiter !== undefined && this.#ringSize > 0) {
      this.#waiter = undefined;
      waiter.resolve(this.#take()!);
    }
  }

  #take(): InputFrame | undefined {
    if (this.#ringSize === 0) return undefined;
    const ch = this.#channels[this.#ring[this.#ringHead]!]!;
    this.#ringHead = (this.#ringHead + 1) % this.#ring.length;
    this.#ringSize--;
    const frame = ch.frames.shift()!;
    this.#bufferedFrames--;
    if (ch.frames.length > 0 && !ch.blocked) this.#ringPushIndex(ch.index);
    else ch.inRing = false;
    this.#last = ch;
    if (frame.end) {
      ch.endDelivered = true;
      this.#endedChannels++;
    }
    return {
      inputIndex: ch.inputIndex,
      channel: ch.index,
      inputChannel: ch.inputChannel,
      edgeId: ch.edgeId,
      sourceSubtask: ch.source,
      items: frame.items,
      get elements() {
        return frame.elements;
      },
    };
  }

  #ringPush(ch: InChannel): void {
    ch.inRing = true;
    this.#ringPushIndex(ch.index);
  }

  #ringPushIndex(index: number): void {
    this.#ring[(this.#ringHead + this.#ringSize) % this.#ring.length] = index;
    this.#ringSize++;
  }

  /** A frame of `ch` was processed: return its credit (batched). */
  #consumed(ch: InChannel): void {
    ch.consumed++;
    if (ch.finalGrantSent) return;
    if (ch.local !== undefined) {
      // A call costs nothing: grant at every frame, so the sender never waits for a batch.
      if (ch.endDelivered && ch.consumed === ch.received) ch.finalGrantSent = true;
      this.#sendGrant(ch);
    } else if (ch.endDelivered && ch.consumed === ch.received) {
      this.#sendGrant(ch);
      ch.finalGrantSent = true;
    } else if (ch.consumed + this.#window - ch.grantSent >= this.#grantBatch) {
      this.#sendGrant(ch);
    }
  }

  #sendGrant(ch: InChannel): void {
    const grant = ch.consumed + this.#window;
    this.#noteGrantSent(ch, grant);
    if (ch.local !== undefined) {
      ch.local.onGrant(grant);
      return;
    }
    try {
      this.#nc.publish(ch.creditSubject, encodeCredit(this.targetSubtask, grant));
    } catch (err) {
      this.#fail(
        new SluiceError(
          ErrorCode.ConnectionFailed,
          `could not send credit on ${ch.name}: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        ),
      );
    }
  }

  #noteGrantSent(ch: InChannel, grant: number): void {
    if (grant > ch.grantSent) ch.grantSent = grant;
    const ahead = ch.grantsAhead;
    if (grant > ch.received && (ahead.length === 0 || grant > ahead[ahead.length - 1]!)) ahead.push(grant);
  }

  #tick(): void {
    if (this.#state !== 'open') return;
    for (const ch of this.#channels) {
      if (!ch.connected || ch.finalGrantSent || ch.local !== undefined) continue;
      const grant = ch.consumed + this.#window;
      if (grant > ch.grantSent) {
        this.#sendGrant(ch);
      } else if (ch.exhausted && !ch.arrivedSinceTick && grant > ch.received) {
        // the sender used every credit it knew of, we have granted more since, and it sent nothing: the
        // grant may have been lost
        this.#sendGrant(ch);
      }
      ch.arrivedSinceTick = false;
    }
  }

  #drop(subject: string, reason: string): void {
    this.stats.dropped++;
    logDrop(this.#log, this.stats.dropped, { subject, reason }, 'dropped a message on a data subject');
  }

  #fail(error: SluiceError): void {
    if (this.#state !== 'open') return;
    this.#state = 'failed';
    this.#failure = error;
    this.#log?.error({ err: error, subtask: this.targetSubtask }, 'input gate failed');
    this.#release(error);
  }

  #release(error: SluiceError): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const slot of this.#slots) {
      slot.sub?.unsubscribe();
      slot.sub = undefined;
      if (slot.local !== undefined) unregisterLocalReceiver(slot.subject, slot.local);
      slot.local = undefined;
      if (slot.thread !== undefined) this.#hub?.unregisterReceiver(slot.subject, slot.thread);
      slot.thread = undefined;
    }
    for (const ch of this.#channels) {
      // A local sender must not wait for credit from a gate that is gone (a remote one would wait until
      // it is cancelled itself); one whose end was consumed has nothing left to send.
      const sender = ch.local;
      if (sender !== undefined && !(ch.endDelivered && ch.consumed === ch.received)) {
        const why = new SluiceError(
          error.code,
          `the receiving subtask of ${ch.name} stopped before the end of the channel: ${error.message}`,
          { cause: error },
        );
        try {
          sender.onReceiverClosed(why);
        } catch (err) {
          this.#log?.warn({ err, channel: ch.name }, 'a local sender failed on close');
        }
      }
    }
    for (const ch of this.#channels) ch.frames.length = 0;
    this.#ringSize = 0;
    this.#bufferedFrames = 0;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }
}

function closedError(): SluiceError {
  return new SluiceError(ErrorCode.IllegalState, 'input gate closed');
}
