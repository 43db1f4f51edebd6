/**
 * Drives a source's `run` directly, as a source task would, to test its checkpoint positions: the run is
 * interrupted right after a snapshot (as a failure after a checkpoint), then restarted from the stored
 * states (round-tripped through msgpack, as the runtime stores them).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { pack, unpack } from 'msgpackr';
import { silentLogger } from '../../src/common/log.js';
import type { Source, SourceContext } from '../../src/index.js';

export interface SubtaskRun<T> {
  /** Records collected up to the snapshot (all of them when the run ended first). */
  emitted: T[];
  /** What the registered snapshot function returned, after a msgpack round trip. */
  state: unknown;
  /** Whether the run ended by itself (its share was exhausted before the snapshot point). */
  ended: boolean;
  /** Every backlog the source reported (`setPendingRecords`), in order. */
  pending: number[];
}

export interface RunOptions {
  parallelism: number;
  subtask: number;
  restored?: unknown[];
  /**
   * Take the snapshot (then abort) once this many records were collected; never when undefined. Where:
   * `ready` inside `ready()` (the source awaits it after a collect while not writable); `loop` from a
   * timer, whenever the source lets the event loop run.
   */
  snapshotAfter?: number;
  where?: 'ready' | 'loop';
  /** Not writable after every n-th record (exercises `ready()`); default 7. */
  notWritableEvery?: number;
  nats?: NatsConnection;
}

export async function runSubtask<T>(source: Source<T>, o: RunOptions): Promise<SubtaskRun<T>> {
  const controller = new AbortController();
  const collected: T[] = [];
  let snapshotFn: (() => unknown) | undefined;
  const pending: number[] = [];
  let registrations = 0;
  let taken: { emitted: T[]; state: unknown } | undefined;
  const every = o.notWritableEvery ?? 7;
  const snapshotNow = () => {
    if (taken !== undefined || snapshotFn === undefined) return;
    taken = { emitted: [...collected], state: unpack(pack(snapshotFn())) };
    controller.abort(new Error('interrupted after the snapshot'));
  };
  const due = () => o.snapshotAfter !== undefined && collected.length >= o.snapshotAfter;
  const ctx: SourceContext<T> = {
    jobId: 'job',
    clusterId: 'test',
    subtaskIndex: o.subtask,
    parallelism: o.parallelism,
    log: silentLogger(),
    signal: controller.signal,
    nats: o.nats as NatsConnection,
    checkpointing: true,
    restoredState: o.restored === undefined ? undefined : (unpack(pack(o.restored)) as unknown[]),
    collect(value) {
      if (controller.signal.aborted) throw new Error('collect after the abort');
      collected.push(value);
    },
    get writable() {
      // Not writable right at the snapshot point too, so that `ready` snapshots there exactly.
      const atSnapshot = o.where !== 'loop' && collected.length === o.snapshotAfter;
      return collected.length % every !== 0 && !atSnapshot;
    },
    async ready() {
      if (o.where !== 'loop' && due()) snapshotNow();
    },
    onCheckpoint(snapshot) {
      registrations++;
      snapshotFn = snapshot;
    },
    setPendingRecords(records) {
      pending.push(records);
    },
  };
  let poller: NodeJS.Immediate | undefined;
  if (o.where === 'loop') {
    const poll = () => {
      if (due()) snapshotNow();
      if (taken === undefined) poller = setImmediate(poll);
    };
    poller = setImmediate(poll);
  }
  let ended = false;
  try {
    await source.run(ctx);
    ended = true;
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearImmediate(poller);
  }
  if (registrations !== 1) throw new Error(`onCheckpoint was called ${registrations} times`);
  if (taken !== undefined) return { ...taken, ended, pending };
  // Ended first: the position after everything.
  return { emitted: collected, state: unpack(pack(snapshotFn!())), ended, pending };
}

/** Runs every subtask of one attempt; `snapshotAfter(s)` says when subtask s is interrupted. */
export async function runAttempt<T>(
  source: Source<T>,
  parallelism: number,
  restored: unknown[] | undefined,
  snapshotAfter: (subtask: number) => number | undefined,
  options: Partial<RunOptions> = {},
): Promise<Array<SubtaskRun<T>>> {
  return Promise.all(
    Array.from({ length: parallelism }, (_, s) =>
      runSubtask(source, {
        ...options,
        parallelism,
        subtask: s,
        ...(restored !== undefined ? { restored } : {}),
        snapshotAfter: snapshotAfter(s),
      }),
    ),
  );
}

export const states = <T>(runs: Array<SubtaskRun<T>>): unknown[] => runs.map((r) => r.state);
export const emitted = <T>(runs: Array<SubtaskRun<T>>): T[] => runs.flatMap((r) => r.emitted);
