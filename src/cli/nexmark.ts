/**
 * A deterministic Nexmark bid generator.
 *
 * Nexmark models an online auction: people register, open auctions, and bid. This module follows the
 * rules of the reference generator (Apache Beam's `sdks/java/testing/nexmark` generator, which the Flink
 * and Arroyo ports share) and emits only the bids:
 *
 * - Events are numbered 0, 1, 2, ... and interleave in epochs of 50: in each epoch, 1 person, then 3
 *   auctions, then 46 bids (PERSON_PROPORTION : AUCTION_PROPORTION : BID_PROPORTION = 1 : 3 : 46). The
 *   k-th bid is event `floor(k / 46) * 50 + 4 + k % 46`. Person and auction ids are implied by the
 *   event number (`lastBase0PersonId`, `lastBase0AuctionId`) even though those events are not written.
 * - Auction of a bid: with probability 1 - 1/hotAuctionRatio (default ratio 2, so half the bids) the
 *   bid goes to the hot auction of the current block of HOT_AUCTION_RATIO (100) auctions: the first
 *   auction of that block. Otherwise it picks uniformly among the last NUM_IN_FLIGHT_AUCTIONS (100)
 *   auctions plus AUCTION_ID_LEAD (10) not yet opened ones. Ids start at FIRST_AUCTION_ID (1000).
 * - Bidder: with probability 1 - 1/hotBiddersRatio (default 4, so three bids in four) a hot bidder,
 *   the second person of the current block of HOT_BIDDER_RATIO (100) people (so hot bidders and hot
 *   sellers differ); otherwise uniformly among the last NUM_ACTIVE_PEOPLE (1000) people plus
 *   PERSON_ID_LEAD (10). Ids start at FIRST_PERSON_ID (1000).
 * - Price in cents: round(10^(6u) * 100) for u uniform in [0, 1): log-uniform from $1 to $1,000,000.
 * - Event time: event n happens at `baseTime + floor(n * 1000 / eventsPerSecond)` ms (a constant rate,
 *   as the reference generator's default rate shape). Each bid is then delayed by a uniform whole
 *   number of ms in [0, outOfOrdernessMs], so no bid is more than outOfOrdernessMs older than any bid
 *   before it: bounded out-of-orderness, as a BoundedOutOfOrderness watermark assumes. (The reference
 *   generator instead shuffles event ids within groups; a time delay exercises event-time windows.)
 * - Randomness: like the reference generator, which seeds a fresh java.util.Random with each event id,
 *   every event draws from its own PRNG seeded from (seed, event number), so any range of bids can be
 *   generated independently and the same seed gives the same bids. The PRNG is sfc32 seeded through
 *   murmur3's finalizer; it uses only 32-bit integer arithmetic. `Math.random` is never used.
 *
 * The columns are auction (int64), bidder (int64), price (int64, cents) and date_time (ms since the
 * epoch). Channel, URL and the "extra" padding of the reference bids are omitted.
 */
import { fmix32 } from '../shard/hash.js';
import { CairnError } from '../errors.js';
import type { OutputFormat } from './parse.js';
import { OutputWriter } from './writers.js';

const PERSON_PROPORTION = 1;
const AUCTION_PROPORTION = 3;
const BID_PROPORTION = 46;
const PROPORTION_DENOMINATOR = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;
const FIRST_AUCTION_ID = 1000;
const FIRST_PERSON_ID = 1000;
const HOT_AUCTION_RATIO = 100;
const HOT_BIDDER_RATIO = 100;
const NUM_IN_FLIGHT_AUCTIONS = 100;
const NUM_ACTIVE_PEOPLE = 1000;
const AUCTION_ID_LEAD = 10;
const PERSON_ID_LEAD = 10;

/** Most bids per generation; keeps event numbers times 1000 exact in a double. */
export const NEXMARK_BIDS_MAX = 2 ** 40;
/** Bids generated and written per step of `generateNexmark`; bounds its memory. */
export const NEXMARK_CHUNK_BIDS = 1 << 16;
export const NEXMARK_EVENTS_PER_SECOND_MAX = 1_000_000_000;
export const NEXMARK_OUT_OF_ORDERNESS_MS_MAX = 24 * 3600 * 1000;

export const NEXMARK_DEFAULTS = {
  seed: 1,
  /** The reference generator's default first event rate. */
  eventsPerSecond: 10_000,
  outOfOrdernessMs: 2_000,
  /** 2024-01-01T00:00:00Z. */
  baseTimeMs: Date.UTC(2024, 0, 1),
  hotAuctionRatio: 2,
  hotBiddersRatio: 4,
} as const;

export interface NexmarkOptions {
  eventsPerSecond?: number;
  outOfOrdernessMs?: number;
  baseTimeMs?: number;
  hotAuctionRatio?: number;
  hotBiddersRatio?: number;
  /** Index of the first bid to generate (for generating a long stream in pieces). */
  firstBid?: number;
}

export interface NexmarkBids {
  auction: BigInt64Array;
  bidder: BigInt64Array;
  price: BigInt64Array;
  date_time: Float64Array;
}

/** Bids `firstBid .. firstBid + count` of the stream for `seed`, as columns in memory. */
export function nexmarkBids(count: number, seed: number, options: NexmarkOptions = {}): NexmarkBids {
  const config = resolve(count, seed, options);
  const out: NexmarkBids = {
    auction: new BigInt64Array(count),
    bidder: new BigInt64Array(count),
    price: new BigInt64Array(count),
    date_time: new Float64Array(count),
  };
  fill(out, options.firstBid ?? 0, count, config);
  return out;
}

/**
 * Writes `events` bids for `seed` to `output` as CSV or NDJSON (from the extension unless `format` is
 * given), `NEXMARK_CHUNK_BIDS` at a time. Byte-identical for the same arguments.
 */
export async function generateNexmark(options: {
  events: number;
  seed: number;
  output: string;
  format?: OutputFormat;
  eventsPerSecond?: number;
  outOfOrdernessMs?: number;
  baseTimeMs?: number;
  /** Called after each chunk with the bids written so far. */
  onProgress?: (bidsWritten: number) => void;
}): Promise<void> {
  const config = resolve(options.events, options.seed, options);
  const writer = await OutputWriter.open(options.output, options.format === undefined ? {} : { format: options.format });
  try {
    const chunk: NexmarkBids = {
      auction: new BigInt64Array(NEXMARK_CHUNK_BIDS),
      bidder: new BigInt64Array(NEXMARK_CHUNK_BIDS),
      price: new BigInt64Array(NEXMARK_CHUNK_BIDS),
      date_time: new Float64Array(NEXMARK_CHUNK_BIDS),
    };
    for (let done = 0; done < options.events; ) {
      const rows = Math.min(NEXMARK_CHUNK_BIDS, options.events - done);
      fill(chunk, done, rows, config);
      await writer.writeRows({ auction: chunk.auction, bidder: chunk.bidder, price: chunk.price, date_time: chunk.date_time }, rows);
      done += rows;
      options.onProgress?.(done);
    }
  } finally {
    await writer.close();
  }
}

interface Config {
  seedLo: number;
  seedHi: number;
  eventsPerSecond: number;
  outOfOrdernessMs: number;
  baseTimeMs: number;
  hotAuctionRatio: number;
  hotBiddersRatio: number;
}

function resolve(count: number, seed: number, options: NexmarkOptions): Config {
  const d = NEXMARK_DEFAULTS;
  const check = (what: string, v: number, min: number, max: number): number => {
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new CairnError('invalid', `expected ${what} to be an integer in [${min}, ${max}], found ${v}`);
    }
    return v;
  };
  const firstBid = check('firstBid', options.firstBid ?? 0, 0, NEXMARK_BIDS_MAX);
  check('the bid count', count, 0, NEXMARK_BIDS_MAX - firstBid);
  check('seed', seed, 0, Number.MAX_SAFE_INTEGER);
  return {
    seedLo: seed >>> 0,
    seedHi: Math.floor(seed / 4294967296) >>> 0,
    eventsPerSecond: check('eventsPerSecond', options.eventsPerSecond ?? d.eventsPerSecond, 1, NEXMARK_EVENTS_PER_SECOND_MAX),
    outOfOrdernessMs: check('outOfOrdernessMs', options.outOfOrdernessMs ?? d.outOfOrdernessMs, 0, NEXMARK_OUT_OF_ORDERNESS_MS_MAX),
    baseTimeMs: check('baseTimeMs', options.baseTimeMs ?? d.baseTimeMs, -8.64e15 / 2, 8.64e15 / 2),
    hotAuctionRatio: check('hotAuctionRatio', options.hotAuctionRatio ?? d.hotAuctionRatio, 1, 1_000_000),
    hotBiddersRatio: check('hotBiddersRatio', options.hotBiddersRatio ?? d.hotBiddersRatio, 1, 1_000_000),
  };
}

/** Writes bids `first .. first + count` into rows 0 .. count of `out`. */
function fill(out: NexmarkBids, first: number, count: number, config: Config): void {
  const rng = new EventRandom();
  for (let i = 0; i < count; i++) {
    const k = first + i;
    const event = Math.floor(k / BID_PROPORTION) * PROPORTION_DENOMINATOR + PERSON_PROPORTION + AUCTION_PROPORTION + (k % BID_PROPORTION);
    rng.reset(config.seedLo, config.seedHi, event);

    let auction: number;
    if (rng.nextInt(config.hotAuctionRatio) > 0) {
      auction = Math.floor(lastBase0AuctionId(event) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO;
    } else {
      auction = nextBase0AuctionId(event, rng);
    }
    let bidder: number;
    if (rng.nextInt(config.hotBiddersRatio) > 0) {
      bidder = Math.floor(lastBase0PersonId(event) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1;
    } else {
      bidder = nextBase0PersonId(event, rng);
    }
    const price = Math.round(10 ** (rng.nextDouble() * 6) * 100);
    const nominal = config.baseTimeMs + Math.floor((event * 1000) / config.eventsPerSecond);
    const delay = config.outOfOrdernessMs === 0 ? 0 : rng.nextInt(config.outOfOrdernessMs + 1);

    out.auction[i] = BigInt(auction + FIRST_AUCTION_ID);
    out.bidder[i] = BigInt(bidder + FIRST_PERSON_ID);
    out.price[i] = BigInt(price);
    out.date_time[i] = nominal - delay;
  }
}

/** The last auction (0-based) opened at or before event `event`. */
function lastBase0AuctionId(event: number): number {
  let epoch = Math.floor(event / PROPORTION_DENOMINATOR);
  let offset = event % PROPORTION_DENOMINATOR;
  if (offset < PERSON_PROPORTION) {
    // About to generate a person: the last auction of the previous epoch.
    epoch--;
    offset = AUCTION_PROPORTION - 1;
  } else if (offset >= PERSON_PROPORTION + AUCTION_PROPORTION) {
    // About to generate a bid: the last auction of this epoch.
    offset = AUCTION_PROPORTION - 1;
  } else {
    offset -= PERSON_PROPORTION;
  }
  return epoch * AUCTION_PROPORTION + offset;
}

/** The last person (0-based) registered at or before event `event`. */
function lastBase0PersonId(event: number): number {
  const epoch = Math.floor(event / PROPORTION_DENOMINATOR);
  let offset = event % PROPORTION_DENOMINATOR;
  if (offset >= PERSON_PROPORTION) offset = PERSON_PROPORTION - 1;
  return epoch * PERSON_PROPORTION + offset;
}

/** A random auction among those likely still open, plus a few not opened yet. */
function nextBase0AuctionId(event: number, rng: EventRandom): number {
  const maxAuction = lastBase0AuctionId(event);
  const minAuction = Math.max(maxAuction - NUM_IN_FLIGHT_AUCTIONS, 0);
  return minAuction + rng.nextInt(maxAuction - minAuction + 1 + AUCTION_ID_LEAD);
}

/** A random person among the active ones, plus a few not registered yet. */
function nextBase0PersonId(event: number, rng: EventRandom): number {
  const numPeople = lastBase0PersonId(event) + 1;
  const activePeople = Math.min(numPeople, NUM_ACTIVE_PEOPLE);
  return numPeople - activePeople + rng.nextInt(activePeople + PERSON_ID_LEAD);
}


/** sfc32 (Chris Doty-Humphrey's small fast counting PRNG), reseeded per event. */
class EventRandom {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  reset(seedLo: number, seedHi: number, event: number): void {
    const lo = event >>> 0;
    const hi = Math.floor(event / 4294967296) >>> 0;
    this.a = fmix32(seedLo ^ fmix32(lo ^ 0x243f6a88));
    this.b = fmix32(seedHi ^ fmix32(hi ^ 0x85a308d3));
    this.c = fmix32(fmix32(seedLo ^ 0x13198a2e) ^ lo ^ Math.imul(hi, 0x9e3779b9));
    this.d = 1;
    // Discard the first outputs, as sfc32's author recommends, so similar seeds diverge.
    for (let i = 0; i < 12; i++) this.next32();
  }

  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const high = this.next32() >>> 5; // 27 bits
    const low = this.next32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Uniform integer in [0, bound); the bias of flooring a 53-bit fraction is negligible for our bounds. */
  nextInt(bound: number): number {
    return Math.floor(this.nextDouble() * bound);
  }
}
