/**
 * Fills the JetStream stream `sluice-events` (subjects `events.>`) with purchase events for
 * examples/windowed-events.ts: `{ user, amount, ts }`, event times over about a minute, out of order by
 * up to 2 s. Prints the total per user so the job's output can be checked.
 *
 *   npx tsx examples/publish-events.ts [natsUrl] [count]
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const url = process.argv[2] ?? 'nats://127.0.0.1:4222';
const count = Number(process.argv[3] ?? 10_000);
const nc = await connect({ servers: url });
const jsm = await jetstreamManager(nc);
try {
  await jsm.streams.info('sluice-events');
} catch {
  await jsm.streams.add({ name: 'sluice-events', subjects: ['events.>'] });
}
const js = jetstream(nc);
const start = Date.UTC(2026, 0, 1);
const totals = new Map<string, number>();
let seed = 42;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};
const pending: Promise<unknown>[] = [];
for (let i = 0; i < count; i++) {
  const user = `user-${Math.floor(random() * 10)}`;
  const amount = 1 + Math.floor(random() * 100);
  const ts = start + Math.floor((i * 60_000) / count) - Math.floor(random() * 2_000);
  totals.set(user, (totals.get(user) ?? 0) + amount);
  pending.push(js.publish(`events.${user}`, JSON.stringify({ user, amount, ts })));
  if (pending.length >= 500) await Promise.all(pending.splice(0));
}
await Promise.all(pending);
await nc.close();
console.log(`published ${count} events to stream sluice-events on ${url}`);
for (const [user, total] of [...totals].sort()) console.log(`  ${user}: ${total}`);
