/**
 * The smallest Sluice job: two words, upper-cased, printed.
 *
 *   npx tsx examples/hello.ts                 # runs on a private local cluster
 *   sluice run examples/hello.ts              # runs on the cluster sluice is pointed at
 */
import { StreamExecutionEnvironment } from 'sluice';

const env = StreamExecutionEnvironment.getExecutionEnvironment();

env
  .fromElements('hello', 'world')
  .map((word) => word.toUpperCase())
  .print();

await env.execute('hello');
