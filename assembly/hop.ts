// The hopping index: emission of hopping windows (size a multiple of slide, size > slide) at O(1)
// amortized cost per fired window, over the store's own pane rows.
//
// The general emission (advanceHopping in emit.ts) collects and sorts every live pane at every
// watermark advance that crosses a window end, then folds each window from its size/slide panes:
// its cost follows the live panes, not the windows fired. This index keeps, per key, what the next
// window needs:
//  - Each key with panes has a kid record: its first and last pane and the two-stack state. Its
//    panes in start order are the store's pane chain (Store.older/newer). A new pane finds its kid
//    through that chain: the nearest pane of its key already linked is its kid's last pane, and
//    `kidOf` (by row id) names the kid of each kid's last pane. All panes are linked when an
//    emission walks the chains (linkPending runs first).
//  - Window [e - size, e) splits at F(e), the multiple of size in (e - size, e]. Its value is the
//    fold of its panes before F(e), added from the last to the first ("front"), combined with the
//    fold of its panes from F(e) on, added from the first to the last ("back"). The kid keeps the
//    front fold of every suffix of [F - size, F) (in a slab, computed once when the ends
//    first pass F: the flip) and the running back fold of [F, e): a fired window costs one combine,
//    and each pane is folded into back once and into a suffix once.
//  - The general emission folds every window in the same split order (Out.setFolded), so float
//    sums come out bit for bit the same whichever path ran.
//
// The index is transient (never checkpointed) and only mirrors the rows while
//  - no event changed a pane whose first window had already ended (ingest counts those in
//    Store.hopBehind): every pane before the fold boundary is then as it was when it was folded;
//  - nothing but ingest and emission changed rows: restore, key-group moves, deletes and
//    setWatermark clear it (invalidate()).
// Otherwise advanceHopping runs the general emission and rebuilds the index from its sorted panes.
// Rows created between emissions are queued by Store.newRow (pend) and linked at the next one.
import { Store, F_LIVE, F_CHANGED, FN_COUNT, FN_SUM, FN_MIN, FN_MAX, FN_FIRST, FN_MEAN, KEY_INT64, needsVal, needsTime, floorDiv, nullsAt } from './store';
import { allocZeroed, growZeroed, growState, release, allocTransient, growTransient, releaseTransient, fits, blockBytesMax } from './mem';
import { out } from './out';
import { compareKeys, radixByI64, sortByUtf8Key, sortI32 } from './sort';
import { freePanes } from './emit';
import { E_MEMORY_CAP } from './errors';

/** General emissions that skip rebuilding the index, at most, after rebuilds it never used. */
const REBUILD_BACKOFF_MAX: i32 = 64;

/** Kids whose flips are read ahead together (touchFlips). */
const FLIP_AHEAD: i32 = 16;

/** advance() result when the index cannot serve this emission (the general path runs instead). */
export const HOP_DECLINED: i32 = i32.MIN_VALUE;

/** Whether emissions may use the index (tests turn it off to compare with the general path). */
export let hopEnabled: bool = true;
/** Emissions the index served, over the instance's life (tests check that the index ran). */
export let hopServed: i64 = 0;

export function setHopEnabled(on: bool): void {
  hopEnabled = on;
}

// A kid record: its pane list and two-stack state.
const K_HEAD: usize = 0; // first pane row (lowest start), -1 when the kid is free
const K_TAIL: usize = 4; // last pane row
const K_BNEXT: usize = 8; // first pane not yet folded into the back (start >= the last end processed)
const K_FPTR: usize = 12; // slab entry of the oldest front pane at or after the window start, -1 when none
const K_BACKN: usize = 16; // panes folded into the back
const K_FEND: usize = 20; // slab entry of the kid's newest front pane (its front runs newest first)
const K_FOLD: usize = 24; // K_BNEXT when the current emission began (its panes get their flags cleared)
const K_F: usize = 32; // the current split point F (i64), i64.MIN_VALUE before the first flip
const K_TAILNS: usize = 40; // the start of the last pane (i64)
const K_HEADNS: usize = 48; // the start of the first pane (i64), so the purge reads no cold row to test it
const KREC: usize = 56;
// A front pane's slab entry: its start, then its suffix fold record. A kid's front panes are
// consecutive entries, newest first, so the front pointer moves through memory in order.
const S_NS: usize = 0;
const S_REC: usize = 8;

export class Hop {
  valid: bool = false;
  /**
   * Rebuild back-off: a stream whose events keep landing behind the watermark invalidates the
   * index before it serves, so each rebuild would be wasted work on top of the general path.
   * After such a wasted rebuild the next `backoff` general emissions skip rebuilding (doubling up
   * to REBUILD_BACKOFF_MAX); an index that serves resets it.
   */
  served: i32 = 0;
  backoff: i32 = 0;
  skip: i32 = 0;
  /** Bytes of a fold record: event count, per field non-null count, per aggregate value and time. */
  recBytes: usize = 0;
  /** Per aggregate: offset of its value (and time, for first/last) in a fold record, or -1. */
  offVal: StaticArray<i32>;
  offTime: StaticArray<i32>;
  /**
   * The plan is one value field with count, and at most one each of sum or mean, min and max of it
   * (no first or last): recAddRow then folds a row without a loop over the aggregates. The record
   * offsets of the sum (or mean), min and max values, -1 for none; the row columns are aggVal.
   */
  simple: bool = false;
  simpleSum: i32 = -1;
  simpleMin: i32 = -1;
  simpleMax: i32 = -1;
  simpleSumAgg: i32 = -1;
  simpleMinAgg: i32 = -1;
  simpleMaxAgg: i32 = -1;

  rowCap: i32 = 0;
  /**
   * Front slabs: every kid's front panes of the current split (slab[cur]); the other slab holds the
   * previous split's while the kids flip, one by one, within one end's pass.
   */
  slab: StaticArray<usize> = new StaticArray<usize>(2);
  slabCap: StaticArray<i32> = new StaticArray<i32>(2);
  slabN: i32 = 0;
  slabCur: i32 = 0;
  slabF: i64 = i64.MIN_VALUE;
  sufBytes: usize = 0;

  kidCap: i32 = 0;
  kidHwm: i32 = 0;
  kids: usize = 0; // KREC per kid
  keys: usize = 0; // i64 per kid (int64 keys, for sorting)
  back: usize = 0; // recBytes per kid
  kfree: usize = 0; // i32 per kid
  kfreeN: i32 = 0;
  liveKids: i32 = 0;
  order: usize = 0; // i32 per kid: live kids by key, for one emission
  /** Kid ids ascend with their keys (renumbered since the last kid was added). */
  sorted: bool = false;
  kidOf: usize = 0; // i32 per row id: the kid of a kid's last pane (see kidOfTail)
  panes: i32 = 0;
  maxP: i64 = i64.MIN_VALUE;

  pend: usize = 0; // i32 row ids created since the last emission
  pendN: i32 = 0;
  pendCap: i32 = 0;

  /** Scratch: one kid's panes during a flip. */
  flip: usize = 0;
  flipCap: i32 = 0;

  constructor(s: Store) {
    this.offVal = new StaticArray<i32>(s.nAggs);
    this.offTime = new StaticArray<i32>(s.nAggs);
    let off: i32 = 8 + 8 * s.nFields;
    for (let a = 0; a < s.nAggs; a++) {
      const fn = unchecked(s.aggFn[a]);
      unchecked(this.offVal[a] = -1);
      unchecked(this.offTime[a] = -1);
      if (needsVal(fn)) { unchecked(this.offVal[a] = off); off += 8; }
      if (needsTime(fn)) { unchecked(this.offTime[a] = off); off += 8; }
    }
    this.recBytes = <usize>off;
    this.sufBytes = S_REC + this.recBytes;
    let simple = s.nFields == 1;
    for (let a = 0; a < s.nAggs && simple; a++) {
      const fn = unchecked(s.aggFn[a]);
      if (fn == FN_COUNT) continue;
      if (unchecked(s.aggField[a]) != 0) simple = false;
      else if (fn == FN_SUM || fn == FN_MEAN) {
        if (this.simpleSumAgg >= 0) simple = false;
        this.simpleSumAgg = a;
      } else if (fn == FN_MIN) {
        if (this.simpleMinAgg >= 0) simple = false;
        this.simpleMinAgg = a;
      } else if (fn == FN_MAX) {
        if (this.simpleMaxAgg >= 0) simple = false;
        this.simpleMaxAgg = a;
      } else simple = false;
    }
    this.simple = simple;
    if (simple) {
      if (this.simpleSumAgg >= 0) this.simpleSum = unchecked(this.offVal[this.simpleSumAgg]);
      if (this.simpleMinAgg >= 0) this.simpleMin = unchecked(this.offVal[this.simpleMinAgg]);
      if (this.simpleMaxAgg >= 0) this.simpleMax = unchecked(this.offVal[this.simpleMaxAgg]);
    }
  }

  /** Queues a row created since the last emission (Store.newRow). */
  push(row: i32): void {
    if (this.pendN == this.pendCap) {
      const cap = max<i32>(1024, this.pendCap * 2);
      const p = growZeroed(this.pend, <usize>this.pendCap << 2, <usize>cap << 2);
      if (p == 0) {
        this.valid = false;
        return;
      }
      this.pend = p;
      this.pendCap = cap;
    }
    store<i32>(this.pend + (<usize>this.pendN << 2), row);
    this.pendN++;
  }
}

/** Stops the index from mirroring the rows; the next emission takes the general path and rebuilds it. */
export function invalidate(s: Store): void {
  const h = s.hop;
  if (h == null) return;
  h.valid = false;
  h.pendN = 0;
}

/** Releases the index's memory (the store is closing, or the index does not fit under the cap). */
export function dropHop(s: Store): void {
  const h = s.hop;
  if (h == null) return;
  h.valid = false;
  for (let i = 0; i < 2; i++) release(unchecked(h.slab[i]), <usize>unchecked(h.slabCap[i]) * h.sufBytes);
  release(h.kids, <usize>h.kidCap * KREC);
  release(h.keys, <usize>h.kidCap << 3);
  release(h.back, <usize>h.kidCap * h.recBytes);
  release(h.kfree, <usize>h.kidCap << 2);
  release(h.order, <usize>h.kidCap << 2);
  release(h.kidOf, <usize>h.rowCap << 2);
  release(h.pend, <usize>h.pendCap << 2);
  // The scratch buffers are transient (growTransient), counted apart from state.
  releaseTransient(h.flip, <usize>h.flipCap << 2);
  s.hop = null;
}

// ---- capacity ------------------------------------------------------------------------------------

function ensureRows(s: Store, h: Hop): bool {
  if (h.rowCap >= s.capRows) return true;
  const cap = s.capRows;
  const k = growState(h.kidOf, <usize>h.rowCap << 2, <usize>cap << 2);
  if (k == 0) return false;
  h.kidOf = k;
  h.rowCap = cap;
  return true;
}

function ensureKids(h: Hop, n: i32): bool {
  if (n <= h.kidCap) return true;
  let cap = max<i32>(h.kidCap * 2, 256);
  while (cap < n) cap *= 2;
  const old = h.kidCap;
  // All five arrays grow or none does, so their sizes always match kidCap (dropHop releases by it).
  const perKid = KREC + 8 + h.recBytes + 4 + 4;
  if (!fits(<usize>(cap - old) * perKid)) return false;
  h.kids = growZeroed(h.kids, <usize>old * KREC, <usize>cap * KREC);
  h.keys = growZeroed(h.keys, <usize>old << 3, <usize>cap << 3);
  h.back = growZeroed(h.back, <usize>old * h.recBytes, <usize>cap * h.recBytes);
  h.kfree = growZeroed(h.kfree, <usize>old << 2, <usize>cap << 2);
  h.order = growZeroed(h.order, <usize>old << 2, <usize>cap << 2);
  h.kidCap = cap;
  return true;
}

function ensureFlip(h: Hop, n: i32): void {
  if (n <= h.flipCap) return;
  const cap = max<i32>(n, h.flipCap * 2);
  h.flip = growTransient(h.flip, <usize>h.flipCap << 2, <usize>cap << 2);
  h.flipCap = cap;
}

// ---- kids ----------------------------------------------------------------------------------------

@inline function kidPtr(h: Hop, kid: i32): usize {
  return h.kids + <usize>kid * KREC;
}

/** The kid whose last linked pane is x, or -1 (kidOf is only kept for last panes). */
@inline function kidOfTail(h: Hop, x: i32): i32 {
  const kid = load<i32>(h.kidOf + (<usize>x << 2));
  if (kid < 0 || kid >= h.kidHwm) return -1;
  const k = kidPtr(h, kid);
  return load<i32>(k + K_HEAD) >= 0 && load<i32>(k + K_TAIL) == x ? kid : -1;
}

/**
 * The kid of new pane r's key, or -1 for a key without one. The kid's last pane is the newest
 * linked pane of the key: when it is newer than r, it is met walking the chain from r to newer
 * panes; otherwise it is the first linked pane met walking from r to older ones.
 */
function findKid(s: Store, h: Hop, r: i32): i32 {
  const older = s.older;
  const newer = s.newer;
  let x = load<i32>(newer + (<usize>r << 2));
  while (x >= 0) {
    const kid = kidOfTail(h, x);
    if (kid >= 0) return kid;
    x = load<i32>(newer + (<usize>x << 2));
  }
  x = load<i32>(older + (<usize>r << 2));
  while (x >= 0) {
    const kid = kidOfTail(h, x);
    if (kid >= 0) return kid;
    x = load<i32>(older + (<usize>x << 2));
  }
  return -1;
}

/** A kid holding the single pane r (room must exist). */
function newKid(s: Store, h: Hop, r: i32): i32 {
  let kid: i32;
  if (h.kfreeN > 0) {
    h.kfreeN--;
    kid = load<i32>(h.kfree + (<usize>h.kfreeN << 2));
  } else {
    kid = h.kidHwm++;
  }
  const k = kidPtr(h, kid);
  store<i32>(k + K_HEAD, r);
  store<i32>(k + K_TAIL, r);
  store<i32>(k + K_BNEXT, r);
  store<i32>(k + K_FPTR, -1);
  store<i32>(k + K_BACKN, 0);
  store<i32>(h.kidOf + (<usize>r << 2), kid);
  store<i32>(k + K_FOLD, r);
  store<i64>(k + K_F, i64.MIN_VALUE);
  const p = s.rowNs(r);
  store<i64>(k + K_TAILNS, p);
  store<i64>(k + K_HEADNS, p);
  h.sorted = false;
  if (s.keyType == KEY_INT64) store<i64>(h.keys + (<usize>kid << 3), load<i64>(s.p(s.keyCol, r)));
  h.liveKids++;
  h.panes++;
  if (p > h.maxP) h.maxP = p;
  return kid;
}

/** Frees an empty kid's id. */
function removeKid(h: Hop, kid: i32): void {
  store<i32>(kidPtr(h, kid) + K_HEAD, -1);
  store<i32>(h.kfree + (<usize>h.kfreeN << 2), kid);
  h.kfreeN++;
  h.liveKids--;
}

/**
 * Links pane r (start p, at or after the fold boundary) into kid's state; the store's chain
 * already holds it in start order.
 */
function linkPane(s: Store, h: Hop, kid: i32, r: i32, p: i64): void {
  const k = kidPtr(h, kid);
  h.panes++;
  if (p > h.maxP) h.maxP = p;
  if (p > load<i64>(k + K_TAILNS)) {
    // Appended (the common case): the pane follows every other, so it is the next to fold only
    // where no pane is waiting yet.
    store<i32>(k + K_TAIL, r);
    store<i64>(k + K_TAILNS, p);
    store<i32>(h.kidOf + (<usize>r << 2), kid);
    if (load<i32>(k + K_BNEXT) < 0) store<i32>(k + K_BNEXT, r);
    if (load<i32>(k + K_FOLD) < 0) store<i32>(k + K_FOLD, r);
    return;
  } else if (load<i32>(s.older + (<usize>r << 2)) < 0) {
    store<i32>(k + K_HEAD, r);
    store<i64>(k + K_HEADNS, p);
  }
  // The pane is at or after the fold boundary: it is not folded yet.
  const bn = load<i32>(k + K_BNEXT);
  if (bn < 0 || p < s.rowNs(bn)) store<i32>(k + K_BNEXT, r);
  const bf = load<i32>(k + K_FOLD);
  if (bf < 0 || p < s.rowNs(bf)) store<i32>(k + K_FOLD, r);
}

// ---- fold records --------------------------------------------------------------------------------

function recReset(s: Store, h: Hop, d: usize): void {
  store<i64>(d, 0);
  for (let f = 0; f < s.nFields; f++) store<i64>(d + 8 + (<usize>f << 3), 0);
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    const ov = unchecked(h.offVal[a]);
    if (ov >= 0) store<f64>(d + <usize>ov, fn == FN_MIN ? Infinity : fn == FN_MAX ? -Infinity : 0);
    const ot = unchecked(h.offTime[a]);
    if (ot >= 0) store<i64>(d + <usize>ot, fn == FN_FIRST ? i64.MAX_VALUE : i64.MIN_VALUE);
  }
}

/** Adds pane row r to the record at d (as Acc.add). */
function recAddRow(s: Store, h: Hop, d: usize, r: i32): void {
  const r8 = <usize>r * s.stride;
  const cnt = load<i64>(s.cntCol + r8);
  store<i64>(d, load<i64>(d) + cnt);
  if (h.simple) {
    // The same folds as the loop below, without its dispatch (see Hop.simple).
    const nn = cnt - nullsAt(unchecked(s.nullCnt[0]) + r8);
    store<i64>(d + 8, load<i64>(d + 8) + nn);
    if (nn == 0) return;
    if (h.simpleSum >= 0) {
      const vp = d + <usize>h.simpleSum;
      store<f64>(vp, load<f64>(vp) + load<f64>(unchecked(s.aggVal[h.simpleSumAgg]) + r8));
    }
    if (h.simpleMin >= 0) {
      const vp = d + <usize>h.simpleMin;
      const x = load<f64>(unchecked(s.aggVal[h.simpleMinAgg]) + r8);
      if (x < load<f64>(vp)) store<f64>(vp, x);
    }
    if (h.simpleMax >= 0) {
      const vp = d + <usize>h.simpleMax;
      const x = load<f64>(unchecked(s.aggVal[h.simpleMaxAgg]) + r8);
      if (x > load<f64>(vp)) store<f64>(vp, x);
    }
    return;
  }
  for (let f = 0; f < s.nFields; f++) {
    const fp = d + 8 + (<usize>f << 3);
    store<i64>(fp, load<i64>(fp) + cnt - nullsAt(unchecked(s.nullCnt[f]) + r8));
  }
  for (let a = 0; a < s.nAggs; a++) {
    const ov = unchecked(h.offVal[a]);
    if (ov < 0) continue;
    if (cnt == nullsAt(unchecked(s.nullCnt[unchecked(s.aggField[a])]) + r8)) continue;
    const fn = unchecked(s.aggFn[a]);
    const x = load<f64>(unchecked(s.aggVal[a]) + r8);
    const vp = d + <usize>ov;
    if (fn == FN_MIN) { if (x < load<f64>(vp)) store<f64>(vp, x); }
    else if (fn == FN_MAX) { if (x > load<f64>(vp)) store<f64>(vp, x); }
    else if (needsTime(fn)) {
      const tp = d + <usize>unchecked(h.offTime[a]);
      const t = load<i64>(unchecked(s.aggTime[a]) + r8);
      if (fn == FN_FIRST ? t < load<i64>(tp) : t > load<i64>(tp)) {
        store<i64>(tp, t);
        store<f64>(vp, x);
      }
    } else {
      store<f64>(vp, load<f64>(vp) + x);
    }
  }
}

/**
 * Writes output row i: bounds, and the values of front (+) back, where front and back are fold
 * records or 0 for none: as adding each (when its field saw a value) to an empty record and
 * writing that record (Out.setRow's rules), in one pass per aggregate. Sums add the front's, then
 * the back's, to 0: the order of Out.setFolded.
 */
function writeCombined(s: Store, h: Hop, i: i32, start: i64, end: i64, front: usize, back: usize): void {
  store<i64>(out.start + (<usize>i << 3), start);
  store<i64>(out.end + (<usize>i << 3), end);
  const cnt = (front != 0 ? load<i64>(front) : 0) + (back != 0 ? load<i64>(back) : 0);
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    const f = unchecked(s.aggField[a]);
    const vp = load<usize>(out.vals + (<usize>a << 2)) + (<usize>i << 3);
    const dp = load<usize>(out.valid + (<usize>a << 2)) + <usize>i;
    // The field's non-null counts in each part (the event count for count(*)).
    const fo: usize = f < 0 ? 0 : 8 + (<usize>f << 3);
    const nf: i64 = front != 0 ? load<i64>(front + fo) : 0;
    const nb: i64 = back != 0 ? load<i64>(back + fo) : 0;
    const n = f < 0 ? cnt : nf + nb;
    if (fn == FN_COUNT) {
      store<i64>(vp, n);
      store<u8>(dp, 1);
      continue;
    }
    if (n == 0) {
      store<f64>(vp, 0);
      store<u8>(dp, 0);
      continue;
    }
    const ov = <usize>unchecked(h.offVal[a]);
    let v: f64;
    if (fn == FN_MIN) {
      v = Infinity;
      if (nf > 0) { const x = load<f64>(front + ov); if (x < v) v = x; }
      if (nb > 0) { const x = load<f64>(back + ov); if (x < v) v = x; }
    } else if (fn == FN_MAX) {
      v = -Infinity;
      if (nf > 0) { const x = load<f64>(front + ov); if (x > v) v = x; }
      if (nb > 0) { const x = load<f64>(back + ov); if (x > v) v = x; }
    } else if (needsTime(fn)) {
      const ot = <usize>unchecked(h.offTime[a]);
      const first = fn == FN_FIRST;
      let tm: i64 = first ? i64.MAX_VALUE : i64.MIN_VALUE;
      v = 0;
      if (nf > 0) {
        const x = load<i64>(front + ot);
        if (first ? x < tm : x > tm) { tm = x; v = load<f64>(front + ov); }
      }
      if (nb > 0) {
        const x = load<i64>(back + ot);
        if (first ? x < tm : x > tm) { tm = x; v = load<f64>(back + ov); }
      }
    } else {
      v = 0;
      if (nf > 0) v = v + load<f64>(front + ov);
      if (nb > 0) v = v + load<f64>(back + ov);
      if (fn == FN_MEAN) v = v / <f64>n;
    }
    store<f64>(vp, v);
    store<u8>(dp, 1);
  }
}

// ---- building ------------------------------------------------------------------------------------

/**
 * Rebuilds the index after a general emission from its live panes idx[0 .. n) sorted by (key,
 * start) (freed rows are skipped). `B` is the new fold boundary: panes before it had their first
 * window fired. Leaves the index invalid when it does not fit under the memory cap.
 */
export function rebuild(s: Store, idx: usize, n: i32, B: i64): void {
  let h = s.hop;
  if (h == null) {
    h = new Hop(s);
    s.hop = h;
  }
  h.valid = false;
  h.pendN = 0;
  s.hopBehind = 0;
  if (h.skip > 0) {
    h.skip--;
    return;
  }
  h.served = 0;
  if (!ensureRows(s, h)) { dropHop(s); return; }
  // Kids are renumbered from 0.
  h.kidHwm = 0;
  h.kfreeN = 0;
  h.liveKids = 0;
  h.panes = 0;
  h.maxP = i64.MIN_VALUE;
  let kid = -1;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const r = load<i32>(idx + (<usize>i << 2));
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    const p = s.rowNs(r);
    // Panes sorted by (key, start): the previous pane is of the same key when it is r's older
    // neighbour in the store's chain.
    if (kid >= 0 && load<i32>(s.older + (<usize>r << 2)) == last) {
      const k = kidPtr(h, kid);
      store<i32>(k + K_TAIL, r);
      store<i64>(k + K_TAILNS, p);
      store<i32>(h.kidOf + (<usize>r << 2), kid);
      if (load<i32>(k + K_BNEXT) < 0 && p >= B) {
        store<i32>(k + K_BNEXT, r);
        store<i32>(k + K_FOLD, r);
      }
      h.panes++;
      if (p > h.maxP) h.maxP = p;
    } else {
      if (!ensureKids(h, h.kidHwm + 1)) { dropHop(s); return; }
      kid = newKid(s, h, r);
      // No front yet (F is MIN): the first end processed flips, folding from the head.
      const k = kidPtr(h, kid);
      store<i32>(k + K_BNEXT, p >= B ? r : -1);
      store<i32>(k + K_FOLD, p >= B ? r : -1);
    }
    last = r;
  }
  // Kids were numbered in key order; the first flips start a new slab.
  h.sorted = true;
  h.slabF = i64.MIN_VALUE;
  h.valid = true;
}

/** Links the panes created since the last emission, in creation order; false when out of memory. */
function linkPending(s: Store, h: Hop): bool {
  if (!ensureRows(s, h)) return false;
  for (let i = 0; i < h.pendN; i++) {
    const r = load<i32>(h.pend + (<usize>i << 2));
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    const kid = findKid(s, h, r);
    if (kid >= 0) {
      linkPane(s, h, kid, r, s.rowNs(r));
    } else {
      // A key without linked panes: a kid holding just this pane.
      if (!ensureKids(h, h.kidHwm + 1)) return false;
      newKid(s, h, r);
    }
  }
  h.pendN = 0;
  return true;
}

// ---- emission ------------------------------------------------------------------------------------

let cur: Store | null = null;
let curHop: Hop | null = null;
/** Panes starting at or after this have their first window fired by the emission in progress. */
let clearFrom: i64 = i64.MAX_VALUE;
/** Kids whose rows are read ahead together (see advanceIndexed). */
const PREFETCH_KIDS: i32 = 64;
/** Keeps the read-ahead loads observable, so the optimizer cannot drop them. */
export let hopSink: i64 = 0;

/** Clears a pane's CHANGED flag (its first window fired) and logs it for the next checkpoint. */
@inline function clearChanged(s: Store, r: i32): void {
  const fp = s.p(s.flagCol, r);
  if ((load<u8>(fp) & F_CHANGED) != 0) {
    s.markDirty(r); // first: it copies the row out for a capture in progress (Store.cow)
    store<u8>(fp, load<u8>(fp) & ~F_CHANGED);
  }
}

function cmpKid(a: i32, b: i32): i32 {
  const s = changetype<Store>(cur);
  const h = changetype<Hop>(curHop);
  return compareKeys(s, load<i32>(kidPtr(h, a) + K_HEAD), load<i32>(kidPtr(h, b) + K_HEAD));
}

/**
 * The two-stack flip of kid at split point Fe: its front becomes the suffix folds of the panes in
 * [Fe - size, Fe), written to the current slab (a new one when Fe is a new split) newest first:
 * entry base + i holds the i-th newest pane and the fold of it and every newer one, added newest
 * first (Out.setFolded's front order). One walk down the key's chain from its last pane. False
 * when the slab cannot grow under the memory cap.
 */
function flip(s: Store, h: Hop, k: usize, Fe: i64): bool {
  const older = s.older;
  const rb = h.recBytes;
  const sb = h.sufBytes;
  if (Fe != h.slabF) {
    // A new split: the other slab (two splits old, no kid points into it) takes the new fronts.
    h.slabCur ^= 1;
    h.slabN = 0;
    h.slabF = Fe;
  }
  // The first pane at or after Fe (where the new back starts), and the newest before it.
  let y = -1;
  let x = load<i32>(k + K_TAIL);
  while (x >= 0 && s.rowNs(x) >= Fe) {
    y = x;
    x = load<i32>(older + (<usize>x << 2));
  }
  // Room for this front: at most one pane per slide of the window, and at most every live pane.
  const most = <i32>min<i64>(s.size / s.slide, <i64>h.panes);
  const cur = h.slabCur;
  const base = h.slabN;
  if (base + most > unchecked(h.slabCap[cur])) {
    // Room for every live pane at once (a split refolds all of them), so the slab does not grow pane by pane.
    let cap = max<i32>(max<i32>(unchecked(h.slabCap[cur]) * 2, 1024), h.panes + (h.panes >> 3));
    while (cap < base + most) cap *= 2;
    const p = growState(unchecked(h.slab[cur]), <usize>unchecked(h.slabCap[cur]) * sb, <usize>cap * sb);
    if (p == 0) return false;
    unchecked(h.slab[cur] = p);
    unchecked(h.slabCap[cur] = cap);
  }
  const slab = unchecked(h.slab[cur]);
  const lo = Fe - s.size;
  let n = 0;
  let nClear = 0;
  while (x >= 0) {
    const p = s.rowNs(x);
    if (p < lo) break;
    const d = slab + <usize>(base + n) * sb;
    store<i64>(d + S_NS, p);
    if (n == 0) recReset(s, h, d + S_REC);
    else memory.copy(d + S_REC, d - sb + S_REC, rb);
    recAddRow(s, h, d + S_REC, x);
    if (p >= clearFrom) {
      ensureFlip(h, nClear + 1);
      store<i32>(h.flip + (<usize>nClear << 2), x);
      nClear++;
    }
    n++;
    x = load<i32>(older + (<usize>x << 2));
  }
  // Flags of the panes whose first window fires now, oldest first: (key, start) order.
  for (let i = nClear - 1; i >= 0; i--) clearChanged(s, load<i32>(h.flip + (<usize>i << 2)));
  h.slabN = base + n;
  store<i32>(k + K_FPTR, n > 0 ? base + n - 1 : -1);
  store<i32>(k + K_FEND, base);
  store<i32>(k + K_BNEXT, y);
  store<i32>(k + K_BACKN, 0);
  store<i64>(k + K_F, Fe);
  return true;
}

let walk = new StaticArray<i32>(PREFETCH_KIDS);

/**
 * Reads ahead the pane lists that the flips of kids order[j0 .. j1) at split Fe will walk: the
 * lists are walked one step at a time across the kids, so their cache misses overlap instead of
 * forming one chain per kid (a flip at a multiple of size walks size/slide panes per key).
 */
function touchFlips(s: Store, h: Hop, j0: i32, j1: i32, Fe: i64): void {
  let n = 0;
  for (let j = j0; j < j1; j++) {
    const k = kidPtr(h, load<i32>(h.order + (<usize>j << 2)));
    if (load<i64>(k + K_F) == Fe) continue;
    unchecked(walk[n] = load<i32>(k + K_TAIL));
    n++;
  }
  if (n == 0) return;
  const older = s.older;
  const lo = Fe - s.size;
  let touch: i64 = 0;
  let live = n;
  while (live > 0) {
    live = 0;
    for (let i = 0; i < n; i++) {
      const x = unchecked(walk[i]);
      if (x < 0) continue;
      const p = s.rowNs(x);
      touch ^= p;
      if (p < lo) {
        unchecked(walk[i] = -1);
        continue;
      }
      unchecked(walk[i] = load<i32>(older + (<usize>x << 2)));
      live++;
    }
  }
  hopSink ^= touch;
}

/**
 * Renumbers the nk live kids so that ids ascend with keys (h.order holds them in key order; it
 * becomes 0 .. nk): each emission then walks kid records and back folds in address order. Kids
 * keep their ids until one is added, so in a steady stream this runs once. Without room for the
 * copies it leaves the ids as they are (the order is still right, only slower to walk).
 */
function renumber(h: Hop, nk: i32): void {
  const cap = h.kidCap;
  const rb = h.recBytes;
  const kids = allocZeroed(<usize>cap * KREC);
  const keys: usize = kids == 0 ? <usize>0 : allocZeroed(<usize>cap << 3);
  const back: usize = keys == 0 ? <usize>0 : allocZeroed(<usize>cap * rb);
  if (back == 0) {
    release(kids, <usize>cap * KREC);
    release(keys, <usize>cap << 3);
    return;
  }
  for (let j = 0; j < nk; j++) {
    const kid = load<i32>(h.order + (<usize>j << 2));
    memory.copy(kids + <usize>j * KREC, h.kids + <usize>kid * KREC, KREC);
    store<i64>(keys + (<usize>j << 3), load<i64>(h.keys + (<usize>kid << 3)));
    memory.copy(back + <usize>j * rb, h.back + <usize>kid * rb, rb);
    store<i32>(h.order + (<usize>j << 2), j);
  }
  release(h.kids, <usize>cap * KREC);
  release(h.keys, <usize>cap << 3);
  release(h.back, <usize>cap * rb);
  h.kids = kids;
  h.keys = keys;
  h.back = back;
  for (let j = nk; j < cap; j++) store<i32>(kids + <usize>j * KREC + K_HEAD, -1);
  h.kidHwm = nk;
  h.kfreeN = 0;
  for (let j = 0; j < nk; j++) store<i32>(h.kidOf + (<usize>load<i32>(kids + <usize>j * KREC + K_TAIL) << 2), j);
  h.sorted = true;
}

/**
 * Emits the windows of an advance from Wold to W (Wold is not i64.MIN_VALUE) through the index.
 * Returns the number of rows out, E_MEMORY_CAP never (all it allocates is transient or checked
 * first), or HOP_DECLINED when the general path must run (the store is then unchanged).
 */
export function advanceIndexed(s: Store, Wold: i64, W: i64): i32 {
  const h = s.hop;
  if (h == null || !h.valid || !hopEnabled) return HOP_DECLINED;
  if (s.hopBehind != 0) {
    // Events landed behind the watermark: the general path serves, and rebuilds back off when
    // this index never served.
    h.backoff = h.served > 0 ? 0 : min<i32>(max<i32>(1, h.backoff * 2), REBUILD_BACKOFF_MAX);
    h.skip = h.backoff;
    return HOP_DECLINED;
  }
  if (!linkPending(s, h)) {
    dropHop(s);
    return HOP_DECLINED;
  }
  assert(h.panes == s.liveRows, 'hopping index out of step with the rows');
  const size = s.size;
  const slide = s.slide;
  const L = s.lateness;
  const wFloor = floorDiv(W, slide) * slide;
  const afterOld = floorDiv(Wold, slide) * slide + slide;
  // Ends to process: every end in (Wold, W] up to the last one that can hold a pane.
  const K = h.liveKids;
  const eHi = min<i64>(wFloor, h.maxP + size);
  const ends: i64 = K > 0 && eHi >= afterOld ? (eHi - afterOld) / slide + 1 : 0;
  // Each end visits every key: decline when that is far more work than the panes (a long jump of
  // the watermark over sparse keys), which the general path handles in proportion to the panes.
  // (ends * K > limit, in a division: after a watermark far below the panes, ends can pass 2^60.)
  if (ends > 0 && <u64>ends > <u64>(4 * <i64>s.liveRows + 65536) / <u64>K) return HOP_DECLINED;
  // Live kids by key.
  let nk = 0;
  let keyBytes: u64 = 0;
  for (let kid = 0; kid < h.kidHwm; kid++) {
    const k = kidPtr(h, kid);
    const head = load<i32>(k + K_HEAD);
    if (head < 0) continue;
    store<i32>(h.order + (<usize>nk << 2), kid);
    nk++;
    if (s.keyType != KEY_INT64) keyBytes += <u64>s.keyLen(head);
    store<i32>(k + K_FOLD, load<i32>(k + K_BNEXT));
  }
  assert(nk == K, 'hopping index kid count');
  const maxRows: u64 = <u64>ends * <u64>nk;
  keyBytes *= <u64>ends;
  if (maxRows > <u64>blockBytesMax || keyBytes > <u64>blockBytesMax || !out.prepare(<i32>maxRows, s.nAggs, <u32>keyBytes)) return E_MEMORY_CAP;
  if (ends > 0 && !h.sorted) {
    if (s.keyType == KEY_INT64) radixByI64(h.order, nk, h.keys);
    else {
      cur = s;
      curHop = h;
      // Kid ids run to kidHwm (freed kids leave holes): the arrays sortByUtf8Key indexes by id span them.
      const span = max<i32>(h.kidHwm, 1);
      const heads = allocTransient(<usize>span << 2);
      for (let kid = 0; kid < h.kidHwm; kid++) store<i32>(heads + (<usize>kid << 2), load<i32>(kidPtr(h, kid) + K_HEAD));
      sortByUtf8Key(s, h.order, nk, span, heads, 0, 0, cmpKid);
      releaseTransient(heads, <usize>span << 2);
      cur = null;
      curHop = null;
    }
    renumber(h, nk);
  }
  const rb = h.recBytes;
  const sb = h.sufBytes;
  const next = s.newer;
  let c = 0;
  // With one end, the panes whose first window fires now are met in (key, start) order by the
  // flips and folds below, which clear their flags on the way (rows in cache); with several ends
  // they are met end by end, so a pass after the emission clears them in that order instead.
  clearFrom = ends == 1 ? afterOld - slide : i64.MAX_VALUE;
  for (let e = afterOld; ends > 0 && e <= eHi; e += slide) {
    const Fe = floorDiv(e, size) * size;
    const ws = e - size;
    for (let j0 = 0; j0 < nk; j0 += PREFETCH_KIDS) {
      const j1 = min<i32>(j0 + PREFETCH_KIDS, nk);
      // Read the rows and suffix entries of a block of kids in a loop of independent loads (Wasm
      // has no prefetch instruction; this is one): the loop below then mostly hits the cache.
      let touch: i64 = 0;
      for (let j = j0; j < j1; j++) {
        const k = kidPtr(h, load<i32>(h.order + (<usize>j << 2)));
        const x = load<i32>(k + K_BNEXT);
        if (x >= 0) touch ^= s.rowNs(x);
        const f = load<i32>(k + K_FPTR);
        if (f >= 0 && load<i64>(k + K_F) == Fe) touch ^= load<i64>(unchecked(h.slab[h.slabCur]) + <usize>f * sb + S_NS);
      }
      hopSink ^= touch;
    for (let j = j0; j < j1; j++) {
      // Flips read ahead in smaller groups: size/slide panes per kid fill the cache quickly.
      if (((j - j0) & (FLIP_AHEAD - 1)) == 0) touchFlips(s, h, j, min<i32>(j + FLIP_AHEAD, j1), Fe);
      const kid = load<i32>(h.order + (<usize>j << 2));
      const k = kidPtr(h, kid);
      if (load<i64>(k + K_F) != Fe && !flip(s, h, k, Fe)) {
        // Out of memory mid-emission: rows are only read so far (flags aside, which the general
        // path would clear the same way), so hand the emission over to it.
        clearFrom = i64.MAX_VALUE;
        dropHop(s);
        return HOP_DECLINED;
      }
      const slab = unchecked(h.slab[h.slabCur]);
      const back = h.back + <usize>kid * rb;
      let x = load<i32>(k + K_BNEXT);
      let bn = load<i32>(k + K_BACKN);
      if (x >= 0 && s.rowNs(x) < e) {
        if (bn == 0) recReset(s, h, back);
        do {
          recAddRow(s, h, back, x);
          if (s.rowNs(x) >= clearFrom) clearChanged(s, x);
          bn++;
          x = load<i32>(next + (<usize>x << 2));
        } while (x >= 0 && s.rowNs(x) < e);
        store<i32>(k + K_BNEXT, x);
        store<i32>(k + K_BACKN, bn);
      }
      let f = load<i32>(k + K_FPTR);
      if (f >= 0) {
        // Entries run newest first: the window start moves the pointer toward newer panes.
        const fbase = load<i32>(k + K_FEND);
        while (f >= fbase && load<i64>(slab + <usize>f * sb + S_NS) < ws) f--;
        if (f < fbase) f = -1;
        store<i32>(k + K_FPTR, f);
      }
      if (f < 0 && bn == 0) continue;
      if (s.keyType == KEY_INT64) store<i64>(out.key + (<usize>c << 3), load<i64>(h.keys + (<usize>kid << 3)));
      else {
        out.count = c;
        out.pushKey(s, load<i32>(k + K_HEAD));
      }
      writeCombined(s, h, c, ws, e, f >= 0 ? slab + <usize>f * sb + S_REC : 0, bn > 0 ? back : 0);
      c++;
    }
    }
  }
  out.count = c;

  // Flags: panes whose first window fired now, by (key, start) as the general path marks them
  // (done above when there was one end).
  if (ends > 1) {
    for (let j = 0; j < nk; j++) {
      const kid = load<i32>(h.order + (<usize>j << 2));
      let x = load<i32>(kidPtr(h, kid) + K_FOLD);
      while (x >= 0 && s.rowNs(x) < wFloor) {
        clearChanged(s, x);
        x = load<i32>(next + (<usize>x << 2));
      }
    }
  }
  clearFrom = i64.MAX_VALUE;

  // Purge: panes with start + size + L <= W leave their kid's list head; rows are freed in row
  // order, as the general path frees them.
  const horizon = size + L;
  let np = 0;
  let minP: i64 = i64.MAX_VALUE;
  let maxP: i64 = i64.MIN_VALUE;
  ensurePurgeList(h.panes);
  // The head pane's start is in the kid record (K_HEADNS), so the test reads no row: the purged
  // rows are a window old, the coldest of the store. A new head's start is loaded to be stored,
  // and tested only when it too could have expired (it starts at least a slide later), so in a
  // steady stream no branch waits on a cold row and the loads of many kids overlap.
  const slabNow = unchecked(h.slab[h.slabCur]);
  for (let kid = 0; kid < h.kidHwm; kid++) {
    const k = kidPtr(h, kid);
    let x = load<i32>(k + K_HEAD);
    if (x < 0) continue;
    let hn = load<i64>(k + K_HEADNS);
    if (hn + horizon <= W) {
      while (true) {
        store<i32>(purgeRowsBuf + (<usize>np << 2), x);
        np++;
        const nx = load<i32>(next + (<usize>x << 2));
        const f = load<i32>(k + K_FPTR);
        if (f >= 0 && load<i64>(slabNow + <usize>f * sb + S_NS) == hn) {
          store<i32>(k + K_FPTR, f - 1 >= load<i32>(k + K_FEND) ? f - 1 : -1);
        }
        if (load<i32>(k + K_BNEXT) == x) store<i32>(k + K_BNEXT, nx);
        x = nx;
        if (x < 0) break;
        const could = hn + slide + horizon <= W;
        hn = s.rowNs(x);
        if (!could || hn + horizon > W) break;
      }
      store<i32>(k + K_HEAD, x);
      if (x < 0) {
        removeKid(h, kid);
        continue;
      }
      store<i64>(k + K_HEADNS, hn);
    }
    if (hn < minP) minP = hn;
    const p1 = load<i64>(k + K_TAILNS);
    if (p1 > maxP) maxP = p1;
  }
  h.panes -= np;
  h.maxP = maxP;
  if (np > 0) {
    sortI32(purgeRowsBuf, np);
    freePanes(s, purgeRowsBuf, np);
  }
  // The next advance with anything to do (the general path's bound over the panes left): the next
  // end, if a pane lies in its window, or the first purge of a pane whose windows all ended.
  let nextAt: i64 = i64.MAX_VALUE;
  if (h.liveKids > 0) {
    const nextEnd = wFloor + slide;
    if (maxP + size >= nextEnd) nextAt = nextEnd;
    if (minP + size < nextEnd && minP + horizon < nextAt) nextAt = minP + horizon;
  }
  s.watermark = W;
  s.nextEventAt = nextAt;
  hopServed++;
  h.served++;
  return c;
}

let purgeRowsBuf: usize = 0;
let purgeRowsCap: i32 = 0;

function ensurePurgeList(n: i32): void {
  if (n <= purgeRowsCap) return;
  const cap = max<i32>(n, 1024);
  purgeRowsBuf = growTransient(purgeRowsBuf, <usize>purgeRowsCap << 2, <usize>cap << 2);
  purgeRowsCap = cap;
}
