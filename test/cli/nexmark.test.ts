// Proves the Nexmark bid generator (src/cli/nexmark.ts) is deterministic and follows the rules it
// documents.
//
// How: files generated twice with one seed must be byte-identical, and must match a SHA-256 recorded
// when the generator was written (so Node and Deno, and later versions, produce the same stream);
// another seed must give other bytes. The file read back with the CSV reader must equal the in-memory
// columns, and generating in pieces (firstBid) must equal generating at once. Distribution checks use an
// independent restatement of the rules (which auction and bidder are hot for a given bid, the id ranges,
// the price decades, the time bounds); with a fixed seed they are exact computations, not flaky samples.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnError } from '../../src/errors.js';
import { openReader } from '../../src/cli/readers.js';
import { NEXMARK_DEFAULTS, generateNexmark, nexmarkBids, type NexmarkBids } from '../../src/cli/nexmark.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-nexmark-'));
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The event number of the k-th bid: 46 bids follow 1 person and 3 auctions in every 50 events. */
const eventOfBid = (k: number): number => Math.floor(k / 46) * 50 + 4 + (k % 46);

test('same seed, same bytes; recorded digests; another seed differs', async () => {
  const a = join(dir, 'a.csv');
  const b = join(dir, 'b.csv');
  const c = join(dir, 'c.csv');
  await generateNexmark({ events: 100_000, seed: 42, output: a });
  await generateNexmark({ events: 100_000, seed: 42, output: b });
  await generateNexmark({ events: 100_000, seed: 43, output: c });
  assert.ok(readFileSync(a).equals(readFileSync(b)));
  assert.not.ok(readFileSync(a).equals(readFileSync(c)));
  assert.is(sha256(a), '106c85b088aedc32318f77dea8a165576e5d2dbdfa258689a58a2bb0823a90b0');
  const j = join(dir, 'a.ndjson');
  await generateNexmark({ events: 1000, seed: 42, output: j });
  assert.is(sha256(j), '19d207834468f2085291db723244621f70d6e841fb194e929bc505a86739d813');
  assert.is(readFileSync(a, 'utf8').slice(0, 31), 'auction,bidder,price,date_time\n');
});

test('the file equals the in-memory columns; pieces equal the whole', async () => {
  const path = join(dir, 'r.csv');
  const count = 70_000; // more than one write chunk
  let progressCalls = 0;
  await generateNexmark({ events: count, seed: 7, output: path, onProgress: () => progressCalls++ });
  assert.is(progressCalls, 2);
  const mem = nexmarkBids(count, 7);
  const reader = await openReader({
    path,
    format: 'csv',
    fields: [
      { name: 'auction', kind: 'int64' },
      { name: 'bidder', kind: 'int64' },
      { name: 'price', kind: 'int64' },
      { name: 'date_time', kind: 'time' },
    ],
    batchRows: 10_000,
  });
  let at = 0;
  for await (const batch of reader) {
    for (const name of ['auction', 'bidder', 'price', 'date_time'] as const) {
      assert.equal(Array.from(batch.columns[name] as ArrayLike<unknown>), Array.from(mem[name].subarray(at, at + batch.rows) as ArrayLike<unknown>), name);
    }
    at += batch.rows;
  }
  assert.is(at, count);
  const whole = nexmarkBids(300, 9);
  const piece = nexmarkBids(120, 9, { firstBid: 150 });
  for (const name of ['auction', 'bidder', 'price', 'date_time'] as const) {
    assert.equal(Array.from(piece[name] as ArrayLike<unknown>), Array.from(whole[name].subarray(150, 270) as ArrayLike<unknown>));
  }
});

function shares(bids: NexmarkBids, count: number) {
  let hotAuction = 0;
  let hotBidder = 0;
  const decades = new Array<number>(6).fill(0);
  for (let k = 0; k < count; k++) {
    const event = eventOfBid(k);
    const lastAuction = Math.floor(event / 50) * 3 + 2; // bids come after the epoch's 3 auctions
    const lastPerson = Math.floor(event / 50);
    const auction = Number(bids.auction[k]!) - 1000;
    const bidder = Number(bids.bidder[k]!) - 1000;
    if (auction === Math.floor(lastAuction / 100) * 100) hotAuction++;
    else assert.ok(auction >= Math.max(lastAuction - 100, 0) && auction <= lastAuction + 10, `auction ${auction} out of range at bid ${k}`);
    if (bidder === Math.floor(lastPerson / 100) * 100 + 1) hotBidder++;
    else {
      const people = lastPerson + 1;
      const active = Math.min(people, 1000);
      assert.ok(bidder >= people - active && bidder < people + 10, `bidder ${bidder} out of range at bid ${k}`);
    }
    const price = Number(bids.price[k]!);
    assert.ok(price >= 100 && price <= 100_000_000, `price ${price}`);
    decades[Math.min(5, Math.floor(Math.log10(price / 100)))]!++;
  }
  return { hotAuction: hotAuction / count, hotBidder: hotBidder / count, decades: decades.map((d) => d / count) };
}

test('hot auctions and bidders take their documented shares; ids and prices stay in range', () => {
  const count = 100_000;
  const s = shares(nexmarkBids(count, 3), count);
  // Default ratios: half the bids to the hot auction, three in four from the hot bidder, plus the
  // few uniform picks that land on them.
  assert.ok(s.hotAuction > 0.49 && s.hotAuction < 0.53, `hot auction share ${s.hotAuction}`);
  assert.ok(s.hotBidder > 0.74 && s.hotBidder < 0.77, `hot bidder share ${s.hotBidder}`);
  // Log-uniform prices: each of the six decades from $1 to $1M holds about a sixth.
  for (const d of s.decades) assert.ok(d > 0.15 && d < 0.18, `decade share ${d}`);
  const skewed = shares(nexmarkBids(count, 3, { hotAuctionRatio: 10, hotBiddersRatio: 1 }), count);
  assert.ok(skewed.hotAuction > 0.89 && skewed.hotAuction < 0.92, `hot auction share ${skewed.hotAuction}`);
  assert.ok(skewed.hotBidder < 0.01, `hot bidder share ${skewed.hotBidder}`);
});

test('event time advances at the configured rate with bounded out-of-orderness', () => {
  for (const [eventsPerSecond, bound] of [
    [10_000, 2_000],
    [1_000, 0],
    [1_000_000, 50],
  ] as const) {
    const count = 20_000;
    const bids = nexmarkBids(count, 11, { eventsPerSecond, outOfOrdernessMs: bound });
    let max = -Infinity;
    let late = 0;
    for (let k = 0; k < count; k++) {
      const t = bids.date_time[k]!;
      const nominal = NEXMARK_DEFAULTS.baseTimeMs + Math.floor((eventOfBid(k) * 1000) / eventsPerSecond);
      assert.ok(t <= nominal && t >= nominal - bound, `bid ${k} at ${t}, nominal ${nominal}, bound ${bound}`);
      assert.ok(t >= max - bound, `bid ${k} is later than the bound allows`);
      if (t < max) late++;
      max = Math.max(max, t);
    }
    if (bound === 0) assert.is(late, 0);
    else assert.ok(late > count / 10, `only ${late} bids out of order`);
  }
});

test('bad options are CairnError invalid', () => {
  for (const [count, seed, options] of [
    [-1, 1, {}],
    [1.5, 1, {}],
    [1, -1, {}],
    [1, 1, { eventsPerSecond: 0 }],
    [1, 1, { outOfOrdernessMs: -1 }],
    [1, 1, { hotAuctionRatio: 0 }],
  ] as const) {
    assert.throws(
      () => nexmarkBids(count, seed, options),
      (e: unknown) => e instanceof CairnError && e.kind === 'invalid',
    );
  }
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
