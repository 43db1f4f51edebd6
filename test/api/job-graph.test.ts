/**
 * StreamGraph → JobGraph: uids, default partitioning, and operator chaining.
 */

import { describe, expect, it } from 'vitest';
import type { JobId } from '../../src/common/ids.js';
import { GeneratorSource, StreamExecutionEnvironment } from '../../src/index.js';
import { toJobGraph } from '../../src/jobgraph/chaining.js';

const graphOf = (build: (env: StreamExecutionEnvironment) => void, parallelism = 2) => {
  const env = StreamExecutionEnvironment.createLocalEnvironment(parallelism);
  build(env);
  return toJobGraph(env.getStreamGraph(), { jobId: '0'.repeat(32) as JobId, name: 'test' });
};

const chains = (graph: ReturnType<typeof graphOf>) =>
  graph.vertices.map((v) => (v.operator.kind === 'chain' ? v.operator.operators.map((o) => o.kind) : []));

describe('job graph', () => {
  it('chains forward edges of equal parallelism into one vertex', () => {
    const g = graphOf((env) =>
      env
        .fromSource(new GeneratorSource(10, (i) => i))
        .map((x) => x)
        .filter(() => true)
        .print(),
    );
    expect(chains(g)).toEqual([['source', 'map', 'filter', 'sink']]);
    expect(g.edges).toEqual([]);
    expect(g.vertices[0]!.parallelism).toBe(2);
  });

  it('breaks chains at keyBy, explicit partitioning, a change of parallelism, and fan-out', () => {
    const g = graphOf((env) => {
      const mapped = env
        .fromSource(new GeneratorSource(10, (i) => i))
        .map((x) => x)
        .keyBy((x) => x % 2)
        .sum()
        .rebalance()
        .map((x) => x)
        .setParallelism(3);
      mapped.print();
      mapped.filter(() => true).print();
    });
    expect(chains(g)).toEqual([['source', 'map'], ['reduce'], ['map'], ['sink'], ['filter', 'sink']]);
    // The sinks and the filter run at the default parallelism 2, after a map at 3: rebalanced.
    expect(g.edges.map((e) => e.partitioner)).toEqual(['hash', 'rebalance', 'rebalance', 'rebalance']);
    expect(g.vertices.map((v) => v.parallelism)).toEqual([2, 2, 3, 2, 2]);
  });

  it('uses rebalance when unset partitioning meets different parallelism, and a collection source is not parallel', () => {
    const g = graphOf(
      (env) =>
        env
          .fromElements(1, 2, 3)
          .map((x) => x)
          .print(),
      4,
    );
    expect(g.vertices.map((v) => v.parallelism)).toEqual([1, 4]);
    expect(g.edges.map((e) => e.partitioner)).toEqual(['rebalance']);
  });

  it('derives the same uids every time the program runs, and keeps explicit ones', () => {
    const build = (env: StreamExecutionEnvironment) =>
      env
        .fromSource(new GeneratorSource(10, (i) => i))
        .map((x) => x)
        .uid('my-map')
        .keyBy((x) => x)
        .sum()
        .print();
    const uids = (g: ReturnType<typeof graphOf>) =>
      g.vertices.flatMap((v) => (v.operator.kind === 'chain' ? v.operator.operators.map((o) => o.uid) : []));
    expect(uids(graphOf(build))).toEqual(uids(graphOf(build)));
    expect(uids(graphOf(build))).toContain('my-map');
  });
});
