// Watermarks: firing, late re-firing and purging windows, and TTL eviction of running aggregates.
//
// advance(s, t): W := max(W, t); emit every window with end <= W that changed since it was last
// emitted (or never was); then free every window with end + lateness <= W. Emitted rows go to `out`
// ordered by (window_end, key, window_start). All allocation happens before any state changes, so
// E_MEMORY_CAP leaves the store (watermark included) exactly as it was.
import { Store, SLOT_BYTES, WIN_NONE, WIN_PANES, WIN_SESSION, F_LIVE, F_CHANGED, floorDiv } from './store';
import { Acc } from './combine';
import { out } from './out';
import { compareKeys, cmpI64, mergeSort } from './sort';
import { allocTransient, releaseTransient } from './mem';
import { E_MEMORY_CAP } from './errors';
import { hashWithNs } from './hash';

// Candidate windows of the current emission: a row that carries the key, and the bounds.
let candRow: usize = 0;
let candStart: usize = 0;
let candEnd: usize = 0;
let candIdx: usize = 0;
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

function ensureCand(n: i32): void {
  if (n <= candCap) return;
  const cap = max<i32>(n, 1024);
  const r = allocTransient(<usize>cap << 2);
  const a = allocTransient(<usize>cap << 3);
  const b = allocTransient(<usize>cap << 3);
  const c = allocTransient(<usize>cap << 2);
  releaseTransient(candRow, <usize>candCap << 2);
  releaseTransient(candStart, <usize>candCap << 3);
  releaseTransient(candEnd, <usize>candCap << 3);
  releaseTransient(candIdx, <usize>candCap << 2);
  candRow = r; candStart = a; candEnd = b; candIdx = c; candCap = cap;
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
  const W = t > Wold ? t : Wold;
  out.count = 0;
  if (W < s.nextEventAt) {
    s.watermark = W;
    return 0;
  }
  if (s.win == WIN_NONE) {
    if (s.ttl > 0) evictTtl(s, W);
    s.watermark = W;
    return 0;
  }
  // Pass 1: count candidates (upper bound) so that everything is allocated before state changes.
  let n = 0;
  let keyBytes: u64 = 0;
  const size = s.size;
  const slide = s.slide;
  const L = s.lateness;
  const perPane = s.win == WIN_PANES ? <i32>(size / slide) : 1;
  for (let r = 0; r < s.hwm; r++) {
    if (!isLive(s, r)) continue;
    n += perPane;
    if (s.keyType != 0) keyBytes += <u64>s.keyLen(r) * <u64>perPane;
  }
  ensureCand(n);
  if (keyBytes > 0x7fff_0000 || !out.prepare(n, s.nAggs, <u32>keyBytes)) return E_MEMORY_CAP;
  const acc = accFor(s.nFields, s.nAggs);

  // Pass 2: collect windows to emit, clear CHANGED on what is emitted, and find the next event time.
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
          store<i32>(candRow + (<usize>m << 2), r);
          store<i64>(candStart + (<usize>m << 3), start);
          store<i64>(candEnd + (<usize>m << 3), end);
          m++;
          store<u8>(fp, load<u8>(fp) & ~F_CHANGED);
          s.markDirty(r);
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
      if (Wold != i64.MIN_VALUE && lo + L <= Wold) lo = floorDiv(Wold - L, slide) * slide + slide;
    } else {
      lo = Wold == i64.MIN_VALUE ? first : floorDiv(Wold, slide) * slide + slide;
      if (lo < first) lo = first;
    }
    const hi = min<i64>(last, floorDiv(W, slide) * slide);
    for (let e = lo; e <= hi; e += slide) {
      store<i32>(candRow + (<usize>m << 2), r);
      store<i64>(candStart + (<usize>m << 3), e - size);
      store<i64>(candEnd + (<usize>m << 3), e);
      m++;
    }
    if (changed && first <= W) {
      store<u8>(fp, load<u8>(fp) & ~F_CHANGED);
      s.markDirty(r);
    }
    const stillChanged = changed && first > W;
    const nextEnd = stillChanged ? first : floorDiv(W, slide) * slide + slide;
    next = min<i64>(next, nextEnd <= last ? nextEnd : last + L);
  }

  // Sort candidates by (end, key, start); for hopping windows drop duplicates of the same window.
  for (let i = 0; i < m; i++) store<i32>(candIdx + (<usize>i << 2), i);
  cur = s;
  mergeSort(candIdx, m, cmpCand);
  for (let k = 0; k < m; k++) {
    const i = load<i32>(candIdx + (<usize>k << 2));
    const row = load<i32>(candRow + (<usize>i << 2));
    const start = load<i64>(candStart + (<usize>i << 3));
    const end = load<i64>(candEnd + (<usize>i << 3));
    if (k > 0) {
      const j = load<i32>(candIdx + (<usize>(k - 1) << 2));
      if (load<i64>(candEnd + (<usize>j << 3)) == end && load<i64>(candStart + (<usize>j << 3)) == start &&
          compareKeys(s, load<i32>(candRow + (<usize>j << 2)), row) == 0) continue;
    }
    if (s.win == WIN_SESSION || size == slide) {
      acc.fromRow(s, row);
    } else {
      // Fold the key's panes of [start, end) in time order.
      acc.reset(s);
      const kh = s.rowProbeHash(row);
      for (let p = start; p < end; p += slide) {
        const pr = findPane(s, row, kh, p);
        if (pr >= 0) acc.add(s, pr);
      }
    }
    out.push(s, row, start, end, acc);
  }
  cur = null;
  s.watermark = W;
  s.nextEventAt = next;
  purge(s, W);
  return out.count;
}

/** Finds the pane row of the same key as `keyRow` with pane start `p`. */
function findPane(s: Store, keyRow: i32, keyHash: u32, p: i64): i32 {
  const h = hashWithNs(keyHash, p);
  const mask = s.slotMask;
  let pos = h & mask;
  while (true) {
    const sl = load<u64>(s.slots + <usize>pos * SLOT_BYTES);
    if (sl == 0) return -1;
    if (<u32>(sl >>> 32) == h) {
      const row = <i32>(<u32>sl) - 1;
      if (load<i64>(s.p(s.nsCol, row)) == p && compareKeys(s, row, keyRow) == 0) return row;
    }
    pos = (pos + 1) & mask;
  }
}

/** Frees every window whose end + lateness <= W. */
function purge(s: Store, W: i64): void {
  const L = s.lateness;
  if (s.win == WIN_PANES) {
    const horizon = s.size + L;
    for (let r = 0; r < s.hwm; r++) {
      if (!isLive(s, r)) continue;
      if (load<i64>(s.p(s.nsCol, r)) + horizon <= W) {
        s.unindex(r);
        s.freeRow(r);
      }
    }
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

export { WIN_NONE };
