/**
 * Word count: over a text file given as the first argument, or over generated text when none is given.
 * The counts are printed as (word, count) updates, as in Flink's WordCount example.
 *
 *   npx tsx examples/wordcount.ts [input.txt]
 *   sluice run -p 2 examples/wordcount.ts [input.txt]
 */
import { GeneratorSource, StreamExecutionEnvironment, TextFileSource } from 'sluice';

const WORDS = [
  'to',
  'be',
  'or',
  'not',
  'that',
  'is',
  'the',
  'question',
  'whether',
  'tis',
  'nobler',
  'in',
  'mind',
];

const env = StreamExecutionEnvironment.getExecutionEnvironment();
const input = process.argv[2];

const lines = input
  ? env.fromSource(new TextFileSource(input), undefined, 'Source: file')
  : env.fromSource(
      new GeneratorSource(10_000, (i) => `${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]}`),
      undefined,
      'Source: generated text',
    );

lines
  .flatMap<[string, number]>((line, out) => {
    for (const word of line.toLowerCase().split(/\W+/)) if (word) out.collect([word, 1]);
  })
  .name('Tokenizer')
  .keyBy(([word]) => word)
  .sum(1)
  .name('Count')
  .print();

await env.execute('WordCount');
