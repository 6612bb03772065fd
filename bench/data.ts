// Deterministic benchmark inputs: the same columns for Cairn and every baseline. Keys are drawn
// uniformly from a shuffled key space of N distinct values; event times increase with bounded
// disorder; amounts are integers 1..1000 stored as doubles (so float sums are exact in any order).

import { CairnError } from '../src/errors.js';

const EVENTS_MAX = 100_000_000;
const DISTINCT_MAX = 100_000_000;
/** int64 bench keys stay below 2^53 so the Map baseline can key by Number without collisions. */
const KEY_SPACE_MAX = 2 ** 53;

/** mulberry32 PRNG (32-bit state), returns uint32 values. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function checkCounts(n: number, distinct: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > EVENTS_MAX) throw new CairnError('invalid', `expected n in [0, ${EVENTS_MAX}], found ${n}`);
  if (!Number.isSafeInteger(distinct) || distinct < 1 || distinct > DISTINCT_MAX) {
    throw new CairnError('invalid', `expected distinct in [1, ${DISTINCT_MAX}], found ${distinct}`);
  }
}

/** Uniform integer in [0, bound) from two 32-bit draws (bound <= 2^53). */
function below(next: () => number, bound: number): number {
  return Math.floor(((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992 * bound);
}

/** Key-space indexes: `n` uniform draws from [0, distinct). */
export function keyIndexes(n: number, distinct: number, seed: number): Uint32Array {
  checkCounts(n, distinct);
  const next = prng(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = below(next, distinct);
  return out;
}

/**
 * The int64 key space: `distinct` different values in [0, 2^53), in a seeded random (shuffled)
 * order, so key values are neither dense nor sorted.
 */
export function int64KeySpace(distinct: number, seed: number): BigInt64Array {
  checkCounts(0, distinct);
  const next = prng(seed ^ 0x5bd1e995);
  const seen = new Set<number>();
  const out = new BigInt64Array(distinct);
  for (let i = 0; i < distinct; ) {
    const v = below(next, KEY_SPACE_MAX);
    if (seen.has(v)) continue;
    seen.add(v);
    out[i++] = BigInt(v);
  }
  return out;
}

/** `n` int64 keys drawn uniformly from `distinct` values. */
export function int64Keys(n: number, distinct: number, seed: number): BigInt64Array {
  const space = int64KeySpace(distinct, seed);
  const idx = keyIndexes(n, distinct, seed);
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) out[i] = space[idx[i]];
  return out;
}

/**
 * `n` utf8 keys 'user-<i>' drawn uniformly from `distinct` values. Every event gets its own string
 * object, as keys decoded from Arrow, JSON or a socket would: sharing one string per key would let
 * JS Map baselines reuse V8's cached string hash and flatter them.
 */
export function utf8Keys(n: number, distinct: number, seed: number): string[] {
  const idx = keyIndexes(n, distinct, seed);
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = 'user-' + idx[i];
  return out;
}

export interface EventTimesOptions {
  /** Time of the first event (ms). Default 1_700_000_000_000. */
  start?: number;
  /** Events per millisecond of event time. Default 10. */
  eventsPerMs?: number;
  /** Each time is its in-order slot minus a uniform integer in [0, disorderMs]. Default 0. */
  disorderMs?: number;
  seed?: number;
}

/** Integer event times that increase with the event index, minus bounded random disorder. */
export function eventTimes(n: number, options: EventTimesOptions = {}): Float64Array {
  checkCounts(n, 1);
  const start = options.start ?? 1_700_000_000_000;
  const rate = options.eventsPerMs ?? 10;
  const disorder = options.disorderMs ?? 0;
  const next = prng(options.seed ?? 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const slot = start + Math.floor(i / rate);
    out[i] = disorder > 0 ? slot - (next() % (disorder + 1)) : slot;
  }
  return out;
}

/** Amounts: integers 1..1000 as doubles. */
export function amounts(n: number, seed: number): Float64Array {
  checkCounts(n, 1);
  const next = prng(seed ^ 0x27d4eb2f);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() % 1000) + 1;
  return out;
}

export interface BenchColumns {
  keys: BigInt64Array | string[];
  ts: Float64Array;
  amount: Float64Array;
}

export interface BenchDataOptions extends EventTimesOptions {
  n: number;
  distinct: number;
  keyType: 'int64' | 'utf8';
  seed?: number;
}

/** One full benchmark input: keys, ts, amount columns of length n. */
export function benchColumns(options: BenchDataOptions): BenchColumns {
  const seed = options.seed ?? 1;
  const keys = options.keyType === 'int64' ? int64Keys(options.n, options.distinct, seed) : utf8Keys(options.n, options.distinct, seed);
  return { keys, ts: eventTimes(options.n, { ...options, seed: seed + 1 }), amount: amounts(options.n, seed + 2) };
}
