/**
 * Benchmark job: word count over generated lines into a sink that only counts.
 * Args: <lines> — each line has 8 words from a vocabulary of 1000.
 */
import { GeneratorSource, StreamExecutionEnvironment } from 'sluice';
import { benchLine, CountingSink } from './shared.js';

const lines = Number(process.argv[2] ?? 200_000);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromSource(new GeneratorSource(lines, benchLine))
  .flatMap<[string, number]>((line, out) => {
    for (const word of line.split(' ')) out.collect([word, 1]);
  })
  .keyBy(([word]) => word)
  .sum(1)
  .sinkTo(new CountingSink());
await env.execute('bench wordcount');
