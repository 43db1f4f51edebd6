/**
 * Thread channels: data channels between subtasks that run in different slot worker threads of the same
 * TaskManager process (`taskmanager.slot-isolation: thread`), over a MessagePort between the two threads
 * instead of NATS. Beside local channels (same thread: frames handed over undecoded) and NATS channels
 * (another process), the third kind of channel.
 *
 * - One {@link ThreadChannelHub} per worker thread. The TaskExecutor (main thread) gives every pair of
 *   its slot workers a MessageChannel (`addPeer`), again for a worker it starts anew; the hub knows its
 *   {@link ThreadLocation}: the TaskManager process (a random token per start) and its slot index.
 * - Which kind a channel is, is decided when it connects, from where its two subtasks were deployed: the
 *   receiver answers the sender's NATS connect request with its location; a sender in another slot
 *   thread of the same TaskManager (a peer of its hub) then connects over the port instead, and the
 *   channel's frames and credits never touch NATS. An older receiver or another process: NATS as before.
 * - The wire is the NATS one: frames encoded once (msgpackr, the same frame format), moved to the other
 *   thread by transferring their ArrayBuffer (no copy, no server, no socket), decoded and checked there
 *   by the input gate like any frame. The credit protocol is unchanged (same window, cumulative grants,
 *   granted per consumed frame as on a local channel); watermarks, barriers and the end of partition are
 *   in band in the frames, so alignment blocks a thread channel as any other.
 * - A MessagePort delivers every message, in order, while both threads live: no sequence gap, no lost
 *   credit. When the other thread dies (its port closes), every channel through it that has not ended
 *   fails at once on both sides: a sender waiting for credit, a receiver waiting for frames.
 * - A receiver that goes away (task cancelled, failed) tells its sender, which fails as over a local
 *   channel; a sender that goes away tells nobody (as over NATS: its task's failure fails the job).
 * - Refuses (ILLEGAL_STATE) a second receiver for the same subject in a hub; a connect for a subject with
 *   no receiver (closed in between) is refused with the reason, and the sender's connect fails.
 */
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, isErrorCode, SluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { ConnectGrant } from './control.js';
import { type DecodedFrame, decodeFrame } from './frame.js';
import { type LocalSender, localChannelsEnabled } from './local-channels.js';

/** Where a subtask's input gate runs: which TaskManager process (a token per start), which slot thread. */
export interface ThreadLocation {
  process: string;
  slot: number;
}

/** The receiving end of a thread channel, as its input gate gives it to the hub. */
export interface ThreadEndpoint {
  /** The next frame (decoded here), and its encoded size. */
  deliver(frame: DecodedFrame, bytes: number): void;
  /** The sending thread is gone (or sent something that is not a frame): fail unless the channel ended. */
  senderGone(error: SluiceError): void;
}

/** An input gate's slot (one incoming edge) registered for senders in other threads. */
export interface ThreadReceiver {
  /**
   * Connects source subtask `sourceSubtask` of another thread.
   * @throws SluiceError as {@link LocalReceiver.connectLocal}
   */
  connectThread(sourceSubtask: number, sender: LocalSender): ConnectGrant & { endpoint: ThreadEndpoint };
}

/** The sending end of a connected thread channel, as its output gate sees it. */
export interface ThreadSenderLink {
  /** Sends one encoded frame (a copy of it is moved to the other thread). */
  send(frame: Uint8Array): void;
  /** The gate is done with the channel (finished, closed, failed). */
  close(): void;
}

// Port messages. `id` numbers a channel on its sender's side of one port (ids of the two directions are
// separate: connect and frame go sender → receiver, the others receiver → sender).
const CONNECT = 0;
const ACCEPTED = 1;
const REFUSED = 2;
const FRAME = 3;
const CREDIT = 4;
const RECEIVER_CLOSED = 5;
const SENDER_CLOSED = 6;

type PortMessage =
  | { t: typeof CONNECT; id: number; subject: string; source: number }
  | { t: typeof ACCEPTED; id: number; grant: number; window: number }
  | { t: typeof REFUSED; id: number; code: string; message: string }
  | { t: typeof FRAME; id: number; data: Uint8Array }
  | { t: typeof CREDIT; id: number; grant: number }
  | { t: typeof RECEIVER_CLOSED; id: number; code: string; message: string }
  | { t: typeof SENDER_CLOSED; id: number };

interface Outgoing {
  sender: LocalSender;
  pending: { resolve: (grant: ConnectGrant) => void; reject: (err: SluiceError) => void } | undefined;
}

/** One port to one peer thread, with the channels that go through it in both directions. */
class PeerLink {
  readonly #port: MessagePort;
  readonly #peerSlot: number;
  readonly #hub: ThreadChannelHub;
  readonly #outgoing = new Map<number, Outgoing>();
  readonly #incoming = new Map<number, ThreadEndpoint>();
  #nextId = 0;
  closed = false;

  constructor(hub: ThreadChannelHub, peerSlot: number, port: MessagePort) {
    this.#hub = hub;
    this.#peerSlot = peerSlot;
    this.#port = port;
    port.on('message', (m: PortMessage) => this.#onMessage(m));
    port.on('close', () => this.close(`the worker thread of slot ${peerSlot} is gone`));
    // The hub must not keep a worker alive on its own (a worker ends by process.exit anyway).
    port.unref();
  }

  get channels(): number {
    return this.#outgoing.size + this.#incoming.size;
  }

  connect(subject: string, source: number, sender: LocalSender): Promise<ConnectGrant & { id: number }> {
    if (this.closed) return Promise.reject(this.#goneError());
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#outgoing.set(id, {
        sender,
        pending: { resolve: (g) => resolve({ ...g, id }), reject },
      });
      this.#post({ t: CONNECT, id, subject, source });
    });
  }

  send(id: number, frame: Uint8Array): void {
    if (this.closed) throw this.#goneError();
    // Copied into an ArrayBuffer of its own, which is then moved: the frame may be a view into the
    // encoder's working buffer (even one that fills it exactly), which must never be detached.
    const own = Uint8Array.prototype.slice.call(frame) as Uint8Array;
    this.#port.postMessage({ t: FRAME, id, data: own } satisfies PortMessage, [own.buffer as ArrayBuffer]);
  }

  closeOutgoing(id: number): void {
    if (!this.#outgoing.delete(id) || this.closed) return;
    this.#post({ t: SENDER_CLOSED, id });
  }

  /** The port is gone: every channel through it that has not ended fails. */
  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.#hub.linkClosed(this.#peerSlot, this);
    const error = new SluiceError(ErrorCode.ConnectionFailed, why);
    const outgoing = [...this.#outgoing.values()];
    const incoming = [...this.#incoming.values()];
    this.#outgoing.clear();
    this.#incoming.clear();
    for (const o of outgoing) {
      if (o.pending) o.pending.reject(error);
      else o.sender.onReceiverClosed(error);
    }
    for (const endpoint of incoming) endpoint.senderGone(error);
    this.#port.close();
  }

  #goneError(): SluiceError {
    return new SluiceError(ErrorCode.ConnectionFailed, `the worker thread of slot ${this.#peerSlot} is gone`);
  }

  #post(message: PortMessage): void {
    if (!this.closed) this.#port.postMessage(message);
  }

  #onMessage(m: PortMessage): void {
    try {
      switch (m.t) {
        case CONNECT:
          this.#onConnect(m.id, m.subject, m.source);
          return;
        case FRAME: {
          const endpoint = this.#incoming.get(m.id);
          if (endpoint === undefined) return; // its receiver closed: nobody waits for it
          let frame: DecodedFrame;
          try {
            frame = decodeFrame(m.data);
          } catch (err) {
            this.#incoming.delete(m.id);
            endpoint.senderGone(
              new SluiceError(
                ErrorCode.InvalidMessage,
                `a thread channel carried a bad frame: ${String(err)}`,
              ),
            );
            return;
          }
          endpoint.deliver(frame, m.data.byteLength);
          return;
        }
        case SENDER_CLOSED:
          this.#incoming.delete(m.id);
          return;
        case ACCEPTED: {
          const o = this.#outgoing.get(m.id);
          if (o?.pending === undefined) return;
          const pending = o.pending;
          o.pending = undefined;
          pending.resolve({ grant: m.grant, window: m.window });
          return;
        }
        case REFUSED: {
          const o = this.#outgoing.get(m.id);
          if (o?.pending === undefined) return;
          this.#outgoing.delete(m.id);
          o.pending.reject(new SluiceError(codeOf(m.code), m.message));
          return;
        }
        case CREDIT:
          this.#outgoing.get(m.id)?.sender.onGrant(m.grant);
          return;
        case RECEIVER_CLOSED: {
          const o = this.#outgoing.get(m.id);
          if (o === undefined) return;
          this.#outgoing.delete(m.id);
          const error = new SluiceError(codeOf(m.code), m.message);
          if (o.pending) o.pending.reject(error);
          else o.sender.onReceiverClosed(error);
          return;
        }
      }
    } catch (err) {
      // A bug of ours on this thread's side: never let it escape into the port (it would kill the thread).
      this.#hub.log?.error({ err, peer: this.#peerSlot }, 'thread channel message failed');
    }
  }

  #onConnect(id: number, subject: string, source: number): void {
    const receiver = this.#hub.receiver(subject);
    if (receiver === undefined) {
      this.#post({
        t: REFUSED,
        id,
        code: ErrorCode.IllegalState,
        message: `no input gate for ${subject} in slot ${this.#hub.location.slot} (closed?)`,
      });
      return;
    }
    const sender: LocalSender = {
      onGrant: (grant) => this.#post({ t: CREDIT, id, grant }),
      onReceiverClosed: (error) => {
        if (!this.#incoming.delete(id)) return;
        this.#post({ t: RECEIVER_CLOSED, id, code: error.code, message: error.message });
      },
    };
    let granted: ConnectGrant & { endpoint: ThreadEndpoint };
    try {
      granted = receiver.connectThread(source, sender);
    } catch (err) {
      const e = err instanceof SluiceError ? err : new SluiceError(ErrorCode.Internal, String(err));
      this.#post({ t: REFUSED, id, code: e.code, message: e.message });
      return;
    }
    this.#incoming.set(id, granted.endpoint);
    this.#post({ t: ACCEPTED, id, grant: granted.grant, window: granted.window });
  }
}

function codeOf(code: string): ErrorCode {
  return isErrorCode(code) ? code : ErrorCode.Internal;
}

/** This thread's end of the thread channels: its peers' ports and its input gates' registrations. */
export class ThreadChannelHub {
  readonly location: ThreadLocation;
  readonly log: Logger | undefined;
  readonly #peers = new Map<number, PeerLink>();
  readonly #receivers = new Map<string, ThreadReceiver>();

  constructor(location: ThreadLocation, log?: Logger) {
    this.location = location;
    this.log = log;
  }

  /** A port to the thread of slot `slot` (replaces, and fails the channels of, an earlier one). */
  addPeer(slot: number, port: MessagePort): void {
    this.#peers.get(slot)?.close(`the worker thread of slot ${slot} was replaced`);
    this.#peers.set(slot, new PeerLink(this, slot, port));
  }

  /** Whether a receiver at `location` is reachable over a thread channel from here. */
  reaches(location: ThreadLocation | undefined): location is ThreadLocation {
    return (
      location !== undefined &&
      location.process === this.location.process &&
      location.slot !== this.location.slot &&
      this.#peers.has(location.slot)
    );
  }

  /**
   * Connects a sender of this thread to the input gate registered under `subject` in the thread at
   * `location`. Resolves with the initial grant and the link to send frames through.
   * @throws SluiceError CONNECTION_FAILED when that thread is gone, or the receiver's refusal
   */
  async connect(
    location: ThreadLocation,
    subject: string,
    sourceSubtask: number,
    sender: LocalSender,
  ): Promise<ConnectGrant & { link: ThreadSenderLink }> {
    const peer = this.#peers.get(location.slot);
    if (peer === undefined || location.process !== this.location.process) {
      throw new SluiceError(ErrorCode.ConnectionFailed, `no thread channel to slot ${location.slot}`);
    }
    const { grant, window, id } = await peer.connect(subject, sourceSubtask, sender);
    return {
      grant,
      window,
      link: { send: (frame) => peer.send(id, frame), close: () => peer.closeOutgoing(id) },
    };
  }

  /** @throws SluiceError ILLEGAL_STATE when a receiver is already registered for `subject` */
  registerReceiver(subject: string, receiver: ThreadReceiver): void {
    if (this.#receivers.has(subject)) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `a receiver for ${subject} is already registered in this thread (the same subtask deployed twice?)`,
      );
    }
    this.#receivers.set(subject, receiver);
  }

  unregisterReceiver(subject: string, receiver: ThreadReceiver): void {
    if (this.#receivers.get(subject) === receiver) this.#receivers.delete(subject);
  }

  receiver(subject: string): ThreadReceiver | undefined {
    return this.#receivers.get(subject);
  }

  /** Channels open through this hub's ports, both directions (tests, diagnostics). */
  get channelCount(): number {
    let n = 0;
    for (const peer of this.#peers.values()) n += peer.channels;
    return n;
  }

  /** @internal a link's port closed */
  linkClosed(slot: number, link: PeerLink): void {
    if (this.#peers.get(slot) === link) this.#peers.delete(slot);
  }

  /** Closes every port: the channels through them fail, here and in the peers. */
  close(): void {
    for (const [slot, peer] of [...this.#peers]) peer.close(`slot ${slot}'s thread channels were closed`);
  }
}

let installed: ThreadChannelHub | undefined;

/** Makes `hub` the one this thread's gates use by default (a slot worker does so when it starts). */
export function installThreadChannelHub(hub: ThreadChannelHub | undefined): void {
  installed = hub;
}

/**
 * The hub this thread's gates use by default: the installed one (a slot worker's), unless
 * `SLUICE_LOCAL_CHANNELS=off` (every channel over NATS) or `SLUICE_THREAD_CHANNELS=off` (channels between
 * slot threads over NATS, local ones still in memory) is set: diagnostic switches the benches use.
 */
export function defaultThreadChannelHub(): ThreadChannelHub | undefined {
  if (installed === undefined || !localChannelsEnabled()) return undefined;
  const v = process.env.SLUICE_THREAD_CHANNELS?.trim().toLowerCase();
  return v === 'off' || v === 'false' || v === '0' ? undefined : installed;
}
