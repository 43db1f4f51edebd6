/**
 * The Nexmark queries on Sluice's DataStream API, as `npm run bench:nexmark` runs them
 * (bench/jobs/nexmark.ts) and test/bench/nexmark.test.ts checks them against bench/nexmark/reference.ts.
 *
 * Promises:
 * - Each query reads the whole event stream (as Flink's runs do: the `bid` view is a filter on it) and
 *   returns the stream of its result rows, to be written into a sink by the caller:
 *   q0 pass-through of the bids; q1 bids with the price in euros (× 0.908); q2 bids whose auction is a
 *   multiple of 123 ({auction, price}); q5 per sliding window (10 s, every 2 s) the auctions with the
 *   most bids ({auction, num, windowEnd}); q7 per tumbling 10 s window the bids with the highest price;
 *   q11 per bidder and session (10 s gap) the number of bids ({bidder, bidCount, start, end});
 *   q3 the auctions of category 10 joined with their sellers from OR, ID or CA ({name, city, state, id}),
 *   a regular (unbounded) join: a KeyedCoProcessFunction keyed by person id keeps the person and the
 *   auctions waiting for it, so the rows are the same whatever the order the two inputs arrive in;
 *   q8 per tumbling 10 s window the persons who opened an auction in it ({id, name, starttime}), a window
 *   join of persons and auctions on person.id = auction.seller.
 * - Adding a query is one builder in `QUERIES` (and a reference in reference.ts): the bench, the job and
 *   the test pick up every entry of `QUERIES` by name.
 *
 * Differs from the SQL text of Nexmark: q5 and q7 compute the same rows in two keyed window stages
 * (per auction, then per window) instead of a join of an aggregate with itself; q7 takes the bids of the
 * window ([start, end)), where the SQL's BETWEEN also admits a bid at exactly `start - 1` ms; q5 rows
 * carry the window end, so a window's answer can be checked; q8 joins the raw persons and auctions of a
 * window, so a person with k auctions in a window gives k equal rows, where the SQL joins the window's
 * distinct persons with its distinct sellers (one row).
 *
 * Queries get the Sluice API as a parameter (`NexmarkApi`, see source.ts) for the classes they construct.
 */
import type {
  AggregateFunction,
  Collector,
  DataStream,
  KeyedCoProcessFunction,
  ListState,
  ProcessWindowContext,
  ProcessWindowFunction,
  ValueState,
} from 'sluice';
import { type Auction, type Bid, EventType, type NexmarkEvent, type Person } from './generator.js';
import type { NexmarkApi } from './source.js';

/** q1's row: a bid with its price converted to euros. */
export interface EuroBid {
  auction: number;
  bidder: number;
  price: number;
  dateTime: number;
  extra: string;
}

export interface AuctionPrice {
  auction: number;
  price: number;
}

/** q5's row: an auction with the most bids in the sliding window ending at `windowEnd`. */
export interface HotItem {
  auction: number;
  num: number;
  windowEnd: number;
}

/** q11's row: how many bids a bidder made in one session (bids at most 10 s apart), and its bounds. */
export interface UserSession {
  bidder: number;
  bidCount: number;
  /** The first bid's time. */
  start: number;
  /** The last bid's time + the gap (SESSION_END). */
  end: number;
}

/** q7's row: a bid with the highest price of its 10 s window. */
export interface HighestBid {
  auction: number;
  price: number;
  bidder: number;
  dateTime: number;
  extra: string;
}

/** q3's row: a seller from OR, ID or CA and one of their auctions of category 10. */
export interface LocalItem {
  name: string;
  city: string;
  state: string;
  id: number;
}

/** q8's row: a person who opened an auction in the tumbling window starting at `starttime`. */
export interface NewUser {
  id: number;
  name: string;
  starttime: number;
}

export const Q1_EURO_RATE = 0.908;
export const Q2_AUCTION_MODULUS = 123;
export const Q5_WINDOW_MS = 10_000;
export const Q5_SLIDE_MS = 2_000;
export const Q7_WINDOW_MS = 10_000;
export const Q11_SESSION_GAP_MS = 10_000;
export const Q3_CATEGORY = 10;
export const Q3_STATES: readonly string[] = ['OR', 'ID', 'CA'];
export const Q8_WINDOW_SECONDS = 10;

/** The bids of the event stream (Nexmark's `bid` view). */
function bids(events: DataStream<NexmarkEvent>): DataStream<Bid> {
  return events.flatMap<Bid>((e, out) => {
    if (e.type === EventType.BID) out.collect(e.bid);
  });
}

function persons(events: DataStream<NexmarkEvent>): DataStream<Person> {
  return events.flatMap<Person>((e, out) => {
    if (e.type === EventType.PERSON) out.collect(e.person);
  });
}

function auctions(events: DataStream<NexmarkEvent>): DataStream<Auction> {
  return events.flatMap<Auction>((e, out) => {
    if (e.type === EventType.AUCTION) out.collect(e.auction);
  });
}

/** The q3 row of a seller and one of their auctions. */
const localItem = (p: Person, a: Auction): LocalItem => ({
  name: p.name,
  city: p.city,
  state: p.state,
  id: a.id,
});

/**
 * q3's regular join per person id: input 1 the persons (at most one per id), input 2 their auctions. An
 * auction that comes before its seller waits in list state; the person's arrival emits and drops them.
 */
function localItemJoin(api: NexmarkApi): KeyedCoProcessFunction<number, Person, Auction, LocalItem> {
  let person: ValueState<Person>;
  let waiting: ListState<Auction>;
  return {
    open(ctx) {
      person = ctx.getState(new api.ValueStateDescriptor<Person>('q3-person'));
      waiting = ctx.getListState(new api.ListStateDescriptor<Auction>('q3-waiting-auctions'));
    },
    processElement1(p, _ctx, out) {
      person.update(p);
      for (const a of waiting.get()) out.collect(localItem(p, a));
      waiting.clear();
    },
    processElement2(a, _ctx, out) {
      const p = person.value();
      if (p === undefined) waiting.add(a);
      else out.collect(localItem(p, a));
    },
  };
}

/** A count of bids for an auction (in a window, once windowed). */
interface AuctionCount {
  auction: number;
  num: number;
}

/** Adds the window end to a window's count. */
const withWindowEnd: ProcessWindowFunction<AuctionCount, HotItem, number> = {
  process(_key: number, ctx: ProcessWindowContext, elements: AuctionCount[], out: Collector<HotItem>): void {
    for (const c of elements) out.collect({ auction: c.auction, num: c.num, windowEnd: ctx.window.end });
  },
};

/** The rows of one window whose count is the window's highest (all of them on a tie). */
const mostBids: ProcessWindowFunction<HotItem, HotItem, number> = {
  process(_key: number, _ctx: ProcessWindowContext, elements: HotItem[], out: Collector<HotItem>): void {
    let max = 0;
    for (const e of elements) if (e.num > max) max = e.num;
    for (const e of elements) if (e.num === max) out.collect(e);
  },
};

/** A count of bids by a bidder (in a session, once windowed). */
interface BidderCount {
  bidder: number;
  num: number;
}

/** Adds the session's bounds to its count. */
const sessionRow: ProcessWindowFunction<BidderCount, UserSession, number> = {
  process(
    _key: number,
    ctx: ProcessWindowContext,
    elements: BidderCount[],
    out: Collector<UserSession>,
  ): void {
    for (const c of elements) {
      out.collect({ bidder: c.bidder, bidCount: c.num, start: ctx.window.start, end: ctx.window.end });
    }
  },
};

/** The highest price seen and every bid at that price. */
interface MaxBids {
  price: number;
  bids: Bid[];
}

const maxBidsOf: AggregateFunction<Bid, MaxBids, MaxBids> = {
  createAccumulator: () => ({ price: -1, bids: [] }),
  add: (bid, acc) => {
    if (bid.price > acc.price) return { price: bid.price, bids: [bid] };
    if (bid.price === acc.price) acc.bids.push(bid);
    return acc;
  },
  getResult: (acc) => acc,
};

function mergeMaxBids(a: MaxBids, b: MaxBids): MaxBids {
  if (a.price !== b.price) return a.price > b.price ? a : b;
  return { price: a.price, bids: [...a.bids, ...b.bids] };
}

export type QueryBuilder = (api: NexmarkApi, events: DataStream<NexmarkEvent>) => DataStream<unknown>;

/** A query's result stream, for a sink that takes any row (DataStream<T> is invariant in T). */
const rows = <T>(stream: DataStream<T>): DataStream<unknown> => stream as unknown as DataStream<unknown>;

/** The queries the API can express now, by Nexmark's names. */
export const QUERIES = {
  /** Pass-through: every bid, unchanged. */
  q0: (_api, events) => rows(bids(events)),

  /** Currency conversion: each bid with its price in euros. */
  q1: (_api, events) =>
    rows(
      events.flatMap<EuroBid>((e, out) => {
        if (e.type !== EventType.BID) return;
        const b = e.bid;
        out.collect({
          auction: b.auction,
          bidder: b.bidder,
          price: Q1_EURO_RATE * b.price,
          dateTime: b.dateTime,
          extra: b.extra,
        });
      }),
    ),

  /** Selection: the bids of every 123rd auction. */
  q2: (_api, events) =>
    rows(
      events.flatMap<AuctionPrice>((e, out) => {
        if (e.type === EventType.BID && e.bid.auction % Q2_AUCTION_MODULUS === 0) {
          out.collect({ auction: e.bid.auction, price: e.bid.price });
        }
      }),
    ),

  /** Hot items: per sliding window (10 s every 2 s), the auctions with the most bids. */
  q5: (api, events) =>
    rows(
      events
        .flatMap<AuctionCount>((e, out) => {
          if (e.type === EventType.BID) out.collect({ auction: e.bid.auction, num: 1 });
        })
        .keyBy((c) => c.auction)
        .window(api.SlidingEventTimeWindows.of(Q5_WINDOW_MS, Q5_SLIDE_MS))
        .reduce<HotItem>((a, b) => ({ auction: a.auction, num: a.num + b.num }), withWindowEnd)
        .uid('q5-counts')
        // A window's counts carry its last timestamp (windowEnd - 1): they all fall in the tumbling window
        // of one slide that ends at windowEnd.
        .keyBy((h) => h.windowEnd)
        .window(api.TumblingEventTimeWindows.of(Q5_SLIDE_MS))
        .process(mostBids)
        .uid('q5-max'),
    ),

  /** Highest bid: per tumbling 10 s window, the bids with the highest price. */
  q7: (api, events) =>
    rows(
      bids(events)
        .keyBy((b) => b.auction)
        .window(api.TumblingEventTimeWindows.of(Q7_WINDOW_MS))
        .aggregate(maxBidsOf)
        .uid('q7-per-auction')
        .keyBy((m) => Math.floor(m.bids[0]!.dateTime / Q7_WINDOW_MS))
        .window(api.TumblingEventTimeWindows.of(Q7_WINDOW_MS))
        .reduce(mergeMaxBids)
        .uid('q7-per-window')
        .flatMap<HighestBid>((m, out) => {
          for (const b of m.bids) {
            out.collect({
              auction: b.auction,
              price: b.price,
              bidder: b.bidder,
              dateTime: b.dateTime,
              extra: b.extra,
            });
          }
        }),
    ),

  /** User sessions: per bidder, the bids of each session (a session ends after 10 s without a bid). */
  q11: (api, events) =>
    rows(
      events
        .flatMap<BidderCount>((e, out) => {
          if (e.type === EventType.BID) out.collect({ bidder: e.bid.bidder, num: 1 });
        })
        .keyBy((c) => c.bidder)
        .window(api.EventTimeSessionWindows.withGap(Q11_SESSION_GAP_MS))
        .reduce<UserSession>((a, b) => ({ bidder: a.bidder, num: a.num + b.num }), sessionRow)
        .uid('q11-sessions'),
    ),

  /** Local item suggestion: auctions of category 10 with their sellers from OR, ID or CA (regular join). */
  q3: (api, events) =>
    rows(
      persons(events)
        .filter((p) => Q3_STATES.includes(p.state))
        .keyBy((p) => p.id)
        .connect(
          auctions(events)
            .filter((a) => a.category === Q3_CATEGORY)
            .keyBy((a) => a.seller),
        )
        .process<LocalItem>(localItemJoin(api))
        .uid('q3-join'),
    ),

  /** Monitor new users: per tumbling 10 s window, the persons who opened an auction in it (window join). */
  q8: (api, events) => {
    const windowMs = api.Time.seconds(Q8_WINDOW_SECONDS);
    return rows(
      persons(events)
        .join(auctions(events))
        .where((p) => p.id)
        .equalTo((a) => a.seller)
        .window(api.TumblingEventTimeWindows.of(windowMs))
        .apply<NewUser>((p) => ({
          id: p.id,
          name: p.name,
          // Both elements are in the window: its start is the person's time rounded down to the size.
          starttime: p.dateTime - (p.dateTime % windowMs),
        }))
        .uid('q8-join'),
    );
  },
} satisfies Record<string, QueryBuilder>;

export type QueryName = keyof typeof QUERIES;

export const QUERY_NAMES = Object.keys(QUERIES) as QueryName[];

/** Flink 1.13's published throughput per core (Nexmark README: 8 single-slot TaskManagers, RocksDB). */
export const FLINK_PER_CORE: Record<QueryName, number> = {
  q0: 155_020,
  q1: 157_940,
  q2: 175_210,
  q3: 152_120,
  q5: 22_140,
  q7: 12_330,
  q8: 146_140,
  q11: 39_700,
};

export function isQueryName(name: string): name is QueryName {
  return Object.hasOwn(QUERIES, name);
}
