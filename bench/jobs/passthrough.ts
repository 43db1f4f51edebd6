/**
 * Benchmark job: records of a fixed size from a source through the network into a discarding sink.
 * Args: <records> <recordBytes>
 */
import { GeneratorSource, StreamExecutionEnvironment } from 'sluice';
import { CountingSink } from './shared.js';

const records = Number(process.argv[2] ?? 1_000_000);
const bytes = Number(process.argv[3] ?? 100);
const payload = 'x'.repeat(Math.max(0, bytes - 16));
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromSource(new GeneratorSource(records, (i) => ({ i, payload })))
  .rebalance()
  .sinkTo(new CountingSink());
await env.execute('bench passthrough');
