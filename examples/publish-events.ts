/**
 * Fills the JetStream stream `sluice-events` (subjects `events.>`) with purchase events for
 * examples/windowed-events.ts: JSON `{ user, amount, ts }` on `events.<user>`, event times spread over
 * about a minute and out of order by up to 2 s. The stream is created when missing and emptied when it
 * exists, so it holds exactly these events. The events are the same on every run (a seeded generator and a
 * fixed start time), and what the job must compute is printed: totals per user and per 10 s window.
 *
 *   npx tsx examples/publish-events.ts [natsUrl] [count]    # default nats://127.0.0.1:4222, 10000 events
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const STREAM = 'sluice-events';
const USERS = 8;
const SPAN_MS = 60_000;
const MAX_DISORDER_MS = 2_000;
const WINDOW_MS = 10_000;
/** 2026-01-01T12:00:00Z: a round time, so the windows are easy to read. */
const START = Date.UTC(2026, 0, 1, 12, 0, 0);

const url = process.argv[2] ?? 'nats://127.0.0.1:4222';
const count = Number(process.argv[3] ?? 10_000);
if (!Number.isInteger(count) || count < 1)
  throw new Error(`count must be a positive integer: ${process.argv[3]}`);

// A small linear congruential generator: the same events on every run.
let seed = 42;
const random = (): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};

const nc = await connect({ servers: url });
try {
  const jsm = await jetstreamManager(nc);
  const existing = await jsm.streams.info(STREAM).catch(() => undefined);
  if (existing === undefined) {
    await jsm.streams.add({ name: STREAM, subjects: ['events.>'] });
    console.log(`created stream ${STREAM} (subjects events.>) on ${url}`);
  } else {
    const { purged } = await jsm.streams.purge(STREAM);
    console.log(`stream ${STREAM} exists on ${url}: purged ${purged} old messages`);
  }

  const js = jetstream(nc);
  const perUser = new Map<string, number>();
  const perWindow = new Map<string, number>();
  let total = 0;
  let pending: Promise<unknown>[] = [];
  for (let k = 0; k < count; k++) {
    const user = `user-${Math.floor(random() * USERS)}`;
    const amount = 1 + Math.floor(random() * 100);
    // Event time advances with k; each event is up to 2 s older than that: out of order, never late for a
    // watermark that allows 2 s.
    const ts = START + Math.floor((k * SPAN_MS) / count) - Math.floor(random() * MAX_DISORDER_MS);
    perUser.set(user, (perUser.get(user) ?? 0) + amount);
    const windowEnd = ts - (ts % WINDOW_MS) + WINDOW_MS;
    const key = `${user} ${new Date(windowEnd).toISOString()}`;
    perWindow.set(key, (perWindow.get(key) ?? 0) + amount);
    total += amount;
    pending.push(js.publish(`events.${user}`, JSON.stringify({ user, amount, ts })));
    if (pending.length >= 500) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);

  console.log(
    `published ${count} events: ${perUser.size} users, event times from ${new Date(START - MAX_DISORDER_MS).toISOString()} ` +
      `to ${new Date(START + SPAN_MS).toISOString()}, out of order by up to ${MAX_DISORDER_MS} ms`,
  );
  console.log(`total amount ${total}; expected ${perWindow.size} window results (user × 10 s window)`);
  console.log("total per user (the sum of that user's window totals in the job's output):");
  for (const [user, sum] of [...perUser].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`  ${user}: ${sum}`);
  }
} finally {
  await nc.close();
}
