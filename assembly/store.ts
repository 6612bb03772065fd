// The keyed columnar store: one per operator per shard.
//
// Rows are identified by (key, ns). `ns` is the window namespace: 0 for running aggregates and value
// state, the pane start for tumbling and hopping windows, and a stable session id (the time of the
// event that opened it) for session windows. Row ids are dense and stable for a row's lifetime; freed
// ids are reused, lowest first (freeBits), so memory stays flat under an endless stream of windows.
//
// Every per-row datum is a column (a contiguous raw buffer indexed by row id), so an aggregate
// column is an Arrow-compatible Float64/Int64 buffer and ingest works column-at-a-time: first a pass
// that resolves every event's row id, then one tight loop per aggregate.
//
// The hash index is open addressing with linear probing over 8-byte slots, each a u64 (index hash
// << 32 | row + 1): eight to a cache line. A probe compares the 32-bit hash in the slot and, when it
// matches, the key in the row record (for stores without windows and tumbling stores, the row the
// event updates, so the line is read anyway; hopping stores may update an older pane); load
// factor at most 4/5, and backward-shift deletion (no tombstones in the table).
//
// Memory per key is a design goal next to speed (ARCHITECTURE.md, "Row record"): the record holds
// only the key, the window namespace, the counts and the aggregates; the flags byte shares the top
// byte of the first null count (NULLS_MASK); the key-group hash is recomputed from the key where it
// is needed (checkpoint extraction, key-group metrics, rescaling), not stored; freed row ids are
// a bit each; the change log exists only once checkpoints track changes.
import { hashBytes, hashI64, hashWithNs, probeHashBytes, probeHashI64 } from './hash';
import { allocZeroed, growZeroed, release, fits, growTransient, releaseTransient, memUsedBytes, memCapBytes, blockBytesMax } from './mem';
import { ByteArena } from './arena';
import { capturePage } from './snapshot';
import { Hop } from './hop';

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
export const ROWS_INITIAL: i32 = 64;
export const KEY_BYTES_MAX: i32 = 1 << 16;
export const AGGS_MAX: i32 = 64;
export const SLOT_BYTES: usize = 8;
/**
 * Zeroed bytes past the last slot of every index: the single-pass loops read a group of four slots at
 * once (ingest.ts, groupSlot), and a group that starts in the last three slots reads these, which
 * stay empty (nothing writes past slotCap), instead of wrapping.
 */
export const SLOT_SLACK: usize = 32;
/** Events per ingest block (ingest.ts BLOCK_EVENTS): the size of the per-event scratch buffers. */
export const SCRATCH_EVENTS: i32 = 512;
export const LOAD_NUM: i32 = 4;
export const LOAD_DEN: i32 = 5;
/**
 * The top byte of a row's first null count is its flags byte (when the store has value fields; a
 * count of 2^56 nulls is out of reach), so null counts are read through this mask.
 */
export const NULLS_MASK: i64 = 0x00ff_ffff_ffff_ffff;
/** A row's null count at `p` (a null-count column plus the row's offset), without the flags byte. */
@inline export function nullsAt(p: usize): i64 {
  return load<i64>(p) & NULLS_MASK;
}
/** Row capacity grows by a quarter (not a half): the slack is memory per key. */
@inline export function nextRowCap(cap: i32): i32 {
  return cap + max<i32>(cap >> 2, 16);
}
/** Rows per capture page (see Store.pageLive and snapshot.ts): 8, so copying a page on demand is cheap (16 made the first ingest after a cut of 1M random keys wait twice as long). */
export const PAGE_SHIFT: i32 = 3;
/**
 * State bytes per row besides the record, rounded up: the page counters (4 bytes per 8 rows each,
 * up to three: live rows, key bytes, value bytes) and the free-row bits (1/8 byte).
 */
export const ROW_EXTRA_BYTES: usize = 2;

/**
 * Event times lie within ±2^53, and window sizes, gaps, TTLs and lateness within a century (~2^42).
 * So a watermark above WATERMARK_ABS_MAX (2^60) means the same as 2^60 (past every window's
 * purge), and one below -2^60 means nothing (below every window): advance() clamps the first and
 * ignores the second, and the window arithmetic on a watermark (floorDiv(W, slide) * slide +
 * slide, ...) never wraps. (Flink starts streams at Long.MIN_VALUE and ends them at MAX_VALUE.)
 */
export const WATERMARK_ABS_MAX: i64 = 1 << 60;

@inline export function clampWatermark(t: i64): i64 {
  return t > WATERMARK_ABS_MAX ? WATERMARK_ABS_MAX : t;
}

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
  /**
   * Per value field, the column counting the event's null values (NaN). Non-null count = count -
   * nulls; counting the rare nulls instead of the common non-nulls saves a write per event.
   */
  nullCnt: StaticArray<usize>;
  /** Value column pointers of the batch being ingested (set by ingestBatch). */
  batchVals: StaticArray<usize>;

  watermark: i64 = i64.MIN_VALUE;
  lateEvents: i64 = 0;
  /** No row needs emitting or purging while the watermark stays below this. */
  nextEventAt: i64 = i64.MIN_VALUE;
  trackChanges: bool = false;
  forceFull: bool = false;

  /** The row records: capRows * stride bytes at `rows` (64-byte aligned inside `rowsRaw`). */
  rows: usize = 0;
  rowsRaw: usize = 0;
  stride: usize = 0;
  offKey: usize = 0;
  offNs: usize = 0;
  offCnt: usize = 0;
  offMaxTime: usize = 0;
  offStart: usize = 0;
  offValue: usize = 0;
  offNext: usize = 0;
  offFlags: usize = 0;
  offField: StaticArray<usize>;
  offVal: StaticArray<usize>;
  offTime: StaticArray<usize>;
  /**
   * The fused ingest plan: per value field, the column of its first sum/mean, min and max (0 when
   * none), applied in the same loop as the field's non-null count; aggFused[a] marks those.
   */
  fusedSum: StaticArray<usize>;
  fusedMin: StaticArray<usize>;
  fusedMax: StaticArray<usize>;
  aggFused: StaticArray<bool>;

  capRows: i32 = 0;
  hwm: i32 = 0;
  liveRows: i32 = 0;
  /**
   * Freed row ids: a bit per row id (u64 words, freeBits) and a bit per nonzero word of those
   * (freeSum), so the lowest freed id is found in a few word reads (popFree). A row record cannot
   * hold the link of a free list: emission reads rows it has just freed.
   */
  freeBits: usize = 0;
  freeSum: usize = 0;
  /** No freeSum word below this one has a bit set. */
  freeLow: i32 = 0;
  freeCount: i32 = 0;
  keyCol: usize = 0;
  nsCol: usize = 0;
  flagCol: usize = 0;
  cntCol: usize = 0;
  maxTimeCol: usize = 0;
  startCol: usize = 0;
  nextCol: usize = 0;
  valueCol: usize = 0;
  /**
   * The change log (capRows u32 row ids): allocated by the first checkpoint capture, in transient
   * memory (counted, not capped, like the snapshot buffers), so a store at its cap still checkpoints.
   */
  dirtyList: usize = 0;
  dirtyCount: i32 = 0;
  keyArena: ByteArena = new ByteArena();
  valArena: ByteArena = new ByteArena();

  slots: usize = 0;
  slotCap: i32 = 0;
  slotMask: u32 = 0;
  /** Slots in use. */
  idxKeys: i32 = 0;
  /** Pane stores: per row id, the next older and next newer pane of its key, or -1 (see chained()). */
  older: usize = 0;
  newer: usize = 0;

  tombKey: usize = 0;
  tombNs: usize = 0;
  tombCount: i32 = 0;
  tombCap: i32 = 0;
  tombArena: ByteArena = new ByteArena();

  /** The last snapshot captured (see snapshot.ts), held until released. */
  snapPtr: usize = 0;
  snapCap: usize = 0;
  snapLen: usize = 0;

  /**
   * Per page of 1 << PAGE_SHIFT row ids: live rows (u32), and their key bytes (utf8 keys) and value
   * bytes (value state). A full capture places every page's rows in the snapshot from these prefix
   * sums, so it can copy pages in any order without first scanning the rows.
   */
  pageLive: usize = 0;
  pageKeyBytes: usize = 0;
  pageValBytes: usize = 0;

  /**
   * A full capture in progress (snapshot.ts): rows [0, capHigh) as they were at the capture's cut,
   * copied out a page at a time, either by captureStep or, before a page is first changed, by the
   * mutation itself (copy-on-write), so the cut costs O(pages) and ingest goes on meanwhile.
   */
  capActive: bool = false;
  capHigh: i32 = 0;
  capPages: i32 = 0;
  capCursor: i32 = 0;
  capLeft: i32 = 0;
  /** Transient: u8 done flag per page, then u32 row, key byte and value byte offsets per page + 1. */
  capMeta: usize = 0;
  capMetaBytes: usize = 0;

  rowBuf: usize = 0;
  hashBuf: usize = 0;
  nsBuf: usize = 0;
  rowBufCap: i32 = 0;
  /**
   * Whether the last ingest block found new minima and maxima often (ingest.ts, isVolatile): in a
   * fresh window or for new keys about 1 in k events is the k-th key's new extreme, and a branch
   * on it mispredicts, so min and max are then stored unconditionally; once extremes settle (a
   * running aggregate over many events per key) the branch predicts well and is cheaper. Only a
   * choice of code path: results are the same either way.
   */
  extremesVolatile: bool = true;

  /** Hopping windows: the transient index that fires windows incrementally (hop.ts), or null. */
  hop: Hop | null = null;
  /** Events since the last emission that changed a pane whose first window had already ended. */
  hopBehind: i64 = 0;

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
    this.nullCnt = new StaticArray<usize>(nFields);
    this.batchVals = new StaticArray<usize>(nFields);
    this.offField = new StaticArray<usize>(nFields);
    this.offVal = new StaticArray<usize>(nAggs);
    this.offTime = new StaticArray<usize>(nAggs);
    this.fusedSum = new StaticArray<usize>(nFields);
    this.fusedMin = new StaticArray<usize>(nFields);
    this.fusedMax = new StaticArray<usize>(nFields);
    this.aggFused = new StaticArray<bool>(nAggs);
  }

  /** Address of a field of row `row`, given the field's column pointer. */
  @inline p(col: usize, row: i32): usize {
    return col + <usize>row * this.stride;
  }

  @inline hasNs(): bool { return this.win != WIN_NONE; }
  @inline needsMaxTime(): bool { return this.win == WIN_SESSION || this.ttl > 0; }
  /**
   * Hopping stores index keys, not panes: a key's slot points at its newest pane, and its panes
   * form a chain by start (`older`, `newer`: side arrays by row id). Events mostly land in a key's
   * newest pane, so the index holds one slot per key rather than one per pane (size/slide 60 keeps
   * 60 live panes per key). Session stores also index keys (the slot points at the head of the
   * key's session list, linked in the rows).
   */
  @inline chained(): bool { return this.win == WIN_PANES && this.size != this.slide; }
  /**
   * Tumbling stores index (key, pane): with two or three live panes per key the index stays small,
   * and a key's first event in a new window finds an empty slot at once, where a chain would make
   * it walk (measured: chains made tumbling ingest about 10% slower).
   */
  @inline byNs(): bool { return this.win == WIN_PANES && this.size == this.slide; }

  // ---- capacity -------------------------------------------------------------------------------

  /**
   * Lays out one row record: 8-byte fields first, then 4-byte, then the flags byte (its own, or the
   * top byte of the first null count when there are value fields), padded to 8.
   * Every per-row datum of a row sits together (one or two cache lines), so an event touches the
   * index slot and its row record, instead of one cache line per column. Column "pointers"
   * (keyCol, cntCol, ...) are the address of the field in row 0; row r's field is at
   * col + r * stride (see p()).
   */
  private layout(): void {
    let off: usize = 0;
    this.offKey = off; off += 8;
    if (this.hasNs()) { this.offNs = off; off += 8; }
    this.offCnt = off; off += 8;
    for (let f = 0; f < this.nFields; f++) { unchecked(this.offField[f] = off); off += 8; }
    // The first value field's fused sum (or mean), min and max come first, in that order, whatever
    // the spec's order: the usual plan then has one layout, which the ingest loop for it has as
    // constants (ingest.ts FIXED_STRIDE). Snapshots list columns in spec order (snapshot.ts
    // wideCols), so their bytes do not depend on this.
    const fused = this.nFields > 0 ? fusedAggsOfField0(this.aggFn, this.aggField, this.nAggs) : 0;
    for (let k = 0; k < 3; k++) {
      const a = <i32>((fused >>> (k * 8)) & 0xff) - 1;
      if (a >= 0) { unchecked(this.offVal[a] = off); off += 8; }
    }
    for (let a = 0; a < this.nAggs; a++) {
      const fn = unchecked(this.aggFn[a]);
      if (needsVal(fn) && !isFusedOfField0(fused, a)) { unchecked(this.offVal[a] = off); off += 8; }
      if (needsTime(fn)) { unchecked(this.offTime[a] = off); off += 8; }
    }
    if (this.needsMaxTime()) { this.offMaxTime = off; off += 8; }
    if (this.win == WIN_SESSION) { this.offStart = off; off += 8; }
    if (this.kind == KIND_VALUE) { this.offValue = off; off += 8; }
    if (this.win == WIN_SESSION) { this.offNext = off; off += 4; }
    // The flags byte is the top byte of the first null count (see NULLS_MASK), or a byte of its own.
    if (this.nFields > 0) this.offFlags = unchecked(this.offField[0]) + 7;
    else { this.offFlags = off; off += 1; }
    // Not padded to a cache line: 48 bytes for count, sum, min and max of one field by an int64 or
    // utf8 key (64 padded; measured, the padding bought no speed that the smaller index and rows
    // did not give back, see ARCHITECTURE.md).
    this.stride = (off + 7) & ~7;
  }

  /** Re-derives every column pointer from the row buffer (after it moved). */
  private rebase(): void {
    const b = this.rows;
    this.keyCol = b + this.offKey;
    this.flagCol = b + this.offFlags;
    this.cntCol = b + this.offCnt;
    this.nsCol = this.hasNs() ? b + this.offNs : 0;
    this.maxTimeCol = this.needsMaxTime() ? b + this.offMaxTime : 0;
    this.startCol = this.win == WIN_SESSION ? b + this.offStart : 0;
    this.nextCol = this.win == WIN_SESSION ? b + this.offNext : 0;
    this.valueCol = this.kind == KIND_VALUE ? b + this.offValue : 0;
    for (let f = 0; f < this.nFields; f++) unchecked(this.nullCnt[f] = b + unchecked(this.offField[f]));
    for (let a = 0; a < this.nAggs; a++) {
      const fn = unchecked(this.aggFn[a]);
      unchecked(this.aggVal[a] = needsVal(fn) ? b + unchecked(this.offVal[a]) : 0);
      unchecked(this.aggTime[a] = needsTime(fn) ? b + unchecked(this.offTime[a]) : 0);
    }
    for (let f = 0; f < this.nFields; f++) {
      unchecked(this.fusedSum[f] = 0);
      unchecked(this.fusedMin[f] = 0);
      unchecked(this.fusedMax[f] = 0);
    }
    for (let a = 0; a < this.nAggs; a++) {
      const fn = unchecked(this.aggFn[a]);
      const f = unchecked(this.aggField[a]);
      let fused = false;
      if ((fn == FN_SUM || fn == FN_MEAN) && unchecked(this.fusedSum[f]) == 0) { unchecked(this.fusedSum[f] = unchecked(this.aggVal[a])); fused = true; }
      else if (fn == FN_MIN && unchecked(this.fusedMin[f]) == 0) { unchecked(this.fusedMin[f] = unchecked(this.aggVal[a])); fused = true; }
      else if (fn == FN_MAX && unchecked(this.fusedMax[f]) == 0) { unchecked(this.fusedMax[f] = unchecked(this.aggVal[a])); fused = true; }
      unchecked(this.aggFused[a] = fused);
    }
  }

  private growRows(newCap: i32): bool {
    const old = this.capRows;
    if (newCap <= old) return true;
    if (this.stride == 0) this.layout();
    const extra = <usize>(newCap - old) * (this.stride + this.rowExtraBytes());
    if (!fits(extra + 64)) return false;
    // The row buffer is 64-byte aligned (the allocation has 64 bytes of slack).
    const oldBytes = <usize>old * this.stride;
    const newBytes = <usize>newCap * this.stride;
    const oldShift = this.rows - this.rowsRaw;
    const raw = growZeroed(this.rowsRaw, old == 0 ? 0 : oldBytes + 64, newBytes + 64);
    const aligned = (raw + 63) & ~(<usize>63);
    // growZeroed zeroed the new tail, and the old slack past the rows was never written, so at an
    // unchanged alignment every new row is zero already; a shifted one needs a move and a fresh
    // fill (the bytes past the moved rows are then stale).
    if (old > 0 && aligned - raw != oldShift) {
      memory.copy(aligned, raw + oldShift, oldBytes);
      memory.fill(aligned + oldBytes, 0, newBytes - oldBytes);
    }
    this.rowsRaw = raw;
    this.rows = aligned;
    this.freeBits = growZeroed(this.freeBits, <usize>freeWords(old) << 3, <usize>freeWords(newCap) << 3);
    this.freeSum = growZeroed(this.freeSum, <usize>freeSumWords(old) << 3, <usize>freeSumWords(newCap) << 3);
    if (this.dirtyList != 0 || this.trackChanges) {
      this.dirtyList = growTransient(this.dirtyList, this.dirtyList == 0 ? 0 : <usize>old * 4, <usize>newCap * 4);
    }
    const oldPages = <usize>pagesOf(old) * 4;
    const newPages = <usize>pagesOf(newCap) * 4;
    this.pageLive = growZeroed(this.pageLive, oldPages, newPages);
    if (this.keyType == KEY_UTF8) this.pageKeyBytes = growZeroed(this.pageKeyBytes, oldPages, newPages);
    if (this.kind == KIND_VALUE) this.pageValBytes = growZeroed(this.pageValBytes, oldPages, newPages);
    if (this.chained()) {
      this.older = growZeroed(this.older, <usize>old * 4, <usize>newCap * 4);
      this.newer = growZeroed(this.newer, <usize>old * 4, <usize>newCap * 4);
    }
    this.capRows = newCap;
    this.rebase();
    return true;
  }

  /**
   * The most rows the store can hold: ROWS_MAX, and as many records as one block holds (the rows are
   * one buffer, and the allocator's blocks stop at 1 GiB: mem.ts blockBytesMax). Every other per-row
   * buffer takes 4 bytes a row or less, fewer than a record.
   */
  capRowsMax(): i32 {
    if (this.stride == 0) this.layout();
    return <i32>min<u64>(<u64>ROWS_MAX, (<u64>blockBytesMax - 64) / <u64>this.stride);
  }

  /** State bytes per row besides the record (ROW_EXTRA_BYTES, and a pane store's chain links). */
  @inline rowExtraBytes(): usize {
    return ROW_EXTRA_BYTES + (this.chained() ? 8 : 0);
  }

  /**
   * Allocates the change log (when checkpoints start tracking changes; growRows grows it from
   * then on). Not zeroed: entries are written before they are read (dirtyCount bounds the reads).
   */
  ensureDirtyList(): void {
    if (this.dirtyList == 0 && this.capRows > 0) this.dirtyList = growTransient(0, 0, <usize>this.capRows * 4);
  }

  /** Index entries the store holds: keys for chained stores, rows otherwise. */
  @inline private idxEntries(): i32 {
    return this.chained() ? this.idxKeys : this.liveRows;
  }

  growIndex(minSlots: i32): bool {
    let cap = max<i32>(this.slotCap, 16);
    while (<i64>cap * LOAD_NUM / LOAD_DEN < <i64>minSlots) cap <<= 1;
    if (cap == this.slotCap) return true;
    const bytes = <usize>cap * SLOT_BYTES + SLOT_SLACK;
    const fresh = allocZeroed(bytes);
    if (fresh == 0) return false;
    const mask = <u32>(cap - 1);
    const old = this.slots;
    for (let i = 0; i < this.slotCap; i++) {
      const s = load<u64>(old + <usize>i * SLOT_BYTES);
      if (s == 0) continue;
      let pos = (<u32>(s >>> 32)) & mask;
      while (load<u64>(fresh + <usize>pos * SLOT_BYTES) != 0) pos = (pos + 1) & mask;
      store<u64>(fresh + <usize>pos * SLOT_BYTES, s);
    }
    release(old, <usize>this.slotCap * SLOT_BYTES + SLOT_SLACK);
    this.slots = fresh;
    this.slotCap = cap;
    this.slotMask = mask;
    return true;
  }

  /**
   * Checks that `rows` more rows with `keyBytes` more key bytes (and `valBytes` of values) would fit
   * under the memory cap in the worst case (every row new), so that the mutation that follows cannot
   * fail half-way; the memory itself is only allocated as rows are actually inserted (prepareInsert),
   * so a batch of a million events over a thousand keys reserves nothing for the other 999,000.
   * Returns false (and changes nothing) when the cap would be passed.
   */
  reserve(rows: i32, keyBytes: u32, valBytes: u32): bool {
    if (!this.fitsWorstCase(rows, keyBytes, valBytes)) return false;
    if (valBytes > 0 && !this.valArena.reserve(valBytes)) return false;
    // Ingest's per-event scratch covers one block of events (reused block after block).
    const scratch = min<i32>(rows, SCRATCH_EVENTS);
    if (scratch > this.rowBufCap) {
      this.rowBuf = growTransient(this.rowBuf, <usize>this.rowBufCap * 4, <usize>scratch * 4);
      this.hashBuf = growTransient(this.hashBuf, <usize>this.rowBufCap * 4, <usize>scratch * 4);
      this.nsBuf = growTransient(this.nsBuf, <usize>this.rowBufCap * 8, <usize>scratch * 8);
      this.rowBufCap = scratch;
    }
    return true;
  }

  /**
   * reserve's test alone, changing nothing: whether `rows` more rows with `keyBytes` key bytes and
   * `valBytes` value bytes fit under the cap in the worst case. The shard manager asks every shard
   * of a split batch before any applies its slice, so a batch is refused whole (ingestFits).
   */
  fitsWorstCase(rows: i32, keyBytes: u32, valBytes: u32): bool {
    const extra = this.worstCaseExtra(rows, keyBytes, valBytes);
    // In u64: an extra of 4 GiB or more never fits (clamping it to u32 would wrap the sum).
    return extra != u64.MAX_VALUE && <u64>memUsedBytes + extra <= <u64>memCapBytes;
  }

  /**
   * The state bytes that `rows` more rows with `keyBytes` key bytes and `valBytes` value bytes may
   * take in the worst case (every row new), or u64.MAX_VALUE when the rows would pass ROWS_MAX.
   */
  worstCaseExtra(rows: i32, keyBytes: u32, valBytes: u32): u64 {
    if (this.liveRows + rows > ROWS_MAX) return u64.MAX_VALUE;
    const need = this.idxEntries() + rows;
    if (this.stride == 0) this.layout();
    let extra: u64 = 0;
    const rowsNeeded = <i64>this.hwm + <i64>max<i32>(0, rows - this.freeCount);
    if (rowsNeeded > <i64>this.capRows) {
      const most = this.capRowsMax();
      if (rowsNeeded > <i64>most) return u64.MAX_VALUE;
      let next = max<i32>(this.capRows, ROWS_INITIAL);
      while (<i64>next < rowsNeeded) next = min<i32>(nextRowCap(next), most);
      extra += <u64>(next - this.capRows) * <u64>(this.stride + this.rowExtraBytes()) + 64;
    }
    let cap = max<i32>(this.slotCap, 16);
    while (<i64>cap * LOAD_NUM / LOAD_DEN < <i64>need) cap <<= 1;
    if (<u64>cap * SLOT_BYTES + SLOT_SLACK > <u64>blockBytesMax) return u64.MAX_VALUE;
    // A rebuild holds the old table and the new one at once: at the last doubling, the table of
    // cap / 2 slots (when larger than the current one) is still allocated.
    if (cap != this.slotCap) extra += <u64>cap * SLOT_BYTES + SLOT_SLACK + <u64>max<i32>(0, (cap >> 1) - this.slotCap) * SLOT_BYTES;
    if (this.keyType == KEY_UTF8) {
      // Keys are reserved one insert at a time, so the arena may grow several times; at the last
      // growth it holds the previous arena and the new one, both at most the final size.
      const grow = this.keyArena.growthBytes(keyBytes);
      if (grow == u64.MAX_VALUE) return u64.MAX_VALUE;
      extra += max<u64>(<u64>this.keyArena.usedBytes / 2 + <u64>keyBytes * 2 + 4096, grow * 2);
    }
    // Values are reserved at once (reserve), which allocates the whole new arena.
    const valGrow = this.valArena.growthBytes(valBytes);
    if (valGrow == u64.MAX_VALUE) return u64.MAX_VALUE;
    extra += max<u64>(<u64>valBytes * 2, valGrow);
    return extra;
  }

  /**
   * Grows rows, index and key arena, if needed, for one more row with `keyBytes` key bytes.
   * Returns true when the index was rebuilt (slot positions moved). reserve() made sure it fits.
   */
  prepareInsert(keyBytes: i32): bool {
    if (this.freeCount == 0 && this.hwm == this.capRows) {
      let next = max<i32>(this.capRows, ROWS_INITIAL);
      if (this.capRows > 0) next = nextRowCap(next);
      assert(this.growRows(min<i32>(next, this.capRowsMax())), 'row growth refused after reserve');
    }
    if (this.keyType == KEY_UTF8) assert(this.keyArena.reserve(<u32>keyBytes), 'key arena growth refused after reserve');
    const entries = this.idxEntries();
    if (<i64>(entries + 1) * LOAD_DEN > <i64>this.slotCap * LOAD_NUM) {
      assert(this.growIndex(entries + 1), 'index growth refused after reserve');
      return true;
    }
    return false;
  }

  // ---- keys and the index ----------------------------------------------------------------------

  @inline keyLen(row: i32): i32 {
    return <i32>(load<u64>(this.p(this.keyCol, row)) >>> 32);
  }

  @inline keyPtr(row: i32): usize {
    return this.keyArena.base + <usize>(<u32>load<u64>(this.p(this.keyCol, row)));
  }

  @inline rowNs(row: i32): i64 {
    return this.nsCol == 0 ? 0 : load<i64>(this.p(this.nsCol, row));
  }

  /** The index hash of a row: its key's probe hash, mixed with the pane start in tumbling stores. */
  @inline idxHashOf(keyHash: u32, ns: i64): u32 {
    return this.byNs() ? hashWithNs(keyHash, ns) : keyHash;
  }

  @inline keyEqI64(row: i32, key: i64): bool {
    return load<i64>(this.p(this.keyCol, row)) == key;
  }

  @inline keyEqBytes(row: i32, ptr: usize, len: i32): bool {
    const kv = load<u64>(this.p(this.keyCol, row));
    if (<i32>(kv >>> 32) != len) return false;
    return bytesEqual(this.keyArena.base + <usize>(<u32>kv), ptr, len);
  }

  /** Whether the key of slot value `sl` (hash matched) is int64 `k`: the key is read from the row. */
  @inline slotKeyEqI64(sl: u64, k: i64): bool {
    return load<i64>(this.keyCol + <usize>(<u32>sl - 1) * this.stride) == k;
  }

  /** Whether the key of slot value `sl` (hash matched) is the utf8 bytes (ptr, len). */
  @inline slotKeyEqBytes(sl: u64, ptr: usize, len: i32): bool {
    return this.keyEqBytes(<i32>(<u32>sl - 1), ptr, len);
  }

  /**
   * Probes index `slots` (mask `mask`, as the caller holds them) from the home slot of hash `h` for
   * int64 key `k`: returns the slot holding both, or the empty slot where the probe ended
   * (load<u64>(slot) == 0 then, where the key would be inserted). Pane starts are not compared.
   */
  @inline probeI64(slots: usize, mask: u32, h: u32, k: i64): usize {
    let pos = h & mask;
    while (true) {
      const sp = slots + <usize>pos * SLOT_BYTES;
      const sl = load<u64>(sp);
      if (sl == 0 || (<u32>(sl >>> 32) == h && this.slotKeyEqI64(sl, k))) return sp;
      pos = (pos + 1) & mask;
    }
  }

  /** probeI64 for utf8 key bytes (ptr, len). */
  @inline probeBytes(slots: usize, mask: u32, h: u32, ptr: usize, len: i32): usize {
    let pos = h & mask;
    while (true) {
      const sp = slots + <usize>pos * SLOT_BYTES;
      const sl = load<u64>(sp);
      if (sl == 0 || (<u32>(sl >>> 32) == h && this.slotKeyEqBytes(sl, ptr, len))) return sp;
      pos = (pos + 1) & mask;
    }
  }

  /** The key-group hash (MurmurHash3, as the router's) of a row's key, recomputed from the key. */
  @inline rowKeyGroupHash(row: i32): u32 {
    return this.keyType == KEY_INT64 ? hashI64(load<i64>(this.p(this.keyCol, row))) : hashBytes(this.keyPtr(row), this.keyLen(row));
  }

  /** The probe hash of a row's key (see probeHashOf). */
  @inline rowProbeHash(row: i32): u32 {
    return this.keyType == KEY_INT64 ? probeHashI64(load<i64>(this.p(this.keyCol, row))) : probeHashBytes(this.keyPtr(row), this.keyLen(row));
  }

  /**
   * Finds the row of (key, ns); `keyI64` is the key for int64 stores, (ptr, len) for utf8; `keyHash`
   * is the key's probe hash (probeHashOf).
   */
  find(keyHash: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    if (this.slotCap == 0) return -1;
    const h = this.idxHashOf(keyHash, ns);
    const mask = this.slotMask;
    let pos = h & mask;
    const int64 = this.keyType == KEY_INT64;
    const byNs = this.byNs();
    while (true) {
      const sp = this.slots + <usize>pos * SLOT_BYTES;
      const s = load<u64>(sp);
      if (s == 0) return -1;
      if (<u32>(s >>> 32) == h) {
        let row = <i32>(<u32>s) - 1;
        const keyOk = int64 ? this.slotKeyEqI64(s, keyI64) : this.slotKeyEqBytes(s, ptr, len);
        if (keyOk && (!byNs || this.rowNs(row) == ns)) {
          if (!this.chained()) return row;
          // The key's panes, newest first.
          while (row >= 0 && this.rowNs(row) > ns) row = load<i32>(this.older + (<usize>row << 2));
          return row >= 0 && this.rowNs(row) == ns ? row : -1;
        }
      }
      pos = (pos + 1) & mask;
    }
  }

  /** Finds or inserts (key, ns); `keyHash` is the key's probe hash (probeHashOf). */
  findOrInsert(keyHash: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    return this.findOrInsertIdx(this.idxHashOf(keyHash, ns), keyI64, ptr, len, ns);
  }

  /** Finds or inserts (key, ns) given its index hash (idxHashOf). */
  findOrInsertIdx(h: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    const mask = this.slotMask;
    let pos = h & mask;
    const slots = this.slots;
    const int64 = this.keyType == KEY_INT64;
    const byNs = this.byNs();
    let sp: usize;
    while (true) {
      sp = slots + <usize>pos * SLOT_BYTES;
      const s = load<u64>(sp);
      if (s == 0) break;
      if (<u32>(s >>> 32) == h) {
        const row = <i32>(<u32>s) - 1;
        const keyOk = int64 ? this.slotKeyEqI64(s, keyI64) : this.slotKeyEqBytes(s, ptr, len);
        if (keyOk && (!byNs || this.rowNs(row) == ns)) return this.chained() ? this.paneOf(h, row, keyI64, ptr, len, ns) : row;
      }
      pos = (pos + 1) & mask;
    }
    return this.insertAt(sp, h, keyI64, ptr, len, ns);
  }

  /**
   * The pane `ns` of the key whose newest pane is `newest` (index hash h), inserted into the key's
   * chain when absent: as the newest (the key's slot then points at it) or between two panes.
   */
  paneOf(h: u32, newest: i32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    const top = this.rowNs(newest);
    if (top == ns) return newest;
    let prev = -1;
    let r = newest;
    if (ns < top) {
      prev = newest;
      r = load<i32>(this.older + (<usize>newest << 2));
      while (r >= 0 && this.rowNs(r) > ns) {
        prev = r;
        r = load<i32>(this.older + (<usize>r << 2));
      }
      if (r >= 0 && this.rowNs(r) == ns) return r;
    }
    // Insert between prev (newer, or none) and r (older, or none). prepareInsert may move slots
    // and grow the rows (and with them the chain arrays): neither changes a row id.
    this.prepareInsert(len);
    const row = this.newRow(keyI64, ptr, len, ns);
    const older = this.older;
    const newer = this.newer;
    store<i32>(older + (<usize>row << 2), r);
    store<i32>(newer + (<usize>row << 2), prev);
    if (r >= 0) store<i32>(newer + (<usize>r << 2), row);
    if (prev >= 0) store<i32>(older + (<usize>prev << 2), row);
    else this.repointSlotHashed(r, row, h);
    return row;
  }

  /**
   * Inserts (key, ns), known to be absent, given its index hash and the empty slot `sp` where the
   * probe for it ended. Returns the new row.
   */
  insertAt(sp: usize, h: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    if (this.prepareInsert(len)) {
      // The index was rebuilt: find the new empty slot for this key.
      const m2 = this.slotMask;
      let pos = h & m2;
      while (load<u64>(this.slots + <usize>pos * SLOT_BYTES) != 0) pos = (pos + 1) & m2;
      sp = this.slots + <usize>pos * SLOT_BYTES;
    }
    const row = this.newRow(keyI64, ptr, len, ns);
    store<u64>(sp, (<u64>h << 32) | <u64>(row + 1));
    this.idxKeys++;
    if (this.chained()) {
      store<i32>(this.older + (<usize>row << 2), -1);
      store<i32>(this.newer + (<usize>row << 2), -1);
    }
    return row;
  }

  /** Allocates and initializes a row (not yet in the index). */
  newRow(keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    let row: i32;
    if (this.freeCount > 0) {
      row = this.popFree();
    } else {
      row = this.hwm++;
    }
    this.cow(row);
    const r8 = <usize>row * this.stride;
    // Keep F_DIRTY: a reused row id may still sit in the dirty list from its previous life. Read
    // before the null counts are reset, as the flags byte may be the top byte of the first one.
    const fp = this.p(this.flagCol, row);
    const dirty = load<u8>(fp) & F_DIRTY;
    const pg = <usize>(row >> PAGE_SHIFT) << 2;
    store<u32>(this.pageLive + pg, load<u32>(this.pageLive + pg) + 1);
    if (this.keyType == KEY_INT64) {
      store<i64>(this.keyCol + r8, keyI64);
    } else {
      const off = this.keyArena.append(ptr, <u32>len);
      store<u64>(this.keyCol + r8, (<u64>len << 32) | <u64>off);
      store<u32>(this.pageKeyBytes + pg, load<u32>(this.pageKeyBytes + pg) + <u32>len);
    }
    if (this.nsCol != 0) store<i64>(this.nsCol + r8, ns);
    store<i64>(this.cntCol + r8, 0);
    if (this.maxTimeCol != 0) store<i64>(this.maxTimeCol + r8, i64.MIN_VALUE);
    if (this.startCol != 0) store<i64>(this.startCol + r8, ns);
    if (this.nextCol != 0) store<i32>(this.p(this.nextCol, row), -1);
    if (this.valueCol != 0) store<u64>(this.valueCol + r8, 0);
    for (let f = 0; f < this.nFields; f++) store<i64>(unchecked(this.nullCnt[f]) + r8, 0);
    for (let a = 0; a < this.nAggs; a++) initAgg(this, a, row);
    store<u8>(fp, F_LIVE | dirty);
    this.liveRows++;
    const hop = this.hop;
    if (hop != null && hop.valid) hop.push(row);
    return row;
  }

  /**
   * Copy-on-write for a full capture in progress: copies the page of `row` into the snapshot before
   * the row is first changed after the cut. Every mutation of a row record calls this first (newRow,
   * touch, markDirty, freeRow, or directly); the few that cannot finish the capture instead
   * (finishCapture in snapshot.ts).
   */
  @inline cow(row: i32): void {
    if (this.capActive && row < this.capHigh && load<u8>(this.capMeta + <usize>(row >> PAGE_SHIFT)) == 0) {
      capturePage(this, row >> PAGE_SHIFT);
    }
  }

  /** Adds `delta` value bytes to the page counter of `row` (value state). */
  @inline addValBytes(row: i32, delta: i32): void {
    const p = this.pageValBytes + (<usize>(row >> PAGE_SHIFT) << 2);
    store<u32>(p, <u32>(<i32>load<u32>(p) + delta));
  }

  /** Marks a row changed: for emission and for the next incremental checkpoint. */
  @inline touch(row: i32): void {
    this.cow(row);
    const fp = this.p(this.flagCol, row);
    const f = load<u8>(fp);
    if (this.trackChanges && (f & F_DIRTY) == 0) {
      store<i32>(this.dirtyList + (<usize>this.dirtyCount << 2), row);
      this.dirtyCount++;
    }
    // Not F_LIVE: only newRow makes a row live, so the live counts (liveRows, pageLive) stay true.
    store<u8>(fp, f | F_DIRTY | F_CHANGED);
  }

  /**
   * Marks a row for the next incremental checkpoint without marking it changed for emission: used
   * when emission clears F_CHANGED, which is state too (a restore must not fire the window again).
   */
  @inline markDirty(row: i32): void {
    this.cow(row);
    const fp = this.p(this.flagCol, row);
    const f = load<u8>(fp);
    if (this.trackChanges && (f & F_DIRTY) == 0) {
      store<i32>(this.dirtyList + (<usize>this.dirtyCount << 2), row);
      this.dirtyCount++;
    }
    store<u8>(fp, f | F_DIRTY);
  }

  /** Finds the index slot that points at `row`, or -1. */
  private slotOfRow(row: i32): i32 {
    return this.slotOfRowHashed(row, this.idxHashOf(this.rowProbeHash(row), this.rowNs(row)));
  }

  /** Finds the index slot that points at `row`, given the row's index hash `h` (idxHashOf), or -1. */
  private slotOfRowHashed(row: i32, h: u32): i32 {
    const mask = this.slotMask;
    let pos = h & mask;
    const want = <u32>(row + 1);
    while (true) {
      const s = load<u64>(this.slots + <usize>pos * SLOT_BYTES);
      if (s == 0) return -1;
      if (<u32>s == want) return <i32>pos;
      pos = (pos + 1) & mask;
    }
  }

  /** Empties the index (its capacity stays). */
  clearIndex(): void {
    memory.fill(this.slots, 0, <usize>this.slotCap * SLOT_BYTES);
    this.idxKeys = 0;
  }

  /** Inserts a slot for `row`, whose key is known to be absent from the index. */
  insertSlot(h: u32, row: i32): void {
    const mask = this.slotMask;
    let pos = h & mask;
    while (load<u64>(this.slots + <usize>pos * SLOT_BYTES) != 0) pos = (pos + 1) & mask;
    store<u64>(this.slots + <usize>pos * SLOT_BYTES, (<u64>h << 32) | <u64>(row + 1));
    this.idxKeys++;
  }

  /** Points the slot of `oldRow` at `newRow` (same key, same index hash). */
  repointSlot(oldRow: i32, newRow: i32): void {
    this.repointSlotHashed(oldRow, newRow, this.idxHashOf(this.rowProbeHash(oldRow), this.rowNs(oldRow)));
  }

  /** repointSlot() given the index hash, so `oldRow` is not read (it may be freed already). */
  repointSlotHashed(oldRow: i32, newRow: i32, h: u32): void {
    const pos = this.slotOfRowHashed(oldRow, h);
    assert(pos >= 0, 'index slot missing');
    const p = this.slots + <usize>pos * SLOT_BYTES;
    const s = load<u64>(p);
    store<u64>(p, (s & 0xffff_ffff_0000_0000) | <u64>(newRow + 1));
  }

  /** Removes `row` from the index: its slot (backward-shift deletion), or its pane chain. */
  unindex(row: i32): void {
    this.unindexHashed(row, this.idxHashOf(this.rowProbeHash(row), this.rowNs(row)));
  }

  /**
   * unindex() given the row's index hash `h`, so the row record is not read: the row may be freed
   * already (its id still names its slot, and its chain links are intact, until this runs).
   */
  unindexHashed(row: i32, h: u32): void {
    if (this.chained()) {
      // Unlink the pane; the key's slot changes only when it was the newest (or the last) pane.
      const o = load<i32>(this.older + (<usize>row << 2));
      const n = load<i32>(this.newer + (<usize>row << 2));
      if (o >= 0) store<i32>(this.newer + (<usize>o << 2), n);
      if (n >= 0) {
        store<i32>(this.older + (<usize>n << 2), o);
        return;
      }
      if (o >= 0) {
        this.repointSlotHashed(row, o, h);
        return;
      }
    }
    this.removeSlot(row, h);
  }

  /** Removes the slot that points at `row` (index hash h), with backward-shift deletion. */
  private removeSlot(row: i32, h: u32): void {
    this.idxKeys--;
    let i = <u32>this.slotOfRowHashed(row, h);
    assert(<i32>i >= 0, 'index slot missing');
    const mask = this.slotMask;
    const slots = this.slots;
    let j = i;
    while (true) {
      j = (j + 1) & mask;
      const sj = slots + <usize>j * SLOT_BYTES;
      const s = load<u64>(sj);
      if (s == 0) break;
      const home = (<u32>(s >>> 32)) & mask;
      // Move s back into the hole at i when its home position is not cyclically within (i, j].
      const movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
      if (movable) {
        store<u64>(slots + <usize>i * SLOT_BYTES, s);
        i = j;
      }
    }
    store<u64>(slots + <usize>i * SLOT_BYTES, 0);
  }

  /**
   * Frees a row that is no longer in the index. Records a tombstone when the row is in the last
   * checkpoint, so the next incremental checkpoint deletes it on restore.
   */
  freeRow(row: i32): void {
    this.cow(row);
    const fp = this.p(this.flagCol, row);
    const f = load<u8>(fp);
    if (this.trackChanges && (f & F_PERSISTED) != 0) this.addTombstone(row);
    const pg = <usize>(row >> PAGE_SHIFT) << 2;
    store<u32>(this.pageLive + pg, load<u32>(this.pageLive + pg) - 1);
    if (this.keyType == KEY_UTF8) {
      const len = <u32>this.keyLen(row);
      this.keyArena.garbageBytes += len;
      store<u32>(this.pageKeyBytes + pg, load<u32>(this.pageKeyBytes + pg) - len);
    }
    if (this.valueCol != 0) {
      const len = <u32>(load<u64>(this.p(this.valueCol, row)) >>> 32);
      this.valArena.garbageBytes += len;
      store<u32>(this.pageValBytes + pg, load<u32>(this.pageValBytes + pg) - len);
    }
    // A row still in the dirty list keeps its entry; capture skips rows that are no longer live.
    store<u8>(fp, f & F_DIRTY);
    this.pushFree(row);
    this.liveRows--;
  }

  private pushFree(row: i32): void {
    const w = row >> 6;
    const wp = this.freeBits + (<usize>w << 3);
    const bit = <u64>1 << <u64>(row & 63);
    assert((load<u64>(wp) & bit) == 0, 'row freed twice');
    store<u64>(wp, load<u64>(wp) | bit);
    const sw = w >> 6;
    const sp = this.freeSum + (<usize>sw << 3);
    store<u64>(sp, load<u64>(sp) | (<u64>1 << <u64>(w & 63)));
    if (sw < this.freeLow) this.freeLow = sw;
    this.freeCount++;
  }

  /** Takes the lowest freed row id off the free set (freeCount > 0). */
  private popFree(): i32 {
    let sw = this.freeLow;
    while (load<u64>(this.freeSum + (<usize>sw << 3)) == 0) sw++;
    this.freeLow = sw;
    const sp = this.freeSum + (<usize>sw << 3);
    const sv = load<u64>(sp);
    const w = (sw << 6) + <i32>ctz(sv);
    const wp = this.freeBits + (<usize>w << 3);
    const wv = load<u64>(wp);
    const nv = wv & (wv - 1);
    store<u64>(wp, nv);
    if (nv == 0) {
      const ns = sv & (sv - 1);
      store<u64>(sp, ns);
      if (ns == 0) this.freeLow = sw + 1;
    }
    this.freeCount--;
    return (w << 6) + <i32>ctz(wv);
  }

  private addTombstone(row: i32): void {
    if (this.tombCount == this.tombCap) {
      const next = max<i32>(64, this.tombCap * 2);
      if (!fits(<usize>(next - this.tombCap) * 16)) {
        // Out of memory for the tombstone log: the next checkpoint must be a full one instead.
        this.forceFull = true;
        return;
      }
      // Both fit (checked together), so neither growth fails and their sizes stay tombCap's.
      this.tombKey = growZeroed(this.tombKey, <usize>this.tombCap * 8, <usize>next * 8);
      this.tombNs = growZeroed(this.tombNs, <usize>this.tombCap * 8, <usize>next * 8);
      this.tombCap = next;
    }
    const t = this.tombCount;
    const r8 = <usize>row * this.stride;
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
    this.tombCount++;
  }

  /** Deletes (key, ns) if present. Returns 1 when a row was removed. */
  deleteKey(keyHash: u32, keyI64: i64, ptr: usize, len: i32, ns: i64): i32 {
    if (this.win == WIN_SESSION) {
      let r = this.find(keyHash, keyI64, ptr, len, 0);
      if (r < 0) return 0;
      this.unindex(r);
      while (r >= 0) {
        const nx = load<i32>(this.p(this.nextCol, r));
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
    // Compaction rewrites every row's key or value pointer: not while a capture copies rows out.
    if (this.capActive) return true;
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
    if (this.rowsRaw != 0) release(this.rowsRaw, <usize>c * this.stride + 64);
    release(this.freeBits, <usize>freeWords(c) << 3);
    release(this.freeSum, <usize>freeSumWords(c) << 3);
    this.freeBits = 0;
    this.freeSum = 0;
    this.freeLow = 0;
    this.freeCount = 0;
    releaseTransient(this.dirtyList, <usize>c * 4);
    this.dirtyList = 0;
    const pages = <usize>pagesOf(c) * 4;
    release(this.pageLive, pages);
    if (this.keyType == KEY_UTF8) release(this.pageKeyBytes, pages);
    if (this.kind == KIND_VALUE) release(this.pageValBytes, pages);
    releaseTransient(this.capMeta, this.capMetaBytes);
    this.capActive = false;
    release(this.slots, <usize>this.slotCap * SLOT_BYTES + SLOT_SLACK);
    release(this.older, <usize>c * 4);
    release(this.newer, <usize>c * 4);
    this.idxKeys = 0;
    release(this.tombKey, <usize>this.tombCap * 8);
    release(this.tombNs, <usize>this.tombCap * 8);
    releaseTransient(this.snapPtr, this.snapCap);
    releaseTransient(this.rowBuf, <usize>this.rowBufCap * 4);
    releaseTransient(this.hashBuf, <usize>this.rowBufCap * 4);
    releaseTransient(this.nsBuf, <usize>this.rowBufCap * 8);
    this.keyArena.free();
    this.valArena.free();
    this.tombArena.free();
    this.capRows = 0;
    this.slotCap = 0;
  }
}

/** u64 words of the free-row bits for `rows` row ids (Store.freeBits). */
@inline function freeWords(rows: i32): i32 {
  return (rows + 63) >> 6;
}

/** u64 words of the free-row summary for `rows` row ids (Store.freeSum). */
@inline function freeSumWords(rows: i32): i32 {
  return (freeWords(rows) + 63) >> 6;
}

/** Pages of 1 << PAGE_SHIFT rows covering `rows` row ids. */
@inline export function pagesOf(rows: i32): i32 {
  return (rows + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT;
}

/** Byte equality, eight bytes at a time (keys are short; memory.compare is a byte loop). */
@inline export function bytesEqual(a: usize, b: usize, len: i32): bool {
  // Short keys (the common case) in two overlapping loads per side and no loop.
  if (len <= 16 && len >= 4) {
    if (len >= 8) return (load<u64>(a) == load<u64>(b)) & (load<u64>(a + <usize>(len - 8)) == load<u64>(b + <usize>(len - 8)));
    return (load<u32>(a) == load<u32>(b)) & (load<u32>(a + <usize>(len - 4)) == load<u32>(b + <usize>(len - 4)));
  }
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    if (load<u64>(a + <usize>i) != load<u64>(b + <usize>i)) return false;
  }
  for (; i < len; i++) {
    if (load<u8>(a + <usize>i) != load<u8>(b + <usize>i)) return false;
  }
  return true;
}

/**
 * The aggregates fused into field 0's loop (the rule of Store.rebase: its first sum or mean, first
 * min, first max), as (index + 1) in bytes 0 (sum), 1 (min) and 2 (max); 0 where none. At most
 * 255 aggregates are packed (AGGS_MAX is below that).
 */
function fusedAggsOfField0(aggFn: StaticArray<i32>, aggField: StaticArray<i32>, nAggs: i32): u32 {
  let sum = 0;
  let mn = 0;
  let mx = 0;
  for (let a = 0; a < nAggs && a < 255; a++) {
    if (unchecked(aggField[a]) != 0) continue;
    const fn = unchecked(aggFn[a]);
    if ((fn == FN_SUM || fn == FN_MEAN) && sum == 0) sum = a + 1;
    else if (fn == FN_MIN && mn == 0) mn = a + 1;
    else if (fn == FN_MAX && mx == 0) mx = a + 1;
  }
  return <u32>sum | (<u32>mn << 8) | (<u32>mx << 16);
}

@inline function isFusedOfField0(fused: u32, a: i32): bool {
  const x = <u32>(a + 1);
  return (fused & 0xff) == x || ((fused >>> 8) & 0xff) == x || ((fused >>> 16) & 0xff) == x;
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
  const r8 = <usize>row * s.stride;
  if (fn == FN_MIN) store<f64>(unchecked(s.aggVal[a]) + r8, Infinity);
  else if (fn == FN_MAX) store<f64>(unchecked(s.aggVal[a]) + r8, -Infinity);
  else if (needsVal(fn)) store<f64>(unchecked(s.aggVal[a]) + r8, 0);
  if (fn == FN_FIRST) store<i64>(unchecked(s.aggTime[a]) + r8, i64.MAX_VALUE);
  else if (fn == FN_LAST) store<i64>(unchecked(s.aggTime[a]) + r8, i64.MIN_VALUE);
}

/** The index probe hash of a key given as int64 or as (ptr, len) bytes. */
@inline export function probeHashOf(s: Store, keyI64: i64, ptr: usize, len: i32): u32 {
  return s.keyType == KEY_INT64 ? probeHashI64(keyI64) : probeHashBytes(ptr, len);
}

function compactArena(s: Store, arena: ByteArena, col: usize): bool {
  if (arena.garbageBytes < 1 << 20 || arena.garbageBytes * 2 < arena.usedBytes) return true;
  const liveBytes = arena.usedBytes - arena.garbageBytes;
  const capBytes = max<u32>(liveBytes, 4096);
  const base = allocZeroed(<usize>capBytes);
  if (base == 0) return false;
  let used: u32 = 0;
  for (let r = 0; r < s.hwm; r++) {
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    const p = col + <usize>r * s.stride;
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
