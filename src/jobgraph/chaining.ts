/**
 * StreamGraph → JobGraph: operators are chained into one vertex where the edge between them is
 * forward, the parallelism equal, and neither side branches (as Flink's operator chaining). Side outputs
 * do not count as branches: an operator with side outputs still chains with its main consumer, and each
 * side output leaves the vertex on a network edge of its own, from the operator inside the chain. What is
 * left is plain data the JobManager can schedule; functions stay behind, matched again by uid.
 */

import type { JobId } from '../common/ids.js';
import type { JobEdge, JobGraph, JobVertex, Program } from './job-graph.js';
import type { StreamGraph, StreamNode } from './stream-graph.js';

export interface JobGraphOptions {
  jobId: JobId;
  name: string;
  program?: Program;
  /** Used when the program set no buffer timeout (execution.buffer-timeout). */
  defaultBufferTimeoutMs?: number;
  applicationId?: string;
}

export function toJobGraph(graph: StreamGraph, options: JobGraphOptions): JobGraph {
  const inEdges = (uid: string) => graph.edges.filter((e) => e.target === uid);
  // Side-output edges never chain: they leave the chain from their operator (which may be mid-chain).
  const outEdges = (uid: string) => graph.edges.filter((e) => e.source === uid && e.outputTag === undefined);
  const byUid = new Map(graph.nodes.map((n) => [n.uid, n]));

  const chainsWithPredecessor = (node: StreamNode): boolean => {
    const ins = inEdges(node.uid);
    if (ins.length !== 1) return false;
    const edge = ins[0]!;
    if (edge.outputTag !== undefined) return false;
    const up = byUid.get(edge.source)!;
    return (
      edge.partitioning === 'forward' && up.parallelism === node.parallelism && outEdges(up.uid).length === 1
    );
  };

  // Chain heads in program order; each chain follows single forward edges downstream.
  const vertexOf = new Map<string, string>();
  const vertices: JobVertex[] = [];
  for (const head of graph.nodes) {
    if (chainsWithPredecessor(head)) continue;
    const chain: StreamNode[] = [head];
    for (;;) {
      const outs = outEdges(chain[chain.length - 1]!.uid);
      if (outs.length !== 1) break;
      const next = byUid.get(outs[0]!.target)!;
      if (!chainsWithPredecessor(next)) break;
      chain.push(next);
    }
    const id = `v${vertices.length}`;
    for (const n of chain) vertexOf.set(n.uid, id);
    vertices.push({
      id,
      name: chain.map((n) => n.name).join(' -> '),
      parallelism: head.parallelism,
      maxParallelism: head.maxParallelism,
      operator: {
        kind: 'chain',
        operators: chain.map((n) => ({ uid: n.uid, name: n.name, kind: n.spec.kind })),
      },
    });
  }

  const edges: JobEdge[] = graph.edges
    .filter((e) => vertexOf.get(e.source) !== vertexOf.get(e.target))
    .map((e) => ({
      id: e.id,
      source: vertexOf.get(e.source)!,
      target: vertexOf.get(e.target)!,
      partitioner: e.partitioning,
    }));

  return {
    jobId: options.jobId,
    name: options.name,
    vertices,
    edges,
    ...(options.program ? { program: options.program } : {}),
    bufferTimeoutMs: graph.config.bufferTimeoutMs ?? options.defaultBufferTimeoutMs ?? 100,
    ...(options.applicationId ? { applicationId: options.applicationId } : {}),
    ...(graph.config.checkpointing ? { checkpointing: graph.config.checkpointing } : {}),
  };
}
