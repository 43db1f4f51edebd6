/**
 * The graph of two-input operators: each edge says which input it feeds (input 1 marked, input 0
 * implicit), a keyed two-input node knows both inputs' key selectors, a two-input operator heads its
 * chain (its successors chain to it), and a broadcast connect has a broadcast edge into input 1.
 */

import { describe, expect, it } from 'vitest';
import type { JobId } from '../../src/common/ids.js';
import { GeneratorSource, MapStateDescriptor, StreamExecutionEnvironment } from '../../src/index.js';
import { toJobGraph } from '../../src/jobgraph/chaining.js';

function build(make: (env: StreamExecutionEnvironment) => void) {
  const env = StreamExecutionEnvironment.createLocalEnvironment(2);
  make(env);
  const stream = env.getStreamGraph();
  return { stream, job: toJobGraph(stream, { jobId: '0'.repeat(32) as JobId, name: 'test' }) };
}

describe('two-input graph', () => {
  it('marks the edges of input 1 and keeps both key selectors', () => {
    const k1 = (x: number) => x % 3;
    const k2 = (s: string) => s.length % 3;
    const { stream, job } = build((env) => {
      const a = env.fromSource(new GeneratorSource(10, (i) => i)).uid('a');
      const b = env.fromSource(new GeneratorSource(10, (i) => `s${i}`)).uid('b');
      a.keyBy(k1)
        .connect(b.keyBy(k2))
        .process<string>({ processElement1: () => {}, processElement2: () => {} })
        .uid('co')
        .map((s) => s)
        .print();
    });
    const co = stream.nodes.find((n) => n.uid === 'co')!;
    expect(co.spec.kind).toBe('keyedCoProcess');
    expect(co.keySelector).toBe(k1);
    expect(co.secondKeySelector).toBe(k2);
    const into = stream.edges.filter((e) => e.target === 'co');
    expect(into.map((e) => [e.source, e.partitioning, e.inputIndex ?? 0])).toEqual([
      ['a', 'hash', 0],
      ['b', 'hash', 1],
    ]);
    // The co-process heads a chain with what follows it.
    expect(
      job.vertices.map((v) => (v.operator.kind === 'chain' ? v.operator.operators.map((o) => o.kind) : [])),
    ).toEqual([['source'], ['source'], ['keyedCoProcess', 'map', 'sink']]);
  });

  it('a broadcast connect feeds input 1 through a broadcast edge; a non-keyed connect has no key selector', () => {
    const rules = new MapStateDescriptor<string, number>('rules');
    const { stream } = build((env) => {
      const events = env.fromSource(new GeneratorSource(10, (i) => i)).uid('events');
      const ruleStream = env.fromSource(new GeneratorSource(3, (i) => i)).uid('rules');
      events
        .connect(ruleStream.broadcast(rules))
        .process<number>({ processElement: () => {}, processBroadcastElement: () => {} })
        .uid('bp')
        .print();
      events
        .connect(ruleStream)
        .map({ map1: (x: number) => x, map2: (x: number) => -x })
        .uid('cm')
        .print();
    });
    const bp = stream.nodes.find((n) => n.uid === 'bp')!;
    expect(bp.spec.kind).toBe('broadcastProcess');
    expect(bp.keySelector).toBeUndefined();
    expect(
      stream.edges.filter((e) => e.target === 'bp').map((e) => [e.source, e.partitioning, e.inputIndex ?? 0]),
    ).toEqual([
      ['events', 'forward', 0],
      ['rules', 'broadcast', 1],
    ]);
    const cm = stream.nodes.find((n) => n.uid === 'cm')!;
    expect(cm.keySelector).toBeUndefined();
    expect(cm.secondKeySelector).toBeUndefined();
  });

  it('refuses malformed functions and mixed environments', () => {
    const env = StreamExecutionEnvironment.createLocalEnvironment(1);
    const other = StreamExecutionEnvironment.createLocalEnvironment(1);
    const a = env.fromElements(1);
    expect(() => a.connect(a).map({ map1: (x: number) => x } as never)).toThrow(
      /CoMapFunction needs a method map2/,
    );
    expect(() => a.connect(other.fromElements(2))).toThrow(/different environments/);
    expect(() => a.broadcast(new MapStateDescriptor('x'), new MapStateDescriptor('x'))).toThrow(
      /declared twice/,
    );
  });
});
