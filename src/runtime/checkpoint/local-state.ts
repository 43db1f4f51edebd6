/**
 * Local recovery (Flink's `state.backend.local-recovery`): a TaskManager keeps in memory the encoded state
 * objects its subtasks stored for the latest checkpoint, so that a subtask deployed on it later (a rescale,
 * a restart after another subtask failed) restores those objects without reading them back from the
 * object store.
 *
 * It promises:
 * - a copy is found only for the very object a restore asks for: same name (which names the checkpoint,
 *   vertex and subtask), same size, same SHA-256 as the reference the JobMaster handed out; anything else
 *   (a copy of another checkpoint, none at all) is a miss, and the caller reads the object store;
 * - per job it keeps the copies of the highest checkpoint id it was given (one of a newer checkpoint drops
 *   the job's older ones; an older one is refused), so a TaskManager holds at most about one checkpoint's
 *   worth of its subtasks' state per job;
 * - it holds at most `maxBytes` in all: room for a new copy is made by dropping other jobs' copies, oldest
 *   first; a copy that still does not fit is not kept;
 * - the bytes it hands out are the bytes it was given (never copied: callers must not change them).
 * It refuses nothing: keeping is best effort, a miss only costs a read.
 */
import type { StateObjectRef } from './state-handles.js';

/** One subtask's encoded state object of one checkpoint, as stored. */
export interface LocalStateCopy {
  jobId: string;
  checkpointId: number;
  ref: StateObjectRef;
  bytes: Uint8Array;
}

/** What a task uses: keep its snapshot's bytes, find a restore's. */
export interface LocalRecovery {
  /**
   * Memory to encode a snapshot into: shared memory where copies are handed to other threads, so that
   * they are shared, not copied.
   */
  allocate(size: number): Uint8Array;
  /** The object was stored (its reference is final): keep a copy. */
  keep(copy: LocalStateCopy): void;
  /** The bytes of exactly this object, or undefined. */
  find(ref: StateObjectRef): Uint8Array | undefined;
}

export class LocalStateCache {
  readonly maxBytes: number;
  /** Object name → copy, oldest first. */
  readonly #copies = new Map<string, LocalStateCopy>();
  /** Job → the checkpoint id whose copies are kept. */
  readonly #latest = new Map<string, number>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes held. */
  get sizeBytes(): number {
    return this.#bytes;
  }

  /** Copies held. */
  get size(): number {
    return this.#copies.size;
  }

  /** Keeps a copy (see the module comment for what is dropped); whether it was kept. */
  add(copy: LocalStateCopy): boolean {
    const latest = this.#latest.get(copy.jobId);
    if (latest !== undefined && copy.checkpointId < latest) return false;
    if (latest !== undefined && copy.checkpointId > latest) {
      this.#dropWhere((c) => c.jobId === copy.jobId);
    }
    this.#latest.set(copy.jobId, copy.checkpointId);
    this.#remove(copy.ref.name);
    const size = copy.bytes.byteLength;
    if (size > this.maxBytes) return false;
    for (const [name, c] of this.#copies) {
      if (this.#bytes + size <= this.maxBytes) break;
      if (c.jobId !== copy.jobId) this.#remove(name);
    }
    if (this.#bytes + size > this.maxBytes) return false;
    this.#copies.set(copy.ref.name, copy);
    this.#bytes += size;
    return true;
  }

  find(ref: StateObjectRef): Uint8Array | undefined {
    const copy = this.#copies.get(ref.name);
    if (copy === undefined) return undefined;
    if (copy.ref.sizeBytes !== ref.sizeBytes || copy.ref.sha256 !== ref.sha256) return undefined;
    return copy.bytes;
  }

  /** Forgets a job's copies. */
  dropJob(jobId: string): void {
    this.#dropWhere((c) => c.jobId === jobId);
    this.#latest.delete(jobId);
  }

  #dropWhere(predicate: (copy: LocalStateCopy) => boolean): void {
    for (const [name, c] of this.#copies) if (predicate(c)) this.#remove(name);
  }

  #remove(name: string): void {
    const copy = this.#copies.get(name);
    if (copy === undefined) return;
    this.#copies.delete(name);
    this.#bytes -= copy.bytes.byteLength;
  }
}

/**
 * Local recovery within one thread (`taskmanager.slot-isolation: none`, tests): plain memory, one cache.
 * `share` (a slot worker's) also hands each kept copy to the other threads of the TaskManager.
 */
export function localRecovery(cache: LocalStateCache, share?: (copy: LocalStateCopy) => void): LocalRecovery {
  return {
    allocate: (size) => (share ? new Uint8Array(new SharedArrayBuffer(size)) : new Uint8Array(size)),
    keep: (copy) => {
      if (cache.add(copy)) share?.(copy);
    },
    find: (ref) => cache.find(ref),
  };
}
