/**
 * Event-time windows over a JetStream stream: purchases per user in tumbling 10-second windows, with
 * watermarks that allow events to arrive up to 2 s late.
 *
 *   deploy/nats/nats-dev.sh start                       # NATS with JetStream on 127.0.0.1:4222
 *   npx tsx examples/publish-events.ts                  # fills the stream sluice-events
 *   npx tsx examples/windowed-events.ts                 # runs here, on a local cluster
 *   bin/sluice.js run -p 2 examples/windowed-events.ts  # or on a running cluster
 *
 * The argument is the NATS URL of the stream (default nats://127.0.0.1:4222).
 */
import {
  JetStreamSource,
  StreamExecutionEnvironment,
  Time,
  TumblingEventTimeWindows,
  WatermarkStrategy,
} from 'sluice';

interface Purchase {
  user: string;
  amount: number;
  ts: number;
}

const url = process.argv[2] ?? 'nats://127.0.0.1:4222';
const env = StreamExecutionEnvironment.getExecutionEnvironment();

env
  .fromSource(
    new JetStreamSource<Purchase>({ stream: 'sluice-events', servers: url }),
    WatermarkStrategy.forBoundedOutOfOrderness<Purchase>(2_000).withTimestampAssigner((p) => p.ts),
    'Source: purchases',
  )
  .keyBy((p) => p.user)
  .window(TumblingEventTimeWindows.of(Time.seconds(10)))
  .aggregate({
    createAccumulator: () => ({ user: '', total: 0, count: 0 }),
    add: (p: Purchase, acc: { user: string; total: number; count: number }) => ({
      user: p.user,
      total: acc.total + p.amount,
      count: acc.count + 1,
    }),
    getResult: (acc) => acc,
  })
  .name('10 s windows')
  .print();

await env.execute('windowed purchases');
