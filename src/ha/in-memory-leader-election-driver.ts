/**
 * An in-memory {@link LeaderElectionDriver} for fast, deterministic tests of the election logic: one key,
 * a global revision counter, and expiry `leaseMs` after the last write measured on an injectable clock
 * (use the same `ManualClock` as the services under test). One instance is the store: share it between
 * the contenders.
 *
 * Test hooks: {@link gate} runs before every operation (stall it, throw from it) and
 * {@link putRaw} writes arbitrary bytes (garbage, forged records) as another writer would. With
 * `liveness: true` it also answers liveness probes: an instance that served liveness is `alive` until
 * {@link markGone} says its process left NATS (then `gone`, as "no responders"); others are `unknown`.
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
import { type Clock, systemClock } from './clock.js';
import type { LeaderElectionDriver, LeaderEntry } from './leader-election-driver.js';

export type LeaderDriverOperation = 'create' | 'update' | 'takeOver' | 'delete' | 'read';

interface Stored {
  revision: number;
  value: Uint8Array;
  writtenAt: number;
}

export class InMemoryLeaderElectionDriver implements LeaderElectionDriver {
  readonly leaseMs: number;
  /**
   * Runs before each operation; whatever it throws is what the operation throws, and an operation waits
   * for it. Example: `driver.gate = (op) => { if (op === 'update') throw new SluiceError('TIMEOUT', …) }`.
   */
  gate: ((op: LeaderDriverOperation) => void | Promise<void>) | undefined;
  readonly #clock: Clock;
  #revision = 0;
  #stored: Stored | undefined;
  #closed = false;
  readonly #served = new Set<string>();
  readonly #gone = new Set<string>();
  readonly serveLiveness?: (instance: string) => void;
  readonly probe?: (instance: string) => Promise<'alive' | 'gone' | 'unknown'>;

  constructor(options: { leaseMs: number; clock?: Clock; liveness?: boolean }) {
    this.leaseMs = options.leaseMs;
    this.#clock = options.clock ?? systemClock;
    if (options.liveness === true) {
      this.serveLiveness = (instance) => this.#served.add(instance);
      this.probe = async (instance) =>
        this.#gone.has(instance) ? 'gone' : this.#served.has(instance) ? 'alive' : 'unknown';
    }
  }

  /** Test hook: the process of `instance` left NATS; probes for it find no responders from now on. */
  markGone(instance: string): void {
    this.#gone.add(instance);
  }

  /** The last revision handed out. */
  get revision(): number {
    return this.#revision;
  }

  /** The live entry, without going through the gate (for assertions). */
  peek(): LeaderEntry | null {
    const s = this.#live();
    return s === undefined ? null : { revision: s.revision, value: s.value };
  }

  /** Writes `value` unconditionally, as a foreign writer; returns its revision. */
  putRaw(value: Uint8Array): number {
    this.#stored = { revision: ++this.#revision, value, writtenAt: this.#clock.now() };
    return this.#revision;
  }

  async create(value: Uint8Array): Promise<number | null> {
    await this.#enter('create');
    if (this.#live() !== undefined) return null;
    return this.putRaw(value);
  }

  async update(value: Uint8Array, revision: number): Promise<number | null> {
    await this.#enter('update');
    if (this.#live()?.revision !== revision) return null;
    return this.putRaw(value);
  }

  /** The same compare-and-set as {@link update} (a map has no concurrent writers to serialize). */
  async takeOver(value: Uint8Array, revision: number): Promise<number | null> {
    await this.#enter('takeOver');
    if (this.#live()?.revision !== revision) return null;
    return this.putRaw(value);
  }

  async delete(revision: number): Promise<boolean> {
    await this.#enter('delete');
    if (this.#live()?.revision !== revision) return false;
    this.#revision++; // a delete is a write (a delete marker in KV)
    this.#stored = undefined;
    return true;
  }

  async read(): Promise<LeaderEntry | null> {
    await this.#enter('read');
    return this.peek();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async #enter(op: LeaderDriverOperation): Promise<void> {
    if (this.#closed) {
      throw new SluiceError(ErrorCode.ConnectionFailed, 'the in-memory driver is closed', {
        retryable: false,
      });
    }
    await this.gate?.(op);
  }

  #live(): Stored | undefined {
    const s = this.#stored;
    if (s !== undefined && this.#clock.now() >= s.writtenAt + this.leaseMs) this.#stored = undefined;
    return this.#stored;
  }
}
