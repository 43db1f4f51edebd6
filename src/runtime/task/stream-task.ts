/**
 * A subtask of a user program's vertex: a source or an input gate feeding a chain of operators, whose
 * last output goes to the outgoing edges' record writers (or ends in a sink).
 *
 * Records flow synchronously through the chain; between input frames (and source batches) the task
 * awaits its outputs when they are backpressured. Watermarks of all input channels are combined (the
 * minimum) before they reach the chain. When every input has ended, operators end in chain order, the
 * writers send end-of-partition, and the task finishes.
 *
 * Size: one concept, a subtask's run loop; chaining, inputs, checkpoints and shutdown share the loop's
 * local state.
 */

import type { NatsConnection } from '@nats-io/transport-node';
import type { Subjects } from '../../actors/subjects.js';
import type { ConnectorContext, SourceContext } from '../../api/connector.js';
import type { Logger } from '../../common/log.js';
import type { StreamGraph, StreamNode } from '../../jobgraph/stream-graph.js';
import type { TaskCountersSink } from '../../metrics/task-metrics.js';
import type { LocalRecovery } from '../checkpoint/local-state.js';
import type { RestoreSpec, SubtaskStateHandle } from '../checkpoint/protocol.js';
import { subtaskObjectName } from '../checkpoint/protocol.js';
import type { StateStore } from '../checkpoint/state-store.js';
import {
  encodeKeyGroups,
  encodeSubtaskState,
  type OperatorState,
  ownsKey,
  type RestoredOperator,
  type RestoreTiming,
  readRestoredState,
} from '../checkpoint/subtask-state.js';
import { barrier, ElementKind } from '../network/elements.js';
import { FRAME_ITEMS_START, InputGate } from '../network/input-gate.js';
import { OutputGate } from '../network/output-gate.js';
import { WatermarkTracker } from '../network/watermark-tracker.js';
import { TimestampsAndWatermarksOperator } from '../operators/basic-operators.js';
import {
  MAX_WATERMARK,
  type OperatorContext,
  type Output,
  type StreamOperator,
} from '../operators/operator.js';
import { createOperator } from '../operators/operator-factory.js';
import { isTwoInputOperator, secondInput } from '../operators/two-input-operator.js';
import { keyGroupRange } from '../state/key-groups.js';
import { KeyedStateBackend } from '../state/keyed-state-backend.js';
import { TimerService } from '../state/timer-service.js';
import { BarrierAligner } from './barrier-aligner.js';
import { RecordWriter } from './record-writer.js';
import { type SideOutputWriter, withSideOutputs } from './side-outputs.js';
import {
  BACKPRESSURED_MS,
  BUSY_MS,
  NO_WATERMARK,
  PENDING_RECORDS,
  RECORDS_IN,
  RECORDS_OUT,
  WATERMARK,
} from './vertex-gauges.js';

export interface StreamTaskSpec {
  jobId: string;
  clusterId: string;
  attempt: number;
  /** The leader epoch the task was deployed under (HA); undefined without HA. */
  epoch?: number | undefined;
  vertexId: string;
  vertexName: string;
  subtaskIndex: number;
  parallelism: number;
  chain: string[];
  inputs: Array<{ edgeId: string; sourceParallelism: number; inputIndex: number }>;
  outputs: Array<{ edgeId: string; targetParallelism: number }>;
  bufferTimeoutMs: number;
}

export interface StreamTaskEnvironment {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  signal: AbortSignal;
  /** Counters the JobMaster sums over subtasks. */
  accumulators: Record<string, number>;
  /** Where live per-operator counters are shown (the TaskManager's metrics endpoint). */
  metrics?: TaskCountersSink;
  /** Present when the job takes checkpoints. */
  checkpoints?: TaskCheckpointing;
  /** Called once the task is initialized (state restored, operators open, channels open). */
  onRunning?: () => void;
}

/** What a task of a checkpointing job needs, and the controls it hands back to its TaskExecutor. */
export interface TaskCheckpointing {
  store: StateStore;
  /** Periodic checkpoints are on (exactly-once sinks hold output until one completes). */
  periodic: boolean;
  mode: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE';
  /** The checkpoint or savepoint to start from. */
  restore: RestoreSpec | undefined;
  /** Local recovery (`state.backend.local-recovery`): the TaskManager's copies of stored state. */
  local?: LocalRecovery | undefined;
  /** The subtask's state is stored: tell the JobMaster. */
  ack(checkpointId: number, handle: SubtaskStateHandle, syncMs: number): void;
  /** The subtask cannot take part in the checkpoint. */
  decline(checkpointId: number, reason: string): void;
  /** Set by the task while it runs; called by the TaskExecutor. */
  controls: TaskControls;
}

export interface TaskControls {
  /** Source tasks: take a snapshot and inject the barrier (then end, for stop-with-savepoint). */
  trigger?(checkpointId: number, target: string, stop: boolean): void;
  /** The checkpoint is committed. */
  complete?(checkpointId: number): void;
}

interface ChainLink {
  node: StreamNode;
  operator: StreamOperator;
  ctx: OperatorContext;
  timers: TimerService;
  keyed: KeyedStateBackend | undefined;
  watermark: number;
  /** Records this operator received. */
  recordsIn: number;
}

export async function runStreamTask(
  spec: StreamTaskSpec,
  plan: StreamGraph,
  env: StreamTaskEnvironment,
): Promise<void> {
  const nodes = spec.chain.map((uid) => {
    const node = plan.nodes.find((n) => n.uid === uid);
    if (!node) {
      throw new Error(
        `operator '${uid}' is not in the program's plan: a job's main must build the same graph each time it runs`,
      );
    }
    return node;
  });
  const checkpoints = env.checkpoints;
  const restoreTiming: RestoreTiming = { readMs: 0, hashMs: 0, bytes: 0, decodeMs: 0, localBytes: 0 };
  // State to start from: read before anything is built (sinks get theirs when their writer is created).
  const restored: Map<string, RestoredOperator> | undefined =
    checkpoints?.restore === undefined
      ? undefined
      : await readRestoredState(
          checkpoints.store,
          checkpoints.restore,
          nodes.map((n) => ({ uid: n.uid, maxParallelism: n.maxParallelism })),
          spec.subtaskIndex,
          spec.parallelism,
          restoreTiming,
          checkpoints.local,
        );
  const head = nodes[0]!;
  const sourceNode = head.spec.kind === 'source' ? head : undefined;
  const operatorNodes = sourceNode ? nodes.slice(1) : nodes;
  let failure: unknown;
  /** Rejects `aborted` with a failure that happens outside the task's loop (timers, async operators). */
  let rejectFailed: (err: unknown) => void = () => {};
  /** Ends a running source when the task fails (set once the source runs). */
  let stopSource: (err: unknown) => void = () => {};
  const fail = (err: unknown) => {
    if (failure !== undefined) return;
    failure = err;
    rejectFailed(err);
    stopSource(err);
  };

  const connector = (node: StreamNode): ConnectorContext => ({
    jobId: spec.jobId,
    clusterId: spec.clusterId,
    subtaskIndex: spec.subtaskIndex,
    // The vertex's parallelism now (a rescale changes it; the program's plan keeps the submitted one).
    parallelism: spec.parallelism,
    log: env.log.child({ operator: node.name }),
    signal: env.signal,
    nats: env.nc,
    checkpointing: checkpoints?.periodic === true,
    restoredState: restored?.get(node.uid)?.connector,
    fail,
    executionAttempt: { epoch: spec.epoch ?? 0, attempt: spec.attempt },
  });

  /** Rejects when the task is cancelled, or fails outside its loop: whatever the task awaits races it. */
  const aborted = new Promise<never>((_, reject) => {
    rejectFailed = reject;
    if (env.signal.aborted) reject(env.signal.reason);
    env.signal.addEventListener('abort', () => reject(env.signal.reason), { once: true });
  });
  aborted.catch(() => undefined);

  // The input gate subscribes first: upstream subtasks connect to it while this one connects its own
  // outputs (opening them after the outputs made a chain of n vertices connect one after the other,
  // each waiting out the next one's connect backoff). Frames wait within the channels' credits until the
  // task reads them.
  const inputGate: InputGate | undefined = sourceNode
    ? undefined
    : InputGate.open({
        nc: env.nc,
        subjects: env.subjects,
        jobId: spec.jobId,
        attempt: spec.attempt,
        targetSubtask: spec.subtaskIndex,
        inputs: spec.inputs,
        log: env.log,
      });

  // Outgoing edges; side-output edges leave from their operator, which may be inside the chain.
  const writers: RecordWriter[] = [];
  const mainWriters: RecordWriter[] = [];
  const sideWriters = new Map<string, SideOutputWriter[]>();
  try {
    for (const out of spec.outputs) {
      const edge = plan.edges.find((e) => e.id === out.edgeId);
      const target = edge && plan.nodes.find((n) => n.uid === edge.target);
      if (!edge || !target) throw new Error(`edge ${out.edgeId} is not in the program's plan`);
      const gate = await OutputGate.open({
        nc: env.nc,
        subjects: env.subjects,
        jobId: spec.jobId,
        attempt: spec.attempt,
        edgeId: out.edgeId,
        sourceSubtask: spec.subtaskIndex,
        targetParallelism: out.targetParallelism,
        bufferTimeoutMs: spec.bufferTimeoutMs,
        log: env.log,
        // Connecting waits for the receiving subtasks; a cancelled task's gate closes at once.
        signal: env.signal,
      });
      const writer = new RecordWriter(gate, {
        partitioning: edge.partitioning,
        keySelector: edge.keySelector,
        targetParallelism: out.targetParallelism,
        targetMaxParallelism: target.maxParallelism,
        subtaskIndex: spec.subtaskIndex,
      });
      writers.push(writer);
      if (edge.outputTag === undefined) mainWriters.push(writer);
      else {
        const list = sideWriters.get(edge.source) ?? [];
        list.push({ tag: edge.outputTag, writer });
        sideWriters.set(edge.source, list);
      }
    }
  } catch (err) {
    for (const w of writers) w.gate.close();
    inputGate?.close();
    throw err;
  }

  // The chain, built back to front so each link knows its output.
  let recordsOut = 0;
  /** The last watermark the chain emitted (a source vertex's event time). */
  let outputWatermark = Number.NEGATIVE_INFINITY;
  const tail: Output<unknown> = {
    collect: (value, timestamp) => {
      recordsOut++;
      for (const w of mainWriters) w.emit(value, timestamp);
    },
    emitWatermark: (wm) => {
      outputWatermark = wm;
      for (const w of mainWriters) w.emitWatermark(wm);
    },
  };
  const links: ChainLink[] = [];
  const chainOperators: Array<{ node: StreamNode; operator: StreamOperator }> = operatorNodes.map((node) => ({
    node,
    operator: createOperator(node, connector(node)),
  }));
  if (sourceNode?.spec.kind === 'source' && sourceNode.spec.watermarks) {
    chainOperators.unshift({
      node: sourceNode,
      operator: new TimestampsAndWatermarksOperator(sourceNode.spec.watermarks),
    });
  }
  let downstream: Output<unknown> = tail;
  const outputs: Output<unknown>[] = [];
  for (let i = chainOperators.length - 1; i >= 0; i--) {
    const { node, operator } = chainOperators[i]!;
    const keyed = node.keySelector ? new KeyedStateBackend(node.maxParallelism) : undefined;
    const timers = new TimerService({ keyed, onError: fail });
    const link: ChainLink = {
      node,
      operator,
      keyed,
      timers,
      watermark: Number.NEGATIVE_INFINITY,
      recordsIn: 0,
      ctx: {
        jobId: spec.jobId,
        operatorUid: node.uid,
        operatorName: node.name,
        subtaskIndex: spec.subtaskIndex,
        parallelism: spec.parallelism,
        maxParallelism: node.maxParallelism,
        log: env.log.child({ operator: node.name }),
        signal: env.signal,
        keyedState: keyed,
        timers,
        processingTime: () => Date.now(),
        currentWatermark: () => link.watermark,
        fail,
      },
    };
    links.unshift(link);
    const output = withSideOutputs(downstream, sideWriters.get(node.uid) ?? []);
    outputs.unshift(output);
    downstream = linkInput(link, output);
  }
  const chainInput = downstream;
  // A two-input operator heads its chain: records of edges marked input 1 go to its second input.
  const headLink = sourceNode ? undefined : links[0];
  const chainInput2 =
    headLink && isTwoInputOperator(headLink.operator)
      ? secondInput(headLink.operator, headLink.keyed, headLink.node.secondKeySelector, () => {
          headLink.recordsIn++;
        })
      : undefined;
  const secondInputEdges = new Set(
    chainInput2
      ? plan.edges.filter((e) => e.target === headLink!.node.uid && e.inputIndex === 1).map((e) => e.id)
      : [],
  );

  const blocked = (): Array<Promise<void>> => {
    const waits: Array<Promise<void>> = [];
    for (const w of writers) if (!w.gate.writable) waits.push(w.gate.ready());
    for (const l of links)
      if (l.operator.writable === false && l.operator.ready) waits.push(l.operator.ready());
    return waits;
  };
  /** No output and no operator is backpressured (without building the list of waits). */
  const isWritable = (): boolean => {
    for (const w of writers) if (!w.gate.writable) return false;
    for (const l of links) if (l.operator.writable === false && l.operator.ready) return false;
    return true;
  };
  let backpressuredMs = 0;
  /** Time spent processing input (a frame of records, or a source's record through the chain). */
  let busyMs = 0;
  /** A source's backlog as it last reported it (undefined: it reports none). */
  let pendingRecords: number | undefined;
  const backpressure = async () => {
    const waits = blocked();
    // A cancelled task must not stay parked on credits that will never come.
    if (waits.length > 0) {
      const started = performance.now();
      try {
        // When the abort wins, a gate failing later (a local receiver closed) must not reject unobserved.
        const all = Promise.all(waits);
        all.catch(() => undefined);
        await Promise.race([all, aborted]);
      } finally {
        backpressuredMs += performance.now() - started;
      }
    }
    if (failure !== undefined) throw failure;
    env.signal.throwIfAborted();
  };

  const unregister = env.metrics?.add({
    jobId: spec.jobId,
    vertex: spec.vertexName,
    subtask: spec.subtaskIndex,
    backpressuredMs: () => backpressuredMs,
    busyMs: () => busyMs,
    pendingRecords: () => pendingRecords,
    operators: links.map((link, i) => ({
      name: link.node.name,
      uid: link.node.uid,
      recordsIn: () => link.recordsIn,
      recordsOut: () => (i + 1 < links.length ? links[i + 1]!.recordsIn : recordsOut),
    })),
  });
  // Live counters: the TaskExecutor reports them to the JobMaster while the task runs.
  let recordsIn = 0;
  const inKey = `${spec.vertexName} ${RECORDS_IN}`;
  const outKey = `${spec.vertexName} ${RECORDS_OUT}`;
  Object.defineProperty(env.accumulators, inKey, {
    get: () => recordsIn,
    enumerable: true,
    configurable: true,
  });
  Object.defineProperty(env.accumulators, outKey, {
    get: () => recordsOut,
    enumerable: true,
    configurable: true,
  });
  // Shown per vertex by the dashboard: time spent waiting for downstream (summed over subtasks), and the
  // event time reached (the JobMaster takes the minimum over subtasks; NO_WATERMARK until there is one).
  Object.defineProperty(env.accumulators, `${spec.vertexName} ${BACKPRESSURED_MS}`, {
    get: () => Math.round(backpressuredMs),
    enumerable: true,
    configurable: true,
  });
  // Busy time and backlog: what the autoscaler sizes the vertex from.
  Object.defineProperty(env.accumulators, `${spec.vertexName} ${BUSY_MS}`, {
    get: () => Math.round(busyMs),
    enumerable: true,
    configurable: true,
  });
  // A source's backlog appears once it reports one (a source that reports none is not "caught up").
  Object.defineProperty(env.accumulators, `${spec.vertexName} ${WATERMARK}`, {
    get: () => {
      const wm = sourceNode ? outputWatermark : (links[0]?.watermark ?? Number.NEGATIVE_INFINITY);
      return Number.isFinite(wm) ? Math.min(wm, MAX_WATERMARK) : NO_WATERMARK;
    },
    enumerable: true,
    configurable: true,
  });
  // Checkpointing.
  let sourceSnapshot: (() => unknown) | undefined;
  /** State uploads in flight: a finishing task acks them before it reports FINISHED. */
  const uploads = new Set<Promise<void>>();
  let stopped = false;
  const sourceAbort = new AbortController();
  if (env.signal.aborted) sourceAbort.abort(env.signal.reason);
  else env.signal.addEventListener('abort', () => sourceAbort.abort(env.signal.reason), { once: true });
  /**
   * Takes the subtask's snapshot for checkpoint `id` (synchronously: no record is processed meanwhile),
   * forwards the barrier, then stores the state and acks in the background.
   */
  const snapshotAndForward = (id: number, target: string): void => {
    const cp = checkpoints!;
    const started = performance.now();
    const operators: Record<string, OperatorState> = {};
    const handleOps: SubtaskStateHandle['operators'] = [];
    let bytes: Uint8Array | undefined;
    try {
      if (sourceNode && sourceSnapshot) {
        operators[sourceNode.uid] = { connector: sourceSnapshot() };
        handleOps.push({
          uid: sourceNode.uid,
          maxParallelism: sourceNode.maxParallelism,
          keyed: false,
          connector: true,
        });
      }
      for (const link of links) {
        const state: OperatorState = {};
        let keyed = false;
        if (link.keyed && link.keyed.size > 0) {
          state.keyedGroups = encodeKeyGroups(link.keyed.snapshotByKeyGroup());
          keyed = true;
        }
        const timers = link.timers.snapshot();
        if (timers.event.length > 0 || timers.processing.length > 0) {
          state.timers = timers;
          keyed = true;
        }
        const own = link.operator.snapshotState?.(id);
        const connector = own !== undefined;
        if (connector) state.connector = own;
        if (keyed || connector) {
          operators[link.node.uid] = state;
          handleOps.push({
            uid: link.node.uid,
            maxParallelism: link.node.maxParallelism,
            keyed,
            connector,
            ...(link.operator.broadcastState ? { broadcast: true } : {}),
          });
        }
      }
      if (handleOps.length > 0) bytes = encodeSubtaskState(operators, cp.local?.allocate);
    } catch (err) {
      cp.decline(id, `snapshot failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    for (const w of writers) w.gate.broadcast(barrier(id, target));
    const syncMs = performance.now() - started;
    const handle = (object: SubtaskStateHandle['object']): SubtaskStateHandle => ({
      vertexId: spec.vertexId,
      subtaskIndex: spec.subtaskIndex,
      parallelism: spec.parallelism,
      object,
      operators: handleOps,
    });
    if (bytes === undefined) {
      cp.ack(id, handle(null), syncMs);
      return;
    }
    const upload = cp.store
      .put(subtaskObjectName(target, spec.vertexId, spec.subtaskIndex), bytes)
      .then((ref) => {
        cp.local?.keep({ jobId: spec.jobId, checkpointId: id, ref, bytes: bytes! });
        cp.ack(id, handle(ref), syncMs);
      })
      .catch((err: unknown) =>
        cp.decline(id, `storing the state failed: ${err instanceof Error ? err.message : String(err)}`),
      )
      .finally(() => uploads.delete(upload));
    uploads.add(upload);
  };
  if (checkpoints) {
    checkpoints.controls.complete = (id) => {
      for (const link of links) {
        const done = link.operator.notifyCheckpointComplete?.(id);
        if (done instanceof Promise) done.catch(fail);
      }
    };
  }

  /** The task ran to its end (not failed, not cancelled). */
  let ended = false;
  try {
    for (let i = 0; i < links.length; i++) await links[i]!.operator.open?.(links[i]!.ctx, outputs[i]!);
    if (restored !== undefined) {
      const filling = performance.now();
      for (const link of links) {
        const r = restored.get(link.node.uid);
        if (r === undefined) continue;
        const range = keyGroupRange(spec.subtaskIndex, link.node.maxParallelism, spec.parallelism);
        if (link.keyed) {
          for (const tables of r.keyed) link.keyed.restore(tables, range[0], range[1]);
          for (const [group, tables] of r.keyedGroups) link.keyed.restoreKeyGroup(group, tables);
        }
        for (const timers of r.timers) {
          link.timers.restore(timers, (key) =>
            key === undefined ? spec.parallelism === 1 : ownsKey(key, link.node.maxParallelism, range),
          );
        }
      }
      const t = restoreTiming;
      const round = (v: number) => Math.round(v);
      env.log.info(
        {
          checkpointId: checkpoints!.restore!.checkpointId,
          bytes: t.bytes,
          localBytes: t.localBytes,
          readMs: round(t.readMs),
          hashMs: round(t.hashMs),
          decodeMs: round(t.decodeMs),
          fillMs: round(performance.now() - filling),
        },
        'state restored',
      );
    }
    for (const link of links) link.operator.start?.();
    if (sourceNode?.spec.kind === 'source') {
      const ctx: SourceContext<unknown> = {
        ...connector(sourceNode),
        signal: sourceAbort.signal,
        collect: (value, timestamp) => {
          // After a stop-with-savepoint barrier nothing more belongs to this job.
          if (stopped) return;
          recordsIn++;
          const started = performance.now();
          chainInput.collect(value, timestamp);
          busyMs += performance.now() - started;
        },
        setPendingRecords: (records) => {
          if (!Number.isFinite(records) || records < 0) return;
          if (pendingRecords === undefined) {
            Object.defineProperty(env.accumulators, `${spec.vertexName} ${PENDING_RECORDS}`, {
              get: () => pendingRecords ?? 0,
              enumerable: true,
              configurable: true,
            });
          }
          pendingRecords = Math.round(records);
        },
        get writable() {
          return isWritable();
        },
        ready: backpressure,
        onCheckpoint: (snapshot) => {
          sourceSnapshot = snapshot;
        },
      };
      if (checkpoints) {
        checkpoints.controls.trigger = (checkpointId, target, stop) => {
          if (stopped) {
            checkpoints.decline(checkpointId, 'the source has stopped');
            return;
          }
          snapshotAndForward(checkpointId, target);
          if (stop) {
            stopped = true;
            sourceAbort.abort(new Error('stopped with a savepoint'));
          }
        };
      }
      env.onRunning?.();
      stopSource = (err) => sourceAbort.abort(err);
      try {
        await sourceNode.spec.source.run(ctx);
      } catch (err) {
        if (failure !== undefined) throw failure;
        // A stop-with-savepoint ends the source through its signal: the task then ends normally.
        if (!stopped || env.signal.aborted) throw err;
      }
      if (checkpoints) checkpoints.controls.trigger = undefined;
    } else if (inputGate) {
      env.onRunning?.();
      const tracker = new WatermarkTracker(inputGate.channelCount);
      const gate = inputGate;
      const aligner = checkpoints
        ? new BarrierAligner(gate.channelCount, checkpoints.mode === 'EXACTLY_ONCE', gate, (id, target) =>
            snapshotAndForward(id, target),
          )
        : undefined;
      for (;;) {
        const frame = await Promise.race([inputGate.next(), aborted]);
        if (frame === null) break;
        const frameStarted = performance.now();
        const channel = frame.channel;
        const input = chainInput2 && secondInputEdges.has(frame.edgeId) ? chainInput2 : chainInput;
        // The frame's flat items (checked by the gate): record 0, ts | null, value; watermark 1, wm; end 2.
        const items = frame.items;
        const n = items.length;
        let i = FRAME_ITEMS_START;
        while (i < n) {
          const tag = items[i];
          if (tag === ElementKind.Record) {
            recordsIn++;
            const ts = items[i + 1] as number | null;
            input.collect(items[i + 2], ts === null ? undefined : ts);
            i += 3;
            continue;
          }
          let combined: number | undefined;
          if (tag === ElementKind.Watermark) {
            combined = tracker.update(channel, items[i + 1] as number);
            i += 2;
          } else if (tag === ElementKind.Barrier) {
            if (i + 3 !== n)
              throw new Error(`checkpoint barrier not at the end of its frame (channel ${channel})`);
            i += 3;
            // Without checkpointing (a foreign barrier) there is nothing to align.
            aligner?.onBarrier(channel, items[i - 2] as number, items[i - 1] as string);
            continue;
          } else {
            combined = tracker.endChannel(channel);
            aligner?.onEnd(channel);
            i += 1;
          }
          // All inputs ended: end of event time.
          if (combined !== undefined) chainInput.emitWatermark(Math.min(combined, MAX_WATERMARK));
        }
        // The frame is processed and this task is its only reader: let go of its records. A frame's item
        // array is large and lives in V8's old generation early on; while it holds the records, every
        // young-generation collection finds them alive and promotes them (measured: receiving thread GC
        // 826 ms → 146 ms per 1 M records, docs/performance.md).
        items.length = 0;
        busyMs += performance.now() - frameStarted;
        await backpressure();
      }
    }
    if (failure !== undefined) throw failure;
    // Every input has ended: operators end in chain order, each one's output reaching the next.
    for (const link of links) await link.operator.endInput?.();
    if (failure !== undefined) throw failure;
    await Promise.all(writers.map((w) => w.finish()));
    await Promise.allSettled([...uploads]);
    Object.defineProperty(env.accumulators, inKey, { value: recordsIn, enumerable: true, writable: true });
    Object.defineProperty(env.accumulators, outKey, { value: recordsOut, enumerable: true, writable: true });
    ended = true;
  } finally {
    if (checkpoints) {
      checkpoints.controls.trigger = undefined;
      checkpoints.controls.complete = undefined;
    }
    unregister?.();
    const closeGates = () => {
      inputGate?.close();
      for (const w of writers) w.gate.close();
    };
    // A failing task closes its gates only after its failure is reported (the report follows this
    // function's rejection within the same turn of the event loop): closing fails the peers of its local
    // channels at once, and their failure must not reach the JobMaster before the root cause.
    const failing = !ended && !env.signal.aborted;
    if (!failing) closeGates();
    for (const link of links) {
      link.timers.close();
      try {
        await link.operator.close?.();
      } catch (err) {
        env.log.warn({ err, operator: link.node.name }, 'operator close failed');
      }
    }
    if (failing) setImmediate(closeGates);
  }
}

/** The Output that feeds a link: sets the key for keyed operators and tracks the link's watermark. */
function linkInput(link: ChainLink, output: Output<unknown>): Output<unknown> {
  const { operator, node, keyed } = link;
  const key = node.keySelector;
  return {
    collect: keyed
      ? (value, timestamp) => {
          link.recordsIn++;
          keyed.setCurrentKey(key!(value));
          operator.processElement(value, timestamp);
        }
      : (value, timestamp) => {
          link.recordsIn++;
          operator.processElement(value, timestamp);
        },
    emitWatermark: (wm) => {
      if (wm <= link.watermark) return;
      link.watermark = wm;
      if (operator.processWatermark) operator.processWatermark(wm);
      else output.emitWatermark(wm);
    },
  };
}
