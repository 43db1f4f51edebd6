/**
 * The Nexmark event generator (persons, auctions, bids), deterministic by event number.
 *
 * Promises:
 * - `nexmarkEvent(n, config)` is a pure function of `n` and the config: the same event on every call, in
 *   any process, at any parallelism — which is what makes the source replayable from a checkpointed
 *   position and lets a plain-JS reference recompute a query's answer over the same events.
 * - Proportions, field shapes, ids, categories and prices follow the Nexmark project's generator (the
 *   `nexmark-flink` module that produced Flink's published table): per 50 events 1 person, 3 auctions
 *   and 46 bids (2 / 6 / 92 %); person and auction ids start at 1000 and are dense in event order; bids
 *   and auctions point at hot auctions / sellers / bidders with the same ratios (2, 4, 4) and the same
 *   "last 100 in flight, 1000 active people, a lead of 10" windows; categories 10..14; prices
 *   `round(10^(6u) × 100)` cents; `extra` pads each event to the same average sizes (person 200, auction
 *   500, bid 100 characters); bids carry one of 4 hot channels half the time, else one of 10 000 channels.
 * - Event time: event n happens at `baseTime + floor(n × 1 000 000 / eventRate) / 1000` ms — the
 *   generator's clock, not the wall clock (the published setup generates 10 M events per second).
 *
 * Differs from the Java generator, on purpose:
 * - The random numbers come from a small PRNG seeded by the event id (not java.util.Random, whose
 *   instance is shared across events there): the values differ, the distributions are the same.
 * - URLs of the 10 000 channels and the 4 hot ones are derived from the channel number (the Java code
 *   draws them from an unseeded Random, so they differ per process and run).
 * - A bid's bidder gets the first person id (1000) added once; nexmark-flink adds it twice.
 * - `extra` padding is a slice of a fixed pool of random letters at a random offset (see PADDING_POOL).
 * - `dateTime` and `expires` are numbers (ms since the epoch), not `Instant`s.
 *
 * Refuses: a config with a non-positive event rate or proportion (RangeError at `nexmarkConfig`).
 */

export interface Person {
  id: number;
  name: string;
  emailAddress: string;
  creditCard: string;
  city: string;
  state: string;
  dateTime: number;
  extra: string;
}

export interface Auction {
  id: number;
  itemName: string;
  description: string;
  initialBid: number;
  reserve: number;
  dateTime: number;
  expires: number;
  seller: number;
  category: number;
  extra: string;
}

export interface Bid {
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  dateTime: number;
  extra: string;
}

/** Nexmark's event_type column: 0 person, 1 auction, 2 bid. */
export const EventType = { PERSON: 0, AUCTION: 1, BID: 2 } as const;

export type NexmarkEvent =
  | { type: typeof EventType.PERSON; person: Person }
  | { type: typeof EventType.AUCTION; auction: Auction }
  | { type: typeof EventType.BID; bid: Bid };

export const FIRST_PERSON_ID = 1000;
export const FIRST_AUCTION_ID = 1000;
export const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const PERSON_ID_LEAD = 10;
const AUCTION_ID_LEAD = 10;
const HOT_SELLER_RATIO = 100;
const HOT_AUCTION_RATIO = 100;
const HOT_BIDDER_RATIO = 100;
const HOT_CHANNELS_RATIO = 2;
const CHANNELS_NUMBER = 10_000;
const MIN_STRING_LENGTH = 3;
/** ln(10^6): prices are 100 × 10^(6u) cents. */
const PRICE_EXPONENT = 6 * Math.LN10;

const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = [
  'Phoenix',
  'Los Angeles',
  'San Francisco',
  'Boise',
  'Portland',
  'Bend',
  'Redmond',
  'Seattle',
  'Kent',
  'Cheyenne',
];
const FIRST_NAMES = [
  'Peter',
  'Paul',
  'Luke',
  'John',
  'Saul',
  'Vicky',
  'Kate',
  'Julie',
  'Sarah',
  'Deiter',
  'Walter',
];
const LAST_NAMES = ['Shultz', 'Abrams', 'Spencer', 'White', 'Bartels', 'Walton', 'Smith', 'Jones', 'Noris'];
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];

/** 2024-01-01T00:00:00Z: the event time of event 0 unless configured otherwise. */
export const DEFAULT_BASE_TIME = Date.UTC(2024, 0, 1);
/** Events per second of event time in the published setup ("source generates 10M records per second"). */
export const DEFAULT_EVENT_RATE = 10_000_000;

export interface NexmarkConfig {
  /** Events per second of event time, all generators together. */
  eventRate: number;
  /** Event time of event 0 (ms since the epoch). */
  baseTime: number;
  personProportion: number;
  auctionProportion: number;
  bidProportion: number;
  hotAuctionRatio: number;
  hotSellersRatio: number;
  hotBiddersRatio: number;
  numActivePeople: number;
  numInFlightAuctions: number;
  avgPersonByteSize: number;
  avgAuctionByteSize: number;
  avgBidByteSize: number;
}

/** Nexmark's defaults, with `overrides` on top; checked. */
export function nexmarkConfig(overrides: Partial<NexmarkConfig> = {}): NexmarkConfig {
  const c: NexmarkConfig = {
    eventRate: DEFAULT_EVENT_RATE,
    baseTime: DEFAULT_BASE_TIME,
    personProportion: 1,
    auctionProportion: 3,
    bidProportion: 46,
    hotAuctionRatio: 2,
    hotSellersRatio: 4,
    hotBiddersRatio: 4,
    numActivePeople: 1000,
    numInFlightAuctions: 100,
    avgPersonByteSize: 200,
    avgAuctionByteSize: 500,
    avgBidByteSize: 100,
    ...overrides,
  };
  for (const [name, value] of Object.entries(c)) {
    const ok = name === 'baseTime' ? Number.isSafeInteger(value) : value > 0 && Number.isFinite(value);
    if (!ok)
      throw new RangeError(
        `Nexmark config: ${name} must be ${name === 'baseTime' ? 'an integer' : '> 0'}, got ${value}`,
      );
  }
  return c;
}

/**
 * Random numbers for one event: a 32-bit PRNG (mulberry32) seeded from the event id, so every event
 * draws the same values wherever and whenever it is generated.
 */
class EventRandom {
  #state: number;
  constructor(eventId: number) {
    // Mix both halves of the id (ids may pass 2^32 in long runs) into the seed.
    const high = Math.floor(eventId / 4_294_967_296);
    this.#state = (Math.imul(eventId | 0, 0x9e3779b1) ^ Math.imul(high, 0x85ebca77) ^ 0x2545f491) | 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** A random string of 3 to maxLength - 1 characters: letters and `special` (then trimmed if a space). */
function nextString(random: EventRandom, maxLength: number, special = ' '): string {
  let len = MIN_STRING_LENGTH + random.int(maxLength - MIN_STRING_LENGTH);
  let s = '';
  while (len-- > 0) s += random.int(13) === 0 ? special : String.fromCharCode(97 + random.int(26));
  return special === ' ' ? s.trim() : s;
}

/**
 * Letters for `extra` padding, drawn once (deterministically) at load: an event's padding is a slice of it
 * at a random offset. The Java generator draws every letter per event; a slice costs the same whatever its
 * length, so padding adds bytes to every record downstream (what it is for) without making the
 * generator itself the bottleneck of the bench.
 */
const PADDING_POOL = (() => {
  const random = new EventRandom(-1_000_000);
  const letters: string[] = [];
  for (let i = 0; i < 65_536; i++) letters.push(String.fromCharCode(97 + random.int(26)));
  return letters.join('');
})();

/** Exactly `length` random letters. */
function nextExactString(random: EventRandom, length: number): string {
  const start = random.int(PADDING_POOL.length - length);
  return PADDING_POOL.slice(start, start + length);
}

/** Padding so that `currentSize` + its length is `desiredAverageSize` on average (±20 %). */
function nextExtra(random: EventRandom, currentSize: number, desiredAverageSize: number): string {
  if (currentSize > desiredAverageSize) return '';
  const desired = desiredAverageSize - currentSize;
  const delta = Math.round(desired * 0.2);
  const size = desired - delta + (delta === 0 ? 0 : random.int(2 * delta));
  return nextExactString(random, size);
}

/** Cents, log-uniform over [100, 10^8). */
function nextPrice(random: EventRandom): number {
  return Math.round(Math.exp(random.next() * PRICE_EXPONENT) * 100);
}

function baseUrl(random: EventRandom): string {
  return `https://www.nexmark.com/${nextString(random, 5, '_')}/${nextString(random, 5, '_')}/${nextString(random, 5, '_')}/item.htm?query=1`;
}

/** Java's `Math.abs(Integer.reverse(n))`. */
function reverseBits(n: number): number {
  let r = 0;
  for (let i = 0; i < 32; i++) r = (r << 1) | ((n >>> i) & 1);
  return Math.abs(r | 0);
}

// Seeds for URLs are negative: event ids are never negative, so no event shares their random numbers.
const HOT_URLS = HOT_CHANNELS.map((_, i) => baseUrl(new EventRandom(-1 - i)));
const channelUrls: Array<string | undefined> = new Array(CHANNELS_NUMBER);

function channelUrl(channel: number): string {
  let url = channelUrls[channel];
  if (url === undefined) {
    const random = new EventRandom(-1_000 - channel);
    url = baseUrl(random);
    if (random.int(10) > 0) url += `&channel_id=${reverseBits(channel)}`;
    channelUrls[channel] = url;
  }
  return url;
}

/** Event time of event number `n`. */
export function timestampForEvent(n: number, config: NexmarkConfig): number {
  return config.baseTime + Math.floor(Math.floor((n * 1_000_000) / config.eventRate) / 1000);
}

function totalProportion(c: NexmarkConfig): number {
  return c.personProportion + c.auctionProportion + c.bidProportion;
}

/** The last person id (base 0) generated at or before event `eventId`. */
export function lastBase0PersonId(c: NexmarkConfig, eventId: number): number {
  const total = totalProportion(c);
  const epoch = Math.floor(eventId / total);
  let offset = eventId % total;
  if (offset >= c.personProportion) offset = c.personProportion - 1;
  return epoch * c.personProportion + offset;
}

/** The last auction id (base 0) generated at or before event `eventId`. */
export function lastBase0AuctionId(c: NexmarkConfig, eventId: number): number {
  const total = totalProportion(c);
  let epoch = Math.floor(eventId / total);
  let offset = eventId % total;
  if (offset < c.personProportion) {
    epoch--;
    offset = c.auctionProportion - 1;
  } else if (offset >= c.personProportion + c.auctionProportion) {
    offset = c.auctionProportion - 1;
  } else {
    offset -= c.personProportion;
  }
  return epoch * c.auctionProportion + offset;
}

/** A person among the active ones, or a few ahead of the last generated. */
function nextBase0PersonId(c: NexmarkConfig, eventId: number, random: EventRandom): number {
  const numPeople = lastBase0PersonId(c, eventId) + 1;
  const active = Math.min(numPeople, c.numActivePeople);
  return numPeople - active + random.int(active + PERSON_ID_LEAD);
}

/** An auction among those still likely in flight, or a few ahead of the last generated. */
function nextBase0AuctionId(c: NexmarkConfig, eventId: number, random: EventRandom): number {
  const max = lastBase0AuctionId(c, eventId);
  const min = Math.max(max - c.numInFlightAuctions, 0);
  return min + random.int(max - min + 1 + AUCTION_ID_LEAD);
}

function nextPerson(c: NexmarkConfig, eventId: number, random: EventRandom, timestamp: number): Person {
  const id = lastBase0PersonId(c, eventId) + FIRST_PERSON_ID;
  const name = `${FIRST_NAMES[random.int(FIRST_NAMES.length)]} ${LAST_NAMES[random.int(LAST_NAMES.length)]}`;
  const emailAddress = `${nextString(random, 7)}@${nextString(random, 5)}.com`;
  const groups: string[] = [];
  for (let i = 0; i < 4; i++) groups.push(String(random.int(10_000)).padStart(4, '0'));
  const creditCard = groups.join(' ');
  const city = US_CITIES[random.int(US_CITIES.length)]!;
  const state = US_STATES[random.int(US_STATES.length)]!;
  const size = 8 + name.length + emailAddress.length + creditCard.length + city.length + state.length;
  const extra = nextExtra(random, size, c.avgPersonByteSize);
  return { id, name, emailAddress, creditCard, city, state, dateTime: timestamp, extra };
}

function nextAuction(c: NexmarkConfig, eventId: number, random: EventRandom, timestamp: number): Auction {
  const id = lastBase0AuctionId(c, eventId) + FIRST_AUCTION_ID;
  const seller =
    (random.int(c.hotSellersRatio) > 0
      ? Math.floor(lastBase0PersonId(c, eventId) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
      : nextBase0PersonId(c, eventId, random)) + FIRST_PERSON_ID;
  const category = FIRST_CATEGORY_ID + random.int(NUM_CATEGORIES);
  const initialBid = nextPrice(random);
  // An auction lasts on average as long as it takes to generate numInFlightAuctions more auctions.
  const eventsForAuctions = Math.floor((c.numInFlightAuctions * totalProportion(c)) / c.auctionProportion);
  const horizonMs = timestampForEvent(eventId + eventsForAuctions, c) - timestamp;
  const expires = timestamp + 1 + random.int(Math.max(horizonMs * 2, 1));
  const itemName = nextString(random, 20);
  const description = nextString(random, 100);
  const reserve = initialBid + nextPrice(random);
  const size = 8 + itemName.length + description.length + 8 + 8 + 8 + 8 + 8;
  const extra = nextExtra(random, size, c.avgAuctionByteSize);
  return {
    id,
    itemName,
    description,
    initialBid,
    reserve,
    dateTime: timestamp,
    expires,
    seller,
    category,
    extra,
  };
}

function nextBid(c: NexmarkConfig, eventId: number, random: EventRandom, timestamp: number): Bid {
  const auction =
    (random.int(c.hotAuctionRatio) > 0
      ? Math.floor(lastBase0AuctionId(c, eventId) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
      : nextBase0AuctionId(c, eventId, random)) + FIRST_AUCTION_ID;
  const bidder =
    (random.int(c.hotBiddersRatio) > 0
      ? Math.floor(lastBase0PersonId(c, eventId) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
      : nextBase0PersonId(c, eventId, random)) + FIRST_PERSON_ID;
  const price = nextPrice(random);
  let channel: string;
  let url: string;
  if (random.int(HOT_CHANNELS_RATIO) > 0) {
    const i = random.int(HOT_CHANNELS.length);
    channel = HOT_CHANNELS[i]!;
    url = HOT_URLS[i]!;
  } else {
    const n = random.int(CHANNELS_NUMBER);
    channel = `channel-${n}`;
    url = channelUrl(n);
  }
  const extra = nextExtra(random, 8 + 8 + 8 + 8, c.avgBidByteSize);
  return { auction, bidder, price, channel, url, dateTime: timestamp, extra };
}

/** Event number `n` (0, 1, 2, …) of the Nexmark stream. */
export function nexmarkEvent(n: number, c: NexmarkConfig): NexmarkEvent {
  const random = new EventRandom(n);
  const timestamp = timestampForEvent(n, c);
  const rem = n % totalProportion(c);
  if (rem < c.personProportion)
    return { type: EventType.PERSON, person: nextPerson(c, n, random, timestamp) };
  if (rem < c.personProportion + c.auctionProportion) {
    return { type: EventType.AUCTION, auction: nextAuction(c, n, random, timestamp) };
  }
  return { type: EventType.BID, bid: nextBid(c, n, random, timestamp) };
}

/** The event time of any event (Nexmark's computed `dateTime` column). */
export function eventTime(e: NexmarkEvent): number {
  switch (e.type) {
    case EventType.PERSON:
      return e.person.dateTime;
    case EventType.AUCTION:
      return e.auction.dateTime;
    case EventType.BID:
      return e.bid.dateTime;
  }
}
