// Combining aggregate states: merging two session rows, and folding hopping-window panes into one
// window result. Every Cairn aggregate is mergeable: counts and sums add, min/max compare, and
// first/last keep the value with the smaller/larger time (panes and sessions cover disjoint time
// ranges, so there are no ties to break across them).
import { Store, FN_COUNT, FN_MIN, FN_MAX, FN_FIRST, FN_LAST, needsVal, needsTime, nullsAt } from './store';

export function combineRows(s: Store, dst: i32, src: i32): void {
  const d8 = <usize>dst * s.stride;
  const s8 = <usize>src * s.stride;
  store<i64>(s.cntCol + d8, load<i64>(s.cntCol + d8) + load<i64>(s.cntCol + s8));
  if (s.maxTimeCol != 0) {
    const m = load<i64>(s.maxTimeCol + s8);
    if (m > load<i64>(s.maxTimeCol + d8)) store<i64>(s.maxTimeCol + d8, m);
  }
  if (s.startCol != 0) {
    const st = load<i64>(s.startCol + s8);
    if (st < load<i64>(s.startCol + d8)) store<i64>(s.startCol + d8, st);
  }
  for (let f = 0; f < s.nFields; f++) {
    const c = unchecked(s.nullCnt[f]);
    store<i64>(c + d8, load<i64>(c + d8) + nullsAt(c + s8));
  }
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (fn == FN_COUNT) continue;
    const srcHas = load<i64>(s.cntCol + s8) > nullsAt(unchecked(s.nullCnt[unchecked(s.aggField[a])]) + s8);
    if (!srcHas) continue;
    const v = unchecked(s.aggVal[a]);
    const x = load<f64>(v + s8);
    if (fn == FN_MIN) { if (x < load<f64>(v + d8)) store<f64>(v + d8, x); }
    else if (fn == FN_MAX) { if (x > load<f64>(v + d8)) store<f64>(v + d8, x); }
    else if (needsTime(fn)) {
      const tc = unchecked(s.aggTime[a]);
      const t = load<i64>(tc + s8);
      const cur = load<i64>(tc + d8);
      if (fn == FN_FIRST ? t < cur : t > cur) {
        store<i64>(tc + d8, t);
        store<f64>(v + d8, x);
      }
    } else {
      store<f64>(v + d8, load<f64>(v + d8) + x);
    }
  }
}

/** An accumulator with the same layout as one row, for folding panes into a window. */
export class Acc {
  cnt: i64 = 0;
  fieldCnt: StaticArray<i64>;
  val: StaticArray<f64>;
  time: StaticArray<i64>;

  constructor(nFields: i32, nAggs: i32) {
    this.fieldCnt = new StaticArray<i64>(nFields);
    this.val = new StaticArray<f64>(nAggs);
    this.time = new StaticArray<i64>(nAggs);
  }

  reset(s: Store): void {
    this.cnt = 0;
    for (let f = 0; f < s.nFields; f++) unchecked(this.fieldCnt[f] = 0);
    for (let a = 0; a < s.nAggs; a++) {
      const fn = unchecked(s.aggFn[a]);
      unchecked(this.val[a] = fn == FN_MIN ? Infinity : fn == FN_MAX ? -Infinity : 0);
      unchecked(this.time[a] = fn == FN_FIRST ? i64.MAX_VALUE : i64.MIN_VALUE);
    }
  }

  add(s: Store, row: i32): void {
    const r8 = <usize>row * s.stride;
    this.cnt += load<i64>(s.cntCol + r8);
    for (let f = 0; f < s.nFields; f++) {
      unchecked(this.fieldCnt[f] += load<i64>(s.cntCol + r8) - nullsAt(unchecked(s.nullCnt[f]) + r8));
    }
    for (let a = 0; a < s.nAggs; a++) {
      const fn = unchecked(s.aggFn[a]);
      if (!needsVal(fn)) continue;
      if (load<i64>(s.cntCol + r8) == nullsAt(unchecked(s.nullCnt[unchecked(s.aggField[a])]) + r8)) continue;
      const x = load<f64>(unchecked(s.aggVal[a]) + r8);
      if (fn == FN_MIN) { if (x < unchecked(this.val[a])) unchecked(this.val[a] = x); }
      else if (fn == FN_MAX) { if (x > unchecked(this.val[a])) unchecked(this.val[a] = x); }
      else if (fn == FN_FIRST || fn == FN_LAST) {
        const t = load<i64>(unchecked(s.aggTime[a]) + r8);
        if (fn == FN_FIRST ? t < unchecked(this.time[a]) : t > unchecked(this.time[a])) {
          unchecked(this.time[a] = t);
          unchecked(this.val[a] = x);
        }
      } else {
        unchecked(this.val[a] += x);
      }
    }
  }

  /** Loads one row's state (a tumbling window or session is its own single pane). */
  fromRow(s: Store, row: i32): void {
    this.reset(s);
    this.add(s, row);
  }
}

