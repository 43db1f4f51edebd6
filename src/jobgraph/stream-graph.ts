/**
 * StreamGraph: the program's operators and the edges between them, built from the recorded
 * transformations at execute(). It still holds the user's functions, so it lives only in the process
 * that ran the program (client, local runner, or a TaskExecutor planning the job).
 */
import type { Source } from '../api/connector.js';
import type { KeySelector } from '../api/functions.js';
import {
  type Partitioning,
  type Transformation,
  type TransformationSpec,
  VIRTUAL_KINDS,
} from '../api/transformation.js';
import { ErrorCode, SluiceError } from '../common/errors.js';

export type OperatorSpec = Exclude<
  TransformationSpec,
  { kind: 'partition' | 'keyBy' | 'union' | 'sideOutput' }
>;

export interface StreamNode {
  /** The operator's uid: explicit `.uid()`, else derived from its position in the program. */
  uid: string;
  name: string;
  spec: OperatorSpec;
  parallelism: number;
  maxParallelism: number;
  /** Set for operators after keyBy: how the key of each incoming record is found. */
  keySelector: KeySelector<unknown, unknown> | undefined;
  /** Two-input operators: the key selector of input 1 (`keySelector` is input 0's). */
  secondKeySelector?: KeySelector<unknown, unknown> | undefined;
}

export interface StreamEdge {
  id: string;
  source: string;
  target: string;
  partitioning: Partitioning;
  keySelector: KeySelector<unknown, unknown> | undefined;
  /** Set when the edge carries the source operator's side output with this OutputTag id. */
  outputTag?: string | undefined;
  /** The target's logical input this edge feeds: 0, or 1 for the second input of a two-input operator. */
  inputIndex?: number;
}

export interface StreamGraphConfig {
  parallelism: number;
  maxParallelism: number;
  /** undefined: the cluster's `execution.buffer-timeout`. */
  bufferTimeoutMs: number | undefined;
  /** Set by `env.enableCheckpointing(...)`: overrides the cluster's `execution.checkpointing.*`. */
  checkpointing?: { intervalMs: number; mode?: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE' } | undefined;
}

export interface StreamGraph {
  nodes: StreamNode[];
  edges: StreamEdge[];
  config: StreamGraphConfig;
}

interface Upstream {
  transformation: Transformation;
  partitioning: Partitioning | undefined;
  keySelector: KeySelector<unknown, unknown> | undefined;
  outputTag: string | undefined;
  inputIndex: number;
}

/**
 * Resolves virtual transformations (keyBy, union, partitioning, side outputs) into the real upstream
 * operators.
 */
function upstreams(t: Transformation): Upstream[] {
  const out: Upstream[] = [];
  const walk = (
    input: Transformation,
    partitioning: Partitioning | undefined,
    key: Upstream['keySelector'],
    tag: string | undefined,
    inputIndex: number,
  ) => {
    const spec = input.spec;
    if (spec.kind === 'union') {
      for (const i of input.inputs) walk(i, partitioning, key, tag, inputIndex);
    } else if (spec.kind === 'keyBy') {
      walk(input.inputs[0]!, 'hash', spec.keySelector, tag, inputIndex);
    } else if (spec.kind === 'partition') {
      walk(input.inputs[0]!, partitioning ?? spec.partitioning, key, tag, inputIndex);
    } else if (spec.kind === 'sideOutput') {
      walk(input.inputs[0]!, partitioning, key, spec.tag.id, inputIndex);
    } else {
      out.push({ transformation: input, partitioning, keySelector: key, outputTag: tag, inputIndex });
    }
  };
  // A real operator's inputs: one for most, two for two-input operators (connect, joins).
  for (const [inputIndex, input] of t.inputs.entries())
    walk(input, undefined, undefined, undefined, inputIndex);
  return out;
}

export function buildStreamGraph(transformations: Transformation[], config: StreamGraphConfig): StreamGraph {
  const sinks = transformations.filter((t) => t.spec.kind === 'sink');
  if (sinks.length === 0) {
    throw new SluiceError(
      ErrorCode.InvalidJob,
      'the job has no sink: add print(), sinkTo(...) or executeAndCollect() before execute()',
    );
  }
  // Every real transformation reachable from a sink, in creation order (deterministic uids and edges).
  const reachable = new Set<Transformation>();
  const visit = (t: Transformation) => {
    if (reachable.has(t)) return;
    reachable.add(t);
    for (const i of t.inputs) visit(i);
  };
  for (const s of sinks) visit(s);
  const ordered = [...reachable].filter((t) => !VIRTUAL_KINDS.has(t.spec.kind)).sort((a, b) => a.id - b.id);

  const nodes = new Map<Transformation, StreamNode>();
  const uids = new Set<string>();
  const signatures = new Map<Transformation, string>();
  for (const t of ordered) {
    const uid = t.uid ?? `${t.spec.kind}-${t.id}-${topologyHash(t, signatures)}`;
    if (uids.has(uid)) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `operator uid '${uid}' is used twice; uids must be unique in a job`,
      );
    }
    uids.add(uid);
    const spec = t.spec as OperatorSpec;
    nodes.set(t, {
      uid,
      name: spec.kind === 'source' && t.name === 'Source' ? `Source: ${spec.source.name}` : t.name,
      spec,
      parallelism: parallelismOf(t, config),
      maxParallelism: t.maxParallelism ?? config.maxParallelism,
      keySelector: undefined,
    });
  }

  const edges: StreamEdge[] = [];
  for (const t of ordered) {
    const target = nodes.get(t)!;
    const ups = upstreams(t);
    const keyed = ups.filter((u) => u.partitioning === 'hash' && u.inputIndex === 0);
    if (keyed.length > 0) target.keySelector = keyed[0]!.keySelector;
    const keyed2 = ups.filter((u) => u.partitioning === 'hash' && u.inputIndex === 1);
    if (keyed2.length > 0) target.secondKeySelector = keyed2[0]!.keySelector;
    for (const u of ups) {
      const source = nodes.get(u.transformation)!;
      const partitioning =
        u.partitioning ?? (source.parallelism === target.parallelism ? 'forward' : 'rebalance');
      if (partitioning === 'forward' && source.parallelism !== target.parallelism) {
        throw new SluiceError(
          ErrorCode.InvalidJob,
          `forward partitioning from '${source.name}' (parallelism ${source.parallelism}) to '${target.name}' (parallelism ${target.parallelism}) needs equal parallelism; use rebalance()`,
        );
      }
      edges.push({
        id: `e${edges.length}`,
        source: source.uid,
        target: target.uid,
        partitioning,
        keySelector: u.keySelector,
        ...(u.outputTag === undefined ? {} : { outputTag: u.outputTag }),
        ...(u.inputIndex === 0 ? {} : { inputIndex: u.inputIndex }),
      });
    }
  }
  return { nodes: [...nodes.values()], edges, config };
}

function parallelismOf(t: Transformation, config: StreamGraphConfig): number {
  if (t.spec.kind === 'source') {
    const source: Source<unknown> = t.spec.source;
    const limit = source.maxParallelism;
    if (limit !== undefined && t.parallelism !== undefined && t.parallelism > limit) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `source '${source.name}' supports parallelism ${limit} at most, but ${t.parallelism} was set`,
      );
    }
    if (limit !== undefined) return Math.min(limit, t.parallelism ?? config.parallelism);
  }
  return t.parallelism ?? config.parallelism;
}

/**
 * An operator's place in the topology: its kind and position, and the same of everything upstream up to
 * operators with an explicit uid. Auto-generated uids carry a hash of it, so two different jobs do not
 * give the same uid to different operators (a savepoint of one is not silently restored into the other),
 * while the same program always gets the same uids.
 */
function signature(t: Transformation, memo: Map<Transformation, string>): string {
  const known = memo.get(t);
  if (known !== undefined) return known;
  const sig = t.uid ?? `${t.spec.kind}#${t.id}(${t.inputs.map((i) => signature(i, memo)).join(',')})`;
  memo.set(t, sig);
  return sig;
}

function topologyHash(t: Transformation, memo: Map<Transformation, string>): string {
  // FNV-1a, 32 bits
  let h = 0x811c9dc5;
  const text = signature(t, memo);
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
