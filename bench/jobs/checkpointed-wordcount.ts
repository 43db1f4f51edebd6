/**
 * Benchmark job: bench/jobs/wordcount.ts's word count with checkpoints every `interval` ms (0: off).
 * Args: <lines> <interval-ms> — each line has 8 words from a vocabulary of 1000. Both settings run the same
 * graph (generator → tokenizer → keyBy(word) → rolling sum → a sink that only counts).
 */
import { GeneratorSource, StreamExecutionEnvironment } from 'sluice';
import { benchLine, CountingSink } from './shared.js';

const lines = Number(process.argv[2] ?? 200_000);
const interval = Number(process.argv[3] ?? 0);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
if (interval > 0) env.enableCheckpointing(interval);
env
  .fromSource(new GeneratorSource(lines, benchLine))
  .uid('lines')
  .flatMap<[string, number]>((line, out) => {
    for (const word of line.split(' ')) out.collect([word, 1]);
  })
  .keyBy(([word]) => word)
  .sum(1)
  .uid('counts')
  .sinkTo(new CountingSink());
await env.execute(interval > 0 ? `bench wordcount, checkpoints every ${interval} ms` : 'bench wordcount');
