/**
 * Helpers for the JetStream connector tests: publish JSON records, read a stream back.
 */
import { type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

const enc = new TextEncoder();
const dec = new TextDecoder();

export async function createStream(nc: NatsConnection, name: string, subjects: string[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects });
}

/** Publishes each value as JSON (on `subject(value, i)`), waiting for the acks in batches. */
export async function publishJson<T>(
  nc: NatsConnection,
  values: T[],
  subject: (value: T, index: number) => string,
): Promise<void> {
  const js = jetstream(nc);
  let pending: Promise<unknown>[] = [];
  for (const [i, value] of values.entries()) {
    pending.push(js.publish(subject(value, i), enc.encode(JSON.stringify(value))));
    if (pending.length >= 200) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
}

/** Every message of the stream, in sequence order. */
export async function readStream(nc: NatsConnection, stream: string): Promise<JsMsg[]> {
  const jsm = await jetstreamManager(nc);
  const total = (await jsm.streams.info(stream)).state.messages;
  const out: JsMsg[] = [];
  if (total === 0) return out;
  const consumer = await jetstream(nc).consumers.get(stream);
  try {
    while (out.length < total) {
      const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
      let got = 0;
      for await (const m of batch) {
        out.push(m);
        got++;
        if (out.length === total) break;
      }
      batch.stop();
      if (got === 0) throw new Error(`read ${out.length} of ${total} messages of ${stream}`);
    }
  } finally {
    await consumer.delete().catch(() => {});
  }
  return out;
}

export function json<T>(m: JsMsg): T {
  return JSON.parse(dec.decode(m.data)) as T;
}

export async function consumerCount(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(stream)).state.consumer_count;
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
