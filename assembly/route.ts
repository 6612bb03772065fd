// Routing a batch to shards in one pass over its events: each event's key group (MurmurHash3 of the
// key, the same hash the stores persist) and shard, then a counting-sort scatter of every column
// into one contiguous region per shard, so the TypeScript side copies each shard's whole slice out
// with one memcpy into one transferable buffer. Event order within a shard is kept.
import { KEY_INT64 } from './store';
import { hashBytes, hashI64 } from './hash';
import { E_BAD_ARGUMENT } from './errors';

/** Events per batch: an event's rank within its shard is packed into the low 24 bits of a u32. */
export const PARTITION_ROWS_MAX: i32 = 1 << 24;
/** Shards: a shard index is packed into the high 8 bits of the same u32. */
export const PARTITION_SHARDS_MAX: i32 = 255;
/** Key groups (the SDK's KEY_GROUPS_MAX): below 2^16 keeps the fast modulo's products within u64. */
export const PARTITION_KEY_GROUPS_MAX: i32 = 32768;

const RANK_BITS: u32 = 24;
const RANK_MASK: u32 = (1 << RANK_BITS) - 1;

/**
 * h % d without a division (Lemire, Kaser and Kurz, "Faster remainder by direct computation"):
 * m = floor((2^64 - 1) / d) + 1, and h % d is the high 64 bits of (m * h mod 2^64) * d. A 32-bit
 * division costs tens of cycles on the hot path; this is four multiplies. The 128-bit product is
 * built from 32-bit halves, exact because d < 2^16.
 */
@inline function fastMod(h: u32, m: u64, d: u64): u32 {
  const low = m * <u64>h;
  return <u32>(((low >>> 32) * d + (((low & 0xffffffff) * d) >>> 32)) >>> 32);
}

/**
 * Partitions a batch by shard. Inputs: keys (int64: i64[n]; utf8: u32 offsets[n + 1] into
 * keyBytes), times (i64[n], or 0), values (a table of nFields pointers to f64[n]), and `assign`
 * (u8 per key group). Caller-allocated outputs: counts u32[shards] (events per shard),
 * regions u32[shards + 1] (byte offset of each shard's region in `out`, and the total), kgCounts
 * u32[keyGroups], work u32[4 * shards], pos u32[n], and `out` (8-aligned, room for every region).
 *
 * Shard s's region holds m = counts[s] events, each part 8-aligned: keys (int64: i64[m]; utf8:
 * u32 offsets[m + 1] from 0, then the key bytes), times i64[m] when given, then the values f64[m]
 * of each field in turn. Returns 0, or E_BAD_ARGUMENT for counts beyond the limits above.
 */
export function partition(keyType: i32, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, nFields: i32,
                          valTable: usize, keyGroups: i32, assign: usize, shards: i32, counts: usize, regions: usize,
                          kgCounts: usize, work: usize, pos: usize, out: usize): i32 {
  if (n < 0 || n > PARTITION_ROWS_MAX) return E_BAD_ARGUMENT;
  if (shards < 1 || shards > PARTITION_SHARDS_MAX) return E_BAD_ARGUMENT;
  if (keyGroups < 1 || keyGroups > PARTITION_KEY_GROUPS_MAX) return E_BAD_ARGUMENT;
  const int64 = keyType == KEY_INT64;
  memory.fill(counts, 0, <usize>shards << 2);
  memory.fill(kgCounts, 0, <usize>keyGroups << 2);
  // work: key bytes per shard, then per-shard column bases (keys, key bytes or times, values).
  const byteTotals = work;
  const keyBase = work + (<usize>shards << 2);
  const auxBase = keyBase + (<usize>shards << 2);
  const colBase = auxBase + (<usize>shards << 2);
  memory.fill(byteTotals, 0, <usize>shards << 2);
  const d = <u64>keyGroups;
  const m = u64.MAX_VALUE / d + 1;

  // Pass 1: key group and shard of each event, and its rank within the shard, packed into pos.
  // A power-of-two key group count (the default 128) takes a mask; any other, the fast modulo.
  const pow2 = (keyGroups & (keyGroups - 1)) == 0;
  const kgMask = <u32>keyGroups - 1;
  if (int64) {
    // int64 keys hash four at a time in SIMD lanes (the hash is most of this pass's work).
    const n4 = n & ~3;
    for (let i = 0; i < n4; i += 4) {
      const h = hashI64x4(v128.load(keyPtr + (<usize>i << 3)), v128.load(keyPtr + (<usize>i << 3), 16));
      countEvent(i, keyGroupOf(i32x4.extract_lane(h, 0), pow2, kgMask, m, d), kgCounts, assign, counts, pos);
      countEvent(i + 1, keyGroupOf(i32x4.extract_lane(h, 1), pow2, kgMask, m, d), kgCounts, assign, counts, pos);
      countEvent(i + 2, keyGroupOf(i32x4.extract_lane(h, 2), pow2, kgMask, m, d), kgCounts, assign, counts, pos);
      countEvent(i + 3, keyGroupOf(i32x4.extract_lane(h, 3), pow2, kgMask, m, d), kgCounts, assign, counts, pos);
    }
    for (let i = n4; i < n; i++) {
      countEvent(i, keyGroupOf(hashI64(load<i64>(keyPtr + (<usize>i << 3))), pow2, kgMask, m, d), kgCounts, assign, counts, pos);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const len = load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o;
      const kg = keyGroupOf(hashBytes(keyBytesPtr + <usize>o, <i32>len), pow2, kgMask, m, d);
      const sh = countEvent(i, kg, kgCounts, assign, counts, pos);
      store<u32>(byteTotals + (sh << 2), load<u32>(byteTotals + (sh << 2)) + len);
    }
  }

  // Regions: where each shard's parts start.
  let at: usize = 0;
  for (let sh = 0; sh < shards; sh++) {
    const s4 = <usize>sh << 2;
    const c = <usize>load<u32>(counts + s4);
    store<u32>(regions + s4, <u32>at);
    store<u32>(keyBase + s4, <u32>(out + at));
    if (int64) at += c << 3;
    else {
      at += (((c + 1) << 2) + 7) & ~7;
      store<u32>(auxBase + s4, <u32>(out + at));
      at += (<usize>load<u32>(byteTotals + s4) + 7) & ~7;
    }
    if (timePtr != 0) {
      if (int64) store<u32>(auxBase + s4, <u32>(out + at));
      at += c << 3;
    }
    store<u32>(colBase + s4, <u32>(out + at));
    at += (<usize>nFields * c) << 3;
  }
  store<u32>(regions + (<usize>shards << 2), <u32>at);

  // Pass 2: scatter column by column; each loop is a plain gather-free scatter by pos.
  if (int64) {
    for (let i = 0; i < n; i++) {
      const p = load<u32>(pos + (<usize>i << 2));
      const dst = <usize>load<u32>(keyBase + (<usize>(p >>> RANK_BITS) << 2)) + (<usize>(p & RANK_MASK) << 3);
      store<i64>(dst, load<i64>(keyPtr + (<usize>i << 3)));
    }
    if (timePtr != 0) scatter64(n, pos, timePtr, auxBase);
  } else {
    // utf8: offsets from 0 within each shard, bytes appended in event order (a cursor per shard).
    for (let sh = 0; sh < shards; sh++) {
      store<u32>(<usize>load<u32>(keyBase + (<usize>sh << 2)), 0);
      store<u32>(byteTotals + (<usize>sh << 2), 0);
    }
    for (let i = 0; i < n; i++) {
      const p = load<u32>(pos + (<usize>i << 2));
      const s4 = <usize>(p >>> RANK_BITS) << 2;
      const rank = <usize>(p & RANK_MASK);
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const len = load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o;
      const b = load<u32>(byteTotals + s4);
      memory.copy(<usize>load<u32>(auxBase + s4) + <usize>b, keyBytesPtr + <usize>o, len);
      store<u32>(byteTotals + s4, b + len);
      store<u32>(<usize>load<u32>(keyBase + s4) + ((rank + 1) << 2), b + len);
    }
    if (timePtr != 0) {
      // Times follow the key bytes: their base is the end of each shard's key-bytes part.
      for (let sh = 0; sh < shards; sh++) {
        const s4 = <usize>sh << 2;
        store<u32>(auxBase + s4, <u32>((<usize>load<u32>(auxBase + s4) + <usize>load<u32>(byteTotals + s4) + 7) & ~7));
      }
      scatter64(n, pos, timePtr, auxBase);
    }
  }
  for (let f = 0; f < nFields; f++) {
    if (f > 0) {
      // The next field's part follows this one's: advance each shard's base by its count.
      for (let sh = 0; sh < shards; sh++) {
        const s4 = <usize>sh << 2;
        store<u32>(colBase + s4, load<u32>(colBase + s4) + (load<u32>(counts + s4) << 3));
      }
    }
    scatter64(n, pos, load<usize>(valTable + (<usize>f << 2)), colBase);
  }
  return 0;
}

@inline function keyGroupOf(h: u32, pow2: bool, kgMask: u32, m: u64, d: u64): usize {
  return <usize>(pow2 ? h & kgMask : fastMod(h, m, d));
}

// MurmurHash3 of four int64 keys at once, lane for lane the same as hashI64 in hash.ts (the router
// test checks both against the reference): a and b hold keys 0-1 and 2-3 as little-endian halves.
@inline function rotl4(x: v128, r: i32): v128 {
  return v128.or(i32x4.shl(x, r), i32x4.shr_u(x, 32 - r));
}

@inline function mixK4(k: v128): v128 {
  return i32x4.mul(rotl4(i32x4.mul(k, i32x4.splat(0xcc9e2d51)), 15), i32x4.splat(0x1b873593));
}

@inline function mixH4(h: v128, k: v128): v128 {
  return i32x4.add(i32x4.mul(rotl4(v128.xor(h, mixK4(k)), 13), i32x4.splat(5)), i32x4.splat(0xe6546b64));
}

@inline function hashI64x4(a: v128, b: v128): v128 {
  const lo = v128.shuffle<i32>(a, b, 0, 2, 4, 6);
  const hi = v128.shuffle<i32>(a, b, 1, 3, 5, 7);
  let h = mixH4(mixH4(i32x4.splat(0), lo), hi);
  h = v128.xor(h, i32x4.splat(8));
  h = v128.xor(h, i32x4.shr_u(h, 16));
  h = i32x4.mul(h, i32x4.splat(0x85ebca6b));
  h = v128.xor(h, i32x4.shr_u(h, 13));
  h = i32x4.mul(h, i32x4.splat(0xc2b2ae35));
  return v128.xor(h, i32x4.shr_u(h, 16));
}

/** Counts event i in its key group and shard, and records its shard and rank in pos. Returns the shard. */
@inline function countEvent(i: i32, kg: usize, kgCounts: usize, assign: usize, counts: usize, pos: usize): usize {
  store<u32>(kgCounts + (kg << 2), load<u32>(kgCounts + (kg << 2)) + 1);
  const sh = <usize>load<u8>(assign + kg);
  const rank = load<u32>(counts + (sh << 2));
  store<u32>(counts + (sh << 2), rank + 1);
  store<u32>(pos + (<usize>i << 2), (<u32>sh << RANK_BITS) | rank);
  return sh;
}

/** Copies 8-byte element i of src to element rank of its shard's part (bases: u32 per shard). */
@inline function scatter64(n: i32, pos: usize, src: usize, bases: usize): void {
  for (let i = 0; i < n; i++) {
    const p = load<u32>(pos + (<usize>i << 2));
    const dst = <usize>load<u32>(bases + (<usize>(p >>> RANK_BITS) << 2)) + (<usize>(p & RANK_MASK) << 3);
    store<i64>(dst, load<i64>(src + (<usize>i << 3)));
  }
}

/**
 * Keeps, in place and in event order, the events of a batch whose key group `owned` marks (u8 per
 * key group): what a worker shard does with a whole batch broadcast to every shard, instead of the
 * caller's thread routing it. Same inputs as partition; `kgCounts` (u32 per key group) gains the
 * kept events, `keep` is scratch (u32[n]). The kept events' columns move to the front of their own
 * columns: utf8 offsets are rewritten from 0 and their bytes packed. Returns the events kept, or
 * E_BAD_ARGUMENT for counts beyond partition's limits.
 */
export function filterOwned(keyType: i32, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, nFields: i32,
                            valTable: usize, keyGroups: i32, owned: usize, kgCounts: usize, keep: usize): i32 {
  if (n < 0 || n > PARTITION_ROWS_MAX) return E_BAD_ARGUMENT;
  if (keyGroups < 1 || keyGroups > PARTITION_KEY_GROUPS_MAX) return E_BAD_ARGUMENT;
  const int64 = keyType == KEY_INT64;
  const d = <u64>keyGroups;
  const m = u64.MAX_VALUE / d + 1;
  const pow2 = (keyGroups & (keyGroups - 1)) == 0;
  const kgMask = <u32>keyGroups - 1;
  // Pass 1: which events stay. Branch-free: an event's index is always written, and the count
  // moves past it only when its key group is owned (about half are, at random, with 2 shards).
  let kept = 0;
  if (int64) {
    const n4 = n & ~3;
    for (let i = 0; i < n4; i += 4) {
      const h = hashI64x4(v128.load(keyPtr + (<usize>i << 3)), v128.load(keyPtr + (<usize>i << 3), 16));
      kept = keepEvent(i, keyGroupOf(i32x4.extract_lane(h, 0), pow2, kgMask, m, d), owned, kgCounts, keep, kept);
      kept = keepEvent(i + 1, keyGroupOf(i32x4.extract_lane(h, 1), pow2, kgMask, m, d), owned, kgCounts, keep, kept);
      kept = keepEvent(i + 2, keyGroupOf(i32x4.extract_lane(h, 2), pow2, kgMask, m, d), owned, kgCounts, keep, kept);
      kept = keepEvent(i + 3, keyGroupOf(i32x4.extract_lane(h, 3), pow2, kgMask, m, d), owned, kgCounts, keep, kept);
    }
    for (let i = n4; i < n; i++) {
      kept = keepEvent(i, keyGroupOf(hashI64(load<i64>(keyPtr + (<usize>i << 3))), pow2, kgMask, m, d), owned, kgCounts, keep, kept);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const len = <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o);
      kept = keepEvent(i, keyGroupOf(hashBytes(keyBytesPtr + <usize>o, len), pow2, kgMask, m, d), owned, kgCounts, keep, kept);
    }
  }
  if (kept == n) return n;
  // Pass 2: gather the kept events to the front, column by column. In place is safe: the j-th kept
  // event's index is at least j, so every read is of an element not yet overwritten.
  if (int64) gatherFront(kept, keep, keyPtr);
  else {
    let b: u32 = 0;
    for (let j = 0; j < kept; j++) {
      const i = <usize>load<u32>(keep + (<usize>j << 2));
      const o = load<u32>(keyPtr + (i << 2));
      const len = load<u32>(keyPtr + ((i + 1) << 2)) - o;
      // Offset j is read (as offset i, when i == j) before it is written.
      memory.copy(keyBytesPtr + <usize>b, keyBytesPtr + <usize>o, len);
      store<u32>(keyPtr + (<usize>j << 2), b);
      b += len;
    }
    store<u32>(keyPtr + (<usize>kept << 2), b);
  }
  if (timePtr != 0) gatherFront(kept, keep, timePtr);
  for (let f = 0; f < nFields; f++) gatherFront(kept, keep, load<usize>(valTable + (<usize>f << 2)));
  return kept;
}

@inline function keepEvent(i: i32, kg: usize, owned: usize, kgCounts: usize, keep: usize, kept: i32): i32 {
  const own = <u32>(load<u8>(owned + kg) != 0);
  store<u32>(kgCounts + (kg << 2), load<u32>(kgCounts + (kg << 2)) + own);
  store<u32>(keep + (<usize>kept << 2), <u32>i);
  return kept + <i32>own;
}

/** col[j] = col[keep[j]] for j < kept (8-byte elements), in place. */
@inline function gatherFront(kept: i32, keep: usize, col: usize): void {
  for (let j = 0; j < kept; j++) {
    store<i64>(col + (<usize>j << 3), load<i64>(col + (<usize>load<u32>(keep + (<usize>j << 2)) << 3)));
  }
}
