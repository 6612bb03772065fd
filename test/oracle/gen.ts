// Seeded generators of event streams for oracle tests. Everything is derived from a small PRNG
// (mulberry32) so a failing seed reproduces exactly; Math.random is never used.

import { CairnError } from '../../src/errors.js';
import { mulberry32 } from '../../src/testing/faulty-storage.js';
import { hashKey, murmur3 } from './hash.js';
import type { KeyType } from './keys.js';

/** mulberry32, the seeded PRNG that cairn/testing ships: floats in [0, 1). */
export { mulberry32 };

/** Convenience wrapper over mulberry32. */
export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** Float in [0, 1). */
  float(): number {
    return this.next();
  }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** Uniform signed 64-bit bigint. */
  int64(): bigint {
    const hi = BigInt(Math.floor(this.next() * 4294967296));
    const lo = BigInt(Math.floor(this.next() * 4294967296));
    return BigInt.asIntN(64, (hi << 32n) | lo);
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

export interface GenEventsOptions {
  seed: number;
  /** Number of events. */
  n: number;
  /** Number of distinct keys in the key space. */
  keys: number;
  keyType: KeyType;
  /** Zipf exponent: key i is drawn with weight 1/(i+1)^skew; 0 (default) is uniform. */
  skew?: number;
  /** Time of the first event's slot (ms). Default 0. */
  timeStart?: number;
  /** Event slots spread linearly over [timeStart, timeStart + timeSpread). Default n. */
  timeSpread?: number;
  /** Each event's time is its slot minus a uniform integer in [0, disorderMs]. Default 0. */
  disorderMs?: number;
  /** Probability that a value is null. Default 0. */
  nullRate?: number;
  /** utf8: give some keys multi-byte characters (2, 3 and 4 UTF-8 bytes). */
  multibyte?: boolean;
  /** utf8: make the empty string one of the keys. */
  emptyKey?: boolean;
  /** Value fields to generate. Default ['amount']. */
  valueFields?: string[];
  /** Values are integers in [-1000, 1000] (default) or, with fractional, have a random fraction. */
  fractional?: boolean;
}

export interface GenRow {
  key: string | bigint;
  time: number;
  values: Record<string, number | null>;
}

const EVENTS_MAX = 10_000_000;
const KEYS_MAX = 10_000_000;
// Suffixes with 2-, 3- and 4-byte UTF-8 characters. U+FF61 and U+1F600 are deliberate: UTF-16 code
// unit order puts the surrogate pair of U+1F600 before U+FF61, UTF-8 byte order puts it after.
const MULTIBYTE = ['é', 'ß', 'Ω', '日本', '\uff61', '😀', 'a😀', '\u00e9\u0301', 'Ж'];

/** A deterministic key space of `count` distinct keys. */
export function keySpace(count: number, keyType: KeyType, rng: Rng, multibyte = false, emptyKey = false): Array<string | bigint> {
  if (keyType === 'int64') {
    // Edge values first (zero, -1, both int64 extremes, 1), then random full-range values.
    const edges = [0n, -1n, -(2n ** 63n), 2n ** 63n - 1n, 1n];
    const out = new Set<bigint>(edges.slice(0, count));
    while (out.size < count) {
      // Mix small keys (common in practice, neighbours in hash space) with full-range ones.
      out.add(rng.float() < 0.5 ? BigInt(rng.int(-1000, 100_000)) : rng.int64());
    }
    return [...out];
  }
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    if (emptyKey && i === 0) out.push('');
    else if (multibyte && i % 3 === 1) out.push(`k${i}${MULTIBYTE[Math.floor(i / 3) % MULTIBYTE.length]}`);
    else out.push(`k${i}`);
  }
  return out;
}

/** Generates rows `{ key, time, values }` in the models' row form. */
export function genEvents(options: GenEventsOptions): GenRow[] {
  const { seed, n, keys, keyType } = options;
  if (!Number.isSafeInteger(n) || n < 0 || n > EVENTS_MAX) {
    throw new CairnError('invalid', `expected n in [0, ${EVENTS_MAX}], found ${n}`);
  }
  if (!Number.isSafeInteger(keys) || keys < 1 || keys > KEYS_MAX) {
    throw new CairnError('invalid', `expected keys in [1, ${KEYS_MAX}], found ${keys}`);
  }
  const rng = new Rng(seed);
  const space = keySpace(keys, keyType, rng, options.multibyte ?? false, options.emptyKey ?? false);
  const skew = options.skew ?? 0;
  // Cumulative Zipf weights; a key index is found by binary search on a uniform draw.
  const cdf = new Float64Array(keys);
  let total = 0;
  for (let i = 0; i < keys; i++) {
    total += 1 / Math.pow(i + 1, skew);
    cdf[i] = total;
  }
  const timeStart = options.timeStart ?? 0;
  const timeSpread = options.timeSpread ?? n;
  const disorder = options.disorderMs ?? 0;
  const nullRate = options.nullRate ?? 0;
  const fields = options.valueFields ?? ['amount'];
  const rows: GenRow[] = [];
  for (let i = 0; i < n; i++) {
    const u = rng.float() * total;
    let lo = 0;
    let hi = keys - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    const slot = timeStart + Math.floor((i * timeSpread) / Math.max(n, 1));
    const time = slot - (disorder > 0 ? rng.int(0, disorder) : 0);
    const values: Record<string, number | null> = {};
    for (const f of fields) {
      if (rng.float() < nullRate) values[f] = null;
      else values[f] = options.fractional ? rng.int(-1000, 1000) + rng.float() : rng.int(-1000, 1000);
    }
    rows.push({ key: space[lo], time, values });
  }
  return rows;
}

export interface ToColumnsOptions {
  keyField?: string;
  timeField?: string;
  valueFields?: string[];
  /** Needed only when rows is empty; otherwise taken from the first row's key. */
  keyType?: KeyType;
}

export type Columns = Record<string, string[] | BigInt64Array | Float64Array>;

/** Plain columns as Cairn ingests them: keys as string[] or BigInt64Array, times and values as Float64Array (NaN = null). */
export function toColumns(rows: readonly GenRow[], options: ToColumnsOptions = {}): Columns {
  const keyField = options.keyField ?? 'user';
  const timeField = options.timeField ?? 'ts';
  const valueFields = options.valueFields ?? ['amount'];
  const keyType = options.keyType ?? (rows.length > 0 && typeof rows[0].key === 'bigint' ? 'int64' : 'utf8');
  const n = rows.length;
  const out: Columns = {};
  if (keyType === 'int64') {
    const keys = new BigInt64Array(n);
    rows.forEach((r, i) => (keys[i] = r.key as bigint));
    out[keyField] = keys;
  } else {
    out[keyField] = rows.map((r) => r.key as string);
  }
  out[timeField] = Float64Array.from(rows, (r) => r.time);
  for (const f of valueFields) out[f] = Float64Array.from(rows, (r) => r.values[f] ?? NaN);
  return out;
}

/** Upper bound on hashes tried by a collision search, so a bad request fails instead of hanging. */
const COLLISION_HASHES_MAX = 1 << 24;

function collide<K>(count: number, lowBits: number, candidate: (i: number) => K, hash: (k: K) => number): K[] {
  if (!Number.isSafeInteger(count) || count < 1) throw new CairnError('invalid', `expected a positive count, found ${count}`);
  if (!Number.isInteger(lowBits) || lowBits < 1 || lowBits > 24) throw new CairnError('invalid', `expected lowBits in [1, 24], found ${lowBits}`);
  const mask = (1 << lowBits) - 1;
  const target = hash(candidate(0)) & mask;
  const out: K[] = [];
  for (let i = 0; out.length < count; i++) {
    if (i >= COLLISION_HASHES_MAX) {
      throw new CairnError('invalid', `expected to find ${count} keys colliding in ${lowBits} bits within ${COLLISION_HASHES_MAX} hashes, found ${out.length}`);
    }
    const k = candidate(i);
    if ((hash(k) & mask) === target) out.push(k);
  }
  return out;
}

/**
 * `count` distinct int64 keys whose murmur3 hashes agree in the low `lowBits` bits (default 16), so
 * they land in one key group and one hash bucket for any power-of-two table up to 2^lowBits.
 * Candidates alternate in sign: 0, -1, 1, -2, 2, ... Cost is about count * 2^lowBits hashes.
 */
export function collidingInt64Keys(count: number, lowBits = 16): bigint[] {
  // Same bytes as hashKey (8 bytes little-endian), written into one reused buffer for speed.
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  const hash = (k: bigint): number => {
    view.setBigInt64(0, k, true);
    return murmur3(bytes, 0);
  };
  const keys = collide(count, lowBits, (i) => (i % 2 === 1 ? -BigInt((i + 1) / 2) : BigInt(i / 2)), hash);
  assertCollide(keys, lowBits);
  return keys;
}

/** Like collidingInt64Keys for utf8 keys ('c0', 'c1', ... with some multi-byte ones). */
export function collidingUtf8Keys(count: number, lowBits = 16): string[] {
  // Same bytes as hashKey (UTF-8), encoded into one reused buffer for speed.
  const buf = new Uint8Array(256);
  const encoder = new TextEncoder();
  const hash = (k: string): number => murmur3(buf.subarray(0, encoder.encodeInto(k, buf).written), 0);
  const keys = collide(count, lowBits, (i) => (i % 4 === 3 ? `ключ${i}` : `c${i}`), hash);
  assertCollide(keys, lowBits);
  return keys;
}

/** Re-checks the search result with the plain hashKey path. */
function assertCollide(keys: ReadonlyArray<string | bigint>, lowBits: number): void {
  const mask = (1 << lowBits) - 1;
  const target = hashKey(keys[0]) & mask;
  for (const k of keys) {
    if ((hashKey(k) & mask) !== target) {
      throw new CairnError('internal', `expected colliding low bits 0x${target.toString(16)}, found 0x${(hashKey(k) & mask).toString(16)} (key ${String(k)})`);
    }
  }
}
