// The keyed columnar store: one per operator per shard.
//
// Rows are identified by (key, ns). `ns` is the window namespace: 0 for running aggregates and value
// state, the pane start for tumbling and hopping windows, and a stable session id (the time of the
// event that opened it) for session windows. Row ids are dense and stable for a row's lifetime; freed
// ids are reused through a free list, so memory stays flat under an endless stream of windows.
//
// Every per-row datum is a column (a contiguous raw buffer indexed by row id), so an aggregate
// column is an Arrow-compatible Float64/Int64 buffer and ingest works column-at-a-time: first a pass
// that resolves every event's row id, then one tight loop per aggregate.
//
// The hash index is open addressing with linear probing over u64 slots (index hash << 32 | row + 1),
// load factor at most 7/10, and backward-shift deletion (no tombstones in the table).
import { hashBytes, hashI64, hashWithNs } from './hash';
import { allocZeroed, growZeroed, release, fits } from './mem';
import { ByteArena } from './arena';

export const KEY_INT64: i32 = 0;
export const KEY_UTF8: i32 = 1;

export const KIND_AGG: i32 = 0;
export const KIND_VALUE: i32 = 1;

export const WIN_NONE: i32 = 0;
export const WIN_PANES: i32 = 1;
export const WIN_SESSION: i32 = 2;

export const FN_COUNT: i32 = 0;
export const FN_SUM: i32 = 1;
export const FN_MIN: i32 = 2;
export const FN_MAX: i32 = 3;
export const FN_MEAN: i32 = 4;
export const FN_FIRST: i32 = 5;
export const FN_LAST: i32 = 6;

export const F_LIVE: u8 = 1;
/** The row is in the dirty list (changed since the last checkpoint capture). */
export const F_DIRTY: u8 = 2;
/** The row changed since it was last emitted by advanceWatermark. */
export const F_CHANGED: u8 = 4;
/** The row is present in the last captured checkpoint, so deleting it needs a tombstone. */
export const F_PERSISTED: u8 = 8;

export const ROWS_MAX: i32 = 1 << 28;
export const KEY_BYTES_MAX: i32 = 1 << 16;
export const AGGS_MAX: i32 = 64;
export const LOAD_NUM: i32 = 7;
export const LOAD_DEN: i32 = 10;

@inline export function floorDiv(a: i64, b: i64): i64 {
  const q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

export class Store {
  kind: i32;
  keyType: i32;
  win: i32;
  size: i64 = 0;
  slide: i64 = 0;
  gap: i64 = 0;
  lateness: i64 = 0;
  ttl: i64 = 0;
  eventTime: bool = false;
  nAggs: i32 = 0;
  aggFn: StaticArray<i32>;
  aggField: StaticArray<i32>;
  aggVal: StaticArray<usize>;
  aggTime: StaticArray<usize>;
  nFields: i32 = 0;
  fieldCnt: StaticArray<usize>;

  watermark: i64 = i64.MIN_VALUE;
  lateEvents: i64 = 0;
  /** No row needs emitting or purging while the watermark stays below this. */
  nextEventAt: i64 = i64.MIN_VALUE;
  trackChanges: bool = false;
  forceFull: bool = false;

  capRows: i32 = 0;
  hwm: i32 = 0;
  liveRows: i32 = 0;
  freeList: usize = 0;
  freeCount: i32 = 0;
  keyCol: usize = 0;
  hashCol: usize = 0;
  nsCol: usize = 0;
  flagCol: usize = 0;
  cntCol: usize = 0;
  maxTimeCol: usize = 0;
  startCol: usize = 0;
  nextCol: usize = 0;
  valueCol: usize = 0;
  dirtyList: usize = 0;
  dirtyCount: i32 = 0;
  keyArena: ByteArena = new ByteArena();
  valArena: ByteArena = new ByteArena();

  slots: usize = 0;
  slotCap: i32 = 0;
  slotMask: u32 = 0;

  tombKey: usize = 0;
  tombNs: usize = 0;
  tombHash: usize = 0;
  tombCount: i32 = 0;
  tombCap: i32 = 0;
  tombArena: ByteArena = new ByteArena();

  rowBuf: usize = 0;
  rowBufCap: i32 = 0;

  constructor(kind: i32, keyType: i32, win: i32, nAggs: i32, nFields: i32) {
    this.kind = kind;
    this.keyType = keyType;
    this.win = win;
    this.nAggs = nAggs;
    this.nFields = nFields;
    this.aggFn = new StaticArray<i32>(nAggs);
    this.aggField = new StaticArray<i32>(nAggs);
    this.aggVal = new StaticArray<usize>(nAggs);
    this.aggTime = new StaticArray<usize>(nAggs);
    this.fieldCnt = new StaticArray<usize>(nFields);
  }

  @inline hasNs(): bool { return this.win != WIN_NONE; }
  @inline needsMaxTime(): bool { return this.win == WIN_SESSION || this.ttl > 0; }
  /** Session stores index rows by key only (the index points at the head of the key's session list). */
  @inline indexByNs(): bool { return this.win == WIN_PANES; }

  // ---- capacity -------------------------------------------------------------------------------

  private growCol(p: usize, width: i32, oldCap: i32, newCap: i32): usize {
    return growZeroed(p, <usize>oldCap * width, <usize>newCap * width);
  }

  /** Bytes needed to grow every row column from capRows to newCap rows. */
  private rowBytes(): usize {
    let w: usize = 8 + 4 + 1 + 8 + 4 + 4; // key, hash, flags, count, free list, dirty list
    if (this.hasNs()) w += 8;
    if (this.needsMaxTime()) w += 8;
    if (this.win == WIN_SESSION) w += 8 + 4;
    if (this.kind == KIND_VALUE) w += 8;
    w += <usize>this.nFields * 8;
    for (let a = 0; a < this.nAggs; a++) {
      if (needsVal(unchecked(this.aggFn[a]))) w += 8;
      if (needsTime(unchecked(this.aggFn[a]))) w += 8;
    }
    return w;
  }

  private growRows(newCap: i32): bool {
    const old = this.capRows;
    if (newCap <= old) return true;
    if (!fits(<usize>(newCap - old) * this.rowBytes() + 64)) return false;
    this.keyCol = this.growCol(this.keyCol, 8, old, newCap);
    this.hashCol = this.growCol(this.hashCol, 4, old, newCap);
    this.flagCol = this.growCol(this.flagCol, 1, old, newCap);
    this.cntCol = this.growCol(this.cntCol, 8, old, newCap);
    this.freeList = this.growCol(this.freeList, 4, old, newCap);
    this.dirtyList = this.growCol(this.dirtyList, 4, old, newCap);
    if (this.hasNs()) this.nsCol = this.growCol(this.nsCol, 8, old, newCap);
    if (this.needsMaxTime()) this.maxTimeCol = this.growCol(this.maxTimeCol, 8, old, newCap);
    if (this.win == WIN_SESSION) {
      this.startCol = this.growCol(this.startCol, 8, old, newCap);
      this.nextCol = this.growCol(this.nextCol, 4, old, newCap);
    }
    if (this.kind == KIND_VALUE) this.valueCol = this.growCol(this.valueCol, 8, old, newCap);
    for (let f = 0; f < this.nFields; f++) {
      unchecked(this.fieldCnt[f] = this.growCol(unchecked(this.fieldCnt[f]), 8, old, newCap));
    }
    for (let a = 0; a < this.nAggs; a++) {
      const fn = unchecked(this.aggFn[a]);
      if (needsVal(fn)) unchecked(this.aggVal[a] = this.growCol(unchecked(this.aggVal[a]), 8, old, newCap));
      if (needsTime(fn)) unchecked(this.aggTime[a] = this.growCol(unchecked(this.aggTime[a]), 8, old, newCap));
    }
    this.capRows = newCap;
    return true;
  }

  private growIndex(minSlots: i32): bool {
    let cap = max<i32>(this.slotCap, 16);
    while (<i64>cap * LOAD_NUM / LOAD_DEN < <i64>minSlots) cap <<= 1;
    if (cap == this.slotCap) return true;
    const bytes = <usize>cap * 8;
    const fresh = allocZeroed(bytes);
    if (fresh == 0) return false;
    const mask = <u32>(cap - 1);
    const old = this.slots;
    for (let i = 0; i < this.slotCap; i++) {
      const s = load<u64>(old + (<usize>i << 3));
      if (s == 0) continue;
      let pos = (<u32>(s >>> 32)) & mask;
      while (load<u64>(fresh + (<usize>pos << 3)) != 0) pos = (pos + 1) & mask;
      store<u64>(fresh + (<usize>pos << 3), s);
    }
    release(old, <usize>this.slotCap * 8);
    this.slots = fresh;
    this.slotCap = cap;
    this.slotMask = mask;
    return true;
  }

  /**
   * Makes room for `rows` more rows and `keyBytes` more key bytes, so that the mutation that follows
   * cannot fail half-way. Returns false (and changes nothing observable) when the cap is hit.
   */
  reserve(rows: i32, keyBytes: u32, valBytes: u32): bool {
    const need = this.liveRows + rows;
    if (need > ROWS_MAX) return false;
    const rowsNeeded = this.hwm + max<i32>(0, rows - this.freeCount);
    if (rowsNeeded > this.capRows) {
      let next = max<i32>(this.capRows, 1024);
      while (next < rowsNeeded) next = next + (next >> 1);
      if (next > ROWS_MAX) next = ROWS_MAX;
      if (!this.growRows(next)) return false;
    }
    if (!this.growIndex(need)) return false;
    if (this.keyType == KEY_UTF8 && !this.keyArena.reserve(keyBytes)) return false;
    if (valBytes > 0 && !this.valArena.reserve(valBytes)) return false;
    if (rows > this.rowBufCap) {
      const p = growZeroed(this.rowBuf, <usize>this.rowBufCap * 4, <usize>rows * 4);
      if (p == 0) return false;
      this.rowBuf = p;
      this.rowBufCap = rows;
    }
    return true;
  }

  // ---- keys and the index ----------------------------------------------------------------------

  @inline keyLen(row: i32): i32 {
    return <i32>(load<u64>(this.keyCol + (<usize>row << 3)) >>> 32);
  }

  @inline keyPtr(row: i32): usize {
    return this.keyArena.base + <usize>(<u32>load<u64>(this.keyCol + (<usize>row << 3)));
  }

  @inline rowNs(row: i32): i64 {
    return this.nsCol == 0 ? 0 : load<i64>(this.nsCol + (<usize>row << 3));
  }

  @inline idxHashOf(keyHash: u32, ns: i64): u32 {
    return this.indexByNs() ? hashWithNs(keyHash, ns) : keyHash;
  }

  @inline keyEqI64(row: i32, key: i64): bool {
    return load<i64>(this.keyCol + (<usize>row << 3)) == key;
  }

  @inline keyEqBytes(row: i32, ptr: usize, len: i32): bool {
    const kv = load<u64>(this.keyCol + (<usize>row << 3));
    if (<i32>(kv >>> 32) != len) return false;
    return memory.compare(this.keyArena.base + <usize>(<u32>kv), ptr, len) == 0;
  }

  /** Finds the row of (key, ns); `keyI64` is the key for int64 stores, (ptr, len) for utf8. */
  find(keyHash: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    if (this.slotCap == 0) return -1;
    const h = this.idxHashOf(keyHash, ns);
    const mask = this.slotMask;
    let pos = h & mask;
    const byNs = this.indexByNs();
    while (true) {
      const s = load<u64>(this.slots + (<usize>pos << 3));
      if (s == 0) return -1;
      if (<u32>(s >>> 32) == h) {
        const row = <i32>(<u32>s) - 1;
        const keyOk = this.keyType == KEY_INT64 ? this.keyEqI64(row, keyI64) : this.keyEqBytes(row, ptr, len);
        if (keyOk && (!byNs || this.rowNs(row) == ns)) return row;
      }
      pos = (pos + 1) & mask;
    }
  }

  /** Finds or inserts (key, ns). Capacity must have been reserved. Sets `lastInserted`. */
  lastInserted: bool = false;
  findOrInsert(keyHash: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    const h = this.idxHashOf(keyHash, ns);
    const mask = this.slotMask;
    let pos = h & mask;
    const byNs = this.indexByNs();
    const slots = this.slots;
    while (true) {
      const s = load<u64>(slots + (<usize>pos << 3));
      if (s == 0) break;
      if (<u32>(s >>> 32) == h) {
        const row = <i32>(<u32>s) - 1;
        const keyOk = this.keyType == KEY_INT64 ? this.keyEqI64(row, keyI64) : this.keyEqBytes(row, ptr, len);
        if (keyOk && (!byNs || this.rowNs(row) == ns)) {
          this.lastInserted = false;
          return row;
        }
      }
      pos = (pos + 1) & mask;
    }
    const row = this.newRow(keyHash, keyI64, ptr, len, ns);
    store<u64>(slots + (<usize>pos << 3), (<u64>h << 32) | <u64>(row + 1));
    this.lastInserted = true;
    return row;
  }

  /** Allocates and initializes a row (not yet in the index). */
  newRow(keyHash: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    let row: i32;
    if (this.freeCount > 0) {
      this.freeCount--;
      row = load<i32>(this.freeList + (<usize>this.freeCount << 2));
    } else {
      row = this.hwm++;
    }
    const r8 = <usize>row << 3;
    if (this.keyType == KEY_INT64) {
      store<i64>(this.keyCol + r8, keyI64);
    } else {
      const off = this.keyArena.append(ptr, <u32>len);
      store<u64>(this.keyCol + r8, (<u64>len << 32) | <u64>off);
    }
    store<u32>(this.hashCol + (<usize>row << 2), keyHash);
    if (this.nsCol != 0) store<i64>(this.nsCol + r8, ns);
    store<i64>(this.cntCol + r8, 0);
    if (this.maxTimeCol != 0) store<i64>(this.maxTimeCol + r8, i64.MIN_VALUE);
    if (this.startCol != 0) store<i64>(this.startCol + r8, ns);
    if (this.nextCol != 0) store<i32>(this.nextCol + (<usize>row << 2), -1);
    if (this.valueCol != 0) store<u64>(this.valueCol + r8, 0);
    for (let f = 0; f < this.nFields; f++) store<i64>(unchecked(this.fieldCnt[f]) + r8, 0);
    for (let a = 0; a < this.nAggs; a++) initAgg(this, a, row);
    // Keep F_DIRTY: a reused row id may still sit in the dirty list from its previous life.
    const fp = this.flagCol + <usize>row;
    store<u8>(fp, F_LIVE | (load<u8>(fp) & F_DIRTY));
    this.liveRows++;
    return row;
  }

  /** Marks a row changed: for emission and for the next incremental checkpoint. */
  @inline touch(row: i32): void {
    const fp = this.flagCol + <usize>row;
    const f = load<u8>(fp);
    if (this.trackChanges && (f & F_DIRTY) == 0) {
      store<i32>(this.dirtyList + (<usize>this.dirtyCount << 2), row);
      this.dirtyCount++;
    }
    store<u8>(fp, f | F_DIRTY | F_CHANGED | F_LIVE);
  }

  /**
   * Marks a row for the next incremental checkpoint without marking it changed for emission: used
   * when emission clears F_CHANGED, which is state too (a restore must not fire the window again).
   */
  @inline markDirty(row: i32): void {
    const fp = this.flagCol + <usize>row;
    const f = load<u8>(fp);
    if (this.trackChanges && (f & F_DIRTY) == 0) {
      store<i32>(this.dirtyList + (<usize>this.dirtyCount << 2), row);
      this.dirtyCount++;
    }
    store<u8>(fp, f | F_DIRTY);
  }

  /** Finds the index slot that points at `row`, or -1. */
  private slotOfRow(row: i32): i32 {
    const h = this.idxHashOf(load<u32>(this.hashCol + (<usize>row << 2)), this.rowNs(row));
    const mask = this.slotMask;
    let pos = h & mask;
    const want = <u32>(row + 1);
    while (true) {
      const s = load<u64>(this.slots + (<usize>pos << 3));
      if (s == 0) return -1;
      if (<u32>s == want) return <i32>pos;
      pos = (pos + 1) & mask;
    }
  }

  /** Points the slot of `oldRow` at `newRow` (same key, same index hash). */
  repointSlot(oldRow: i32, newRow: i32): void {
    const pos = this.slotOfRow(oldRow);
    assert(pos >= 0, 'index slot missing');
    const p = this.slots + (<usize>pos << 3);
    const s = load<u64>(p);
    store<u64>(p, (s & 0xffff_ffff_0000_0000) | <u64>(newRow + 1));
  }

  /** Removes the slot of `row` with backward-shift deletion. */
  unindex(row: i32): void {
    let i = <u32>this.slotOfRow(row);
    assert(<i32>i >= 0, 'index slot missing');
    const mask = this.slotMask;
    const slots = this.slots;
    let j = i;
    while (true) {
      j = (j + 1) & mask;
      const s = load<u64>(slots + (<usize>j << 3));
      if (s == 0) break;
      const home = (<u32>(s >>> 32)) & mask;
      // Move s back into the hole at i when its home position is not cyclically within (i, j].
      const movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
      if (movable) {
        store<u64>(slots + (<usize>i << 3), s);
        i = j;
      }
    }
    store<u64>(slots + (<usize>i << 3), 0);
  }

  /**
   * Frees a row that is no longer in the index. Records a tombstone when the row is in the last
   * checkpoint, so the next incremental checkpoint deletes it on restore.
   */
  freeRow(row: i32): void {
    const fp = this.flagCol + <usize>row;
    const f = load<u8>(fp);
    if (this.trackChanges && (f & F_PERSISTED) != 0) this.addTombstone(row);
    if (this.keyType == KEY_UTF8) this.keyArena.garbageBytes += <u32>this.keyLen(row);
    if (this.valueCol != 0) {
      this.valArena.garbageBytes += <u32>(load<u64>(this.valueCol + (<usize>row << 3)) >>> 32);
    }
    // A row still in the dirty list keeps its entry; capture skips rows that are no longer live.
    store<u8>(fp, f & F_DIRTY);
    store<i32>(this.freeList + (<usize>this.freeCount << 2), row);
    this.freeCount++;
    this.liveRows--;
  }

  private addTombstone(row: i32): void {
    if (this.tombCount == this.tombCap) {
      const next = max<i32>(64, this.tombCap * 2);
      const k = growZeroed(this.tombKey, <usize>this.tombCap * 8, <usize>next * 8);
      const n = k == 0 ? <usize>0 : growZeroed(this.tombNs, <usize>this.tombCap * 8, <usize>next * 8);
      const h = n == 0 ? <usize>0 : growZeroed(this.tombHash, <usize>this.tombCap * 4, <usize>next * 4);
      if (k != 0) this.tombKey = k;
      if (n != 0) this.tombNs = n;
      if (h == 0) {
        // Out of memory for the tombstone log: the next checkpoint must be a full one instead.
        this.forceFull = true;
        return;
      }
      this.tombHash = h;
      this.tombCap = next;
    }
    const t = this.tombCount;
    const r8 = <usize>row << 3;
    if (this.keyType == KEY_INT64) {
      store<i64>(this.tombKey + (<usize>t << 3), load<i64>(this.keyCol + r8));
    } else {
      const len = this.keyLen(row);
      if (!this.tombArena.reserve(<u32>len)) {
        this.forceFull = true;
        return;
      }
      const off = this.tombArena.append(this.keyPtr(row), <u32>len);
      store<u64>(this.tombKey + (<usize>t << 3), (<u64>len << 32) | <u64>off);
    }
    store<i64>(this.tombNs + (<usize>t << 3), this.rowNs(row));
    store<u32>(this.tombHash + (<usize>t << 2), load<u32>(this.hashCol + (<usize>row << 2)));
    this.tombCount++;
  }

  /** Deletes (key, ns) if present. Returns 1 when a row was removed. */
  deleteKey(keyHash: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    if (this.win == WIN_SESSION) {
      let r = this.find(keyHash, keyI64, ptr, len, 0);
      if (r < 0) return 0;
      this.unindex(r);
      while (r >= 0) {
        const nx = load<i32>(this.nextCol + (<usize>r << 2));
        this.freeRow(r);
        r = nx;
      }
      return 1;
    }
    const row = this.find(keyHash, keyI64, ptr, len, ns);
    if (row < 0) return 0;
    this.unindex(row);
    this.freeRow(row);
    return 1;
  }

  /** Rewrites the utf8 key arena (and the value arena) when more than half of it is garbage. */
  maybeCompact(): bool {
    if (this.keyType == KEY_UTF8) {
      if (!compactArena(this, this.keyArena, this.keyCol)) return false;
    }
    if (this.valueCol != 0) {
      if (!compactArena(this, this.valArena, this.valueCol)) return false;
    }
    return true;
  }

  free(): void {
    const c = this.capRows;
    release(this.keyCol, <usize>c * 8);
    release(this.hashCol, <usize>c * 4);
    release(this.flagCol, <usize>c);
    release(this.cntCol, <usize>c * 8);
    release(this.freeList, <usize>c * 4);
    release(this.dirtyList, <usize>c * 4);
    release(this.nsCol, <usize>c * 8);
    release(this.maxTimeCol, <usize>c * 8);
    release(this.startCol, <usize>c * 8);
    release(this.nextCol, <usize>c * 4);
    release(this.valueCol, <usize>c * 8);
    for (let f = 0; f < this.nFields; f++) release(unchecked(this.fieldCnt[f]), <usize>c * 8);
    for (let a = 0; a < this.nAggs; a++) {
      release(unchecked(this.aggVal[a]), <usize>c * 8);
      release(unchecked(this.aggTime[a]), <usize>c * 8);
    }
    release(this.slots, <usize>this.slotCap * 8);
    release(this.tombKey, <usize>this.tombCap * 8);
    release(this.tombNs, <usize>this.tombCap * 8);
    release(this.tombHash, <usize>this.tombCap * 4);
    release(this.rowBuf, <usize>this.rowBufCap * 4);
    this.keyArena.free();
    this.valArena.free();
    this.tombArena.free();
    this.capRows = 0;
    this.slotCap = 0;
  }
}

@inline export function needsVal(fn: i32): bool {
  return fn != FN_COUNT;
}

@inline export function needsTime(fn: i32): bool {
  return fn == FN_FIRST || fn == FN_LAST;
}

/** Resets aggregate `a` of `row` to its identity. */
@inline export function initAgg(s: Store, a: i32, row: i32): void {
  const fn = unchecked(s.aggFn[a]);
  const r8 = <usize>row << 3;
  if (fn == FN_MIN) store<f64>(unchecked(s.aggVal[a]) + r8, Infinity);
  else if (fn == FN_MAX) store<f64>(unchecked(s.aggVal[a]) + r8, -Infinity);
  else if (needsVal(fn)) store<f64>(unchecked(s.aggVal[a]) + r8, 0);
  if (fn == FN_FIRST) store<i64>(unchecked(s.aggTime[a]) + r8, i64.MAX_VALUE);
  else if (fn == FN_LAST) store<i64>(unchecked(s.aggTime[a]) + r8, i64.MIN_VALUE);
}

/** Hashes a key given as int64 or as (ptr, len) bytes. */
@inline export function keyHashOf(s: Store, keyI64: i64, ptr: usize, len: i32): u32 {
  return s.keyType == KEY_INT64 ? hashI64(keyI64) : hashBytes(ptr, len);
}

function compactArena(s: Store, arena: ByteArena, col: usize): bool {
  if (arena.garbageBytes < 1 << 20 || arena.garbageBytes * 2 < arena.usedBytes) return true;
  const liveBytes = arena.usedBytes - arena.garbageBytes;
  const capBytes = max<u32>(liveBytes, 4096);
  const base = allocZeroed(<usize>capBytes);
  if (base == 0) return false;
  let used: u32 = 0;
  for (let r = 0; r < s.hwm; r++) {
    if ((load<u8>(s.flagCol + <usize>r) & F_LIVE) == 0) continue;
    const p = col + (<usize>r << 3);
    const kv = load<u64>(p);
    const len = <u32>(kv >>> 32);
    memory.copy(base + <usize>used, arena.base + <usize>(<u32>kv), len);
    store<u64>(p, (<u64>len << 32) | <u64>used);
    used += len;
  }
  arena.free();
  arena.base = base;
  arena.capBytes = capBytes;
  arena.usedBytes = used;
  arena.garbageBytes = 0;
  return true;
}
