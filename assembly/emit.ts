// Watermarks: firing, late re-firing and purging windows, and TTL eviction of running aggregates.
//
// advance(s, t): W := max(W, t); emit every window with end <= W that changed since it was last
// emitted (or never was); then free every window with end + lateness <= W. Emitted rows go to `out`
// ordered by (window_end, key, window_start). All allocation happens before any state changes, so
// E_MEMORY_CAP leaves the store (watermark included) exactly as it was.
import { Store, SLOT_BYTES, WIN_NONE, WIN_PANES, WIN_SESSION, F_LIVE, F_CHANGED, floorDiv, clampWatermark, WATERMARK_ABS_MAX } from './store';
import { Acc } from './combine';
import { out } from './out';
import { compareKeys, cmpI64, radixByI64, sortByUtf8Key } from './sort';
import { allocTransient, growTransient, releaseTransient, blockBytesMax } from './mem';
import { E_MEMORY_CAP } from './errors';
import { prefetchSink } from './ingest';
import { advanceIndexed, rebuild as rebuildHop, HOP_DECLINED } from './hop';

// Candidate windows of the current emission: a row that carries the key, and the bounds.
let candRow: usize = 0;
let candStart: usize = 0;
let candEnd: usize = 0;
let candIdx: usize = 0;
// For hopping windows without end buckets: each window's output position.
let candPos: usize = 0;
// int64 keys of the candidates (sortCandidates).
let candKey: usize = 0;
// Windows to fold (Out.setFolded): rows[winQ0[j] .. winQ1[j]) go to output row winPos[j].
let winQ0: usize = 0;
let winQ1: usize = 0;
let winPos: usize = 0;
// Hopping windows: the fold's split point (see Out.setFolded), the first pane at or after F(end).
let winQF: usize = 0;
let winCap: i32 = 0;
let candCap: i32 = 0;
let cur: Store | null = null;

let accCache: Acc | null = null;

/** One accumulator reused across calls (the runtime never collects, so nothing is allocated per call). */
export function accFor(nFields: i32, nAggs: i32): Acc {
  let a = accCache;
  if (a == null || a.fieldCnt.length < nFields || a.val.length < nAggs) {
    a = new Acc(max<i32>(nFields, 8), max<i32>(nAggs, 8));
    accCache = a;
  }
  return a;
}

function ensureWin(n: i32): void {
  if (n <= winCap) return;
  let cap = max<i32>(winCap, 256);
  while (cap < n) cap <<= 1;
  winQ0 = growTransient(winQ0, <usize>winCap << 2, <usize>cap << 2);
  winQ1 = growTransient(winQ1, <usize>winCap << 2, <usize>cap << 2);
  winPos = growTransient(winPos, <usize>winCap << 2, <usize>cap << 2);
  winQF = growTransient(winQF, <usize>winCap << 2, <usize>cap << 2);
  winCap = cap;
}

function ensureCand(n: i32): void {
  if (n <= candCap) return;
  let cap = max<i32>(candCap, 1024);
  while (cap < n) cap <<= 1;
  candRow = growTransient(candRow, <usize>candCap << 2, <usize>cap << 2);
  candStart = growTransient(candStart, <usize>candCap << 3, <usize>cap << 3);
  candEnd = growTransient(candEnd, <usize>candCap << 3, <usize>cap << 3);
  candIdx = growTransient(candIdx, <usize>candCap << 2, <usize>cap << 2);
  candPos = growTransient(candPos, <usize>candCap << 2, <usize>cap << 2);
  candKey = growTransient(candKey, <usize>candCap << 3, <usize>cap << 3);
  candCap = cap;
}

function cmpCand(a: i32, b: i32): i32 {
  const c = cmpI64(load<i64>(candEnd + (<usize>a << 3)), load<i64>(candEnd + (<usize>b << 3)));
  if (c != 0) return c;
  const k = compareKeys(changetype<Store>(cur), load<i32>(candRow + (<usize>a << 2)), load<i32>(candRow + (<usize>b << 2)));
  if (k != 0) return k;
  return cmpI64(load<i64>(candStart + (<usize>a << 3)), load<i64>(candStart + (<usize>b << 3)));
}

@inline function isLive(s: Store, r: i32): bool {
  return (load<u8>(s.p(s.flagCol, r)) & F_LIVE) != 0;
}

/** Returns the number of emitted rows, or E_MEMORY_CAP. */
export function advance(s: Store, t: i64): i32 {
  const Wold = s.watermark;
  const tc = clampWatermark(t);
  const W = tc > Wold ? tc : Wold;
  out.count = 0;
  if (W < -WATERMARK_ABS_MAX) return 0; // below every window (see WATERMARK_ABS_MAX)
  if (W < s.nextEventAt) {
    s.watermark = W;
    return 0;
  }
  if (s.win == WIN_NONE) {
    if (s.ttl > 0) evictTtl(s, W);
    s.watermark = W;
    return 0;
  }
  const size = s.size;
  const slide = s.slide;
  const L = s.lateness;
  if (s.win == WIN_PANES && size != slide) return advanceHopping(s, Wold, W);
  // Candidates are at most one per live row: allocate for all before any state changes. Only utf8
  // keys need a pass for this (their byte count); int64 stores count live rows as they go.
  let n = s.liveRows;
  let keyBytes: u64 = 0;
  if (s.keyType != 0) {
    n = 0;
    for (let r = 0; r < s.hwm; r++) {
      if (!isLive(s, r)) continue;
      n++;
      keyBytes += <u64>s.keyLen(r);
    }
  }
  ensureCand(n);
  if (keyBytes > <u64>blockBytesMax || !out.prepare(n, s.nAggs, <u32>keyBytes)) return E_MEMORY_CAP;
  const panes = s.win == WIN_PANES;
  if (panes) ensurePurge(n);
  // Window bounds relative to the old and new watermark (slide multiples), hoisted out of the scan.
  const firstCall = Wold == i64.MIN_VALUE;
  const purgedBelow: i64 = firstCall || !panes ? 0 : floorDiv(Wold - L, slide) * slide + slide;
  const afterOld: i64 = firstCall || !panes ? 0 : floorDiv(Wold, slide) * slide + slide;
  const wFloor: i64 = panes ? floorDiv(W, slide) * slide : 0;
  const horizon = size + L;
  let np = 0;

  // The scan: collect windows to emit, clear CHANGED on what is emitted, find the next event time,
  // and free purged pane rows.
  let m = 0;
  let next: i64 = i64.MAX_VALUE;
  for (let r = 0; r < s.hwm; r++) {
    if (!isLive(s, r)) continue;
    const fp = s.p(s.flagCol, r);
    const changed = (load<u8>(fp) & F_CHANGED) != 0;
    if (s.win == WIN_SESSION) {
      const start = load<i64>(s.p(s.startCol, r));
      const end = load<i64>(s.p(s.maxTimeCol, r)) + s.gap;
      if (end <= W) {
        if (changed) {
          assert(m < n, 'window candidates exceed live rows');
          store<i32>(candRow + (<usize>m << 2), r);
          store<i64>(candStart + (<usize>m << 3), start);
          store<i64>(candEnd + (<usize>m << 3), end);
          m++;
          s.markDirty(r); // first: it copies the row out for a capture in progress (Store.cow)
          store<u8>(fp, load<u8>(fp) & ~F_CHANGED);
        }
        next = min<i64>(next, end + L);
      } else {
        next = min<i64>(next, end);
      }
      continue;
    }
    const p = load<i64>(s.p(s.nsCol, r));
    const first = p + slide;
    const last = p + size;
    let lo: i64;
    if (changed) {
      lo = first;
      // Windows already purged (end + L <= Wold) never fire again.
      if (!firstCall && lo + L <= Wold) lo = purgedBelow;
    } else {
      lo = firstCall ? first : afterOld;
      if (lo < first) lo = first;
    }
    const hi = min<i64>(last, wFloor);
    for (let e = lo; e <= hi; e += slide) {
      assert(m < n, 'window candidates exceed live rows');
      store<i32>(candRow + (<usize>m << 2), r);
      store<i64>(candStart + (<usize>m << 3), e - size);
      store<i64>(candEnd + (<usize>m << 3), e);
      m++;
    }
    if (changed && first <= W) {
      s.markDirty(r);
      store<u8>(fp, load<u8>(fp) & ~F_CHANGED);
    }
    const stillChanged = changed && first > W;
    const nextEnd = stillChanged ? first : wFloor + slide;
    next = min<i64>(next, nextEnd <= last ? nextEnd : last + L);
    // Purged here, while the row record is in cache (purge() would free the same rows in the same
    // order). Emission below still reads the row, which freeing leaves intact but for its flags
    // byte (the top byte of the first null count: readers mask it): no row is allocated before
    // this call returns. Its index slot is removed after emission (purgeRows), all slots
    // read at once, and meanwhile still names the freed row id.
    if (p + horizon <= W) {
      store<i32>(purgeList + (<usize>np << 2), r);
      store<u32>(purgeHash + (<usize>np << 2), s.idxHashOf(s.rowProbeHash(r), p));
      np++;
      s.freeRow(r);
    }
  }

  // Tumbling windows and sessions: each candidate is one row, already unique.
  cur = s;
  sortCandidates(s, m);
  // Each window is one row: candidate i's row is candRow[i], and it goes to output row winPos[i]
  // (its rank). Values are written in candidate order, which is row order, so row records are read
  // in address order; the scattered writes land in the output columns, a few thousand rows long.
  ensureWin(m);
  for (let k = 0; k < m; k++) store<i32>(winPos + (<usize>load<i32>(candIdx + (<usize>k << 2)) << 2), k);
  for (let i = 0; i < m; i++) {
    const k = <usize>load<i32>(winPos + (<usize>i << 2));
    store<i64>(out.start + (k << 3), load<i64>(candStart + (<usize>i << 3)));
    store<i64>(out.end + (k << 3), load<i64>(candEnd + (<usize>i << 3)));
  }
  if (s.keyType == 0) {
    for (let i = 0; i < m; i++) store<i64>(out.key + (<usize>load<i32>(winPos + (<usize>i << 2)) << 3), load<i64>(candKey + (<usize>i << 3)));
    out.count = m;
  } else {
    // utf8 key bytes are appended in output order.
    for (let k = 0; k < m; k++) {
      out.pushKey(s, load<i32>(candRow + (<usize>load<i32>(candIdx + (<usize>k << 2)) << 2)));
      out.count = k + 1;
    }
  }
  out.setSingle(s, candRow, winPos, m);
  cur = null;
  s.watermark = W;
  s.nextEventAt = next;
  if (panes) purgeRows(s, np);
  else purge(s, W);
  return out.count;
}

// Rows freed by a tumbling emission's scan, in row order, and their index hashes.
let purgeList: usize = 0;
let purgeHash: usize = 0;
let purgeCap: i32 = 0;

function ensurePurge(n: i32): void {
  if (n <= purgeCap) return;
  releaseTransient(purgeList, <usize>purgeCap << 2);
  releaseTransient(purgeHash, <usize>purgeCap << 2);
  purgeCap = max<i32>(n, 1024);
  purgeList = allocTransient(<usize>purgeCap << 2);
  purgeHash = allocTransient(<usize>purgeCap << 2);
}

/**
 * Removes the np rows of purgeList, already freed, from the index, in the order purge() would.
 * Hopping stores unlink each pane from its key's chain; the key's slot changes only when it was the
 * key's newest pane (repointed to the next older one, or removed with the key's last pane).
 * Tumbling stores remove each pane's slot: the slots are read first in a loop of independent
 * loads, so the deletions mostly hit the cache (a tumbling emission purges about a window's worth
 * of rows, each slot a miss otherwise).
 */
function purgeRows(s: Store, np: i32): void {
  if (s.byNs()) {
    if (np * 2 > s.liveRows) {
      // Most of the index goes: rebuilding it from the live rows (a sequential scan, one slot
      // write each) is cheaper than deleting slot by slot (a probe and a backward shift each).
      // The slot layout differs from what deletions leave; nothing observable depends on it.
      s.clearIndex();
      for (let r = 0; r < s.hwm; r++) {
        if (!isLive(s, r)) continue;
        s.insertSlot(s.idxHashOf(s.rowProbeHash(r), s.rowNs(r)), r);
      }
      return;
    }
    const slots = s.slots;
    const mask = s.slotMask;
    let touch: u64 = 0;
    for (let i = 0; i < np; i++) touch ^= load<u64>(slots + <usize>(load<u32>(purgeHash + (<usize>i << 2)) & mask) * SLOT_BYTES);
    prefetchSink ^= touch;
  }
  for (let i = 0; i < np; i++) s.unindexHashed(load<i32>(purgeList + (<usize>i << 2)), load<u32>(purgeHash + (<usize>i << 2)));
}

/**
 * Sorts candidates 0..m into candIdx by (end, key, start): radix passes for int64 keys, whose
 * values are left in candKey.
 */
function sortCandidates(s: Store, m: i32): void {
  for (let i = 0; i < m; i++) store<i32>(candIdx + (<usize>i << 2), i);
  if (s.keyType == 0) {
    for (let i = 0; i < m; i++) store<i64>(candKey + (<usize>i << 3), load<i64>(s.p(s.keyCol, load<i32>(candRow + (<usize>i << 2)))));
    radixByI64(candIdx, m, candStart);
    radixByI64(candIdx, m, candKey);
    radixByI64(candIdx, m, candEnd);
  } else {
    sortByUtf8Key(s, candIdx, m, m, candRow, candEnd, candStart, cmpCand);
  }
}

// Live panes sorted by (key, pane start), for hopping windows.
let paneIdx: usize = 0;
let paneCap: i32 = 0;

function cmpPane(a: i32, b: i32): i32 {
  const s = changetype<Store>(cur);
  const k = compareKeys(s, a, b);
  if (k != 0) return k;
  return cmpI64(s.rowNs(a), s.rowNs(b));
}

/**
 * Hopping windows. The store holds slide-sized panes; a window is folded from its panes when it
 * fires. Panes are sorted by (key, start), and for each key the windows to emit are generated from
 * its panes' ranges by a sweep (sweepKey), so the work is proportional to the panes that exist and
 * the windows emitted, never to size/slide index probes per window (which mostly miss for sparse
 * keys):
 *  - windows with end in (Wold, W] that hold any pane of the key (first firing), and
 *  - windows with end <= Wold, not yet purged, that hold a pane changed since it was last emitted.
 *
 * The sweep yields a key's windows in increasing end order and keys in increasing order, so a stable
 * sort by end alone gives the output order (end, key, start): the start is end - size. Two passes
 * run the same sweep: the first counts windows per end (a counting sort over slide-sized buckets
 * of end, or when ends span too many buckets, a radix sort of the ends), the second folds every
 * window straight into its output position. Folding key by key keeps a key's panes in cache for all
 * of its windows; folding in output order would fetch them again for every window end.
 */
function advanceHopping(s: Store, Wold: i64, W: i64): i32 {
  if (Wold != i64.MIN_VALUE) {
    const r = advanceIndexed(s, Wold, W);
    if (r != HOP_DECLINED) return r;
  }
  const size = s.size;
  const slide = s.slide;
  const L = s.lateness;
  cur = s;
  // Live panes, by (key, start).
  if (s.liveRows > paneCap) {
    releaseTransient(paneIdx, <usize>paneCap << 2);
    paneCap = max<i32>(s.liveRows, 1024);
    paneIdx = allocTransient(<usize>paneCap << 2);
  }
  let np = 0;
  let minPane: i64 = i64.MAX_VALUE;
  let maxPane: i64 = i64.MIN_VALUE;
  for (let r = 0; r < s.hwm; r++) {
    if (!isLive(s, r)) continue;
    store<i32>(paneIdx + (<usize>np << 2), r);
    np++;
    const p = s.rowNs(r);
    if (p < minPane) minPane = p;
    if (p > maxPane) maxPane = p;
  }
  if (s.keyType == 0) {
    const span = <usize>max<i32>(s.hwm, 1) << 3;
    const ns = allocTransient(span);
    const ks = allocTransient(span);
    for (let i = 0; i < np; i++) {
      const r = load<i32>(paneIdx + (<usize>i << 2));
      store<i64>(ns + (<usize>r << 3), s.rowNs(r));
      store<i64>(ks + (<usize>r << 3), load<i64>(s.p(s.keyCol, r)));
    }
    radixByI64(paneIdx, np, ns);
    radixByI64(paneIdx, np, ks);
    releaseTransient(ns, span);
    releaseTransient(ks, span);
  } else {
    const span = <usize>max<i32>(s.hwm, 1) << 3;
    const ns = allocTransient(span);
    for (let i = 0; i < np; i++) {
      const r = load<i32>(paneIdx + (<usize>i << 2));
      store<i64>(ns + (<usize>r << 3), s.rowNs(r));
    }
    sortByUtf8Key(s, paneIdx, np, max<i32>(s.hwm, 1), 0, 0, ns, cmpPane);
    releaseTransient(ns, span);
  }
  // Gather each pane's start, CHANGED flag and (int64) key in sorted order, in one pass of row
  // reads: the passes below then read them sequentially instead of each reading scattered rows.
  ensurePaneArrays(np);
  for (let i = 0; i < np; i++) {
    const r = load<i32>(paneIdx + (<usize>i << 2));
    const base = <usize>r * s.stride;
    store<i64>(paneNs + (<usize>i << 3), load<i64>(s.nsCol + base));
    store<u8>(paneChanged + <usize>i, load<u8>(s.flagCol + base) & F_CHANGED);
    if (s.keyType == 0) store<i64>(paneKey + (<usize>i << 3), load<i64>(s.keyCol + base));
  }
  const first = Wold == i64.MIN_VALUE;
  hopFirst = first;
  hopPurgeLo = first ? i64.MIN_VALUE : floorDiv(Wold - L, slide) * slide + slide;
  hopAfterOld = first ? i64.MIN_VALUE : floorDiv(Wold, slide) * slide + slide;
  hopOldFloor = first ? i64.MIN_VALUE : floorDiv(Wold, slide) * slide;
  const wFloor = floorDiv(W, slide) * slide;
  hopWFloor = wFloor;
  // Every end the sweep can yield lies in [eLo, eHi] (see the bounds of lo and hi in sweepKey; the
  // purge bound is the lower of the two sweeps' bounds). Ends are slide multiples.
  let eLo: i64 = minPane + slide;
  if (!first && hopPurgeLo > eLo) eLo = hopPurgeLo;
  const eHi: i64 = min<i64>(maxPane + size, wFloor);
  let buckets: i64 = 0;
  if (np > 0 && eHi >= eLo) {
    const span = <u64>(eHi - eLo) / <u64>slide;
    if (span < <u64>HOP_BUCKETS_MAX) buckets = <i64>span + 1;
  }
  hopCounting = buckets > 0;
  hopELo = eLo;
  if (hopCounting) {
    ensureBuckets(<i32>buckets);
    memory.fill(hopBuckets, 0, <usize>buckets << 2);
  }
  // Pass 1: count (and, without buckets, record the ends of) the windows to emit.
  let m = 0;
  let perKeyMax = 0;
  let keyBytes: u64 = 0;
  let g = 0;
  while (g < np) {
    const head = load<i32>(paneIdx + (<usize>g << 2));
    let g1 = g + 1;
    while (g1 < np && samePaneKey(s, g1, g)) g1++;
    const m1 = sweepKey(s, g, g1, m, false);
    if (s.keyType != 0) keyBytes += <u64>(m1 - m) * <u64>s.keyLen(head);
    if (m1 - m > perKeyMax) perKeyMax = m1 - m;
    m = m1;
    g = g1;
  }
  if (keyBytes > <u64>blockBytesMax || !out.prepare(m, s.nAggs, <u32>keyBytes)) return E_MEMORY_CAP;
  // Output positions: bucket starts (counting), or each window's rank by end (radix).
  if (hopCounting) {
    let sum: u32 = 0;
    for (let b = 0; b < <i32>buckets; b++) {
      const bp = hopBuckets + (<usize>b << 2);
      const c = load<u32>(bp);
      store<u32>(bp, sum);
      sum += c;
    }
    if (s.keyType != 0) ensureCand(m);
  } else {
    for (let i = 0; i < m; i++) store<i32>(candIdx + (<usize>i << 2), i);
    radixByI64(candIdx, m, candEnd);
    for (let k = 0; k < m; k++) store<i32>(candPos + (<usize>load<i32>(candIdx + (<usize>k << 2)) << 2), k);
  }
  // Pass 2: fold each window's panes (in start order) into its output position.
  ensureWin(perKeyMax);
  let c = 0;
  g = 0;
  while (g < np) {
    const head = load<i32>(paneIdx + (<usize>g << 2));
    let g1 = g + 1;
    while (g1 < np && samePaneKey(s, g1, g)) g1++;
    c = sweepKey(s, g, g1, c, true);
    g = g1;
  }
  assert(c == m, 'hopping sweep passes disagree');
  if (s.keyType == 0) {
    out.count = m;
  } else {
    // utf8 key bytes are appended in output order.
    for (let k = 0; k < m; k++) {
      out.pushKey(s, load<i32>(candRow + (<usize>k << 2)));
      out.count = k + 1;
    }
  }
  // Flags and the next event time (rows are read only for the panes whose flags change).
  let next: i64 = i64.MAX_VALUE;
  for (let q = 0; q < np; q++) {
    const changed = load<u8>(paneChanged + <usize>q) != 0;
    const p = load<i64>(paneNs + (<usize>q << 3));
    const firstEnd = p + slide;
    const last = p + size;
    if (changed && firstEnd <= W) {
      const r = load<i32>(paneIdx + (<usize>q << 2));
      const fp = s.p(s.flagCol, r);
      s.markDirty(r);
      store<u8>(fp, load<u8>(fp) & ~F_CHANGED);
    }
    const nextEnd = changed && firstEnd > W ? firstEnd : wFloor + slide;
    next = min<i64>(next, nextEnd <= last ? nextEnd : last + L);
  }
  cur = null;
  s.watermark = W;
  s.nextEventAt = next;
  purge(s, W);
  rebuildHop(s, paneIdx, np, wFloor);
  return out.count;
}

// Per live pane in (key, start) order, for one hopping emission (see advanceHopping).
let paneNs: usize = 0;
let paneKey: usize = 0;
let paneChanged: usize = 0;
let paneArrCap: i32 = 0;

function ensurePaneArrays(n: i32): void {
  if (n <= paneArrCap) return;
  releaseTransient(paneNs, <usize>paneArrCap << 3);
  releaseTransient(paneKey, <usize>paneArrCap << 3);
  releaseTransient(paneChanged, <usize>paneArrCap);
  paneArrCap = max<i32>(n, 1024);
  paneNs = allocTransient(<usize>paneArrCap << 3);
  paneKey = allocTransient(<usize>paneArrCap << 3);
  paneChanged = allocTransient(<usize>paneArrCap);
}

/** Whether the panes at sorted positions a and b have the same key. */
@inline function samePaneKey(s: Store, a: i32, b: i32): bool {
  if (s.keyType == 0) return load<i64>(paneKey + (<usize>a << 3)) == load<i64>(paneKey + (<usize>b << 3));
  return compareKeys(s, load<i32>(paneIdx + (<usize>a << 2)), load<i32>(paneIdx + (<usize>b << 2))) == 0;
}

/** End buckets of one hopping emission at most (a counting sort beyond this would cost more than the radix sort of the ends). */
const HOP_BUCKETS_MAX: i32 = 1 << 16;
let hopBuckets: usize = 0;
let hopBucketCap: i32 = 0;
// Parameters of the current hopping emission, read by sweepKey.
let hopFirst: bool = false;
let hopPurgeLo: i64 = 0;
let hopAfterOld: i64 = 0;
let hopOldFloor: i64 = 0;
let hopWFloor: i64 = 0;
let hopELo: i64 = 0;
let hopCounting: bool = false;

function ensureBuckets(n: i32): void {
  if (n <= hopBucketCap) return;
  releaseTransient(hopBuckets, <usize>hopBucketCap << 2);
  hopBucketCap = max<i32>(n, 256);
  hopBuckets = allocTransient(<usize>hopBucketCap << 2);
}

/**
 * Runs the window sweep over the panes paneIdx[g .. g1) of one key; `c` numbers the windows across
 * keys. Pass 1 (emit false) counts them per end bucket, or records their ends; pass 2 folds each and
 * writes it at its output position. Returns c plus the number of windows.
 */
function sweepKey(s: Store, g: i32, g1: i32, c: i32, emit: bool): i32 {
  const size = s.size;
  const slide = s.slide;
  const head = load<i32>(paneIdx + (<usize>g << 2));
  // Pass 2 lists the key's windows, then folds them together (column by column).
  let w = 0;
  for (let sweep = 0; sweep < 2; sweep++) {
    // Sweep 0: re-fires of changed panes (ends <= Wold); sweep 1: first firings (ends > Wold).
    if (sweep == 0 && hopFirst) continue;
    let nextE: i64 = i64.MIN_VALUE;
    let q0 = g;
    let q1 = g;
    let qf = g;
    for (let q = g; q < g1; q++) {
      if (sweep == 0 && load<u8>(paneChanged + <usize>q) == 0) continue;
      const p = load<i64>(paneNs + (<usize>q << 3));
      let lo = max<i64>(p + slide, sweep == 0 ? hopPurgeLo : hopAfterOld);
      if (nextE > lo) lo = nextE;
      const hi = min<i64>(p + size, sweep == 0 ? hopOldFloor : hopWFloor);
      // The end bucket of e, stepped along with e (one division per pane, not per window).
      let bp = hopCounting && lo <= hi ? hopBuckets + (<usize>((<u64>(lo - hopELo)) / <u64>slide) << 2) : 0;
      for (let e = lo; e <= hi; e += slide) {
        if (!emit) {
          if (hopCounting) {
            store<u32>(bp, load<u32>(bp) + 1);
            bp += 4;
          } else {
            ensureCand(c + 1);
            store<i64>(candEnd + (<usize>c << 3), e);
          }
        } else {
          while (q0 < g1 && load<i64>(paneNs + (<usize>q0 << 3)) < e - size) q0++;
          while (q1 < g1 && load<i64>(paneNs + (<usize>q1 << 3)) < e) q1++;
          // The split F(e), the multiple of size in (e - size, e] (see hop.ts).
          const split = floorDiv(e, size) * size;
          while (qf < g1 && load<i64>(paneNs + (<usize>qf << 3)) < split) qf++;
          let pos: i32;
          if (hopCounting) {
            pos = <i32>load<u32>(bp);
            store<u32>(bp, <u32>pos + 1);
            bp += 4;
          } else {
            pos = load<i32>(candPos + (<usize>c << 2));
          }
          if (s.keyType == 0) store<i64>(out.key + (<usize>pos << 3), load<i64>(paneKey + (<usize>g << 3)));
          else store<i32>(candRow + (<usize>pos << 2), head);
          store<i64>(out.start + (<usize>pos << 3), e - size);
          store<i64>(out.end + (<usize>pos << 3), e);
          store<i32>(winQ0 + (<usize>w << 2), q0);
          store<i32>(winQ1 + (<usize>w << 2), q1);
          store<i32>(winQF + (<usize>w << 2), qf);
          store<i32>(winPos + (<usize>w << 2), pos);
          w++;
        }
        c++;
        nextE = e + slide;
      }
    }
  }
  if (emit) out.setFolded(s, paneIdx, winQ0, winQ1, winPos, w, winQF);
  return c;
}

/**
 * Frees the pane rows rows[0 .. n) (ascending row ids, all past their windows and lateness) and
 * drops their index slots, exactly as purge() frees the same rows.
 */
export function freePanes(s: Store, rows: usize, n: i32): void {
  ensurePurge(n);
  for (let i = 0; i < n; i++) {
    const r = load<i32>(rows + (<usize>i << 2));
    store<i32>(purgeList + (<usize>i << 2), r);
    store<u32>(purgeHash + (<usize>i << 2), s.idxHashOf(s.rowProbeHash(r), s.rowNs(r)));
    s.freeRow(r);
  }
  purgeRows(s, n);
}

/** Frees every window whose end + lateness <= W. */
function purge(s: Store, W: i64): void {
  const L = s.lateness;
  if (s.win == WIN_PANES) {
    // Free in row order, then drop the index slots together (purgeRows), as tumbling emission does.
    const horizon = s.size + L;
    ensurePurge(s.liveRows);
    let np = 0;
    for (let r = 0; r < s.hwm; r++) {
      if (!isLive(s, r)) continue;
      const p = load<i64>(s.p(s.nsCol, r));
      if (p + horizon <= W) {
        store<i32>(purgeList + (<usize>np << 2), r);
        store<u32>(purgeHash + (<usize>np << 2), s.idxHashOf(s.rowProbeHash(r), p));
        np++;
        s.freeRow(r);
      }
    }
    purgeRows(s, np);
    return;
  }
  // Sessions: walk each key's list from its head so links and the index stay right.
  for (let r = 0; r < s.hwm; r++) {
    if (!isLive(s, r)) continue;
    if (load<i64>(s.p(s.maxTimeCol, r)) + s.gap + L > W) continue;
    removeSession(s, r);
  }
}

/** Unlinks session row `r` from its key's list (fixing the index head) and frees it. */
export function removeSession(s: Store, r: i32): void {
  const head = headOf(s, r);
  const nx = load<i32>(s.p(s.nextCol, r));
  if (head == r) {
    if (nx >= 0) s.repointSlot(r, nx);
    else s.unindex(r);
  } else {
    let p = head;
    while (load<i32>(s.p(s.nextCol, p)) != r) p = load<i32>(s.p(s.nextCol, p));
    store<i32>(s.p(s.nextCol, p), nx);
  }
  s.freeRow(r);
}

/** The head row of the session list that contains `r` (the row the index points at). */
function headOf(s: Store, r: i32): i32 {
  const h = s.rowProbeHash(r);
  const mask = s.slotMask;
  let pos = h & mask;
  while (true) {
    const sl = load<u64>(s.slots + <usize>pos * SLOT_BYTES);
    assert(sl != 0, 'session key missing from index');
    if (<u32>(sl >>> 32) == h) {
      const row = <i32>(<u32>sl) - 1;
      if (compareKeys(s, row, r) == 0) return row;
    }
    pos = (pos + 1) & mask;
  }
}

function evictTtl(s: Store, W: i64): void {
  let next: i64 = i64.MAX_VALUE;
  for (let r = 0; r < s.hwm; r++) {
    if (!isLive(s, r)) continue;
    const expires = load<i64>(s.p(s.maxTimeCol, r)) + s.ttl;
    if (expires <= W) {
      s.unindex(r);
      s.freeRow(r);
    } else if (expires < next) {
      next = expires;
    }
  }
  s.nextEventAt = next;
}

