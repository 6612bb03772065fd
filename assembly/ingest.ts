// Batch ingest: resolve every event's row first, then run one tight loop per aggregate over the
// batch. Inputs are raw columns the TypeScript side copied into the scratch arena:
//   keys   int64: i64[n]; utf8: u32 offsets[n + 1] into a byte buffer
//   times  i64[n] (0 when the operator has no time field)
//   values a table of nFields pointers, each to f64[n]; NaN means null
// All checks on user input happen in TypeScript before the call; capacity is reserved before any
// row is touched, so a batch either applies whole or (E_MEMORY_CAP) not at all.
import {
  Store, KEY_INT64, WIN_NONE, WIN_PANES, WIN_SESSION, FN_COUNT, FN_SUM, FN_MIN, FN_MAX, FN_MEAN, FN_FIRST,
  FN_LAST, floorDiv, keyHashOf, needsTime,
} from './store';
import { combineRows } from './combine';
import { E_MEMORY_CAP } from './errors';

/** Returns the number of accepted events, or E_MEMORY_CAP. */
export function ingestBatch(s: Store, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, valTable: usize, seqBase: i64): i32 {
  let keyBytes: u32 = 0;
  if (s.keyType != KEY_INT64) keyBytes = load<u32>(keyPtr + (<usize>n << 2)) - load<u32>(keyPtr);
  if (!s.reserve(n, keyBytes, 0)) return E_MEMORY_CAP;
  if (s.win == WIN_SESSION) return ingestSessions(s, n, keyPtr, keyBytesPtr, timePtr, valTable, seqBase);

  const rows = s.rowBuf;
  const W = s.watermark;
  let accepted = 0;
  let late: i64 = 0;
  // Pass 1: resolve rows. Late events (every window containing them is purged) get row -1.
  const panes = s.win == WIN_PANES;
  const size = s.size;
  const slide = s.slide;
  const horizon = size + s.lateness;
  let minPane: i64 = i64.MAX_VALUE;
  const ttl = s.ttl;
  for (let i = 0; i < n; i++) {
    let ns: i64 = 0;
    if (ttl > 0) {
      const t = load<i64>(timePtr + (<usize>i << 3));
      if (t + ttl < s.nextEventAt) s.nextEventAt = t + ttl;
    }
    if (panes) {
      const t = load<i64>(timePtr + (<usize>i << 3));
      ns = floorDiv(t, slide) * slide;
      if (ns + horizon <= W) {
        store<i32>(rows + (<usize>i << 2), -1);
        late++;
        continue;
      }
      if (ns < minPane) minPane = ns;
    }
    let keyI64: i64 = 0;
    let ptr: usize = 0;
    let len: i32 = 0;
    if (s.keyType == KEY_INT64) {
      keyI64 = load<i64>(keyPtr + (<usize>i << 3));
    } else {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      ptr = keyBytesPtr + <usize>o;
      len = <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o);
    }
    const h = keyHashOf(s, keyI64, ptr, len);
    const row = s.findOrInsert(h, keyI64, ptr, len, ns);
    s.touch(row);
    store<i32>(rows + (<usize>i << 2), row);
    accepted++;
  }
  if (panes && minPane != i64.MAX_VALUE && minPane + slide < s.nextEventAt) s.nextEventAt = minPane + slide;
  s.lateEvents += late;
  applyColumns(s, n, rows, timePtr, valTable, seqBase);
  return accepted;
}

/** Pass 2: one loop per column. Rows of -1 (late events) are skipped. */
function applyColumns(s: Store, n: i32, rows: usize, timePtr: usize, valTable: usize, seqBase: i64): void {
  const cnt = s.cntCol;
  for (let i = 0; i < n; i++) {
    const r = load<i32>(rows + (<usize>i << 2));
    if (r < 0) continue;
    const p = cnt + (<usize>r << 3);
    store<i64>(p, load<i64>(p) + 1);
  }
  if (s.maxTimeCol != 0) {
    const mt = s.maxTimeCol;
    for (let i = 0; i < n; i++) {
      const r = load<i32>(rows + (<usize>i << 2));
      if (r < 0) continue;
      const t = load<i64>(timePtr + (<usize>i << 3));
      const p = mt + (<usize>r << 3);
      if (t > load<i64>(p)) store<i64>(p, t);
    }
  }
  for (let f = 0; f < s.nFields; f++) {
    const col = unchecked(s.fieldCnt[f]);
    const v = load<usize>(valTable + (<usize>f << 2));
    for (let i = 0; i < n; i++) {
      const r = load<i32>(rows + (<usize>i << 2));
      const x = load<f64>(v + (<usize>i << 3));
      if (r < 0 || x != x) continue;
      const p = col + (<usize>r << 3);
      store<i64>(p, load<i64>(p) + 1);
    }
  }
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (fn == FN_COUNT) continue;
    const col = unchecked(s.aggVal[a]);
    const v = load<usize>(valTable + (<usize>unchecked(s.aggField[a]) << 2));
    if (fn == FN_SUM || fn == FN_MEAN) {
      for (let i = 0; i < n; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        const p = col + (<usize>r << 3);
        store<f64>(p, load<f64>(p) + x);
      }
    } else if (fn == FN_MIN) {
      for (let i = 0; i < n; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        const p = col + (<usize>r << 3);
        if (x < load<f64>(p)) store<f64>(p, x);
      }
    } else if (fn == FN_MAX) {
      for (let i = 0; i < n; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        const p = col + (<usize>r << 3);
        if (x > load<f64>(p)) store<f64>(p, x);
      }
    } else {
      const tcol = unchecked(s.aggTime[a]);
      const first = fn == FN_FIRST;
      for (let i = 0; i < n; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        const t: i64 = s.eventTime ? load<i64>(timePtr + (<usize>i << 3)) : seqBase + i;
        const tp = tcol + (<usize>r << 3);
        const cur = load<i64>(tp);
        // first keeps the earliest arrival on equal times; last takes the latest arrival.
        if (first ? t < cur : t >= cur) {
          store<i64>(tp, t);
          store<f64>(col + (<usize>r << 3), x);
        }
      }
    }
  }
}

/** Applies event i of the batch to one row (row-at-a-time, used by session windows). */
function applyOne(s: Store, row: i32, i: i32, timePtr: usize, valTable: usize, seqBase: i64): void {
  const r8 = <usize>row << 3;
  store<i64>(s.cntCol + r8, load<i64>(s.cntCol + r8) + 1);
  const t = load<i64>(timePtr + (<usize>i << 3));
  if (s.maxTimeCol != 0 && t > load<i64>(s.maxTimeCol + r8)) store<i64>(s.maxTimeCol + r8, t);
  for (let f = 0; f < s.nFields; f++) {
    const x = load<f64>(load<usize>(valTable + (<usize>f << 2)) + (<usize>i << 3));
    if (x != x) continue;
    const p = unchecked(s.fieldCnt[f]) + r8;
    store<i64>(p, load<i64>(p) + 1);
  }
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (fn == FN_COUNT) continue;
    const x = load<f64>(load<usize>(valTable + (<usize>unchecked(s.aggField[a]) << 2)) + (<usize>i << 3));
    if (x != x) continue;
    const p = unchecked(s.aggVal[a]) + r8;
    if (fn == FN_SUM || fn == FN_MEAN) store<f64>(p, load<f64>(p) + x);
    else if (fn == FN_MIN) { if (x < load<f64>(p)) store<f64>(p, x); }
    else if (fn == FN_MAX) { if (x > load<f64>(p)) store<f64>(p, x); }
    else if (needsTime(fn)) {
      const et: i64 = s.eventTime ? t : seqBase + i;
      const tp = unchecked(s.aggTime[a]) + r8;
      const cur = load<i64>(tp);
      if (fn == FN_FIRST ? et < cur : et >= cur) {
        store<i64>(tp, et);
        store<f64>(p, x);
      }
    }
  }
}

/**
 * Session windows, row at a time: an event [t, t + gap) merges with every live session of its key
 * that it overlaps (sessions of one key never overlap each other, so checking against the event's
 * own interval finds all of them). The index maps a key to the head of its session list.
 */
function ingestSessions(s: Store, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, valTable: usize, seqBase: i64): i32 {
  const W = s.watermark;
  const gap = s.gap;
  let accepted = 0;
  for (let i = 0; i < n; i++) {
    const t = load<i64>(timePtr + (<usize>i << 3));
    if (t + gap + s.lateness <= W) {
      s.lateEvents++;
      continue;
    }
    let keyI64: i64 = 0;
    let ptr: usize = 0;
    let len: i32 = 0;
    if (s.keyType == KEY_INT64) {
      keyI64 = load<i64>(keyPtr + (<usize>i << 3));
    } else {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      ptr = keyBytesPtr + <usize>o;
      len = <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o);
    }
    const h = keyHashOf(s, keyI64, ptr, len);
    let head = s.find(h, keyI64, ptr, len, 0);
    // An interval of length gap overlaps at most two sessions of the key (live sessions never
    // overlap and each is at least gap long). When it bridges two, the one with the smaller session
    // id survives, so the result does not depend on list order (which differs after a restore).
    let o1 = -1;
    let o2 = -1;
    for (let r = head; r >= 0; r = load<i32>(s.nextCol + (<usize>r << 2))) {
      const start = load<i64>(s.startCol + (<usize>r << 3));
      const end = load<i64>(s.maxTimeCol + (<usize>r << 3)) + gap;
      if (start < t + gap && t < end) {
        if (o1 < 0) o1 = r;
        else o2 = r;
      }
    }
    let target = o1;
    if (o2 >= 0) {
      const keep = load<i64>(s.nsCol + (<usize>o1 << 3)) <= load<i64>(s.nsCol + (<usize>o2 << 3)) ? o1 : o2;
      const drop = keep == o1 ? o2 : o1;
      combineRows(s, keep, drop);
      head = unlinkSession(s, head, drop);
      s.freeRow(drop);
      target = keep;
    }
    const curHead = head;
    if (target < 0) {
      target = s.newRow(h, keyI64, ptr, len, t);
      store<i64>(s.startCol + (<usize>target << 3), t);
      if (curHead < 0) {
        insertSlot(s, h, target);
      } else {
        store<i32>(s.nextCol + (<usize>target << 2), curHead);
        s.repointSlot(curHead, target);
      }
    } else {
      const sp = s.startCol + (<usize>target << 3);
      if (t < load<i64>(sp)) store<i64>(sp, t);
    }
    applyOne(s, target, i, timePtr, valTable, seqBase);
    s.touch(target);
    const end = load<i64>(s.maxTimeCol + (<usize>target << 3)) + gap;
    if (end < s.nextEventAt) s.nextEventAt = end;
    accepted++;
  }
  return accepted;
}

/** Unlinks `r` from the list starting at `head`, keeping the index on the head; returns the new head. */
function unlinkSession(s: Store, head: i32, r: i32): i32 {
  const nx = load<i32>(s.nextCol + (<usize>r << 2));
  if (head == r) {
    // nx exists: the other overlapping session is still in the list.
    s.repointSlot(r, nx);
    return nx;
  }
  let p = head;
  while (load<i32>(s.nextCol + (<usize>p << 2)) != r) p = load<i32>(s.nextCol + (<usize>p << 2));
  store<i32>(s.nextCol + (<usize>p << 2), nx);
  return head;
}

/** Inserts a slot for a new key head (the key is known to be absent). */
export function insertSlot(s: Store, h: u32, row: i32): void {
  const mask = s.slotMask;
  let pos = h & mask;
  while (load<u64>(s.slots + (<usize>pos << 3)) != 0) pos = (pos + 1) & mask;
  store<u64>(s.slots + (<usize>pos << 3), (<u64>h << 32) | <u64>(row + 1));
}

export { WIN_NONE };
