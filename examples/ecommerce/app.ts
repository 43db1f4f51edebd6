/**
 * The e-commerce application: one main, four jobs (the application that motivates application mode).
 *
 *  1. clean — parse and validate the raw user behaviour events; good ones to `ecom-clean`, bad ones through
 *     a side output to `ecom-bad`. Bounded (a batch-like first stage over what the generator published) and
 *     run with a sequential `execute()`: the next jobs read its output.
 *  2. hot items — per category, the top items of sliding 60 s windows (every 30 s), written to Redis with
 *     the Redis sink: `SET ecom:hot:<category>:<window end ISO> <JSON top items>`.       (`executeAsync()`)
 *  3. statistics — active users per 60 s window, and conversions (views interval-joined with the orders of
 *     the same user and item within 60 s after the view) into `ecom-stats`.              (`executeAsync()`)
 *  4. alerts — low stock (inventory updates connected with orders, stock in keyed state of a
 *     KeyedCoProcessFunction) and traffic spikes (events per 10 s window) into `ecom-alerts`. (`executeAsync()`)
 *
 * Every job reads its inputs bounded (the records in the streams when it starts) in event time, so each
 * run over the same generated input gives the same results (see model.ts for the reference).
 *
 *   sluice run-application examples/ecommerce/app.ts [natsUrl] [redisUrl]
 *   sluice run examples/ecommerce/app.ts [natsUrl] [redisUrl]                 (on a session cluster)
 *
 * Defaults: nats://127.0.0.1:4222 (the NATS that holds the streams) and redis://127.0.0.1:6379.
 */
import {
  type Collector,
  JetStreamSink,
  JetStreamSource,
  type KeyedCoProcessFunction,
  type KeyedProcessContext,
  type ListState,
  ListStateDescriptor,
  OutputTag,
  RedisCommand,
  RedisCommandDescription,
  RedisSink,
  type RuntimeContext,
  SlidingEventTimeWindows,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  type ValueState,
  ValueStateDescriptor,
  WatermarkStrategy,
} from 'sluice';
import {
  ACTIVE_USERS_WINDOW_MS,
  type Alert,
  type BadRecord,
  type BehaviourEvent,
  BehaviourType,
  CONVERSION_WITHIN_MS,
  HOT_SLIDE_MS,
  HOT_WINDOW_MS,
  type HotItems,
  hotItemsKey,
  type InventoryUpdate,
  LOW_STOCK_THRESHOLD,
  type Order,
  parseBehaviour,
  SPIKE_THRESHOLD,
  SPIKE_WINDOW_MS,
  STREAMS,
  type Statistic,
  topItems,
  WATERMARK_BOUND_MS,
} from './model.js';

const natsUrl = process.argv[2] ?? 'nats://127.0.0.1:4222';
const redisUrl = process.argv[3] ?? 'redis://127.0.0.1:6379';
const env = StreamExecutionEnvironment.getExecutionEnvironment();

function source<T>(stream: (typeof STREAMS)[keyof typeof STREAMS], name: string, ts: (value: T) => number) {
  return env.fromSource(
    new JetStreamSource<T>({ stream: stream.name, servers: natsUrl }),
    WatermarkStrategy.forBoundedOutOfOrderness<T>(WATERMARK_BOUND_MS).withTimestampAssigner(ts),
    `Source: ${name}`,
  );
}

function sink<T>(stream: (typeof STREAMS)[keyof typeof STREAMS]) {
  return new JetStreamSink<T>({ subject: stream.subject, servers: natsUrl });
}

// ---- Job 1: clean the user behaviour events (bounded, sequential) ----
const BAD = new OutputTag<BadRecord>('bad-behaviour');
const decoder = new TextDecoder();
const cleaned = env
  .fromSource(
    new JetStreamSource<string>({
      stream: STREAMS.behaviour.name,
      servers: natsUrl,
      deserialize: (data) => decoder.decode(data),
    }),
    WatermarkStrategy.noWatermarks<string>(),
    'Source: raw behaviour',
  )
  .setParallelism(1)
  .process<BehaviourEvent>({
    processElement(raw, ctx, out) {
      const parsed = parseBehaviour(raw);
      if ('error' in parsed) ctx.output(BAD, { raw, reason: parsed.error });
      else out.collect(parsed);
    },
  })
  .name('Parse and validate')
  .setParallelism(1);
// Parallelism 1 keeps the cleaned stream in the input's order: its disorder stays within the watermark bound.
cleaned.sinkTo(sink<BehaviourEvent>(STREAMS.clean)).name('Sink: ecom-clean').setParallelism(1);
cleaned.getSideOutput(BAD).sinkTo(sink<BadRecord>(STREAMS.bad)).name('Sink: ecom-bad').setParallelism(1);
await env.execute('ecommerce 1: clean behaviour events');

// ---- Job 2: hot items per category → Redis ----
source<BehaviourEvent>(STREAMS.clean, 'ecom-clean', (e) => e.ts)
  .keyBy((e) => e.categoryId)
  .window(SlidingEventTimeWindows.of(HOT_WINDOW_MS, HOT_SLIDE_MS))
  .process<HotItems>({
    process(categoryId, ctx, events, out) {
      const counts = new Map<string, number>();
      for (const e of events) counts.set(e.itemId, (counts.get(e.itemId) ?? 0) + 1);
      out.collect({ categoryId, windowEnd: ctx.window.end, items: topItems(counts) });
    },
  })
  .name('Top items per category')
  .sinkTo(
    new RedisSink<HotItems>(
      { url: redisUrl, deliveryGuarantee: 'AT_LEAST_ONCE' },
      {
        getCommandDescription: () => new RedisCommandDescription(RedisCommand.SET),
        getKeyFromData: (h) => hotItemsKey(h),
        getValueFromData: (h) => JSON.stringify(h.items),
      },
    ),
  )
  .name('Sink: Redis hot items');
const hotItemsJob = await env.executeAsync('ecommerce 2: hot items');

// ---- Job 3: statistics (active users, conversions) ----
const behaviour3 = source<BehaviourEvent>(STREAMS.clean, 'ecom-clean', (e) => e.ts);
const activeUsers = behaviour3
  .keyBy(() => 'all')
  .window(TumblingEventTimeWindows.of(ACTIVE_USERS_WINDOW_MS))
  .process<Statistic>({
    process(_key, ctx, events, out) {
      const users = new Set(events.map((e) => e.userId)).size;
      out.collect({ kind: 'activeUsers', windowEnd: ctx.window.end, users });
    },
  })
  .name('Active users');
const conversions = behaviour3
  .filter((e) => e.type === BehaviourType.VIEW)
  .keyBy((v) => `${v.userId}/${v.itemId}`)
  .intervalJoin(
    source<Order>(STREAMS.orders, 'ecom-orders', (o) => o.ts).keyBy((o) => `${o.userId}/${o.itemId}`),
  )
  .between(0, CONVERSION_WITHIN_MS)
  .process<Statistic>({
    processElement(view, order, _ctx, out) {
      out.collect({
        kind: 'conversion',
        orderId: order.orderId,
        userId: order.userId,
        itemId: order.itemId,
        viewTs: view.ts,
        orderTs: order.ts,
      });
    },
  })
  .name('Conversions (view → order)');
activeUsers.union(conversions).sinkTo(sink<Statistic>(STREAMS.stats)).name('Sink: ecom-stats');
const statisticsJob = await env.executeAsync('ecommerce 3: statistics');

// ---- Job 4: alerts (low stock, traffic spikes) ----
type StockEvent = { kind: 'inventory'; update: InventoryUpdate } | { kind: 'order'; order: Order };

/**
 * Stock per item: inventory updates set it, orders take one each. Both inputs arrive in no fixed order, so
 * each is buffered until the watermark passes its time and then applied in event-time order (an update
 * before an order at the same time): the alerts do not depend on how the two streams interleave.
 */
class LowStockAlerts implements KeyedCoProcessFunction<string, InventoryUpdate, Order, Alert> {
  stock!: ValueState<number>;
  alerted!: ValueState<boolean>;
  buffered!: ListState<StockEvent>;

  open(ctx: RuntimeContext) {
    this.stock = ctx.getState(new ValueStateDescriptor<number>('stock', 0));
    this.alerted = ctx.getState(new ValueStateDescriptor<boolean>('alerted', false));
    this.buffered = ctx.getListState(new ListStateDescriptor<StockEvent>('buffered'));
  }

  processElement1(update: InventoryUpdate, ctx: KeyedProcessContext<string>) {
    this.buffered.add({ kind: 'inventory', update });
    ctx.timerService().registerEventTimeTimer(update.ts);
  }

  processElement2(order: Order, ctx: KeyedProcessContext<string>) {
    this.buffered.add({ kind: 'order', order });
    ctx.timerService().registerEventTimeTimer(order.ts);
  }

  onTimer(timestamp: number, _ctx: unknown, out: Collector<Alert>) {
    const all = this.buffered.get();
    const time = (e: StockEvent) => (e.kind === 'inventory' ? e.update.ts : e.order.ts);
    const due = all
      .filter((e) => time(e) <= timestamp)
      .sort((a, b) => {
        const byTime = time(a) - time(b);
        if (byTime !== 0) return byTime;
        if (a.kind !== b.kind) return a.kind === 'inventory' ? -1 : 1;
        const [x, y] = [a.kind === 'order' ? a.order.orderId : '', b.kind === 'order' ? b.order.orderId : ''];
        return x < y ? -1 : x > y ? 1 : 0;
      });
    this.buffered.update(all.filter((e) => time(e) > timestamp));
    for (const e of due) {
      if (e.kind === 'inventory') {
        this.stock.update(e.update.stock);
        if (e.update.stock > LOW_STOCK_THRESHOLD) this.alerted.update(false);
        continue;
      }
      const left = this.stock.value()! - 1;
      this.stock.update(left);
      if (left <= LOW_STOCK_THRESHOLD && !this.alerted.value()) {
        this.alerted.update(true);
        out.collect({ kind: 'lowStock', itemId: e.order.itemId, stock: left, ts: e.order.ts });
      }
    }
  }
}

const lowStock = source<InventoryUpdate>(STREAMS.inventory, 'ecom-inventory', (u) => u.ts)
  .keyBy((u) => u.itemId)
  .connect(source<Order>(STREAMS.orders, 'ecom-orders', (o) => o.ts).keyBy((o) => o.itemId))
  .process<Alert, string>(new LowStockAlerts())
  .name('Low stock');
const spikes = source<BehaviourEvent>(STREAMS.clean, 'ecom-clean', (e) => e.ts)
  .keyBy(() => 'all')
  .window(TumblingEventTimeWindows.of(SPIKE_WINDOW_MS))
  .process<Alert>({
    process(_key, ctx, events, out) {
      if (events.length > SPIKE_THRESHOLD) {
        out.collect({ kind: 'trafficSpike', windowEnd: ctx.window.end, events: events.length });
      }
    },
  })
  .name('Traffic spikes');
lowStock.union(spikes).sinkTo(sink<Alert>(STREAMS.alerts)).name('Sink: ecom-alerts');
const alertsJob = await env.executeAsync('ecommerce 4: alerts');

await Promise.all([
  hotItemsJob.getJobExecutionResult(),
  statisticsJob.getJobExecutionResult(),
  alertsJob.getJobExecutionResult(),
]);
