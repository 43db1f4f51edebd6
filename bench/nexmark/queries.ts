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
 *   q11 per bidder and session (10 s gap) the number of bids ({bidder, bidCount, start, end}).
 * - Pending (`PENDING_QUERIES`): q3 and q8 need a two-input join. When that API exists, add a builder to `QUERIES` (and a reference in reference.ts): the bench, the job and the
 *   test pick up every entry of `QUERIES` by name.
 *
 * Differs from the SQL text of Nexmark: q5 and q7 compute the same rows in two keyed window stages
 * (per auction, then per window) instead of a join of an aggregate with itself; q7 takes the bids of the
 * window ([start, end)), where the SQL's BETWEEN also admits a bid at exactly `start - 1` ms; q5 rows
 * carry the window end, so a window's answer can be checked.
 *
 * Queries get the Sluice API as a parameter (`NexmarkApi`, see source.ts) for the classes they construct.
 */
import type {
  AggregateFunction,
  Collector,
  DataStream,
  ProcessWindowContext,
  ProcessWindowFunction,
} from 'sluice';
import { type Bid, EventType, type NexmarkEvent } from './generator.js';
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

export const Q1_EURO_RATE = 0.908;
export const Q2_AUCTION_MODULUS = 123;
export const Q5_WINDOW_MS = 10_000;
export const Q5_SLIDE_MS = 2_000;
export const Q7_WINDOW_MS = 10_000;
export const Q11_SESSION_GAP_MS = 10_000;

/** The bids of the event stream (Nexmark's `bid` view). */
function bids(events: DataStream<NexmarkEvent>): DataStream<Bid> {
  return events.flatMap<Bid>((e, out) => {
    if (e.type === EventType.BID) out.collect(e.bid);
  });
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
} satisfies Record<string, QueryBuilder>;

export type QueryName = keyof typeof QUERIES;

export const QUERY_NAMES = Object.keys(QUERIES) as QueryName[];

/** Queries of Flink's table this bench does not run yet, and what they wait for. */
export const PENDING_QUERIES = {
  q3: 'local item suggestion: needs a two-input (regular) join of auctions and persons',
  q8: 'monitor new users: needs a windowed join of persons and auctions',
} as const;

/** Flink 1.13's published throughput per core (Nexmark README: 8 single-slot TaskManagers, RocksDB). */
export const FLINK_PER_CORE: Record<QueryName | keyof typeof PENDING_QUERIES, number> = {
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
