/**
 * Side outputs in the plan: the edge carries the tag; the producing operator still chains with its main
 * consumer and the side output leaves the chain from it; a union of an operator's main and side output
 * gets two edges; getSideOutput refuses what is not an OutputTag.
 */

import { describe, expect, it } from 'vitest';
import type { JobId } from '../../src/common/ids.js';
import { GeneratorSource, OutputTag, StreamExecutionEnvironment } from '../../src/index.js';
import { toJobGraph } from '../../src/jobgraph/chaining.js';

const build = (fn: (env: StreamExecutionEnvironment) => void, parallelism = 2) => {
  const env = StreamExecutionEnvironment.createLocalEnvironment(parallelism);
  fn(env);
  const stream = env.getStreamGraph();
  return { stream, job: toJobGraph(stream, { jobId: '0'.repeat(32) as JobId, name: 'test' }) };
};

const kinds = (job: ReturnType<typeof build>['job']) =>
  job.vertices.map((v) => (v.operator.kind === 'chain' ? v.operator.operators.map((o) => o.kind) : []));

describe('side outputs in the job graph', () => {
  it('chains the producer with its main consumer; the side output leaves from mid-chain', () => {
    const tag = new OutputTag<number>('odd');
    const { stream, job } = build((env) => {
      const p = env
        .fromSource(new GeneratorSource(10, (i) => i))
        .process<number>({ processElement: (v, ctx, out) => (v % 2 ? ctx.output(tag, v) : out.collect(v)) });
      p.map((v) => v).print();
      p.getSideOutput(tag).print();
    });
    expect(kinds(job)).toEqual([['source', 'non-keyed-process', 'map', 'sink'], ['sink']]);
    const side = stream.edges.filter((e) => e.outputTag !== undefined);
    expect(side.map((e) => [e.outputTag, e.partitioning])).toEqual([['odd', 'forward']]);
    expect(stream.nodes.find((n) => n.uid === side[0]!.source)!.spec.kind).toBe('non-keyed-process');
    expect(job.edges).toHaveLength(1);
  });

  it('a union of main and side output: two edges into one operator', () => {
    const tag = new OutputTag<number>('t');
    const { stream, job } = build((env) => {
      const p = env.fromSource(new GeneratorSource(10, (i) => i)).process<number>({
        processElement(v, ctx, out) {
          ctx.output(tag, v);
          out.collect(v);
        },
      });
      p.union(p.getSideOutput(tag))
        .map((v) => v + 1)
        .print();
    });
    const intoMap = stream.edges.filter(
      (e) => stream.nodes.find((n) => n.uid === e.target)!.spec.kind === 'map',
    );
    expect(intoMap.map((e) => e.outputTag ?? 'main').sort()).toEqual(['main', 't']);
    expect(kinds(job)).toEqual([
      ['source', 'non-keyed-process'],
      ['map', 'sink'],
    ]);
  });

  it('refuses a side output without an OutputTag', () => {
    const env = StreamExecutionEnvironment.createLocalEnvironment(1);
    const p = env.fromElements(1).process<number>({ processElement: (v, _ctx, out) => out.collect(v) });
    expect(() => p.getSideOutput({ id: 'x' } as unknown as OutputTag<number>)).toThrow(/needs an OutputTag/);
  });
});
