// Deterministic ordering helpers: a stable bottom-up merge sort over an index permutation, with
// comparators that read rows of a store. Used for fired windows (window_end, key, window_start),
// exports (key, ns) and snapshots (key group, key, ns).
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
 */
export function radixByI64(idx: usize, n: i32, vals: usize): void {
  if (n < 2) return;
  const first = <u64>load<i64>(vals + (<usize>load<i32>(idx) << 3)) ^ 0x8000_0000_0000_0000;
  let diff: u64 = 0;
  for (let i = 1; i < n; i++) {
    diff |= (<u64>load<i64>(vals + (<usize>load<i32>(idx + (<usize>i << 2)) << 3)) ^ 0x8000_0000_0000_0000) ^ first;
  }
  if (diff == 0) return;
  // Digit width: fewer passes for more entries, while the counters (2^bits) stay small next to n.
  const bits: i32 = n < RADIX_TINY_MAX ? 8 : n < RADIX_SMALL_MAX ? 11 : 16;
  const buckets: i32 = 1 << bits;
  const digitMask = <u64>(buckets - 1);
  const tmp = allocTransient(<usize>n << 2);
  const counts = allocTransient(<usize>buckets << 2);
  let src = idx;
  let dst = tmp;
  for (let d = 0; d * bits < 64; d++) {
    const shift = <u64>(d * bits);
    if (((diff >>> shift) & digitMask) == 0) continue;
    memory.fill(counts, 0, <usize>buckets << 2);
    for (let i = 0; i < n; i++) {
      const v = (<u64>load<i64>(vals + (<usize>load<i32>(src + (<usize>i << 2)) << 3)) ^ 0x8000_0000_0000_0000) >>> shift;
      const c = counts + (<usize>(v & digitMask) << 2);
      store<u32>(c, load<u32>(c) + 1);
    }
    let sum: u32 = 0;
    for (let k = 0; k < buckets; k++) {
      const c = counts + (<usize>k << 2);
      const x = load<u32>(c);
      store<u32>(c, sum);
      sum += x;
    }
    for (let i = 0; i < n; i++) {
      const id = load<i32>(src + (<usize>i << 2));
      const v = (<u64>load<i64>(vals + (<usize>id << 3)) ^ 0x8000_0000_0000_0000) >>> shift;
      const c = counts + (<usize>(v & digitMask) << 2);
      const pos = load<u32>(c);
      store<u32>(c, pos + 1);
      store<i32>(dst + (<usize>pos << 2), id);
    }
    const t = src; src = dst; dst = t;
  }
  if (src != idx) memory.copy(idx, src, <usize>n << 2);
  releaseTransient(counts, <usize>buckets << 2);
  releaseTransient(tmp, <usize>n << 2);
}

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
