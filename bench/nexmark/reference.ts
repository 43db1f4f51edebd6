/**
 * Plain-JS answers of the Nexmark queries over events 0 … n - 1 of the generator, for checking what the
 * Sluice jobs of queries.ts produce (test/bench/nexmark.test.ts). One loop each, no Sluice code: windows
 * are computed from the definitions (a sliding window [start, start + size) for every start that is a
 * multiple of the slide; at the end of a bounded input every window fires).
 */
import { type Bid, EventType, type NexmarkConfig, nexmarkEvent } from './generator.js';
import {
  type AuctionPrice,
  type EuroBid,
  type HighestBid,
  type HotItem,
  Q1_EURO_RATE,
  Q2_AUCTION_MODULUS,
  Q5_SLIDE_MS,
  Q5_WINDOW_MS,
  Q7_WINDOW_MS,
  Q11_SESSION_GAP_MS,
  type QueryName,
  type UserSession,
} from './queries.js';

function allBids(events: number, config: NexmarkConfig): Bid[] {
  const out: Bid[] = [];
  for (let n = 0; n < events; n++) {
    const e = nexmarkEvent(n, config);
    if (e.type === EventType.BID) out.push(e.bid);
  }
  return out;
}

function q5(bids: Bid[]): HotItem[] {
  // window end → auction → bids
  const counts = new Map<number, Map<number, number>>();
  for (const b of bids) {
    const lastStart = b.dateTime - (b.dateTime % Q5_SLIDE_MS);
    for (let start = lastStart; start > b.dateTime - Q5_WINDOW_MS; start -= Q5_SLIDE_MS) {
      const end = start + Q5_WINDOW_MS;
      let perAuction = counts.get(end);
      if (!perAuction) {
        perAuction = new Map();
        counts.set(end, perAuction);
      }
      perAuction.set(b.auction, (perAuction.get(b.auction) ?? 0) + 1);
    }
  }
  const out: HotItem[] = [];
  for (const [windowEnd, perAuction] of counts) {
    const max = Math.max(...perAuction.values());
    for (const [auction, num] of perAuction) if (num === max) out.push({ auction, num, windowEnd });
  }
  return out;
}

function q7(bids: Bid[]): HighestBid[] {
  const windows = new Map<number, Bid[]>();
  for (const b of bids) {
    const w = Math.floor(b.dateTime / Q7_WINDOW_MS);
    const list = windows.get(w) ?? [];
    list.push(b);
    windows.set(w, list);
  }
  const out: HighestBid[] = [];
  for (const list of windows.values()) {
    const max = Math.max(...list.map((b) => b.price));
    for (const b of list) {
      if (b.price === max) {
        out.push({
          auction: b.auction,
          price: b.price,
          bidder: b.bidder,
          dateTime: b.dateTime,
          extra: b.extra,
        });
      }
    }
  }
  return out;
}

function q11(bids: Bid[]): UserSession[] {
  const times = new Map<number, number[]>();
  for (const b of bids) {
    const list = times.get(b.bidder) ?? [];
    list.push(b.dateTime);
    times.set(b.bidder, list);
  }
  const out: UserSession[] = [];
  for (const [bidder, list] of times) {
    list.sort((a, b) => a - b);
    let start = list[0]!;
    let count = 0;
    for (let i = 0; i < list.length; i++) {
      // Windows [t, t + gap) that touch are one session.
      if (i > 0 && list[i]! > list[i - 1]! + Q11_SESSION_GAP_MS) {
        out.push({ bidder, bidCount: count, start, end: list[i - 1]! + Q11_SESSION_GAP_MS });
        start = list[i]!;
        count = 0;
      }
      count++;
    }
    out.push({ bidder, bidCount: count, start, end: list[list.length - 1]! + Q11_SESSION_GAP_MS });
  }
  return out;
}

/** The rows query `name` produces over the first `events` events (in no particular order). */
export function referenceAnswer(name: QueryName, events: number, config: NexmarkConfig): unknown[] {
  const bids = allBids(events, config);
  switch (name) {
    case 'q0':
      return bids;
    case 'q1':
      return bids.map(
        (b): EuroBid => ({
          auction: b.auction,
          bidder: b.bidder,
          price: Q1_EURO_RATE * b.price,
          dateTime: b.dateTime,
          extra: b.extra,
        }),
      );
    case 'q2':
      return bids
        .filter((b) => b.auction % Q2_AUCTION_MODULUS === 0)
        .map((b): AuctionPrice => ({ auction: b.auction, price: b.price }));
    case 'q5':
      return q5(bids);
    case 'q7':
      return q7(bids);
    case 'q11':
      return q11(bids);
  }
}
