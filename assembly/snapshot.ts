// State snapshots: the bytes a checkpoint stores for one operator on one shard.
//
// capture() writes live rows (full) or the rows changed since the last capture plus tombstones of
// deleted rows (delta) into one buffer, in row-id order (full) or change order (delta). Both orders
// are fixed by the sequence of operations, so the same input always gives the same bytes; a store
// restored from a full snapshot has its rows in file order, so checkpointing it again writes the
// same bytes. (Sorting rows into a canonical order instead made a 1M-row capture six times slower,
// and the capture is what holds up ingest.) load() applies a snapshot to a store: tombstones first,
// then rows (an upsert of the whole row), keeping only rows of the key groups the shard owns.
// The layout is documented in ARCHITECTURE.md ("State snapshot"); every field is little endian.
import {
  Store, KEY_INT64, KIND_VALUE, WIN_SESSION, F_LIVE, F_DIRTY, F_CHANGED, F_PERSISTED, PAGE_SHIFT, needsVal, needsTime, pagesOf, NULLS_MASK, probeHashOf,
} from './store';
import { allocTransient, growTransient, releaseTransient, blockBytesMax } from './mem';
import { E_MEMORY_CAP, E_BAD_SNAPSHOT, E_BAD_ARGUMENT } from './errors';

export const SNAP_MAGIC: u32 = 0x504e5343; // "CSNP"
export const SNAP_VERSION: u16 = 2;
export const SNAP_HEADER_BYTES: i32 = 64;
export const MODE_FULL: i32 = 0;
export const MODE_DELTA: i32 = 1;
/** Rows of the masked key groups, no flag changes: used to move key groups between shards. */
export const MODE_EXTRACT: i32 = 2;

/**
 * Each store keeps its last capture in a buffer of its own (Store.snapPtr/snapLen) until the host
 * releases it, so a checkpoint can read a capture out in chunks while ingest goes on, and captures
 * of several operators of one shard do not overwrite each other.
 */
function ensureSnap(s: Store, bytes: usize): void {
  if (bytes <= s.snapCap) return;
  s.snapPtr = growTransient(s.snapPtr, s.snapCap, bytes);
  s.snapCap = bytes;
}

export function snapshotRelease(s: Store): void {
  finishCapture(s);
  releaseTransient(s.snapPtr, s.snapCap);
  s.snapPtr = 0;
  s.snapCap = 0;
  s.snapLen = 0;
}

@inline function kgOf(h: u32, keyGroups: i32): u32 {
  return h % <u32>keyGroups;
}

@inline function pad8(x: u64): u64 {
  return (x + 7) & ~(<u64>7);
}

/** The 8-byte columns after the count, in format order, as byte offsets in a row record. */
function wideCols(s: Store, out: usize): i32 {
  let c = 0;
  for (let f = 0; f < s.nFields; f++) { store<usize>(out + (<usize>c << 2), unchecked(s.offField[f])); c++; }
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (needsVal(fn)) { store<usize>(out + (<usize>c << 2), unchecked(s.offVal[a])); c++; }
    if (needsTime(fn)) { store<usize>(out + (<usize>c << 2), unchecked(s.offTime[a])); c++; }
  }
  if (s.needsMaxTime()) { store<usize>(out + (<usize>c << 2), s.offMaxTime); c++; }
  if (s.win == WIN_SESSION) { store<usize>(out + (<usize>c << 2), s.offStart); c++; }
  return c;
}

@inline function wideColCount(s: Store): i32 {
  return s.nFields + 2 * s.nAggs + 2;
}

/** Bytes of the row section for n rows with the given key and value bytes (8-byte aligned parts). */
function rowSectionBytes(s: Store, n: u64, keyBytes: u64, valBytes: u64): u64 {
  let w: u64 = s.keyType == KEY_INT64 ? n << 3 : pad8(n << 2) + pad8(keyBytes);
  if (s.hasNs()) w += n << 3;
  w += pad8(n); // flags
  w += n << 3; // count
  let wide: u64 = <u64>s.nFields;
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (needsVal(fn)) wide++;
    if (needsTime(fn)) wide++;
  }
  if (s.needsMaxTime()) wide++;
  if (s.win == WIN_SESSION) wide++;
  w += wide * (n << 3);
  if (s.kind == KIND_VALUE) w += pad8(n << 2) + pad8(valBytes);
  return w;
}

function tombSectionBytes(s: Store, t: u64, keyBytes: u64): u64 {
  let w: u64 = s.keyType == KEY_INT64 ? t << 3 : pad8(t << 2) + pad8(keyBytes);
  if (s.hasNs()) w += t << 3;
  return w;
}

// Where a capture writes each column (set by layoutColumns, used by writeRow). Captures of
// different stores never interleave inside one call, but an asynchronous full capture outlives the
// call that started it, so each store keeps its own copy (Store.capMeta holds the per-page tables;
// these are re-derived from the snapshot header by bindColumns).
let wKey: usize = 0;
let wKeyBytes: usize = 0;
let wNs: usize = 0;
let wFlag: usize = 0;
let wCnt: usize = 0;
let wValLen: usize = 0;
let wValBytes: usize = 0;
let wEnd: usize = 0;
let wideN: i32 = 0;
const wideSrc = memory.data(4 * (2 * 64 + 64 + 2));
const wideDst = memory.data(4 * (2 * 64 + 64 + 2));

// What the pointers are bound to, so that copying page after page of one capture binds them once.
let boundStore: Store | null = null;
let boundBase: usize = 0;
let boundN: i32 = -1;
let boundKeyBytes: u64 = 0;
let boundValBytes: u64 = 0;

/** Sets the column write pointers for n rows with keyBytes/valBytes after the header at `base`. */
function bindColumns(s: Store, base: usize, n: i32, keyBytes: u64, valBytes: u64): void {
  if (boundStore === s && boundBase == base && boundN == n && boundKeyBytes == keyBytes && boundValBytes == valBytes) return;
  boundStore = s;
  boundBase = base;
  boundN = n;
  boundKeyBytes = keyBytes;
  boundValBytes = valBytes;
  let w = base + <usize>SNAP_HEADER_BYTES;
  const nn = <u64>n;
  wKey = w;
  if (s.keyType == KEY_INT64) { w += <usize>(nn << 3); wKeyBytes = 0; }
  else { w += <usize>pad8(nn << 2); wKeyBytes = w; w += <usize>pad8(keyBytes); }
  wNs = w; if (s.hasNs()) w += <usize>(nn << 3);
  wFlag = w; w += <usize>pad8(nn);
  wCnt = w; w += <usize>(nn << 3);
  wideN = wideCols(s, wideSrc);
  for (let c = 0; c < wideN; c++) { store<usize>(wideDst + (<usize>c << 2), w); w += <usize>(nn << 3); }
  wValLen = w; wValBytes = 0;
  if (s.kind == KIND_VALUE) { w += <usize>pad8(nn << 2); wValBytes = w; w += <usize>pad8(valBytes); }
  wEnd = w;
}

/** Writes row r as row i of the bound columns; its key and value bytes go at the given offsets. */
@inline function writeRow(s: Store, r: i32, i: i32, keyOff: usize, valOff: usize): void {
  const base = <usize>r * s.stride;
  const rows = s.rows;
  const i8 = <usize>i << 3;
  if (s.keyType == KEY_INT64) {
    store<i64>(wKey + i8, load<i64>(rows + s.offKey + base));
  } else {
    const kv = load<u64>(rows + s.offKey + base);
    const len = <usize>(kv >>> 32);
    store<u32>(wKey + (<usize>i << 2), <u32>len);
    memory.copy(wKeyBytes + keyOff, s.keyArena.base + <usize>(<u32>kv), len);
  }
  if (s.hasNs()) store<i64>(wNs + i8, load<i64>(rows + s.offNs + base));
  store<u8>(wFlag + <usize>i, load<u8>(rows + s.offFlags + base) & F_CHANGED);
  store<i64>(wCnt + i8, load<i64>(rows + s.offCnt + base));
  for (let k = 0; k < wideN; k++) {
    store<i64>(load<usize>(wideDst + (<usize>k << 2)) + i8, load<i64>(rows + load<usize>(wideSrc + (<usize>k << 2)) + base));
  }
  // The first wide column is the first null count, whose top byte holds the flags (NULLS_MASK).
  if (s.nFields > 0) {
    const d = load<usize>(wideDst) + i8;
    store<i64>(d, load<i64>(d) & NULLS_MASK);
  }
  if (s.kind == KIND_VALUE) {
    const kv = load<u64>(rows + s.offValue + base);
    const len = <usize>(kv >>> 32);
    store<u32>(wValLen + (<usize>i << 2), <u32>len);
    memory.copy(wValBytes + valOff, s.valArena.base + <usize>(<u32>kv), len);
  }
}

function writeHeader(s: Store, w: usize, full: bool, n: i32, tombs: i32, keyGroups: i32, keyBytes: u64, valBytes: u64, tombKeyBytes: u64): void {
  store<u32>(w, SNAP_MAGIC);
  store<u16>(w, SNAP_VERSION, 4);
  store<u16>(w, <u16>(full ? 1 : 0), 6);
  store<u8>(w, <u8>s.kind, 8);
  store<u8>(w, <u8>s.keyType, 9);
  store<u8>(w, <u8>s.win, 10);
  store<u8>(w, 0, 11);
  store<u16>(w, <u16>s.nAggs, 12);
  store<u16>(w, <u16>s.nFields, 14);
  store<u32>(w, <u32>n, 16);
  store<u32>(w, <u32>tombs, 20);
  store<u32>(w, <u32>keyGroups, 24);
  store<u32>(w, <u32>keyBytes, 28);
  store<u32>(w, <u32>valBytes, 32);
  store<u32>(w, <u32>tombKeyBytes, 36);
  memory.fill(w + 40, 0, SNAP_HEADER_BYTES - 40);
}

/** Re-binds the column pointers of the capture held in s.snapPtr (the header says n and sizes). */
function rebind(s: Store): void {
  const w = s.snapPtr;
  bindColumns(s, w, <i32>load<u32>(w, 16), <u64>load<u32>(w, 28), <u64>load<u32>(w, 32));
}

/**
 * Captures a snapshot. mode: MODE_FULL, MODE_DELTA or MODE_EXTRACT (with kgMask, a u8 per key group).
 * Returns the byte length (read it at s.snapPtr), or an error code. A full capture is complete on
 * return; captureBegin/captureStep do the same work with ingest going on in between.
 */
export function captureSnapshot(s: Store, mode: i32, keyGroups: i32, kgMask: usize): i32 {
  if (mode == MODE_FULL) {
    const len = captureBegin(s, keyGroups);
    if (len >= 0) finishCapture(s);
    return len;
  }
  finishCapture(s);
  if (mode == MODE_DELTA && (!s.trackChanges || s.forceFull)) return E_BAD_ARGUMENT;
  // Choose rows.
  let cand: usize;
  let candN: i32;
  if (mode == MODE_DELTA) { cand = s.dirtyList; candN = s.dirtyCount; }
  else { cand = 0; candN = s.hwm; }
  const idx = allocTransient(<usize>max<i32>(candN, 1) << 2);
  let n = 0;
  let keyBytes: u64 = 0;
  let valBytes: u64 = 0;
  for (let i = 0; i < candN; i++) {
    const r = cand == 0 ? i : load<i32>(cand + (<usize>i << 2));
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    if (mode == MODE_EXTRACT && load<u8>(kgMask + <usize>kgOf(s.rowKeyGroupHash(r), keyGroups)) == 0) continue;
    store<i32>(idx + (<usize>n << 2), r);
    n++;
    if (s.keyType != KEY_INT64) keyBytes += <u64>s.keyLen(r);
    if (s.kind == KIND_VALUE) valBytes += load<u64>(s.p(s.valueCol, r)) >>> 32;
  }
  const tombs = mode == MODE_DELTA ? s.tombCount : 0;
  const tombKeyBytes: u64 = s.keyType == KEY_INT64 || mode != MODE_DELTA ? 0 : <u64>s.tombArena.usedBytes;
  const total: u64 = <u64>SNAP_HEADER_BYTES + rowSectionBytes(s, <u64>n, keyBytes, valBytes) + tombSectionBytes(s, <u64>tombs, tombKeyBytes);
  if (total > <u64>blockBytesMax) {
    releaseTransient(idx, <usize>max<i32>(candN, 1) << 2);
    return E_MEMORY_CAP;
  }
  ensureSnap(s, <usize>total);
  const base = s.snapPtr;
  // Padding stays zero, so equal state gives equal bytes.
  memory.fill(base, 0, <usize>total);
  writeHeader(s, base, false, n, tombs, keyGroups, keyBytes, valBytes, tombKeyBytes);
  bindColumns(s, base, n, keyBytes, valBytes);
  let ko: usize = 0;
  let vo: usize = 0;
  for (let i = 0; i < n; i++) {
    const r = load<i32>(idx + (<usize>i << 2));
    writeRow(s, r, i, ko, vo);
    if (s.keyType != KEY_INT64) ko += <usize>s.keyLen(r);
    if (s.kind == KIND_VALUE) vo += <usize>(load<u64>(s.p(s.valueCol, r)) >>> 32);
  }
  let w = wEnd;
  // Tombstones (delta only), in log order: deterministic for the same input.
  if (tombs > 0) {
    if (s.keyType == KEY_INT64) {
      memory.copy(w, s.tombKey, <usize>tombs << 3);
      w += <usize>tombs << 3;
    } else {
      for (let t = 0; t < tombs; t++) store<u32>(w + (<usize>t << 2), <u32>(load<u64>(s.tombKey + (<usize>t << 3)) >>> 32));
      w += <usize>pad8(<u64>tombs << 2);
      let o = w;
      for (let t = 0; t < tombs; t++) {
        const kv = load<u64>(s.tombKey + (<usize>t << 3));
        const len = <usize>(kv >>> 32);
        memory.copy(o, s.tombArena.base + <usize>(<u32>kv), len);
        o += len;
      }
      w += <usize>pad8(tombKeyBytes);
    }
    if (s.hasNs()) {
      memory.copy(w, s.tombNs, <usize>tombs << 3);
      w += <usize>tombs << 3;
    }
  }
  assert(<u64>(w - base) == total, 'snapshot length mismatch');
  s.snapLen = w - base;
  // Bookkeeping: what was captured is now persisted; the change log starts afresh.
  if (mode == MODE_DELTA) {
    for (let i = 0; i < s.dirtyCount; i++) {
      const r = load<i32>(s.dirtyList + (<usize>i << 2));
      const fp = s.p(s.flagCol, r);
      const f = load<u8>(fp);
      store<u8>(fp, (f & F_LIVE) != 0 ? (f & ~F_DIRTY) | F_PERSISTED : 0);
    }
    resetChangeLog(s);
  }
  releaseTransient(idx, <usize>max<i32>(candN, 1) << 2);
  return <i32>s.snapLen;
}

function resetChangeLog(s: Store): void {
  s.dirtyCount = 0;
  s.tombCount = 0;
  s.tombArena.clear();
  // The change log is allocated by the first capture (a store never checkpointed holds none).
  s.ensureDirtyList();
  s.trackChanges = true;
  s.forceFull = false;
}

/**
 * The cut of a full capture: sizes the snapshot from the per-page counters, writes its header and
 * starts a fresh change log, in O(pages); no row is copied yet. The rows are copied out a page at a
 * time by captureStep, or by the first mutation of a page (Store.cow), whichever comes first, so
 * every page is captured exactly as it was at the cut. Returns the snapshot's byte length.
 */
export function captureBegin(s: Store, keyGroups: i32): i32 {
  finishCapture(s);
  const high = s.hwm;
  const pages = pagesOf(high);
  const metaBytes = <usize>pages + 3 * ((<usize>pages + 1) << 2);
  const meta = allocTransient(metaBytes);
  memory.fill(meta, 0, <usize>pages);
  const rowAt = meta + <usize>pages;
  const keyAt = rowAt + ((<usize>pages + 1) << 2);
  const valAt = keyAt + ((<usize>pages + 1) << 2);
  let n: u64 = 0;
  let kb: u64 = 0;
  let vb: u64 = 0;
  const utf8 = s.keyType != KEY_INT64;
  const value = s.kind == KIND_VALUE;
  for (let pg = 0; pg < pages; pg++) {
    const o = <usize>pg << 2;
    store<u32>(rowAt + o, <u32>n);
    store<u32>(keyAt + o, <u32>kb);
    store<u32>(valAt + o, <u32>vb);
    n += <u64>load<u32>(s.pageLive + o);
    if (utf8) kb += <u64>load<u32>(s.pageKeyBytes + o);
    if (value) vb += <u64>load<u32>(s.pageValBytes + o);
  }
  const o = <usize>pages << 2;
  store<u32>(rowAt + o, <u32>n);
  store<u32>(keyAt + o, <u32>kb);
  store<u32>(valAt + o, <u32>vb);
  assert(n == <u64>s.liveRows, 'page counters disagree with the live row count');
  const total: u64 = <u64>SNAP_HEADER_BYTES + rowSectionBytes(s, n, kb, vb);
  if (total > <u64>blockBytesMax || kb > 0xffff_ffff || vb > 0xffff_ffff) {
    releaseTransient(meta, metaBytes);
    return E_MEMORY_CAP;
  }
  ensureSnap(s, <usize>total);
  const base = s.snapPtr;
  writeHeader(s, base, true, <i32>n, 0, keyGroups, kb, vb, 0);
  // Zero the alignment padding once (rows only ever write their own cells).
  bindColumns(s, base, <i32>n, kb, vb);
  zeroPadding(s, <i32>n, kb, vb);
  s.snapLen = <usize>total;
  s.capMeta = meta;
  s.capMetaBytes = metaBytes;
  s.capHigh = high;
  s.capPages = pages;
  s.capCursor = 0;
  s.capLeft = pages;
  s.capActive = pages > 0;
  if (!s.capActive) {
    releaseTransient(meta, metaBytes);
    s.capMeta = 0;
    s.capMetaBytes = 0;
  }
  resetChangeLog(s);
  return <i32>total;
}

function zeroPadding(s: Store, n: i32, kb: u64, vb: u64): void {
  const nn = <u64>n;
  if (s.keyType != KEY_INT64) {
    memory.fill(wKey + <usize>(nn << 2), 0, <usize>(pad8(nn << 2) - (nn << 2)));
    memory.fill(wKeyBytes + <usize>kb, 0, <usize>(pad8(kb) - kb));
  }
  memory.fill(wFlag + <usize>nn, 0, <usize>(pad8(nn) - nn));
  if (s.kind == KIND_VALUE) {
    memory.fill(wValLen + <usize>(nn << 2), 0, <usize>(pad8(nn << 2) - (nn << 2)));
    memory.fill(wValBytes + <usize>vb, 0, <usize>(pad8(vb) - vb));
  }
}

/** Copies page pg of the capture in progress into the snapshot (rows as they are: not yet changed). */
export function capturePage(s: Store, pg: i32): void {
  const meta = s.capMeta;
  const rowAt = meta + <usize>s.capPages;
  const keyAt = rowAt + ((<usize>s.capPages + 1) << 2);
  const valAt = keyAt + ((<usize>s.capPages + 1) << 2);
  rebind(s);
  const o = <usize>pg << 2;
  let i = <i32>load<u32>(rowAt + o);
  let ko = <usize>load<u32>(keyAt + o);
  let vo = <usize>load<u32>(valAt + o);
  const r0 = pg << PAGE_SHIFT;
  const r1 = min<i32>(r0 + (1 << PAGE_SHIFT), s.capHigh);
  for (let r = r0; r < r1; r++) {
    const fp = s.p(s.flagCol, r);
    const f = load<u8>(fp);
    if ((f & F_LIVE) != 0) {
      writeRow(s, r, i, ko, vo);
      i++;
      if (s.keyType != KEY_INT64) ko += <usize>s.keyLen(r);
      if (s.kind == KIND_VALUE) vo += <usize>(load<u64>(s.p(s.valueCol, r)) >>> 32);
      store<u8>(fp, (f & ~F_DIRTY) | F_PERSISTED);
    } else {
      store<u8>(fp, 0);
    }
  }
  assert(<u32>i == load<u32>(rowAt + o + 4), 'capture page row count changed before its copy');
  assert(<u32>ko == load<u32>(keyAt + o + 4) && <u32>vo == load<u32>(valAt + o + 4), 'capture page key or value bytes changed before its copy');
  store<u8>(meta + <usize>pg, 1);
  s.capLeft--;
  if (s.capLeft == 0) endCapture(s);
}

function endCapture(s: Store): void {
  releaseTransient(s.capMeta, s.capMetaBytes);
  s.capMeta = 0;
  s.capMetaBytes = 0;
  s.capActive = false;
}

/** Copies up to `maxPages` more pages of the capture in progress. Returns the pages left. */
export function captureStep(s: Store, maxPages: i32): i32 {
  if (!s.capActive) return 0;
  let done = 0;
  while (s.capActive && s.capCursor < s.capPages && done < maxPages) {
    const pg = s.capCursor++;
    if (load<u8>(s.capMeta + <usize>pg) == 0) {
      capturePage(s, pg);
      done++;
    }
  }
  return s.capActive ? s.capLeft : 0;
}

/** Completes the capture in progress, if any: before anything that changes rows wholesale. */
export function finishCapture(s: Store): void {
  if (s.capActive) captureStep(s, i32.MAX_VALUE);
}

/**
 * Reads a snapshot at (ptr, len) into the store. Returns the rows applied, or E_BAD_SNAPSHOT.
 * Reads format 2 and format 1 (which also stored each key's hash and had no column padding).
 */
export function loadSnapshot(s: Store, ptr: usize, len: usize, kgMask: usize, keyGroups: i32): i32 {
  finishCapture(s);
  if (len < <usize>SNAP_HEADER_BYTES) return E_BAD_SNAPSHOT;
  const version = load<u16>(ptr, 4);
  if (load<u32>(ptr) != SNAP_MAGIC || (version != SNAP_VERSION && version != 1)) return E_BAD_SNAPSHOT;
  const v1 = version == 1;
  if (<i32>load<u8>(ptr, 8) != s.kind || <i32>load<u8>(ptr, 9) != s.keyType || <i32>load<u8>(ptr, 10) != s.win) return E_BAD_SNAPSHOT;
  if (<i32>load<u16>(ptr, 12) != s.nAggs || <i32>load<u16>(ptr, 14) != s.nFields) return E_BAD_SNAPSHOT;
  if (<i32>load<u32>(ptr, 24) != keyGroups) return E_BAD_SNAPSHOT;
  const n = <i32>load<u32>(ptr, 16);
  const tombs = <i32>load<u32>(ptr, 20);
  const keyBytes = <u64>load<u32>(ptr, 28);
  const valBytes = <u64>load<u32>(ptr, 32);
  const tombKeyBytes = <u64>load<u32>(ptr, 36);
  if (n < 0 || tombs < 0) return E_BAD_SNAPSHOT;
  if (s.keyType == KEY_INT64 && (keyBytes != 0 || tombKeyBytes != 0)) return E_BAD_SNAPSHOT;
  if (s.kind != KIND_VALUE && valBytes != 0) return E_BAD_SNAPSHOT;
  let total: u64;
  if (v1) {
    const fixed = <u64>fixedRowBytesV1(s);
    const tombFixed: u64 = 4 + (s.keyType == KEY_INT64 ? 8 : 4) + (s.hasNs() ? 8 : 0);
    total = <u64>SNAP_HEADER_BYTES + <u64>n * fixed + keyBytes + valBytes + <u64>tombs * tombFixed + tombKeyBytes;
  } else {
    total = <u64>SNAP_HEADER_BYTES + rowSectionBytes(s, <u64>n, keyBytes, valBytes) + tombSectionBytes(s, <u64>tombs, tombKeyBytes);
  }
  if (total != <u64>len) return E_BAD_SNAPSHOT;
  // Column offsets; format 2 aligns every part to 8 bytes (al), format 1 packs them.
  let p = ptr + <usize>SNAP_HEADER_BYTES;
  const hashP = p; if (v1) p += <usize>n << 2;
  const keyP = p;
  let keyDataP: usize = 0;
  if (s.keyType == KEY_INT64) p += <usize>n << 3;
  else {
    let sum: u64 = 0;
    for (let i = 0; i < n; i++) sum += <u64>load<u32>(keyP + (<usize>i << 2));
    if (sum != keyBytes) return E_BAD_SNAPSHOT;
    p += al(v1, <u64>n << 2);
    keyDataP = p;
    p += al(v1, keyBytes);
  }
  const nsP = p; if (s.hasNs()) p += <usize>n << 3;
  const flagP = p; p += al(v1, <u64>n);
  const cntP = p; p += <usize>n << 3;
  const fieldP = p; p += <usize>(n * s.nFields) << 3;
  const aggP = p;
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (needsVal(fn)) p += <usize>n << 3;
    if (needsTime(fn)) p += <usize>n << 3;
  }
  const maxTP = p; if (s.needsMaxTime()) p += <usize>n << 3;
  const startP = p; if (s.win == WIN_SESSION) p += <usize>n << 3;
  const vLenP = p;
  let vDataP: usize = 0;
  if (s.kind == KIND_VALUE) {
    let sum: u64 = 0;
    for (let i = 0; i < n; i++) sum += <u64>load<u32>(vLenP + (<usize>i << 2));
    if (sum != valBytes) return E_BAD_SNAPSHOT;
    p += al(v1, <u64>n << 2);
    vDataP = p;
    p += al(v1, valBytes);
  }
  const tHashP = p; if (v1) p += <usize>tombs << 2;
  const tKeyP = p;
  let tKeyDataP: usize = 0;
  if (s.keyType == KEY_INT64) p += <usize>tombs << 3;
  else {
    let sum: u64 = 0;
    for (let i = 0; i < tombs; i++) sum += <u64>load<u32>(tKeyP + (<usize>i << 2));
    if (sum != tombKeyBytes) return E_BAD_SNAPSHOT;
    p += al(v1, <u64>tombs << 2);
    tKeyDataP = p;
    p += al(v1, tombKeyBytes);
  }
  const tNsP = p;
  // Key-group hashes, computed (format 2) or stored and checked against the keys (format 1), and
  // flags, all validated before anything changes (a flipped bit must not become state).
  const hashes = allocTransient(<usize>max<i32>(n, max<i32>(tombs, 1)) << 2);
  let ko: usize = 0;
  for (let i = 0; i < n; i++) {
    let kh: u32;
    if (s.keyType == KEY_INT64) kh = hashI64Of(load<i64>(keyP + (<usize>i << 3)));
    else {
      const kl = load<u32>(keyP + (<usize>i << 2));
      kh = hashBytesOf(keyDataP + ko, <i32>kl);
      ko += <usize>kl;
    }
    if ((v1 && kh != load<u32>(hashP + (<usize>i << 2))) || (load<u8>(flagP + <usize>i) & ~F_CHANGED) != 0 || !nullCountsValid(s, cntP, fieldP, n, i)) {
      releaseTransient(hashes, <usize>max<i32>(n, max<i32>(tombs, 1)) << 2);
      return E_BAD_SNAPSHOT;
    }
    store<u32>(hashes + (<usize>i << 2), kh);
  }
  if (!v1 && !paddingIsZero(ptr, len, s, n, keyBytes, valBytes, tombs, tombKeyBytes)) {
    releaseTransient(hashes, <usize>max<i32>(n, max<i32>(tombs, 1)) << 2);
    return E_BAD_SNAPSHOT;
  }
  // Reserve for the worst case, then apply tombstones and rows.
  if (!s.reserve(n, <u32>keyBytes, <u32>valBytes)) {
    releaseTransient(hashes, <usize>max<i32>(n, max<i32>(tombs, 1)) << 2);
    return E_MEMORY_CAP;
  }
  ko = 0;
  for (let t = 0; t < tombs; t++) {
    const ns = s.hasNs() ? load<i64>(tNsP + (<usize>t << 3)) : 0;
    if (s.keyType == KEY_INT64) {
      const k = load<i64>(tKeyP + (<usize>t << 3));
      const h = hashI64Of(k);
      if (kgMask != 0 && load<u8>(kgMask + <usize>(h % <u32>keyGroups)) == 0) continue;
      deleteOne(s, k, 0, 0, ns);
    } else {
      const kl = <i32>load<u32>(tKeyP + (<usize>t << 2));
      const kp = tKeyDataP + ko;
      ko += <usize>kl;
      const h = hashBytesOf(kp, kl);
      if (kgMask != 0 && load<u8>(kgMask + <usize>(h % <u32>keyGroups)) == 0) continue;
      deleteOne(s, 0, kp, kl, ns);
    }
  }
  ko = 0;
  let vo: usize = 0;
  let applied = 0;
  for (let i = 0; i < n; i++) {
    const h = load<u32>(hashes + (<usize>i << 2));
    let keyI64: i64 = 0;
    let kp: usize = 0;
    let kl: i32 = 0;
    if (s.keyType == KEY_INT64) keyI64 = load<i64>(keyP + (<usize>i << 3));
    else {
      kl = <i32>load<u32>(keyP + (<usize>i << 2));
      kp = keyDataP + ko;
      ko += <usize>kl;
    }
    let vl: u32 = 0;
    if (s.kind == KIND_VALUE) vl = load<u32>(vLenP + (<usize>i << 2));
    const vp = vDataP + vo;
    vo += <usize>vl;
    if (kgMask != 0 && load<u8>(kgMask + <usize>(h % <u32>keyGroups)) == 0) continue;
    const ns = s.hasNs() ? load<i64>(nsP + (<usize>i << 3)) : 0;
    const row = upsertRow(s, keyI64, kp, kl, ns);
    const r8 = <usize>row * s.stride;
    const i8 = <usize>i << 3;
    store<i64>(s.cntCol + r8, load<i64>(cntP + i8));
    for (let f = 0; f < s.nFields; f++) {
      // Keep the row's flags byte (the top byte of the first null count, see NULLS_MASK); the
      // count itself was validated (nullCountsValid), so it has no bit there.
      const p = unchecked(s.nullCnt[f]) + r8;
      store<i64>(p, load<i64>(fieldP + (<usize>(f * n) << 3) + i8) | (load<i64>(p) & ~NULLS_MASK));
    }
    let ap = aggP;
    for (let a = 0; a < s.nAggs; a++) {
      const fn = unchecked(s.aggFn[a]);
      if (needsVal(fn)) { store<i64>(unchecked(s.aggVal[a]) + r8, load<i64>(ap + i8)); ap += <usize>n << 3; }
      if (needsTime(fn)) { store<i64>(unchecked(s.aggTime[a]) + r8, load<i64>(ap + i8)); ap += <usize>n << 3; }
    }
    if (s.needsMaxTime()) store<i64>(s.maxTimeCol + r8, load<i64>(maxTP + i8));
    if (s.win == WIN_SESSION) store<i64>(s.startCol + r8, load<i64>(startP + i8));
    if (s.kind == KIND_VALUE) {
      const old = load<u64>(s.valueCol + r8);
      s.valArena.garbageBytes += <u32>(old >>> 32);
      const off = s.valArena.append(vp, vl);
      store<u64>(s.valueCol + r8, (<u64>vl << 32) | <u64>off);
      s.addValBytes(row, <i32>vl - <i32>(old >>> 32));
    }
    const fp = s.p(s.flagCol, row);
    s.touch(row);
    // Loaded rows are as the checkpoint has them: CHANGED only if it was pending emission there.
    store<u8>(fp, (load<u8>(fp) & ~F_CHANGED) | load<u8>(flagP + <usize>i));
    applied++;
  }
  s.nextEventAt = i64.MIN_VALUE;
  releaseTransient(hashes, <usize>max<i32>(n, max<i32>(tombs, 1)) << 2);
  return applied;
}

/** Bytes of one row's fixed-width part in format 1 (everything but key and value bytes). */
function fixedRowBytesV1(s: Store): usize {
  let w: usize = 4 + 1 + 8; // hash, flags, count
  w += s.keyType == KEY_INT64 ? 8 : 4;
  if (s.hasNs()) w += 8;
  w += <usize>s.nFields * 8;
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (needsVal(fn)) w += 8;
    if (needsTime(fn)) w += 8;
  }
  if (s.needsMaxTime()) w += 8;
  if (s.win == WIN_SESSION) w += 8;
  if (s.kind == KIND_VALUE) w += 4;
  return w;
}

/** Length of a part in the format: 8-byte aligned in format 2, packed in format 1. */
@inline function al(v1: bool, x: u64): usize {
  return <usize>(v1 ? x : pad8(x));
}

/** Format 2: every alignment pad is zero, so each state has exactly one encoding. */
function paddingIsZero(ptr: usize, len: usize, s: Store, n: i32, kb: u64, vb: u64, tombs: i32, tkb: u64): bool {
  bindColumns(s, ptr, n, kb, vb);
  const nn = <u64>n;
  if (s.keyType != KEY_INT64) {
    if (!zeros(wKey + <usize>(nn << 2), pad8(nn << 2) - (nn << 2))) return false;
    if (!zeros(wKeyBytes + <usize>kb, pad8(kb) - kb)) return false;
  }
  if (!zeros(wFlag + <usize>nn, pad8(nn) - nn)) return false;
  if (s.kind == KIND_VALUE) {
    if (!zeros(wValLen + <usize>(nn << 2), pad8(nn << 2) - (nn << 2))) return false;
    if (!zeros(wValBytes + <usize>vb, pad8(vb) - vb)) return false;
  }
  if (s.keyType != KEY_INT64 && tombs > 0) {
    const t = <u64>tombs;
    if (!zeros(wEnd + <usize>(t << 2), pad8(t << 2) - (t << 2))) return false;
    if (!zeros(wEnd + <usize>pad8(t << 2) + <usize>tkb, pad8(tkb) - tkb)) return false;
  }
  return true;
}

@inline function zeros(p: usize, n: u64): bool {
  for (let i: usize = 0; i < <usize>n; i++) if (load<u8>(p + i) != 0) return false;
  return true;
}

import { hashI64, hashBytes } from './hash';
@inline function hashI64Of(k: i64): u32 { return hashI64(k); }
@inline function hashBytesOf(p: usize, l: i32): u32 { return hashBytes(p, l); }

function deleteOne(s: Store, keyI64: i64, kp: usize, kl: i32, ns: i64): void {
  const h = probeHashOf(s, keyI64, kp, kl);
  if (s.win != WIN_SESSION) {
    s.deleteKey(h, keyI64, kp, kl, ns);
    return;
  }
  const head = s.find(h, keyI64, kp, kl, 0);
  let r = head;
  while (r >= 0) {
    if (load<i64>(s.p(s.nsCol, r)) == ns) {
      removeSessionRow(s, r);
      return;
    }
    r = load<i32>(s.p(s.nextCol, r));
  }
}

import { removeSession } from './emit';
@inline function removeSessionRow(s: Store, r: i32): void { removeSession(s, r); }

/** Whether row i's null counts are possible: in [0, the row's count], so none reaches NULLS_MASK's top byte. */
function nullCountsValid(s: Store, cntP: usize, fieldP: usize, n: i32, i: i32): bool {
  const cnt = load<i64>(cntP + (<usize>i << 3));
  for (let f = 0; f < s.nFields; f++) {
    const nulls = load<i64>(fieldP + (<usize>(f * n + i) << 3));
    if (nulls < 0 || nulls > cnt || (nulls & ~NULLS_MASK) != 0) return false;
  }
  return true;
}

/** Finds or creates the row of (key, ns); for sessions, ns is the session id within the key's list. */
function upsertRow(s: Store, keyI64: i64, kp: usize, kl: i32, ns: i64): i32 {
  const h = probeHashOf(s, keyI64, kp, kl);
  if (s.win != WIN_SESSION) return s.findOrInsert(h, keyI64, kp, kl, ns);
  const head = s.find(h, keyI64, kp, kl, 0);
  let r = head;
  while (r >= 0) {
    if (load<i64>(s.p(s.nsCol, r)) == ns) return r;
    r = load<i32>(s.p(s.nextCol, r));
  }
  s.prepareInsert(kl);
  const row = s.newRow(keyI64, kp, kl, ns);
  if (head < 0) s.insertSlot(h, row);
  else {
    store<i32>(s.p(s.nextCol, row), head);
    s.repointSlot(head, row);
  }
  return row;
}

