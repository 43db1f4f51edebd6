/**
 * The e-commerce example's data model, shared by the generator, the application and its test: record
 * types, stream names, the validation of raw user behaviour events, the seeded generator of all three
 * inputs, and a plain-JS reference of what the four jobs must produce from them.
 *
 * Promises: `generateData(seed, count)` returns the same records for the same arguments (a linear
 * congruential generator, a fixed start time); event times are out of order by less than
 * `MAX_DISORDER_MS`, so a watermark that allows `WATERMARK_BOUND_MS` never makes a record late.
 * `parseBehaviour` accepts exactly the well-formed events and names why it refuses the rest.
 * Refuses: nothing here talks to NATS, Redis or Sluice (pure functions only).
 */

export const BehaviourType = { VIEW: 'view', CART: 'cart', PURCHASE: 'purchase' } as const;
export type BehaviourType = (typeof BehaviourType)[keyof typeof BehaviourType];

export interface BehaviourEvent {
  type: BehaviourType;
  userId: string;
  itemId: string;
  categoryId: string;
  ts: number;
}

export interface Order {
  orderId: string;
  userId: string;
  itemId: string;
  amount: number;
  ts: number;
}

export interface InventoryUpdate {
  itemId: string;
  stock: number;
  ts: number;
}

/** A raw behaviour record the cleaning job refused, with the reason. */
export interface BadRecord {
  raw: string;
  reason: string;
}

export interface HotItems {
  categoryId: string;
  windowEnd: number;
  items: Array<{ itemId: string; count: number }>;
}

export type Statistic =
  | { kind: 'activeUsers'; windowEnd: number; users: number }
  | { kind: 'conversion'; orderId: string; userId: string; itemId: string; viewTs: number; orderTs: number };

export type Alert =
  | { kind: 'lowStock'; itemId: string; stock: number; ts: number }
  | { kind: 'trafficSpike'; windowEnd: number; events: number };

/** JetStream streams (name → subject). The inputs play Kafka topics; the outputs are streams too. */
export const STREAMS = {
  behaviour: { name: 'ecom-behaviour', subject: 'ecom.behaviour' },
  orders: { name: 'ecom-orders', subject: 'ecom.orders' },
  inventory: { name: 'ecom-inventory', subject: 'ecom.inventory' },
  clean: { name: 'ecom-clean', subject: 'ecom.clean' },
  bad: { name: 'ecom-bad', subject: 'ecom.bad' },
  stats: { name: 'ecom-stats', subject: 'ecom.stats' },
  alerts: { name: 'ecom-alerts', subject: 'ecom.alerts' },
} as const;

/** 2026-01-01T12:00:00Z. */
export const START = Date.UTC(2026, 0, 1, 12, 0, 0);
export const MAX_DISORDER_MS = 1_000;
export const WATERMARK_BOUND_MS = 2_000;
export const HOT_WINDOW_MS = 60_000;
export const HOT_SLIDE_MS = 30_000;
export const HOT_TOP_N = 3;
export const ACTIVE_USERS_WINDOW_MS = 60_000;
/** An order converts a view of the same user and item up to this long before it. */
export const CONVERSION_WITHIN_MS = 60_000;
export const SPIKE_WINDOW_MS = 10_000;
export const SPIKE_THRESHOLD = 200;
export const LOW_STOCK_THRESHOLD = 2;
export const REDIS_HOT_PREFIX = 'ecom:hot';

const USERS = 50;
const ITEMS = 40;
const CATEGORIES = 5;
/** Normal time between two behaviour events, and during the traffic spike. */
const STEP_MS = 100;
const SPIKE_STEP_MS = 10;
/** Every this many behaviour events, one malformed record. */
const MALFORMED_EVERY = 50;

export function categoryOf(itemId: string): string {
  return `c${Number(itemId.slice(1)) % CATEGORIES}`;
}

export function hotItemsKey(h: Pick<HotItems, 'categoryId' | 'windowEnd'>): string {
  return `${REDIS_HOT_PREFIX}:${h.categoryId}:${new Date(h.windowEnd).toISOString()}`;
}

const TYPES: ReadonlySet<string> = new Set(Object.values(BehaviourType));

/** Parses and validates one raw behaviour record: the event, or why it is refused. */
export function parseBehaviour(raw: string): BehaviourEvent | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { error: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null) return { error: 'not an object' };
  const e = value as Record<string, unknown>;
  if (typeof e.type !== 'string' || !TYPES.has(e.type)) return { error: `unknown type ${String(e.type)}` };
  for (const field of ['userId', 'itemId', 'categoryId'] as const) {
    if (typeof e[field] !== 'string' || e[field] === '') return { error: `missing ${field}` };
  }
  if (typeof e.ts !== 'number' || !Number.isSafeInteger(e.ts) || e.ts < 0) return { error: 'bad ts' };
  return {
    type: e.type as BehaviourType,
    userId: e.userId as string,
    itemId: e.itemId as string,
    categoryId: e.categoryId as string,
    ts: e.ts,
  };
}

export interface GeneratedData {
  /** Raw payloads of the behaviour stream, malformed ones included. */
  behaviour: string[];
  orders: Order[];
  inventory: InventoryUpdate[];
}

/** The three inputs for `count` behaviour records (about 2% malformed), deterministic in `seed`. */
export function generateData(seed: number, count: number): GeneratedData {
  if (!Number.isSafeInteger(count) || count < 1)
    throw new RangeError(`count must be an integer >= 1, got ${count}`);
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  const pick = (n: number) => Math.floor(random() * n);
  const behaviour: string[] = [];
  const orders: Order[] = [];
  const inventory: InventoryUpdate[] = [];
  for (let i = 0; i < ITEMS; i++) inventory.push({ itemId: `i${i}`, stock: 4 + pick(8), ts: START - 1_000 });
  const recentViews: Array<{ userId: string; itemId: string }> = [];
  const spikeFrom = Math.floor(count * 0.4);
  const spikeTo = Math.floor(count * 0.5);
  let t = START;
  for (let k = 0; k < count; k++) {
    t += k >= spikeFrom && k < spikeTo ? SPIKE_STEP_MS : STEP_MS;
    const ts = t - pick(MAX_DISORDER_MS);
    if (k % MALFORMED_EVERY === MALFORMED_EVERY - 1) {
      const bad = [
        '{"type":"view","userId":',
        JSON.stringify({ type: 'view', userId: `u${pick(USERS)}`, categoryId: 'c1', ts }),
        JSON.stringify({ type: 'click', userId: 'u1', itemId: 'i1', categoryId: 'c1', ts }),
        JSON.stringify({ type: 'cart', userId: 'u2', itemId: 'i2', categoryId: 'c2', ts: -5 }),
      ];
      behaviour.push(bad[((k / MALFORMED_EVERY) % bad.length) | 0]!);
      continue;
    }
    const r = random();
    let userId: string;
    let itemId: string;
    let type: BehaviourType;
    if (r < 0.12 && recentViews.length > 0) {
      // A purchase of something viewed lately: an order follows, which the conversion join finds.
      ({ userId, itemId } = recentViews[pick(recentViews.length)]!);
      type = BehaviourType.PURCHASE;
      orders.push({ orderId: `o${k}`, userId, itemId, amount: 5 + pick(200), ts });
    } else {
      userId = `u${pick(USERS)}`;
      // Items with small numbers are more popular: a skewed distribution makes hot items stand out.
      itemId = `i${Math.floor(random() * random() * ITEMS)}`;
      type = r < 0.3 ? BehaviourType.CART : BehaviourType.VIEW;
      if (type === BehaviourType.VIEW) {
        recentViews.push({ userId, itemId });
        if (recentViews.length > 30) recentViews.shift();
      }
    }
    behaviour.push(JSON.stringify({ type, userId, itemId, categoryId: categoryOf(itemId), ts }));
    if (k % 400 === 399) inventory.push({ itemId: `i${pick(ITEMS)}`, stock: 6, ts });
  }
  return { behaviour, orders, inventory };
}

/** What the four jobs must produce from `data`, computed with plain loops (the test's reference). */
export interface Expected {
  clean: BehaviourEvent[];
  bad: BadRecord[];
  hotItems: Map<string, HotItems>;
  stats: Statistic[];
  alerts: Alert[];
}

/** Top items by count (ties: the smaller item id first). */
export function topItems(counts: Map<string, number>): HotItems['items'] {
  return [...counts]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, HOT_TOP_N)
    .map(([itemId, count]) => ({ itemId, count }));
}

/** The ends of the sliding windows that contain `ts` (size and slide as the hot-items job). */
function slidingWindowEnds(ts: number, size: number, slide: number): number[] {
  const ends: number[] = [];
  for (let start = ts - (((ts % slide) + slide) % slide); start > ts - size; start -= slide)
    ends.push(start + size);
  return ends;
}

function tumblingEnd(ts: number, size: number): number {
  return ts - (((ts % size) + size) % size) + size;
}

export function expectedResults(data: GeneratedData): Expected {
  const clean: BehaviourEvent[] = [];
  const bad: BadRecord[] = [];
  for (const raw of data.behaviour) {
    const parsed = parseBehaviour(raw);
    if ('error' in parsed) bad.push({ raw, reason: parsed.error });
    else clean.push(parsed);
  }

  // (2) hot items per category and sliding window
  const hotItems = new Map<string, HotItems>();
  const perWindow = new Map<string, Map<string, number>>();
  for (const e of clean) {
    for (const windowEnd of slidingWindowEnds(e.ts, HOT_WINDOW_MS, HOT_SLIDE_MS)) {
      const key = hotItemsKey({ categoryId: e.categoryId, windowEnd });
      const counts = perWindow.get(key) ?? new Map<string, number>();
      counts.set(e.itemId, (counts.get(e.itemId) ?? 0) + 1);
      perWindow.set(key, counts);
      hotItems.set(key, { categoryId: e.categoryId, windowEnd, items: [] });
    }
  }
  for (const [key, counts] of perWindow) hotItems.get(key)!.items = topItems(counts);

  // (3) active users per tumbling window; conversions: view → order of the same user and item within the bound
  const stats: Statistic[] = [];
  const users = new Map<number, Set<string>>();
  for (const e of clean) {
    const end = tumblingEnd(e.ts, ACTIVE_USERS_WINDOW_MS);
    const set = users.get(end) ?? new Set<string>();
    set.add(e.userId);
    users.set(end, set);
  }
  for (const [windowEnd, set] of users) stats.push({ kind: 'activeUsers', windowEnd, users: set.size });
  for (const v of clean) {
    if (v.type !== BehaviourType.VIEW) continue;
    for (const o of data.orders) {
      if (
        o.userId === v.userId &&
        o.itemId === v.itemId &&
        o.ts >= v.ts &&
        o.ts <= v.ts + CONVERSION_WITHIN_MS
      ) {
        stats.push({
          kind: 'conversion',
          orderId: o.orderId,
          userId: o.userId,
          itemId: o.itemId,
          viewTs: v.ts,
          orderTs: o.ts,
        });
      }
    }
  }

  // (4) low stock: per item in event-time order (an inventory update before an order at the same time)
  const alerts: Alert[] = [];
  const timeline = [
    ...data.inventory.map((u) => ({ ts: u.ts, rank: 0, id: '', itemId: u.itemId, stock: u.stock })),
    ...data.orders.map((o) => ({ ts: o.ts, rank: 1, id: o.orderId, itemId: o.itemId, stock: 0 })),
  ].sort((a, b) => a.ts - b.ts || a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const stock = new Map<string, { stock: number; alerted: boolean }>();
  for (const x of timeline) {
    const s = stock.get(x.itemId) ?? { stock: 0, alerted: false };
    if (x.rank === 0) {
      s.stock = x.stock;
      if (s.stock > LOW_STOCK_THRESHOLD) s.alerted = false;
    } else {
      s.stock -= 1;
      if (s.stock <= LOW_STOCK_THRESHOLD && !s.alerted) {
        s.alerted = true;
        alerts.push({ kind: 'lowStock', itemId: x.itemId, stock: s.stock, ts: x.ts });
      }
    }
    stock.set(x.itemId, s);
  }
  // traffic spikes: clean events per tumbling window above the threshold
  const traffic = new Map<number, number>();
  for (const e of clean) {
    const end = tumblingEnd(e.ts, SPIKE_WINDOW_MS);
    traffic.set(end, (traffic.get(end) ?? 0) + 1);
  }
  for (const [windowEnd, events] of traffic) {
    if (events > SPIKE_THRESHOLD) alerts.push({ kind: 'trafficSpike', windowEnd, events });
  }
  return { clean, bad, hotItems, stats, alerts };
}
