/**
 * The Nexmark generator and queries of `npm run bench:nexmark` (bench/nexmark/): the generator is
 * deterministic with Nexmark's proportions and field ranges, and every query run as a Sluice job on the
 * local environment (a real nats-server, records crossing NATS between unchained vertices) at parallelism
 * 1 and 2 gives exactly the rows of a plain-JS reference over the same events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventType, nexmarkConfig, nexmarkEvent } from '../../bench/nexmark/generator.js';
import { QUERIES, QUERY_NAMES } from '../../bench/nexmark/queries.js';
import { referenceAnswer } from '../../bench/nexmark/reference.js';
import { nexmarkSource } from '../../bench/nexmark/source.js';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import * as api from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { RecordingSink } from '../api/recording-sink.js';

/** 4 000 events at 200 events per second of event time: 20 s, so 3 tumbling and 14 sliding windows. */
const EVENTS = 4_000;
const CONFIG = nexmarkConfig({ eventRate: 200 });

const canonical = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).sort();

describe('Nexmark generator', () => {
  it('is deterministic and has the standard proportions, ids and ranges', () => {
    const config = nexmarkConfig();
    const counts = [0, 0, 0];
    const personIds: number[] = [];
    const auctionIds: number[] = [];
    let lastTime = 0;
    for (let n = 0; n < 5_000; n++) {
      const e = nexmarkEvent(n, config);
      expect(nexmarkEvent(n, config)).toEqual(e);
      counts[e.type]!++;
      if (e.type === EventType.PERSON) {
        personIds.push(e.person.id);
        expect(e.person.creditCard).toMatch(/^\d{4} \d{4} \d{4} \d{4}$/);
        expect(e.person.emailAddress).toMatch(/@.+\.com$/);
        expect(['AZ', 'CA', 'ID', 'OR', 'WA', 'WY']).toContain(e.person.state);
        expect(e.person.dateTime).toBeGreaterThanOrEqual(lastTime);
        lastTime = e.person.dateTime;
      } else if (e.type === EventType.AUCTION) {
        auctionIds.push(e.auction.id);
        expect(e.auction.category).toBeGreaterThanOrEqual(10);
        expect(e.auction.category).toBeLessThanOrEqual(14);
        expect(e.auction.reserve).toBeGreaterThan(e.auction.initialBid);
        expect(e.auction.expires).toBeGreaterThan(e.auction.dateTime);
        expect(e.auction.seller).toBeGreaterThanOrEqual(1000);
      } else {
        expect(e.bid.price).toBeGreaterThanOrEqual(100);
        expect(e.bid.price).toBeLessThanOrEqual(100_000_000);
        expect(e.bid.auction).toBeGreaterThanOrEqual(1000);
        expect(e.bid.url).toMatch(/^https:\/\/www\.nexmark\.com\//);
        expect(e.bid.dateTime).toBeGreaterThanOrEqual(lastTime);
        lastTime = e.bid.dateTime;
      }
    }
    // Per 50 events: 1 person, 3 auctions, 46 bids (2 / 6 / 92 %).
    expect(counts).toEqual([100, 300, 4_600]);
    // Ids are dense from 1000, in event order.
    expect(personIds).toEqual(personIds.map((_, i) => 1000 + i));
    expect(auctionIds).toEqual(auctionIds.map((_, i) => 1000 + i));
    // 10 M events per second of event time: event 5 000 000 is 0.5 s after event 0.
    const at = (n: number) => {
      const e = nexmarkEvent(n, config);
      return e.type === EventType.BID ? e.bid.dateTime : Number.NaN;
    };
    expect(at(5_000_004) - at(4)).toBe(500);
  });
});

describe('Nexmark queries against a plain-JS reference', () => {
  let nats: NatsServerHandle;

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
  });

  it('q5 and q7 with ties: every auction at the top of a window is reported (no hot auctions, parallelism 2)', async () => {
    // Without hot auctions, bids spread over the auctions in flight and windows often have several top ones.
    const config = nexmarkConfig({ eventRate: 200, hotAuctionRatio: 1 });
    const q5 = referenceAnswer('q5', EVENTS, config) as Array<{ windowEnd: number }>;
    const perWindow = new Map<number, number>();
    for (const r of q5) perWindow.set(r.windowEnd, (perWindow.get(r.windowEnd) ?? 0) + 1);
    expect(Math.max(...perWindow.values())).toBeGreaterThan(1);
    for (const query of ['q5', 'q7'] as const) {
      const env = api.StreamExecutionEnvironment.createLocalEnvironment(2, nats.url);
      const sink = new RecordingSink<unknown>();
      QUERIES[query](api, nexmarkSource(api, env, { events: EVENTS, config })).sinkTo(sink);
      await env.execute(`nexmark ${query} ties test`);
      expect(canonical(sink.values())).toEqual(canonical(referenceAnswer(query, EVENTS, config)));
    }
  });

  it('q11 splits the bids of a bidder into sessions (20 events per second of event time, parallelism 2)', async () => {
    // 4 000 events over 200 s: bidders outside the hot ones bid seconds apart, with gaps over 10 s.
    const config = nexmarkConfig({ eventRate: 20 });
    const expected = referenceAnswer('q11', EVENTS, config) as Array<{ bidder: number }>;
    const bidders = new Set(expected.map((r) => r.bidder));
    expect(expected.length).toBeGreaterThan(bidders.size);
    const env = api.StreamExecutionEnvironment.createLocalEnvironment(2, nats.url);
    const sink = new RecordingSink<unknown>();
    QUERIES.q11(api, nexmarkSource(api, env, { events: EVENTS, config })).sinkTo(sink);
    await env.execute('nexmark q11 sessions test');
    expect(canonical(sink.values())).toEqual(canonical(expected));
  });

  for (const query of QUERY_NAMES) {
    for (const parallelism of [1, 2]) {
      it(`${query} at parallelism ${parallelism}`, async () => {
        const env = api.StreamExecutionEnvironment.createLocalEnvironment(parallelism, nats.url);
        const sink = new RecordingSink<unknown>();
        QUERIES[query](api, nexmarkSource(api, env, { events: EVENTS, config: CONFIG })).sinkTo(sink);
        await env.execute(`nexmark ${query} test`);
        const expected = referenceAnswer(query, EVENTS, CONFIG);
        expect(expected.length).toBeGreaterThan(0);
        expect(canonical(sink.values())).toEqual(canonical(expected));
      });
    }
  }
});
