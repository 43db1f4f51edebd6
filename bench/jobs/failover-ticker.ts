/**
 * Benchmark job for `npm run bench:failover`: an unbounded generator at a fixed rate per subtask into a
 * JetStream sink. Args: <subject> [records per second per subtask, default 200].
 *
 * Each record carries `run`, a token drawn when this module instance is evaluated. Every deployment of the
 * job plans the program in a fresh module instance, so records written by tasks deployed after a failover
 * carry a token the bench has not seen before, while tasks of the former leader that still run until
 * they are cancelled keep writing the old one.
 */
import { GeneratorSource, JetStreamSink, StreamExecutionEnvironment } from 'sluice';

const [subject = 'failover.out', rateArg = '200'] = process.argv.slice(2);
const run = Math.random().toString(36).slice(2, 10);

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromSource(
    new GeneratorSource(Number.POSITIVE_INFINITY, (i) => ({ run, i, at: Date.now() }), {
      ratePerSecond: Number(rateArg),
    }),
    undefined,
    'Source: ticker',
  )
  .sinkTo(new JetStreamSink({ subject }));
await env.execute('failover ticker');
