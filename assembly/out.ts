// The output buffer: rows leaving Wasm (fired windows, exports, point reads) are written here as
// Arrow-compatible columns, then copied out by bindings/ in one pass. It is reused between calls;
// its contents are valid until the next call that writes output.
//   key      int64: i64[count]; utf8: u32 offsets[count + 1] into keyBytes
//   start    i64[count], end i64[count]
//   per aggregate: 8 bytes per row (i64 for count, f64 otherwise) and a u8 validity per row
import { Store, KEY_INT64, FN_COUNT, FN_SUM, FN_MEAN, FN_MIN, FN_MAX, FN_FIRST, FN_LAST, nullsAt } from './store';
import { Acc } from './combine';
import { ByteArena } from './arena';
import { growTransient } from './mem';

export class Out {
  count: i32 = 0;
  cap: i32 = 0;
  nAggs: i32 = 0;
  key: usize = 0;
  start: usize = 0;
  end: usize = 0;
  vals: usize = 0; // nAggs pointers
  valid: usize = 0; // nAggs pointers
  valsCap: i32 = 0;
  keyBytes: ByteArena = new ByteArena();
  /** Per window being folded (setFolded): its event count, then per value field its non-null count. */
  foldCnt: usize = 0;
  foldCap: usize = 0;

  constructor() {
    this.keyBytes.transient = true;
  }

  /** Makes room for `rows` rows of `nAggs` aggregates and `keyBytes` key bytes; false on cap. */
  prepare(rows: i32, nAggs: i32, keyBytes: u32): bool {
    this.count = 0;
    this.nAggs = nAggs;
    this.keyBytes.clear();
    if (!this.keyBytes.reserve(keyBytes)) return false;
    if (nAggs > this.valsCap) {
      const v = growTransient(this.vals, <usize>this.valsCap << 2, <usize>nAggs << 2);
      if (v == 0) return false;
      this.vals = v;
      const w = growTransient(this.valid, <usize>this.valsCap << 2, <usize>nAggs << 2);
      if (w == 0) return false;
      this.valid = w;
      // New aggregate slots get columns of the current row capacity.
      for (let a = this.valsCap; a < nAggs; a++) {
        const c = growTransient(0, 0, <usize>max<i32>(this.cap, 1) << 3);
        const d = growTransient(0, 0, <usize>max<i32>(this.cap, 1));
        if (c == 0 || d == 0) return false;
        store<usize>(this.vals + (<usize>a << 2), c);
        store<usize>(this.valid + (<usize>a << 2), d);
      }
      this.valsCap = nAggs;
    }
    if (rows + 1 > this.cap) {
      let next = max<i32>(this.cap, 256);
      while (next < rows + 1) next *= 2;
      const k = growTransient(this.key, <usize>this.cap << 3, <usize>next << 3);
      if (k == 0) return false;
      this.key = k;
      const st = growTransient(this.start, <usize>this.cap << 3, <usize>next << 3);
      if (st == 0) return false;
      this.start = st;
      const en = growTransient(this.end, <usize>this.cap << 3, <usize>next << 3);
      if (en == 0) return false;
      this.end = en;
      for (let a = 0; a < this.valsCap; a++) {
        const vp = this.vals + (<usize>a << 2);
        const oldCap = <usize>max<i32>(this.cap, 1);
        const c = growTransient(load<usize>(vp), oldCap << 3, <usize>next << 3);
        if (c == 0) return false;
        store<usize>(vp, c);
        const dp = this.valid + (<usize>a << 2);
        const d = growTransient(load<usize>(dp), oldCap, <usize>next);
        if (d == 0) return false;
        store<usize>(dp, d);
      }
      this.cap = next;
    }
    store<u32>(this.key, 0);
    return true;
  }

  /** Appends the key of `row` in store `s`. Room must have been prepared. */
  @inline pushKey(s: Store, row: i32): void {
    const i = this.count;
    if (s.keyType == KEY_INT64) {
      store<i64>(this.key + (<usize>i << 3), load<i64>(s.p(s.keyCol, row)));
    } else {
      this.keyBytes.append(s.keyPtr(row), <u32>s.keyLen(row));
      store<u32>(this.key + (<usize>(i + 1) << 2), this.keyBytes.usedBytes);
    }
  }

  /** Appends one output row: the key of `keyRow`, the window bounds, and the values in `acc`. */
  push(s: Store, keyRow: i32, start: i64, end: i64, acc: Acc): void {
    const i = this.count;
    this.pushKey(s, keyRow);
    this.setRow(s, i, start, end, acc);
    this.count = i + 1;
  }

  /**
   * Writes the values of `n` windows: window j is folded from the rows (panes, in start order) whose
   * ids are rows[q0[j] .. q1[j]) and goes to output row pos[j] (q0, q1, pos: i32 arrays). It works
   * column by column, so the dispatch on the aggregate function is per column rather than per pane
   * and window, and the output rows written at once are the few lines of one column.
   *
   * Float sums depend on the order of additions. With split points (qf, an i32 array, or 0 for
   * none) window j's sum is S + B, where S adds the panes rows[q0[j] .. qf[j]) from the last to the
   * first and B adds rows[qf[j] .. q1[j]) from the first to the last, each starting from 0: the
   * order of the hopping index's two-stack fold (hop.ts), so both paths give the same bits.
   * Without split points the panes are added first to last (Acc.add order).
   */
  setFolded(s: Store, rows: usize, q0: usize, q1: usize, pos: usize, n: i32, qf: usize = 0): void {
    const stride = <usize>s.stride;
    const cntCol = s.cntCol;
    const nf = s.nFields;
    // Window counts: the event count, then per field the non-null count.
    const need = <usize>n * <usize>(nf + 1);
    if (need > this.foldCap) {
      this.foldCnt = growTransient(this.foldCnt, this.foldCap << 3, need << 3);
      this.foldCap = need;
    }
    const cnts = this.foldCnt;
    // Neighbouring windows of a sparse key often hold the same panes (same range): those take the
    // previous window's counts and values instead of folding again.
    let pb: i32 = -1;
    let pe: i32 = -1;
    let c: i64 = 0;
    for (let j = 0; j < n; j++) {
      const b = load<i32>(q0 + (<usize>j << 2));
      const e = load<i32>(q1 + (<usize>j << 2));
      if (b != pb || e != pe) {
        pb = b;
        pe = e;
        c = 0;
        for (let q = b; q < e; q++) c += load<i64>(cntCol + <usize>load<i32>(rows + (<usize>q << 2)) * stride);
      }
      store<i64>(cnts + (<usize>j << 3), c);
    }
    for (let f = 0; f < nf; f++) {
      const nc = unchecked(s.nullCnt[f]);
      const fc = cnts + (<usize>(f + 1) * <usize>n << 3);
      pb = -1;
      pe = -1;
      for (let j = 0; j < n; j++) {
        const b = load<i32>(q0 + (<usize>j << 2));
        const e = load<i32>(q1 + (<usize>j << 2));
        if (b != pb || e != pe) {
          pb = b;
          pe = e;
          c = 0;
          for (let q = b; q < e; q++) {
            const r8 = <usize>load<i32>(rows + (<usize>q << 2)) * stride;
            c += load<i64>(cntCol + r8) - nullsAt(nc + r8);
          }
        }
        store<i64>(fc + (<usize>j << 3), c);
      }
    }
    for (let a = 0; a < s.nAggs; a++) {
      const fn = unchecked(s.aggFn[a]);
      const f = unchecked(s.aggField[a]);
      const vals = load<usize>(this.vals + (<usize>a << 2));
      const valid = load<usize>(this.valid + (<usize>a << 2));
      // The window's count of this aggregate's field (the event count for count(*)).
      const fc = cnts + (<usize>(f + 1) * <usize>n << 3);
      if (fn == FN_COUNT) {
        for (let j = 0; j < n; j++) {
          const i = <usize>load<i32>(pos + (<usize>j << 2));
          store<i64>(vals + (i << 3), load<i64>(fc + (<usize>j << 3)));
          store<u8>(valid + i, 1);
        }
        continue;
      }
      // A pane contributes to a field's aggregates only when it saw a non-null value of the field.
      const nc = unchecked(s.nullCnt[f]);
      const col = unchecked(s.aggVal[a]);
      const tcol = unchecked(s.aggTime[a]);
      pb = -1;
      pe = -1;
      let pf: i32 = -1;
      let v: f64 = 0;
      for (let j = 0; j < n; j++) {
        const i = <usize>load<i32>(pos + (<usize>j << 2));
        const nn = load<i64>(fc + (<usize>j << 3));
        if (nn == 0) {
          store<f64>(vals + (i << 3), 0);
          store<u8>(valid + i, 0);
          continue;
        }
        const e = load<i32>(q1 + (<usize>j << 2));
        const b = load<i32>(q0 + (<usize>j << 2));
        const f = qf == 0 ? b : load<i32>(qf + (<usize>j << 2));
        if (b != pb || e != pe || f != pf) {
          pb = b;
          pe = e;
          pf = f;
          v = foldValue(fn, rows, b, f, e, stride, cntCol, nc, col, tcol, nn);
        }
        store<f64>(vals + (i << 3), v);
        store<u8>(valid + i, 1);
      }
    }
  }

  /**
   * setFolded for windows of one row each (tumbling windows, sessions): window j is the row rows[j]
   * and goes to output row pos[j]. Writes what setFolded writes for q0[j] = j, q1[j] = j + 1, bit
   * for bit (a sum is 0 + the row's sum, as the fold adds it), without its per-window count arrays.
   */
  setSingle(s: Store, rows: usize, pos: usize, n: i32): void {
    const stride = <usize>s.stride;
    const cntCol = s.cntCol;
    for (let a = 0; a < s.nAggs; a++) {
      const fn = unchecked(s.aggFn[a]);
      const f = unchecked(s.aggField[a]);
      const vals = load<usize>(this.vals + (<usize>a << 2));
      const valid = load<usize>(this.valid + (<usize>a << 2));
      // count(*) counts events; any other aggregate sees the field's non-null count.
      const nc: usize = f < 0 ? 0 : unchecked(s.nullCnt[f]);
      if (fn == FN_COUNT) {
        for (let j = 0; j < n; j++) {
          const i = <usize>load<i32>(pos + (<usize>j << 2));
          const r8 = <usize>load<i32>(rows + (<usize>j << 2)) * stride;
          store<i64>(vals + (i << 3), load<i64>(cntCol + r8) - (nc == 0 ? 0 : nullsAt(nc + r8)));
          store<u8>(valid + i, 1);
        }
        continue;
      }
      const col = unchecked(s.aggVal[a]);
      const tcol = unchecked(s.aggTime[a]);
      const sum = fn == FN_SUM || fn == FN_MEAN;
      const timed = fn == FN_FIRST || fn == FN_LAST;
      for (let j = 0; j < n; j++) {
        const i = <usize>load<i32>(pos + (<usize>j << 2));
        const r8 = <usize>load<i32>(rows + (<usize>j << 2)) * stride;
        const nn = load<i64>(cntCol + r8) - nullsAt(nc + r8);
        if (nn == 0) {
          store<f64>(vals + (i << 3), 0);
          store<u8>(valid + i, 0);
          continue;
        }
        let v = load<f64>(col + r8);
        if (sum) {
          v = 0 + v;
          if (fn == FN_MEAN) v = v / <f64>nn;
        } else if (timed) {
          // As foldValue: the value is taken only when its time beats the sentinel.
          const t = load<i64>(tcol + r8);
          if (!(fn == FN_FIRST ? t < i64.MAX_VALUE : t > i64.MIN_VALUE)) v = 0;
        }
        store<f64>(vals + (i << 3), v);
        store<u8>(valid + i, 1);
      }
    }
  }

  /** Writes row i's bounds and values (not its key: keys are appended in order by pushKey). */
  setRow(s: Store, i: i32, start: i64, end: i64, acc: Acc): void {
    store<i64>(this.start + (<usize>i << 3), start);
    store<i64>(this.end + (<usize>i << 3), end);
    for (let a = 0; a < s.nAggs; a++) {
      const fn = unchecked(s.aggFn[a]);
      const f = unchecked(s.aggField[a]);
      const vp = load<usize>(this.vals + (<usize>a << 2)) + (<usize>i << 3);
      const dp = load<usize>(this.valid + (<usize>a << 2)) + <usize>i;
      if (fn == FN_COUNT) {
        store<i64>(vp, f < 0 ? acc.cnt : unchecked(acc.fieldCnt[f]));
        store<u8>(dp, 1);
        continue;
      }
      const n = unchecked(acc.fieldCnt[f]);
      if (n == 0) {
        store<f64>(vp, 0);
        store<u8>(dp, 0);
        continue;
      }
      const v = unchecked(acc.val[a]);
      store<f64>(vp, fn == FN_MEAN ? v / <f64>n : v);
      store<u8>(dp, 1);
    }
  }
}

/**
 * Folds one aggregate (fn, value column col, time column tcol) of the rows rows[b .. e); nn is the
 * window's non-null count of the field (> 0). Sums are S + B: S adds rows[b .. f) from the last to
 * the first, B adds rows[f .. e) from the first to the last (see setFolded); f == b is Acc.add order.
 */
@inline function foldValue(fn: i32, rows: usize, b: i32, f: i32, e: i32, stride: usize, cntCol: usize, nc: usize, col: usize, tcol: usize, nn: i64): f64 {
  let v: f64 = 0;
  if (fn == FN_SUM || fn == FN_MEAN) {
    let front: f64 = 0;
    for (let q = f - 1; q >= b; q--) {
      const r8 = <usize>load<i32>(rows + (<usize>q << 2)) * stride;
      if (load<i64>(cntCol + r8) != nullsAt(nc + r8)) front += load<f64>(col + r8);
    }
    for (let q = f; q < e; q++) {
      const r8 = <usize>load<i32>(rows + (<usize>q << 2)) * stride;
      if (load<i64>(cntCol + r8) != nullsAt(nc + r8)) v += load<f64>(col + r8);
    }
    if (f > b) v = front + v;
    if (fn == FN_MEAN) v = v / <f64>nn;
  } else if (fn == FN_MIN) {
    v = Infinity;
    for (let q = b; q < e; q++) {
      const r8 = <usize>load<i32>(rows + (<usize>q << 2)) * stride;
      if (load<i64>(cntCol + r8) == nullsAt(nc + r8)) continue;
      const x = load<f64>(col + r8);
      if (x < v) v = x;
    }
  } else if (fn == FN_MAX) {
    v = -Infinity;
    for (let q = b; q < e; q++) {
      const r8 = <usize>load<i32>(rows + (<usize>q << 2)) * stride;
      if (load<i64>(cntCol + r8) == nullsAt(nc + r8)) continue;
      const x = load<f64>(col + r8);
      if (x > v) v = x;
    }
  } else {
    const isFirst = fn == FN_FIRST;
    let t0: i64 = isFirst ? i64.MAX_VALUE : i64.MIN_VALUE;
    for (let q = b; q < e; q++) {
      const r8 = <usize>load<i32>(rows + (<usize>q << 2)) * stride;
      if (load<i64>(cntCol + r8) == nullsAt(nc + r8)) continue;
      const t = load<i64>(tcol + r8);
      if (isFirst ? t < t0 : t > t0) {
        t0 = t;
        v = load<f64>(col + r8);
      }
    }
  }
  return v;
}

export const out = new Out();
