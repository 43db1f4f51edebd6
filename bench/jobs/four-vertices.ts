/**
 * Benchmark job with four vertices at the default parallelism: an endless source, a keyed reduce, a
 * rebalanced map and a discarding sink. With a file argument, the first record reaching the sink writes
 * the time (ms since the epoch) into it.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { GeneratorSource, StreamExecutionEnvironment } from 'sluice';
import { CountingSink } from './shared.js';

const firstRecordFile = process.argv[2];
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromSource(new GeneratorSource(Number.POSITIVE_INFINITY, (i) => i, { ratePerSecond: 100 }))
  .keyBy((i) => i % 16)
  .reduce((a, b) => a + b)
  .rebalance()
  .map((x) => {
    if (firstRecordFile && !existsSync(firstRecordFile)) writeFileSync(firstRecordFile, String(Date.now()));
    return x;
  })
  .rebalance()
  .sinkTo(new CountingSink());
await env.execute('four vertices');
