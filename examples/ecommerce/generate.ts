/**
 * Publishes the e-commerce example's inputs to JetStream (the role Kafka has in the original): user
 * behaviour events (`ecom-behaviour`, about 2% malformed on purpose), orders (`ecom-orders`) and inventory
 * updates (`ecom-inventory`). It creates the input and output streams of the application when missing and
 * empties them when they exist, so a run starts from exactly these records. Same seed and count, same
 * records (see model.ts). `--rate` spreads the publishing over time (records per second; default: as fast
 * as JetStream acknowledges); event times do not depend on it.
 *
 *   npx tsx examples/ecommerce/generate.ts [--nats URL] [--seed N] [--count N] [--rate N]
 *
 * Refuses: a count or rate that is not a positive integer; an unreachable NATS (the connect error).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { type GeneratedData, generateData, STREAMS } from './model.js';

export interface PublishOptions {
  seed: number;
  count: number;
  /** Records per second over all three streams; undefined: no pacing. */
  rate?: number | undefined;
}

/** Creates or purges every stream of the example, then publishes the generated inputs. */
export async function publishGenerated(natsUrl: string, options: PublishOptions): Promise<GeneratedData> {
  const data = generateData(options.seed, options.count);
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    for (const { name, subject } of Object.values(STREAMS)) {
      const exists = await jsm.streams.info(name).then(
        () => true,
        () => false,
      );
      if (exists) await jsm.streams.purge(name);
      else await jsm.streams.add({ name, subjects: [subject] });
    }
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    const records: Array<[string, string]> = [
      ...data.inventory.map((u): [string, string] => [STREAMS.inventory.subject, JSON.stringify(u)]),
      ...data.behaviour.map((raw): [string, string] => [STREAMS.behaviour.subject, raw]),
      ...data.orders.map((o): [string, string] => [STREAMS.orders.subject, JSON.stringify(o)]),
    ];
    const began = Date.now();
    let pending: Promise<unknown>[] = [];
    for (const [n, [subject, payload]] of records.entries()) {
      pending.push(js.publish(subject, encoder.encode(payload)));
      if (pending.length >= 256) {
        await Promise.all(pending);
        pending = [];
      }
      if (options.rate !== undefined) {
        const due = began + (n * 1_000) / options.rate;
        if (due > Date.now()) {
          await Promise.all(pending);
          pending = [];
          await sleep(due - Date.now());
        }
      }
    }
    await Promise.all(pending);
    return data;
  } finally {
    await nc.close();
  }
}

function positiveInt(
  name: string,
  value: string | undefined,
  fallback: number | undefined,
): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`--${name} must be a positive integer, got '${value}'`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nats: { type: 'string', default: 'nats://127.0.0.1:4222' },
      seed: { type: 'string' },
      count: { type: 'string' },
      rate: { type: 'string' },
    },
  });
  const options: PublishOptions = {
    seed: positiveInt('seed', values.seed, 42)!,
    count: positiveInt('count', values.count, 5_000)!,
    rate: positiveInt('rate', values.rate, undefined),
  };
  const data = await publishGenerated(values.nats, options);
  const malformed = data.behaviour.filter((raw) => {
    try {
      JSON.parse(raw);
      return false;
    } catch {
      return true;
    }
  }).length;
  console.log(
    `published to ${values.nats} (seed ${options.seed}): ${data.behaviour.length} behaviour records ` +
      `(${malformed} not even JSON; more are invalid), ${data.orders.length} orders, ` +
      `${data.inventory.length} inventory updates`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
