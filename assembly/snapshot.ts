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
  Store, KEY_INT64, KIND_VALUE, WIN_SESSION, F_LIVE, F_DIRTY, F_CHANGED, F_PERSISTED, needsVal, needsTime,
} from './store';
import { allocTransient, growTransient, releaseTransient } from './mem';
import { E_MEMORY_CAP, E_BAD_SNAPSHOT, E_BAD_ARGUMENT } from './errors';

export const SNAP_MAGIC: u32 = 0x504e5343; // "CSNP"
export const SNAP_VERSION: u16 = 1;
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
  releaseTransient(s.snapPtr, s.snapCap);
  s.snapPtr = 0;
  s.snapCap = 0;
  s.snapLen = 0;
}

@inline function kgOf(h: u32, keyGroups: i32): u32 {
  return h % <u32>keyGroups;
}

/** Bytes of one row's fixed-width part (everything but key and value bytes). */
function fixedRowBytes(s: Store): usize {
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

/**
 * Captures a snapshot. mode: MODE_FULL, MODE_DELTA or MODE_EXTRACT (with kgMask, a u8 per key group).
 * Returns the byte length (read it at s.snapPtr), or an error code.
 */
export function captureSnapshot(s: Store, mode: i32, keyGroups: i32, kgMask: usize): i32 {
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
    if (mode == MODE_EXTRACT && load<u8>(kgMask + <usize>kgOf(load<u32>(s.p(s.hashCol, r)), keyGroups)) == 0) continue;
    store<i32>(idx + (<usize>n << 2), r);
    n++;
    if (s.keyType != KEY_INT64) keyBytes += <u64>s.keyLen(r);
    if (s.kind == KIND_VALUE) valBytes += load<u64>(s.p(s.valueCol, r)) >>> 32;
  }
  const tombs = mode == MODE_DELTA ? s.tombCount : 0;
  const tombKeyBytes: u64 = s.keyType == KEY_INT64 || mode != MODE_DELTA ? 0 : <u64>s.tombArena.usedBytes;
  const fixed = fixedRowBytes(s);
  const tombFixed: usize = 4 + (s.keyType == KEY_INT64 ? 8 : 4) + (s.hasNs() ? 8 : 0);
  const total: u64 = <u64>SNAP_HEADER_BYTES + <u64>n * <u64>fixed + keyBytes + valBytes + <u64>tombs * <u64>tombFixed + tombKeyBytes;
  if (total > 0x7fff_0000) {
    releaseTransient(idx, <usize>max<i32>(candN, 1) << 2);
    return E_MEMORY_CAP;
  }
  ensureSnap(s, <usize>total);
  let w = s.snapPtr;
  // Header.
  store<u32>(w, SNAP_MAGIC);
  store<u16>(w, SNAP_VERSION, 4);
  store<u16>(w, <u16>(mode == MODE_DELTA ? 0 : 1), 6);
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
  w += SNAP_HEADER_BYTES;
  // Row columns, all written in one pass over the rows: each row record is read once, and each
  // column is written sequentially.
  const int64 = s.keyType == KEY_INT64;
  const hashW = w;
  const keyW = hashW + (<usize>n << 2);
  let keyBytesW = keyW + (<usize>n << (int64 ? 3 : 2));
  const nsW = keyBytesW + (int64 ? 0 : <usize>keyBytes);
  const hasNs = s.hasNs();
  const flagW = nsW + (hasNs ? <usize>n << 3 : 0);
  const cntW = flagW + <usize>n;
  let colW = cntW + (<usize>n << 3);
  // The remaining i64/f64 columns, in format order: null counts, aggregate values and times,
  // max time, session start; as (row column pointer, output pointer) pairs.
  const nCols = s.nFields + 2 * s.nAggs + 2;
  const colSrc = allocTransient(<usize>nCols << 2);
  const colDst = allocTransient(<usize>nCols << 2);
  let c = 0;
  for (let f = 0; f < s.nFields; f++) { store<usize>(colSrc + (<usize>c << 2), unchecked(s.nullCnt[f])); store<usize>(colDst + (<usize>c << 2), colW); colW += <usize>n << 3; c++; }
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (needsVal(fn)) { store<usize>(colSrc + (<usize>c << 2), unchecked(s.aggVal[a])); store<usize>(colDst + (<usize>c << 2), colW); colW += <usize>n << 3; c++; }
    if (needsTime(fn)) { store<usize>(colSrc + (<usize>c << 2), unchecked(s.aggTime[a])); store<usize>(colDst + (<usize>c << 2), colW); colW += <usize>n << 3; c++; }
  }
  if (s.needsMaxTime()) { store<usize>(colSrc + (<usize>c << 2), s.maxTimeCol); store<usize>(colDst + (<usize>c << 2), colW); colW += <usize>n << 3; c++; }
  if (s.win == WIN_SESSION) { store<usize>(colSrc + (<usize>c << 2), s.startCol); store<usize>(colDst + (<usize>c << 2), colW); colW += <usize>n << 3; c++; }
  const valLenW = colW;
  let valBytesW = valLenW + (s.kind == KIND_VALUE ? <usize>n << 2 : 0);
  const stride = s.stride;
  for (let i = 0; i < n; i++) {
    const r = load<i32>(idx + (<usize>i << 2));
    const base = <usize>r * stride;
    store<u32>(hashW + (<usize>i << 2), load<u32>(s.hashCol + base));
    if (int64) {
      store<i64>(keyW + (<usize>i << 3), load<i64>(s.keyCol + base));
    } else {
      const kv = load<u64>(s.keyCol + base);
      const len = <usize>(kv >>> 32);
      store<u32>(keyW + (<usize>i << 2), <u32>len);
      memory.copy(keyBytesW, s.keyArena.base + <usize>(<u32>kv), len);
      keyBytesW += len;
    }
    if (hasNs) store<i64>(nsW + (<usize>i << 3), load<i64>(s.nsCol + base));
    store<u8>(flagW + <usize>i, load<u8>(s.flagCol + base) & F_CHANGED);
    store<i64>(cntW + (<usize>i << 3), load<i64>(s.cntCol + base));
    for (let k = 0; k < c; k++) {
      store<i64>(load<usize>(colDst + (<usize>k << 2)) + (<usize>i << 3), load<i64>(load<usize>(colSrc + (<usize>k << 2)) + base));
    }
    if (s.kind == KIND_VALUE) {
      const kv = load<u64>(s.valueCol + base);
      const len = <usize>(kv >>> 32);
      store<u32>(valLenW + (<usize>i << 2), <u32>len);
      memory.copy(valBytesW, s.valArena.base + <usize>(<u32>kv), len);
      valBytesW += len;
    }
  }
  releaseTransient(colSrc, <usize>nCols << 2);
  releaseTransient(colDst, <usize>nCols << 2);
  w = s.kind == KIND_VALUE ? valBytesW : valLenW;
  // Tombstones (delta only), in log order: deterministic for the same input.
  if (tombs > 0) {
    for (let t = 0; t < tombs; t++) store<u32>(w + (<usize>t << 2), load<u32>(s.tombHash + (<usize>t << 2)));
    w += <usize>tombs << 2;
    if (s.keyType == KEY_INT64) {
      memory.copy(w, s.tombKey, <usize>tombs << 3);
      w += <usize>tombs << 3;
    } else {
      for (let t = 0; t < tombs; t++) store<u32>(w + (<usize>t << 2), <u32>(load<u64>(s.tombKey + (<usize>t << 3)) >>> 32));
      w += <usize>tombs << 2;
      for (let t = 0; t < tombs; t++) {
        const kv = load<u64>(s.tombKey + (<usize>t << 3));
        const len = <usize>(kv >>> 32);
        memory.copy(w, s.tombArena.base + <usize>(<u32>kv), len);
        w += len;
      }
    }
    if (s.hasNs()) {
      memory.copy(w, s.tombNs, <usize>tombs << 3);
      w += <usize>tombs << 3;
    }
  }
  assert(<u64>(w - s.snapPtr) == total, 'snapshot length mismatch');
  s.snapLen = w - s.snapPtr;
  // Bookkeeping: what was captured is now persisted; the change log starts afresh.
  if (mode != MODE_EXTRACT) {
    if (mode == MODE_FULL) {
      for (let r = 0; r < s.hwm; r++) {
        const fp = s.p(s.flagCol, r);
        const f = load<u8>(fp);
        store<u8>(fp, (f & F_LIVE) != 0 ? (f & ~F_DIRTY) | F_PERSISTED : 0);
      }
    } else {
      for (let i = 0; i < s.dirtyCount; i++) {
        const r = load<i32>(s.dirtyList + (<usize>i << 2));
        const fp = s.p(s.flagCol, r);
        const f = load<u8>(fp);
        store<u8>(fp, (f & F_LIVE) != 0 ? (f & ~F_DIRTY) | F_PERSISTED : 0);
      }
    }
    s.dirtyCount = 0;
    s.tombCount = 0;
    s.tombArena.clear();
    s.trackChanges = true;
    s.forceFull = false;
  }
  releaseTransient(idx, <usize>max<i32>(candN, 1) << 2);
  return <i32>s.snapLen;
}

/** Reads a snapshot at (ptr, len) into the store. Returns the rows applied, or E_BAD_SNAPSHOT. */
export function loadSnapshot(s: Store, ptr: usize, len: usize, kgMask: usize, keyGroups: i32): i32 {
  if (len < <usize>SNAP_HEADER_BYTES) return E_BAD_SNAPSHOT;
  if (load<u32>(ptr) != SNAP_MAGIC || load<u16>(ptr, 4) != SNAP_VERSION) return E_BAD_SNAPSHOT;
  if (<i32>load<u8>(ptr, 8) != s.kind || <i32>load<u8>(ptr, 9) != s.keyType || <i32>load<u8>(ptr, 10) != s.win) return E_BAD_SNAPSHOT;
  if (<i32>load<u16>(ptr, 12) != s.nAggs || <i32>load<u16>(ptr, 14) != s.nFields) return E_BAD_SNAPSHOT;
  if (<i32>load<u32>(ptr, 24) != keyGroups) return E_BAD_SNAPSHOT;
  const n = <i32>load<u32>(ptr, 16);
  const tombs = <i32>load<u32>(ptr, 20);
  const keyBytes = <u64>load<u32>(ptr, 28);
  const valBytes = <u64>load<u32>(ptr, 32);
  const tombKeyBytes = <u64>load<u32>(ptr, 36);
  if (n < 0 || tombs < 0) return E_BAD_SNAPSHOT;
  const fixed = fixedRowBytes(s);
  const tombFixed: usize = 4 + (s.keyType == KEY_INT64 ? 8 : 4) + (s.hasNs() ? 8 : 0);
  const total: u64 = <u64>SNAP_HEADER_BYTES + <u64>n * <u64>fixed + keyBytes + valBytes + <u64>tombs * <u64>tombFixed + tombKeyBytes;
  if (total != <u64>len) return E_BAD_SNAPSHOT;
  if (s.keyType == KEY_INT64 && (keyBytes != 0 || tombKeyBytes != 0)) return E_BAD_SNAPSHOT;
  if (s.kind != KIND_VALUE && valBytes != 0) return E_BAD_SNAPSHOT;
  // Column offsets.
  let p = ptr + <usize>SNAP_HEADER_BYTES;
  const hashP = p; p += <usize>n << 2;
  const keyP = p;
  let keyDataP: usize = 0;
  if (s.keyType == KEY_INT64) p += <usize>n << 3;
  else {
    let sum: u64 = 0;
    for (let i = 0; i < n; i++) sum += <u64>load<u32>(keyP + (<usize>i << 2));
    if (sum != keyBytes) return E_BAD_SNAPSHOT;
    p += <usize>n << 2;
    keyDataP = p;
    p += <usize>keyBytes;
  }
  const nsP = p; if (s.hasNs()) p += <usize>n << 3;
  const flagP = p; p += <usize>n;
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
    p += <usize>n << 2;
    vDataP = p;
    p += <usize>valBytes;
  }
  const tHashP = p; p += <usize>tombs << 2;
  const tKeyP = p;
  let tKeyDataP: usize = 0;
  if (s.keyType == KEY_INT64) p += <usize>tombs << 3;
  else {
    let sum: u64 = 0;
    for (let i = 0; i < tombs; i++) sum += <u64>load<u32>(tKeyP + (<usize>i << 2));
    if (sum != tombKeyBytes) return E_BAD_SNAPSHOT;
    p += <usize>tombs << 2;
    tKeyDataP = p;
    p += <usize>tombKeyBytes;
  }
  const tNsP = p;
  // Validate hashes against keys before changing anything (a flipped bit must not become state).
  let ko: usize = 0;
  for (let i = 0; i < n; i++) {
    const h = load<u32>(hashP + (<usize>i << 2));
    let kh: u32;
    if (s.keyType == KEY_INT64) kh = hashI64Of(load<i64>(keyP + (<usize>i << 3)));
    else {
      const kl = load<u32>(keyP + (<usize>i << 2));
      kh = hashBytesOf(keyDataP + ko, <i32>kl);
      ko += <usize>kl;
    }
    if (kh != h) return E_BAD_SNAPSHOT;
    if (load<u8>(flagP + <usize>i) & ~F_CHANGED) return E_BAD_SNAPSHOT;
  }
  // Reserve for the worst case, then apply tombstones and rows.
  if (!s.reserve(n, <u32>keyBytes, <u32>valBytes)) return E_MEMORY_CAP;
  ko = 0;
  for (let t = 0; t < tombs; t++) {
    const h = load<u32>(tHashP + (<usize>t << 2));
    if (kgMask != 0 && load<u8>(kgMask + <usize>(h % <u32>keyGroups)) == 0) {
      if (s.keyType != KEY_INT64) ko += <usize>load<u32>(tKeyP + (<usize>t << 2));
      continue;
    }
    const ns = s.hasNs() ? load<i64>(tNsP + (<usize>t << 3)) : 0;
    if (s.keyType == KEY_INT64) {
      deleteOne(s, h, load<i64>(tKeyP + (<usize>t << 3)), 0, 0, ns);
    } else {
      const kl = <i32>load<u32>(tKeyP + (<usize>t << 2));
      deleteOne(s, h, 0, tKeyDataP + ko, kl, ns);
      ko += <usize>kl;
    }
  }
  ko = 0;
  let vo: usize = 0;
  let applied = 0;
  for (let i = 0; i < n; i++) {
    const h = load<u32>(hashP + (<usize>i << 2));
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
    const row = upsertRow(s, h, keyI64, kp, kl, ns);
    const r8 = <usize>row * s.stride;
    const i8 = <usize>i << 3;
    store<i64>(s.cntCol + r8, load<i64>(cntP + i8));
    for (let f = 0; f < s.nFields; f++) {
      store<i64>(unchecked(s.nullCnt[f]) + r8, load<i64>(fieldP + (<usize>(f * n) << 3) + i8));
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
    }
    const fp = s.p(s.flagCol, row);
    s.touch(row);
    // Loaded rows are as the checkpoint has them: CHANGED only if it was pending emission there.
    store<u8>(fp, (load<u8>(fp) & ~F_CHANGED) | load<u8>(flagP + <usize>i));
    applied++;
  }
  s.nextEventAt = i64.MIN_VALUE;
  return applied;
}

import { hashI64, hashBytes, probeHashI64 } from './hash';
@inline function hashI64Of(k: i64): u32 { return hashI64(k); }
@inline function hashBytesOf(p: usize, l: i32): u32 { return hashBytes(p, l); }

function deleteOne(s: Store, kh: u32, keyI64: i64, kp: usize, kl: i32, ns: i64): void {
  const h = s.keyType == KEY_INT64 ? probeHashI64(keyI64) : kh;
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

/** Finds or creates the row of (key, ns); for sessions, ns is the session id within the key's list. */
function upsertRow(s: Store, kh: u32, keyI64: i64, kp: usize, kl: i32, ns: i64): i32 {
  const h = s.keyType == KEY_INT64 ? probeHashI64(keyI64) : kh;
  if (s.win != WIN_SESSION) return s.findOrInsert(h, keyI64, kp, kl, ns);
  const head = s.find(h, keyI64, kp, kl, 0);
  let r = head;
  while (r >= 0) {
    if (load<i64>(s.p(s.nsCol, r)) == ns) return r;
    r = load<i32>(s.p(s.nextCol, r));
  }
  s.prepareInsert(kl);
  const row = s.newRow(kh, keyI64, kp, kl, ns);
  if (head < 0) s.insertSlot(h, row);
  else {
    store<i32>(s.p(s.nextCol, row), head);
    s.repointSlot(head, row);
  }
  return row;
}

