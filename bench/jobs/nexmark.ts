/**
 * Benchmark job for `npm run bench:nexmark`: one Nexmark query over generated events into a discarding sink.
 * Args: <query> <events> [event rate, events per second of event time; default 10 000 000]
 * [checkpoint interval ms; default 180 000 (exactly-once, as the published setup); 0: off].
 */
import * as sluice from 'sluice';
import { StreamExecutionEnvironment } from 'sluice';
import { DEFAULT_EVENT_RATE, nexmarkConfig } from '../nexmark/generator.js';
import { isQueryName, QUERIES, QUERY_NAMES } from '../nexmark/queries.js';
import { nexmarkSource } from '../nexmark/source.js';
import { CountingSink } from './shared.js';

const [query = 'q0', eventsArg = '1000000', rateArg = String(DEFAULT_EVENT_RATE), intervalArg = '180000'] =
  process.argv.slice(2);
if (!isQueryName(query)) throw new Error(`unknown query '${query}' (one of ${QUERY_NAMES.join(', ')})`);
const events = Number(eventsArg);
const interval = Number(intervalArg);

const env = StreamExecutionEnvironment.getExecutionEnvironment();
if (interval > 0) env.enableCheckpointing(interval, 'EXACTLY_ONCE');
const source = nexmarkSource(sluice, env, { events, config: nexmarkConfig({ eventRate: Number(rateArg) }) });
QUERIES[query](sluice, source).sinkTo(new CountingSink()).name('Sink: Discard');
await env.execute(`nexmark ${query}, ${events} events`);
