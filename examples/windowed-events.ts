/**
 * Event-time windows over a JetStream stream: the purchases of each user summed in tumbling 10-second
 * windows. Event time is the events' `ts`; watermarks allow events to come up to 2 s out of order. The
 * source is bounded: it reads what the stream holds when the job starts, and the last windows fire when
 * the input ends. Prints `{ user, windowEnd, total, count }` per user and window.
 *
 *   deploy/nats/nats-dev.sh start                  # NATS with JetStream on 127.0.0.1:4222
 *   npm run build                                  # 'sluice' resolves to the built API
 *   npx tsx examples/publish-events.ts             # fills the stream sluice-events, prints the expected totals
 *   npx tsx examples/windowed-events.ts            # runs the job here, on a private local cluster
 *
 * or on a session cluster (print output is then in the TaskManagers' logs):
 *
 *   node bin/sluice.js cluster start --taskmanagers 2 --slots 2
 *   node bin/sluice.js run -p 2 examples/windowed-events.ts nats://127.0.0.1:4222
 *
 * The argument is the NATS that holds the stream (default nats://127.0.0.1:4222); it need not be the
 * cluster's own NATS.
 */
import {
  JetStreamSource,
  type ProcessWindowFunction,
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

/** A running sum of purchases. */
interface Sums {
  user: string;
  total: number;
  count: number;
}

interface WindowTotal {
  user: string;
  windowEnd: string;
  total: number;
  count: number;
}

const natsUrl = process.argv[2];
const env = StreamExecutionEnvironment.getExecutionEnvironment();

/** Gets the window's one pre-reduced value, and adds the key and the window's end. */
const withWindow: ProcessWindowFunction<Sums, WindowTotal, string> = {
  process(user, context, [sum], out) {
    out.collect({
      user,
      windowEnd: new Date(context.window.end).toISOString(),
      total: sum!.total,
      count: sum!.count,
    });
  },
};

env
  .fromSource(
    new JetStreamSource<Purchase>({ stream: 'sluice-events', servers: natsUrl ?? 'nats://127.0.0.1:4222' }),
    WatermarkStrategy.forBoundedOutOfOrderness<Purchase>(2_000).withTimestampAssigner((e) => e.ts),
    'Source: sluice-events',
  )
  .map((e): Sums => ({ user: e.user, total: e.amount, count: 1 }))
  .name('To partial sums')
  .keyBy((p) => p.user)
  .window(TumblingEventTimeWindows.of(Time.seconds(10)))
  .reduce((a, b) => ({ user: a.user, total: a.total + b.total, count: a.count + b.count }), withWindow)
  .name('10 s totals')
  .print();

await env.execute('Windowed events');
