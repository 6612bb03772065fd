// Deterministic ordering helpers over an index permutation: stable LSD radix sorts by i64 values
// (radixByI64), utf8 keys by radix passes over their first 16 bytes with a merge sort for ties
// (sortByUtf8Key), and a stable bottom-up merge sort with comparators that read rows of a store.
// Used for fired windows (window_end, key, window_start), exports (key, ns), and hopping panes
// (key, start) and keys.
import { Store, KEY_INT64 } from './store';
import { allocTransient, releaseTransient } from './mem';

/** Compares the keys of two rows: int64 numerically, utf8 by unsigned bytes (a prefix first). */
export function compareKeys(s: Store, a: i32, b: i32): i32 {
  if (s.keyType == KEY_INT64) {
    const x = load<i64>(s.p(s.keyCol, a));
    const y = load<i64>(s.p(s.keyCol, b));
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const la = s.keyLen(a);
  const lb = s.keyLen(b);
  const c = memory.compare(s.keyPtr(a), s.keyPtr(b), <usize>min<i32>(la, lb));
  if (c != 0) return c < 0 ? -1 : 1;
  return la < lb ? -1 : la > lb ? 1 : 0;
}

/**
 * Word `at` (bytes [8 * at, 8 * at + 8)) of a utf8 key, big-endian and zero-padded: comparing these
 * words as unsigned integers orders keys as compareKeys does, except that keys equal on the words
 * compared may still differ (beyond them, or by trailing zero bytes).
 */
@inline function keyWord(p: usize, len: i32, at: i32): u64 {
  const o = at << 3;
  if (len - o >= 8) return bswap<u64>(load<u64>(p + <usize>o));
  let w: u64 = 0;
  for (let i = o; i < len; i++) w |= <u64>load<u8>(p + <usize>i) << <u64>(56 - ((i - o) << 3));
  return w;
}

/**
 * Sorts idx[0..n) (entry ids below `ids`) stably by (major, utf8 key, minor), where major and minor
 * are i64 arrays indexed by id (0: none) and an id's row is rows[id] (rows 0: the id is the row).
 * `cmp` must order by the same three. Radix passes (radixByI64) over the keys' first 16 bytes as
 * two big-endian words do most of the work; only runs that tie on those words are merge sorted
 * with `cmp` (all of idx, if most entries are in such runs). Measured on a tumbling emission of
 * 10K 9-byte keys: one merge sort with byte comparisons took most of the firing time.
 */
export function sortByUtf8Key(s: Store, idx: usize, n: i32, ids: i32, rows: usize, major: usize, minor: usize, cmp: (a: i32, b: i32) => i32): void {
  if (n < 2) return;
  const k1 = allocTransient(<usize>ids << 3);
  const k2 = allocTransient(<usize>ids << 3);
  for (let i = 0; i < n; i++) {
    const id = load<i32>(idx + (<usize>i << 2));
    const r = rows == 0 ? id : load<i32>(rows + (<usize>id << 2));
    const p = s.keyPtr(r);
    const len = s.keyLen(r);
    // radixByI64 orders signed values: flip the sign bit so that it orders these unsigned.
    store<u64>(k1 + (<usize>id << 3), keyWord(p, len, 0) ^ 0x8000_0000_0000_0000);
    store<u64>(k2 + (<usize>id << 3), keyWord(p, len, 1) ^ 0x8000_0000_0000_0000);
  }
  if (minor != 0) radixByI64(idx, n, minor);
  radixByI64(idx, n, k2);
  radixByI64(idx, n, k1);
  if (major != 0) radixByI64(idx, n, major);
  // Runs of equal (major, word 1, word 2): their keys may still differ.
  let tied = 0;
  for (let i = 1; i < n; i++) if (sameWords(idx, i, major, k1, k2)) tied++;
  if (tied > 0) {
    if (tied * 2 > n) mergeSort(idx, n, cmp);
    else {
      let lo = 0;
      for (let i = 1; i <= n; i++) {
        if (i < n && sameWords(idx, i, major, k1, k2)) continue;
        if (i - lo > 1) mergeSort(idx + (<usize>lo << 2), i - lo, cmp);
        lo = i;
      }
    }
  }
  releaseTransient(k2, <usize>ids << 3);
  releaseTransient(k1, <usize>ids << 3);
}

/** Whether entries i - 1 and i of idx agree on major (if any) and both key words. */
@inline function sameWords(idx: usize, i: i32, major: usize, k1: usize, k2: usize): bool {
  const a = <usize>load<i32>(idx + (<usize>(i - 1) << 2)) << 3;
  const b = <usize>load<i32>(idx + (<usize>i << 2)) << 3;
  return load<u64>(k1 + a) == load<u64>(k1 + b) && load<u64>(k2 + a) == load<u64>(k2 + b)
    && (major == 0 || load<i64>(major + a) == load<i64>(major + b));
}

@inline export function cmpI64(x: i64, y: i64): i32 {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Sorts `idx[0..n)` (i32 entries) stably with `cmp(a, b)`. */
export function mergeSort(idx: usize, n: i32, cmp: (a: i32, b: i32) => i32): void {
  if (n < 2) return;
  const tmp = allocTransient(<usize>n << 2);
  // Insertion-sort runs of 16 first: cheap and cache friendly.
  const RUN = 16;
  for (let lo = 0; lo < n; lo += RUN) {
    const hi = min<i32>(lo + RUN, n);
    for (let i = lo + 1; i < hi; i++) {
      const v = load<i32>(idx + (<usize>i << 2));
      let j = i - 1;
      while (j >= lo && cmp(load<i32>(idx + (<usize>j << 2)), v) > 0) {
        store<i32>(idx + (<usize>(j + 1) << 2), load<i32>(idx + (<usize>j << 2)));
        j--;
      }
      store<i32>(idx + (<usize>(j + 1) << 2), v);
    }
  }
  let src = idx;
  let dst = tmp;
  for (let width = RUN; width < n; width <<= 1) {
    for (let lo = 0; lo < n; lo += width << 1) {
      const mid = min<i32>(lo + width, n);
      const hi = min<i32>(lo + (width << 1), n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        const a = load<i32>(src + (<usize>i << 2));
        const b = load<i32>(src + (<usize>j << 2));
        if (cmp(b, a) < 0) { store<i32>(dst + (<usize>k << 2), b); j++; }
        else { store<i32>(dst + (<usize>k << 2), a); i++; }
        k++;
      }
      while (i < mid) { store<i32>(dst + (<usize>k << 2), load<i32>(src + (<usize>i << 2))); i++; k++; }
      while (j < hi) { store<i32>(dst + (<usize>k << 2), load<i32>(src + (<usize>j << 2))); j++; k++; }
    }
    const t = src; src = dst; dst = t;
  }
  if (src != idx) memory.copy(idx, src, <usize>n << 2);
  releaseTransient(tmp, <usize>n << 2);
}

/**
 * Stable LSD radix sort of idx[0..n) (entry ids) by the signed i64 `vals[id]`, skipping the digits on
 * which all values agree (window ends and starts differ only in a few low digits). Sorting by
 * several fields is calling this from the least to the most significant. Digits are 16 bits for
 * large inputs, 11 bits from RADIX_TINY_MAX to RADIX_SMALL_MAX entries (five passes for random
 * 53-bit keys instead of seven: a tumbling emission at 10K keys sorts 10K keys), and 8 bits below,
 * where clearing and summing more counters per pass would cost more than the extra passes.
 * The values are gathered once into an array of their own that moves with the ids, so each pass
 * reads them in sequence, not through the ids: 16 more bytes of transient space per entry, and an
 * export of 1M int64 keys took 280-310 ms instead of 420-440 (medians, alternating builds).
 */
export function radixByI64(idx: usize, n: i32, vals: usize): void {
  if (n < 2) return;
  // The values, sign-flipped so that they order as unsigned, gathered once in idx order: every
  // pass then reads them in sequence instead of through idx (a random read per entry per pass).
  const kBytes = <usize>n << 3;
  const ka = allocTransient(kBytes);
  const first = <u64>load<i64>(vals + (<usize>load<i32>(idx) << 3)) ^ SIGN_BIT;
  let diff: u64 = 0;
  for (let i = 0; i < n; i++) {
    const v = <u64>load<i64>(vals + (<usize>load<i32>(idx + (<usize>i << 2)) << 3)) ^ SIGN_BIT;
    store<u64>(ka + (<usize>i << 3), v);
    diff |= v ^ first;
  }
  if (diff == 0) {
    releaseTransient(ka, kBytes);
    return;
  }
  // Digit width: fewer passes for more entries, while the counters (2^bits) stay small next to n.
  const bits: i32 = n < RADIX_TINY_MAX ? 8 : n < RADIX_SMALL_MAX ? 11 : 16;
  const buckets: i32 = 1 << bits;
  const digitMask = <u64>(buckets - 1);
  const kb = allocTransient(kBytes);
  const tmp = allocTransient(<usize>n << 2);
  const counts = allocTransient(<usize>buckets << 2);
  let src = idx;
  let dst = tmp;
  let ks = ka;
  let kd = kb;
  for (let d = 0; d * bits < 64; d++) {
    const shift = <u64>(d * bits);
    if (((diff >>> shift) & digitMask) == 0) continue;
    memory.fill(counts, 0, <usize>buckets << 2);
    for (let i = 0; i < n; i++) {
      const c = counts + (<usize>((load<u64>(ks + (<usize>i << 3)) >>> shift) & digitMask) << 2);
      store<u32>(c, load<u32>(c) + 1);
    }
    let sum: u32 = 0;
    for (let k = 0; k < buckets; k++) {
      const c = counts + (<usize>k << 2);
      const x = load<u32>(c);
      store<u32>(c, sum);
      sum += x;
    }
    // Each entry moves with its value.
    for (let i = 0; i < n; i++) {
      const v = load<u64>(ks + (<usize>i << 3));
      const c = counts + (<usize>((v >>> shift) & digitMask) << 2);
      const pos = <usize>load<u32>(c);
      store<u32>(c, <u32>pos + 1);
      store<u64>(kd + (pos << 3), v);
      store<i32>(dst + (pos << 2), load<i32>(src + (<usize>i << 2)));
    }
    let t = src; src = dst; dst = t;
    t = ks; ks = kd; kd = t;
  }
  if (src != idx) memory.copy(idx, src, <usize>n << 2);
  releaseTransient(counts, <usize>buckets << 2);
  releaseTransient(tmp, <usize>n << 2);
  releaseTransient(kb, kBytes);
  releaseTransient(ka, kBytes);
}

const SIGN_BIT: u64 = 0x8000_0000_0000_0000;

/** Below this many entries radixByI64 uses 8-bit digits. */
export const RADIX_TINY_MAX: i32 = 1 << 11;
/** Below this many entries (and from RADIX_TINY_MAX) radixByI64 uses 11-bit digits, else 16-bit. */
export const RADIX_SMALL_MAX: i32 = 1 << 16;

/** Sorts the non-negative i32 values ptr[0 .. n) in place, ascending (LSD radix, 16-bit digits). */
export function sortI32(ptr: usize, n: i32): void {
  if (n < 2) return;
  let all: u32 = 0;
  for (let i = 0; i < n; i++) all |= load<u32>(ptr + (<usize>i << 2));
  const tmp = allocTransient(<usize>n << 2);
  const counts = allocTransient(<usize>65536 << 2);
  let src = ptr;
  let dst = tmp;
  for (let shift: u32 = 0; shift < 32; shift += 16) {
    if (shift > 0 && (all >>> shift) == 0) break;
    memory.fill(counts, 0, <usize>65536 << 2);
    for (let i = 0; i < n; i++) {
      const c = counts + (<usize>((load<u32>(src + (<usize>i << 2)) >>> shift) & 0xffff) << 2);
      store<u32>(c, load<u32>(c) + 1);
    }
    let sum: u32 = 0;
    for (let k = 0; k < 65536; k++) {
      const c = counts + (<usize>k << 2);
      const x = load<u32>(c);
      store<u32>(c, sum);
      sum += x;
    }
    for (let i = 0; i < n; i++) {
      const v = load<u32>(src + (<usize>i << 2));
      const c = counts + (<usize>((v >>> shift) & 0xffff) << 2);
      const pos = load<u32>(c);
      store<u32>(c, pos + 1);
      store<u32>(dst + (<usize>pos << 2), v);
    }
    const t = src; src = dst; dst = t;
  }
  if (src != ptr) memory.copy(ptr, src, <usize>n << 2);
  releaseTransient(counts, <usize>65536 << 2);
  releaseTransient(tmp, <usize>n << 2);
}
