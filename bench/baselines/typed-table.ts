// Baseline: what a performance-minded JS developer writes when Map is too slow, an open-addressing
// hash table over typed arrays. Linear probing, power-of-two capacity, grow-by-rehash at a load
// factor (default 0.75: measured faster than 0.5 here for 1M events at both 10K and 1M keys, since
// the smaller table misses cache less than the longer probes cost), aggregate columns
// count/sum/min/max as Float64Arrays. It computes the same
// per-key count/sum/min/max as Cairn (NaN values are null: counted as events, skipped otherwise).
//
// int64 keys are never boxed in the hot loop: the input BigInt64Array is read through an Int32Array
// view of the same buffer (little-endian: low word first) and stored as two Int32Array columns.
// A slot is empty when its count is 0 (every stored key has count >= 1), so key 0 needs no sentinel.

import { CairnError } from '../../src/errors.js';

/** Initial number of slots (a power of two). */
const CAPACITY_MIN = 1024;
/** The table refuses to grow past this many slots (2^30: typed arrays of 8 GiB total). */
const CAPACITY_MAX = 2 ** 30;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface TypedTableOptions {
  /** Grow when size reaches capacity * loadFactor; in [0.25, 0.9]. Default 0.75. */
  loadFactor?: number;
  /** Initial capacity hint (rounded up to a power of two). */
  capacity?: number;
}

export interface AggResult {
  count: number;
  sum: number | null;
  min: number | null;
  max: number | null;
}

function checkOptions(options: TypedTableOptions): { loadFactor: number; capacity: number } {
  const loadFactor = options.loadFactor ?? 0.75;
  if (!(loadFactor >= 0.25 && loadFactor <= 0.9)) throw new CairnError('invalid', `expected loadFactor in [0.25, 0.9], found ${loadFactor}`);
  let capacity = CAPACITY_MIN;
  while (capacity < (options.capacity ?? 0) && capacity < CAPACITY_MAX) capacity *= 2;
  return { loadFactor, capacity };
}

function checkLengths(keys: number, values: number): void {
  if (keys !== values) throw new CairnError('invalid', `expected columns of equal length, found keys ${keys} and values ${values}`);
}

/** murmur3's 32-bit finalizer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** murmur3's fmix32 over the two key words: cheap and well mixed for sequential or sparse ids. */
function hashWords(lo: number, hi: number): number {
  return fmix32(lo ^ Math.imul(hi, 0x9e3779b1));
}

/** Open-addressing table keyed by int64. */
export class TypedTableInt64 {
  size = 0;
  private capacity: number;
  private readonly loadFactor: number;
  private growAt: number;
  private keyLo: Int32Array;
  private keyHi: Int32Array;
  private count: Float64Array;
  private sum: Float64Array;
  private min: Float64Array;
  private max: Float64Array;

  constructor(options: TypedTableOptions = {}) {
    if (!LITTLE_ENDIAN) throw new CairnError('internal', 'expected a little-endian platform, found big-endian');
    const { loadFactor, capacity } = checkOptions(options);
    this.loadFactor = loadFactor;
    this.capacity = capacity;
    this.growAt = Math.floor(capacity * loadFactor);
    this.keyLo = new Int32Array(capacity);
    this.keyHi = new Int32Array(capacity);
    this.count = new Float64Array(capacity);
    this.sum = new Float64Array(capacity);
    this.min = new Float64Array(capacity);
    this.max = new Float64Array(capacity);
  }

  ingest(keys: BigInt64Array, values: Float64Array): void {
    checkLengths(keys.length, values.length);
    const words = new Int32Array(keys.buffer, keys.byteOffset, keys.length * 2);
    const n = keys.length;
    let mask = this.capacity - 1;
    let keyLo = this.keyLo;
    let keyHi = this.keyHi;
    let count = this.count;
    let sum = this.sum;
    let min = this.min;
    let max = this.max;
    for (let i = 0; i < n; i++) {
      const lo = words[2 * i];
      const hi = words[2 * i + 1];
      let slot = hashWords(lo, hi) & mask;
      for (;;) {
        if (count[slot] === 0) {
          if (this.size >= this.growAt) {
            // Grow, re-read every column, and probe again in the new table.
            this.grow();
            mask = this.capacity - 1;
            keyLo = this.keyLo;
            keyHi = this.keyHi;
            count = this.count;
            sum = this.sum;
            min = this.min;
            max = this.max;
            slot = hashWords(lo, hi) & mask;
            continue;
          }
          keyLo[slot] = lo;
          keyHi[slot] = hi;
          sum[slot] = 0;
          min[slot] = Infinity;
          max[slot] = -Infinity;
          this.size++;
          break;
        }
        if (keyLo[slot] === lo && keyHi[slot] === hi) break;
        slot = (slot + 1) & mask;
      }
      count[slot]++;
      const v = values[i];
      if (v === v) {
        sum[slot] += v;
        if (v < min[slot]) min[slot] = v;
        if (v > max[slot]) max[slot] = v;
      }
    }
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    if (capacity > CAPACITY_MAX) throw new CairnError('unavailable', `expected at most ${CAPACITY_MAX} slots, found a need for ${capacity}`);
    const old = { keyLo: this.keyLo, keyHi: this.keyHi, count: this.count, sum: this.sum, min: this.min, max: this.max };
    const mask = capacity - 1;
    const keyLo = new Int32Array(capacity);
    const keyHi = new Int32Array(capacity);
    const count = new Float64Array(capacity);
    const sum = new Float64Array(capacity);
    const min = new Float64Array(capacity);
    const max = new Float64Array(capacity);
    for (let s = 0; s < this.capacity; s++) {
      if (old.count[s] === 0) continue;
      let slot = hashWords(old.keyLo[s], old.keyHi[s]) & mask;
      while (count[slot] !== 0) slot = (slot + 1) & mask;
      keyLo[slot] = old.keyLo[s];
      keyHi[slot] = old.keyHi[s];
      count[slot] = old.count[s];
      sum[slot] = old.sum[s];
      min[slot] = old.min[s];
      max[slot] = old.max[s];
    }
    this.capacity = capacity;
    this.growAt = Math.floor(capacity * this.loadFactor);
    Object.assign(this, { keyLo, keyHi, count, sum, min, max });
  }

  private find(key: bigint): number {
    const k = BigInt.asUintN(64, key);
    const lo = Number(k & 0xffffffffn) | 0;
    const hi = Number(k >> 32n) | 0;
    const mask = this.capacity - 1;
    for (let slot = hashWords(lo, hi) & mask; this.count[slot] !== 0; slot = (slot + 1) & mask) {
      if (this.keyLo[slot] === lo && this.keyHi[slot] === hi) return slot;
    }
    return -1;
  }

  get(key: bigint): AggResult | undefined {
    const s = this.find(key);
    return s < 0 ? undefined : result(this.count[s], this.sum[s], this.min[s], this.max[s]);
  }

  /** Bytes held by the table's typed arrays. */
  bytes(): number {
    return this.capacity * (4 + 4 + 8 * 4);
  }
}

/**
 * FNV-1a over UTF-16 code units, finished with fmix32. Hashing code units (not UTF-8 bytes) is fine
 * for a table: equal strings have equal code units.
 */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/**
 * The same table keyed by strings: each key is hashed with a JS string hash into the typed table;
 * the key strings live in a JS array by slot and the full hash in an Int32Array, so a probe compares
 * strings only when the hashes match.
 */
export class TypedTableUtf8 {
  size = 0;
  private capacity: number;
  private readonly loadFactor: number;
  private growAt: number;
  private keys: Array<string | null>;
  private hashes: Int32Array;
  private count: Float64Array;
  private sum: Float64Array;
  private min: Float64Array;
  private max: Float64Array;

  constructor(options: TypedTableOptions = {}) {
    const { loadFactor, capacity } = checkOptions(options);
    this.loadFactor = loadFactor;
    this.capacity = capacity;
    this.growAt = Math.floor(capacity * loadFactor);
    this.keys = new Array<string | null>(capacity).fill(null);
    this.hashes = new Int32Array(capacity);
    this.count = new Float64Array(capacity);
    this.sum = new Float64Array(capacity);
    this.min = new Float64Array(capacity);
    this.max = new Float64Array(capacity);
  }

  ingest(keys: readonly string[], values: Float64Array): void {
    checkLengths(keys.length, values.length);
    const n = keys.length;
    let mask = this.capacity - 1;
    let keyArr = this.keys;
    let hashes = this.hashes;
    let count = this.count;
    let sum = this.sum;
    let min = this.min;
    let max = this.max;
    for (let i = 0; i < n; i++) {
      const key = keys[i];
      const h = hashString(key);
      let slot = h & mask;
      for (;;) {
        if (count[slot] === 0) {
          if (this.size >= this.growAt) {
            this.grow();
            mask = this.capacity - 1;
            keyArr = this.keys;
            hashes = this.hashes;
            count = this.count;
            sum = this.sum;
            min = this.min;
            max = this.max;
            slot = h & mask;
            continue;
          }
          keyArr[slot] = key;
          hashes[slot] = h;
          sum[slot] = 0;
          min[slot] = Infinity;
          max[slot] = -Infinity;
          this.size++;
          break;
        }
        if (hashes[slot] === h && keyArr[slot] === key) break;
        slot = (slot + 1) & mask;
      }
      count[slot]++;
      const v = values[i];
      if (v === v) {
        sum[slot] += v;
        if (v < min[slot]) min[slot] = v;
        if (v > max[slot]) max[slot] = v;
      }
    }
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    if (capacity > CAPACITY_MAX) throw new CairnError('unavailable', `expected at most ${CAPACITY_MAX} slots, found a need for ${capacity}`);
    const mask = capacity - 1;
    const keys = new Array<string | null>(capacity).fill(null);
    const hashes = new Int32Array(capacity);
    const count = new Float64Array(capacity);
    const sum = new Float64Array(capacity);
    const min = new Float64Array(capacity);
    const max = new Float64Array(capacity);
    for (let s = 0; s < this.capacity; s++) {
      if (this.count[s] === 0) continue;
      let slot = this.hashes[s] & mask;
      while (count[slot] !== 0) slot = (slot + 1) & mask;
      keys[slot] = this.keys[s];
      hashes[slot] = this.hashes[s];
      count[slot] = this.count[s];
      sum[slot] = this.sum[s];
      min[slot] = this.min[s];
      max[slot] = this.max[s];
    }
    this.capacity = capacity;
    this.growAt = Math.floor(capacity * this.loadFactor);
    Object.assign(this, { keys, hashes, count, sum, min, max });
  }

  get(key: string): AggResult | undefined {
    const h = hashString(key);
    const mask = this.capacity - 1;
    for (let slot = h & mask; this.count[slot] !== 0; slot = (slot + 1) & mask) {
      if (this.hashes[slot] === h && this.keys[slot] === key) return result(this.count[slot], this.sum[slot], this.min[slot], this.max[slot]);
    }
    return undefined;
  }

  /** Bytes held by typed arrays plus the slot array's pointers (key strings themselves not counted). */
  bytes(): number {
    return this.capacity * (8 + 4 + 8 * 4);
  }
}

function result(count: number, sum: number, min: number, max: number): AggResult {
  // min stays +Infinity only when no non-null value arrived (a real +Infinity value sets max too).
  const valued = !(min === Infinity && max === -Infinity);
  return valued ? { count, sum, min, max } : { count, sum: null, min: null, max: null };
}

/**
 * A multiply-xor hash over bytes [start, end) of `dv`'s buffer, four bytes at a time (unaligned
 * little-endian reads), finished with fmix32.
 */
function hashByteRange(dv: DataView, bytes: Uint8Array, start: number, end: number): number {
  let h = end - start;
  let j = start;
  for (; j + 4 <= end; j += 4) h = Math.imul((h ^ dv.getUint32(j, true)), 0x9e3779b1) ^ (h >>> 15);
  for (; j < end; j++) h = Math.imul(h ^ bytes[j]!, 0x01000193);
  return fmix32(h);
}

/** Whether bytes [a, a + len) of `x` equal bytes [b, b + len) of `y`, four at a time. */
function bytesEqual(dx: DataView, x: Uint8Array, a: number, dy: DataView, y: Uint8Array, b: number, len: number): boolean {
  let j = 0;
  for (; j + 4 <= len; j += 4) if (dx.getUint32(a + j, true) !== dy.getUint32(b + j, true)) return false;
  for (; j < len; j++) if (x[a + j] !== y[b + j]) return false;
  return true;
}

/** A DataView over exactly the bytes of `u8`. */
function viewOf(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * The same table for keys that arrive as UTF-8 bytes, as in an Arrow Utf8 column (offsets into one
 * byte buffer): what a performance-minded JS developer writes rather than decode a string per row.
 * Keys are hashed over their bytes four at a time, copied once into a byte arena that grows by
 * doubling, and compared four bytes at a time when the full hashes match.
 */
export class TypedTableBytes {
  size = 0;
  private capacity: number;
  private readonly loadFactor: number;
  private growAt: number;
  private arena = new Uint8Array(1 << 16);
  private arenaUsed = 0;
  private keyOff: Int32Array;
  private keyLen: Int32Array;
  private hashes: Int32Array;
  private count: Float64Array;
  private sum: Float64Array;
  private min: Float64Array;
  private max: Float64Array;

  constructor(options: TypedTableOptions = {}) {
    const { loadFactor, capacity } = checkOptions(options);
    this.loadFactor = loadFactor;
    this.capacity = capacity;
    this.growAt = Math.floor(capacity * loadFactor);
    this.keyOff = new Int32Array(capacity);
    this.keyLen = new Int32Array(capacity);
    this.hashes = new Int32Array(capacity);
    this.count = new Float64Array(capacity);
    this.sum = new Float64Array(capacity);
    this.min = new Float64Array(capacity);
    this.max = new Float64Array(capacity);
  }

  /**
   * Keys are rows [0, values.length) of (offsets, bytes): row i is bytes[offsets[i], offsets[i + 1]).
   * Arrow may pad the offsets buffer, so it may hold more than values.length + 1 entries.
   */
  ingest(offsets: Int32Array, bytes: Uint8Array, values: Float64Array): void {
    if (offsets.length < values.length + 1) checkLengths(offsets.length - 1, values.length);
    const n = values.length;
    let mask = this.capacity - 1;
    let { keyOff, keyLen, hashes, count, sum, min, max, arena } = this;
    const dv = viewOf(bytes);
    let arenaView = viewOf(arena);
    for (let i = 0; i < n; i++) {
      const start = offsets[i]!;
      const end = offsets[i + 1]!;
      const h = hashByteRange(dv, bytes, start, end);
      const len = end - start;
      let slot = h & mask;
      for (;;) {
        if (count[slot] === 0) {
          if (this.size >= this.growAt) {
            this.grow();
            mask = this.capacity - 1;
            ({ keyOff, keyLen, hashes, count, sum, min, max } = this);
            slot = h & mask;
            continue;
          }
          if (this.arenaUsed + len > arena.length) {
            const grown = new Uint8Array(Math.max(arena.length * 2, this.arenaUsed + len));
            grown.set(arena.subarray(0, this.arenaUsed));
            this.arena = arena = grown;
            arenaView = viewOf(arena);
          }
          arena.set(bytes.subarray(start, end), this.arenaUsed);
          keyOff[slot] = this.arenaUsed;
          keyLen[slot] = len;
          this.arenaUsed += len;
          hashes[slot] = h;
          sum[slot] = 0;
          min[slot] = Infinity;
          max[slot] = -Infinity;
          this.size++;
          break;
        }
        if (hashes[slot] === h && keyLen[slot] === len && bytesEqual(arenaView, arena, keyOff[slot]!, dv, bytes, start, len)) break;
        slot = (slot + 1) & mask;
      }
      count[slot]++;
      const v = values[i]!;
      if (v === v) {
        sum[slot] += v;
        if (v < min[slot]!) min[slot] = v;
        if (v > max[slot]!) max[slot] = v;
      }
    }
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    if (capacity > CAPACITY_MAX) throw new CairnError('unavailable', `expected at most ${CAPACITY_MAX} slots, found a need for ${capacity}`);
    const mask = capacity - 1;
    const keyOff = new Int32Array(capacity);
    const keyLen = new Int32Array(capacity);
    const hashes = new Int32Array(capacity);
    const count = new Float64Array(capacity);
    const sum = new Float64Array(capacity);
    const min = new Float64Array(capacity);
    const max = new Float64Array(capacity);
    for (let s = 0; s < this.capacity; s++) {
      if (this.count[s] === 0) continue;
      let slot = this.hashes[s]! & mask;
      while (count[slot] !== 0) slot = (slot + 1) & mask;
      keyOff[slot] = this.keyOff[s]!;
      keyLen[slot] = this.keyLen[s]!;
      hashes[slot] = this.hashes[s]!;
      count[slot] = this.count[s]!;
      sum[slot] = this.sum[s]!;
      min[slot] = this.min[s]!;
      max[slot] = this.max[s]!;
    }
    this.capacity = capacity;
    this.growAt = Math.floor(capacity * this.loadFactor);
    Object.assign(this, { keyOff, keyLen, hashes, count, sum, min, max });
  }

  get(key: string): AggResult | undefined {
    const bytes = new TextEncoder().encode(key);
    const h = hashByteRange(viewOf(bytes), bytes, 0, bytes.length);
    const mask = this.capacity - 1;
    for (let slot = h & mask; this.count[slot] !== 0; slot = (slot + 1) & mask) {
      if (this.hashes[slot] !== h || this.keyLen[slot] !== bytes.length) continue;
      if (bytesEqual(viewOf(this.arena), this.arena, this.keyOff[slot]!, viewOf(bytes), bytes, 0, bytes.length)) return result(this.count[slot]!, this.sum[slot]!, this.min[slot]!, this.max[slot]!);
    }
    return undefined;
  }

  /** Bytes held by typed arrays, the key arena's used bytes included. */
  bytes(): number {
    return this.capacity * (4 + 4 + 4 + 8 * 4) + this.arenaUsed;
  }
}
