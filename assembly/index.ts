// The Wasm module's exported surface: a flat, handle-based C-style API. bindings/ is its only
// caller. Strings never cross the boundary; keys and values travel as bytes in the scratch arena.
import {
  Store, KIND_VALUE, KIND_AGG, KEY_INT64, KEY_UTF8, WIN_NONE, WIN_PANES, WIN_SESSION, FN_LAST, AGGS_MAX,
  F_LIVE, SLOT_BYTES, probeHashOf, bytesEqual, clampWatermark, WATERMARK_ABS_MAX,
} from './store';
import { ingestBatch } from './ingest';
import { advance } from './emit';
import { out } from './out';
import { accFor } from './emit';
import { captureSnapshot, captureBegin, captureStep, finishCapture, loadSnapshot, snapshotRelease } from './snapshot';
import { compareKeys, radixByI64, sortByUtf8Key } from './sort';
import { allocTransient, growTransient, releaseTransient, memUsedBytes, memCapBytes, transientBytes, setMemCap as setCap, setBlockMax as setBlock, blockBytesMax } from './mem';
import { E_BAD_HANDLE, E_BAD_ARGUMENT, E_MEMORY_CAP, E_WRONG_KIND } from './errors';
import { hashBytes, hashI64, probeHashBytes, probeHashI64 } from './hash';

export const STORES_MAX: i32 = 4096;
const stores = new StaticArray<Store | null>(STORES_MAX);

function get(h: i32): Store | null {
  if (h < 0 || h >= STORES_MAX) return null;
  return unchecked(stores[h]);
}

// ---- scratch arena -------------------------------------------------------------------------

let scratchPtr: usize = 0;
let scratchCap: usize = 0;

/** Returns a scratch buffer of at least `bytes` bytes (0 on cap). Contents are not preserved. */
export function scratch(bytes: usize): usize {
  if (bytes <= scratchCap) return scratchPtr;
  let next = max<usize>(scratchCap, 1 << 16);
  while (next < bytes) next <<= 1;
  releaseTransient(scratchPtr, scratchCap);
  scratchPtr = 0;
  scratchCap = 0;
  const p = allocTransient(next);
  if (p == 0) return 0;
  scratchPtr = p;
  scratchCap = next;
  return p;
}

// ---- lifecycle ---------------------------------------------------------------------------------

/**
 * Opens a store. aggSpec points at nAggs pairs of i32 (fn, field index or -1). Returns a handle.
 * win: 0 none, 1 panes (tumbling when size == slide, else hopping), 2 session.
 */
export function storeOpen(kind: i32, keyType: i32, win: i32, size: i64, slide: i64, gap: i64, lateness: i64,
                          ttl: i64, eventTime: i32, nAggs: i32, nFields: i32, aggSpec: usize): i32 {
  if (kind != KIND_AGG && kind != KIND_VALUE) return E_BAD_ARGUMENT;
  if (keyType != KEY_INT64 && keyType != KEY_UTF8) return E_BAD_ARGUMENT;
  if (win != WIN_NONE && win != WIN_PANES && win != WIN_SESSION) return E_BAD_ARGUMENT;
  if (nAggs < 0 || nAggs > AGGS_MAX || nFields < 0 || nFields > AGGS_MAX) return E_BAD_ARGUMENT;
  if (win == WIN_PANES && (slide <= 0 || size <= 0 || size % slide != 0)) return E_BAD_ARGUMENT;
  if (win == WIN_SESSION && gap <= 0) return E_BAD_ARGUMENT;
  if (lateness < 0 || ttl < 0) return E_BAD_ARGUMENT;
  let h = -1;
  for (let i = 0; i < STORES_MAX; i++) {
    if (unchecked(stores[i]) == null) { h = i; break; }
  }
  if (h < 0) return E_BAD_ARGUMENT;
  const s = new Store(kind, keyType, win, nAggs, nFields);
  s.size = size;
  s.slide = slide;
  s.gap = gap;
  s.lateness = lateness;
  s.ttl = win == WIN_NONE ? ttl : 0;
  s.eventTime = eventTime != 0;
  for (let a = 0; a < nAggs; a++) {
    const fn = load<i32>(aggSpec + (<usize>a << 3));
    const field = load<i32>(aggSpec + (<usize>a << 3), 4);
    if (fn < 0 || fn > FN_LAST) return E_BAD_ARGUMENT;
    if (field < -1 || field >= nFields || (fn != 0 && field < 0)) return E_BAD_ARGUMENT;
    unchecked(s.aggFn[a] = fn);
    unchecked(s.aggField[a] = field);
  }
  if (!s.reserve(0, 0, 0) || !s.growIndex(0)) return E_MEMORY_CAP;
  unchecked(stores[h] = s);
  return h;
}

export function storeClose(h: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  dropHop(s);
  s.free();
  unchecked(stores[h] = null);
  return 0;
}

// ---- aggregates -------------------------------------------------------------------------------

/**
 * Checks and converts n event times at ptr from f64 to i64 in place: each must be an integer within
 * ±2^53 (NaN fails the integer test, infinities the range test). Returns -1 when every time passed
 * (and is converted), else the index of the first that failed (times before its block may have
 * been converted already; the caller rejects the whole batch, whose scratch copy this is).
 */
export function timesToI64(ptr: usize, n: i32): i32 {
  // Block by block (in L1 between the check and the conversion): check two times per SIMD step,
  // then convert; a block that fails is scanned for its first bad row before anything of it moved.
  const lim = f64x2.splat(9007199254740992.0);
  // Below 2^51 in magnitude (every time after 1970 for 71,000 years) a time converts two at a
  // time: x + 1.5 * 2^52 holds x in the low bits of its mantissa, so subtracting the constant's
  // bit pattern leaves x as an i64 (exact for integers). Larger ones convert one at a time.
  const small = f64x2.splat(2251799813685248.0);
  const magic = f64x2.splat(6755399441055744.0);
  const magicBits = i64x2.splat(0x4338000000000000);
  for (let b = 0; b < n; b += TIME_BLOCK) {
    const e = min<i32>(b + TIME_BLOCK, n);
    const e2 = b + ((e - b) & ~1);
    let ok = i64x2.splat(-1);
    let fits = i64x2.splat(-1);
    for (let i = b; i < e2; i += 2) {
      const v = v128.load(ptr + (<usize>i << 3));
      const a = f64x2.abs(v);
      ok = v128.and(ok, v128.and(f64x2.eq(f64x2.floor(v), v), f64x2.le(a, lim)));
      fits = v128.and(fits, f64x2.lt(a, small));
    }
    let good = v128.all_true<i64>(ok);
    if (e2 < e) {
      const v = load<f64>(ptr + (<usize>e2 << 3));
      good = good && Math.floor(v) == v && Math.abs(v) <= 9007199254740992.0;
    }
    if (!good) {
      for (let i = b; i < e; i++) {
        const v = load<f64>(ptr + (<usize>i << 3));
        if (!(Math.floor(v) == v && Math.abs(v) <= 9007199254740992.0)) return i;
      }
    }
    let i = b;
    if (v128.all_true<i64>(fits)) {
      for (; i < e2; i += 2) {
        const p = ptr + (<usize>i << 3);
        v128.store(p, i64x2.sub(f64x2.add(v128.load(p), magic), magicBits));
      }
    }
    for (; i < e; i++) {
      const p = ptr + (<usize>i << 3);
      store<i64>(p, <i64>load<f64>(p));
    }
  }
  return -1;
}

/** Times per block of timesToI64 (16 KiB: the check and the conversion share L1). */
const TIME_BLOCK: i32 = 2048;

export function ingest(h: i32, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, valTable: usize, seqBase: i64): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.kind != KIND_AGG) return E_WRONG_KIND;
  if (n < 0) return E_BAD_ARGUMENT;
  // Session merges rewrite rows and links wholesale: complete a capture in progress first.
  if (s.win == WIN_SESSION) finishCapture(s);
  const r = ingestBatch(s, n, keyPtr, keyBytesPtr, timePtr, valTable, seqBase);
  if (r >= 0) s.maybeCompact();
  return r;
}

/**
 * 1 when ingest of `n` events with `keyBytes` key bytes would pass its capacity check now, 0 when
 * it would be refused (E_MEMORY_CAP). Changes nothing.
 */
export function ingestFits(h: i32, n: i32, keyBytes: u32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.kind != KIND_AGG) return E_WRONG_KIND;
  if (n < 0) return E_BAD_ARGUMENT;
  return s.fitsWorstCase(n, keyBytes, 0) ? 1 : 0;
}

/**
 * The state bytes ingest of `n` events with `keyBytes` key bytes may take in the worst case (the
 * bytes ingestFits checks against the cap), as f64; Infinity past a row limit, -1 for a bad handle
 * or a store that takes no batches.
 */
export function ingestWorstBytes(h: i32, n: i32, keyBytes: u32): f64 {
  const s = get(h);
  if (s == null || s.kind != KIND_AGG || n < 0) return -1;
  const extra = s.worstCaseExtra(n, keyBytes, 0);
  return extra == u64.MAX_VALUE ? Infinity : <f64>extra;
}

export function advanceWatermark(h: i32, t: i64): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.win == WIN_SESSION) finishCapture(s);
  const r = advance(s, t);
  if (r >= 0) s.maybeCompact();
  return r;
}

export function watermark(h: i32): i64 {
  const s = get(h);
  return s == null ? 0 : s.watermark;
}

export function setWatermark(h: i32, w: i64): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  // As advance() keeps it (see WATERMARK_ABS_MAX): below every window means no watermark yet.
  s.watermark = w < -WATERMARK_ABS_MAX ? i64.MIN_VALUE : clampWatermark(w);
  s.nextEventAt = i64.MIN_VALUE;
  invalidateHop(s);
  return 0;
}

export function lateEvents(h: i32): i64 {
  const s = get(h);
  return s == null ? 0 : s.lateEvents;
}

export function setLateEvents(h: i32, n: i64): void {
  const s = get(h);
  if (s != null) s.lateEvents = n;
}

/** Writes the row of `key` (ns 0) into `out` (1 row) and returns 1, or 0 when absent. */
export function getRow(h: i32, keyI64: i64, ptr: usize, len: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.kind != KIND_AGG || s.win != WIN_NONE) return E_WRONG_KIND;
  const row = s.find(probeHashOf(s, keyI64, ptr, len), keyI64, ptr, len, 0);
  if (!out.prepare(1, s.nAggs, <u32>max<i32>(len, 0))) return E_MEMORY_CAP;
  if (row < 0) return 0;
  const acc = accFor(s.nFields, s.nAggs);
  acc.fromRow(s, row);
  out.push(s, row, 0, 0, acc);
  return 1;
}

let exportIdx: usize = 0;
let exportCap: i32 = 0;
let exportStore: Store | null = null;

function cmpExport(a: i32, b: i32): i32 {
  const s = changetype<Store>(exportStore);
  const c = compareKeys(s, a, b);
  if (c != 0) return c;
  const x = s.rowNs(a);
  const y = s.rowNs(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Writes every live row into `out`, ordered by (key, ns). For windowed stores start/end are the
 * pane or session bounds. Returns the row count.
 */
export function exportRows(h: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.kind != KIND_AGG) return E_WRONG_KIND;
  const n = s.liveRows;
  if (n > exportCap) {
    const p = growTransient(exportIdx, <usize>exportCap << 2, <usize>n << 2);
    if (p == 0) return E_MEMORY_CAP;
    exportIdx = p;
    exportCap = n;
  }
  let m = 0;
  let keyBytes: u64 = 0;
  for (let r = 0; r < s.hwm; r++) {
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    store<i32>(exportIdx + (<usize>m << 2), r);
    m++;
    if (s.keyType == KEY_UTF8) keyBytes += <u64>s.keyLen(r);
  }
  if (keyBytes > <u64>blockBytesMax || !out.prepare(m, s.nAggs, <u32>keyBytes)) return E_MEMORY_CAP;
  // Ordered by (key, ns): radix passes over int64 keys; utf8 keys by sortByUtf8Key.
  const span = <usize>max<i32>(s.hwm, 1) << 3;
  const ns = s.hasNs() ? allocTransient(span) : 0;
  if (ns != 0) for (let i = 0; i < m; i++) {
    const r = load<i32>(exportIdx + (<usize>i << 2));
    store<i64>(ns + (<usize>r << 3), s.rowNs(r));
  }
  if (s.keyType == KEY_INT64) {
    const ks = allocTransient(span);
    for (let i = 0; i < m; i++) {
      const r = load<i32>(exportIdx + (<usize>i << 2));
      store<i64>(ks + (<usize>r << 3), load<i64>(s.p(s.keyCol, r)));
    }
    if (ns != 0) radixByI64(exportIdx, m, ns);
    radixByI64(exportIdx, m, ks);
    releaseTransient(ks, span);
  } else {
    exportStore = s;
    sortByUtf8Key(s, exportIdx, m, max<i32>(s.hwm, 1), 0, 0, ns, cmpExport);
    exportStore = null;
  }
  if (ns != 0) releaseTransient(ns, span);
  const acc = accFor(s.nFields, s.nAggs);
  for (let i = 0; i < m; i++) {
    const r = load<i32>(exportIdx + (<usize>i << 2));
    acc.fromRow(s, r);
    let start: i64 = 0;
    let end: i64 = 0;
    if (s.win == WIN_PANES) { start = s.rowNs(r); end = start + s.slide; }
    else if (s.win == WIN_SESSION) {
      start = load<i64>(s.p(s.startCol, r));
      end = load<i64>(s.p(s.maxTimeCol, r)) + s.gap;
    }
    out.push(s, r, start, end, acc);
  }
  return m;
}

/** Deletes a key (all of its windows for windowed stores). Returns 1 when something was removed. */
export function deleteKey(h: i32, keyI64: i64, ptr: usize, len: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.win == WIN_SESSION) finishCapture(s);
  if (s.win != WIN_PANES) return s.deleteKey(probeHashOf(s, keyI64, ptr, len), keyI64, ptr, len, 0);
  invalidateHop(s);
  // Panes: remove every pane row of the key.
  let removed = 0;
  for (let r = 0; r < s.hwm; r++) {
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    const same = s.keyType == KEY_INT64 ? s.keyEqI64(r, keyI64) : s.keyEqBytes(r, ptr, len);
    if (!same) continue;
    s.unindex(r);
    s.freeRow(r);
    removed = 1;
  }
  return removed;
}

// ---- value state -------------------------------------------------------------------------------

export function valuePut(h: i32, keyI64: i64, ptr: usize, len: i32, valPtr: usize, valLen: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.kind != KIND_VALUE) return E_WRONG_KIND;
  if (valLen < 0 || len < 0) return E_BAD_ARGUMENT;
  if (!s.reserve(1, <u32>len, <u32>valLen)) return E_MEMORY_CAP;
  const row = s.findOrInsert(probeHashOf(s, keyI64, ptr, len), keyI64, ptr, len, 0);
  s.cow(row);
  const vp = s.p(s.valueCol, row);
  const oldLen = <i32>(load<u64>(vp) >>> 32);
  s.valArena.garbageBytes += <u32>oldLen;
  const off = s.valArena.append(valPtr, <u32>valLen);
  store<u64>(vp, (<u64>valLen << 32) | <u64>off);
  s.addValBytes(row, valLen - oldLen);
  s.touch(row);
  s.maybeCompact();
  return 0;
}

let valueOutPtr: usize = 0;

/** Returns the value length (bytes at valueOut()), or -1 when absent. */
export function valueGet(h: i32, keyI64: i64, ptr: usize, len: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  if (s.kind != KIND_VALUE) return E_WRONG_KIND;
  const row = s.find(probeHashOf(s, keyI64, ptr, len), keyI64, ptr, len, 0);
  if (row < 0) return -1;
  const kv = load<u64>(s.p(s.valueCol, row));
  valueOutPtr = s.valArena.base + <usize>(<u32>kv);
  return <i32>(kv >>> 32);
}

export function valueOut(): usize {
  return valueOutPtr;
}

// ---- output buffer -----------------------------------------------------------------------------

export function outCount(): i32 { return out.count; }
export function outKey(): usize { return out.key; }
export function outKeyBytes(): usize { return out.keyBytes.base; }
export function outStart(): usize { return out.start; }
export function outEnd(): usize { return out.end; }
export function outVals(a: i32): usize { return load<usize>(out.vals + (<usize>a << 2)); }
export function outValid(a: i32): usize { return load<usize>(out.valid + (<usize>a << 2)); }

// ---- snapshots ---------------------------------------------------------------------------------

export function snapshotCapture(h: i32, mode: i32, keyGroups: i32, kgMask: usize): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  return captureSnapshot(s, mode, keyGroups, kgMask);
}

/**
 * Starts a full capture (the cut) without copying rows; returns its byte length. Rows are copied by
 * snapshotStep, or by the first change of their page; snapshotPtr completes it.
 */
export function snapshotBegin(h: i32, keyGroups: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  return captureBegin(s, keyGroups);
}

/** Copies up to maxPages more pages of the capture in progress; returns the pages left (0: done). */
export function snapshotStep(h: i32, maxPages: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  return captureStep(s, maxPages);
}

/** Address of the store's held capture, complete (valid until snapshotFree or the next capture). */
export function snapshotPtr(h: i32): usize {
  const s = get(h);
  if (s == null) return 0;
  finishCapture(s);
  return s.snapPtr;
}

export function snapshotLen(h: i32): usize {
  const s = get(h);
  return s == null ? 0 : s.snapLen;
}

export function snapshotFree(h: i32): void {
  const s = get(h);
  if (s != null) snapshotRelease(s);
}

export function snapshotLoad(h: i32, ptr: usize, len: usize, kgMask: usize, keyGroups: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  invalidateHop(s);
  return loadSnapshot(s, ptr, len, kgMask, keyGroups);
}

export function forceFull(h: i32): void {
  const s = get(h);
  if (s != null) s.forceFull = true;
}

/** Removes every row of the masked key groups without tombstones (they moved to another shard). */
export function dropKeyGroups(h: i32, kgMask: usize, keyGroups: i32): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  finishCapture(s);
  invalidateHop(s);
  let n = 0;
  const track = s.trackChanges;
  s.trackChanges = false;
  for (let r = 0; r < s.hwm; r++) {
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    const kg = s.rowKeyGroupHash(r) % <u32>keyGroups;
    if (load<u8>(kgMask + <usize>kg) == 0) continue;
    if (s.win == WIN_SESSION) removeSessionAny(s, r);
    else { s.unindex(r); s.freeRow(r); }
    n++;
  }
  s.trackChanges = track;
  s.forceFull = true;
  return n;
}

import { removeSession } from './emit';
import { invalidate as invalidateHop, dropHop, setHopEnabled, hopServed } from './hop';
function removeSessionAny(s: Store, r: i32): void { removeSession(s, r); }

// ---- metrics -----------------------------------------------------------------------------------

/**
 * Per key group: live rows (u32 at outRows) and the state bytes they hold (f64 at outBytes): each
 * row's record and chain links, its share of the whole index (every slot, used or not, over the
 * live rows), and its own key and value bytes. Row capacity not in use and arena slack are not
 * attributed.
 */
export function keyGroupStats(h: i32, keyGroups: i32, outRows: usize, outBytes: usize): i32 {
  const s = get(h);
  if (s == null) return E_BAD_HANDLE;
  memory.fill(outRows, 0, <usize>keyGroups << 2);
  memory.fill(outBytes, 0, <usize>keyGroups << 3);
  const live = s.liveRows;
  const perRow = <f64>(<usize>s.stride + s.rowExtraBytes()) + (live > 0 ? <f64>s.slotCap * <f64>SLOT_BYTES / <f64>live : 0);
  const utf8 = s.keyType != KEY_INT64;
  for (let r = 0; r < s.hwm; r++) {
    if ((load<u8>(s.p(s.flagCol, r)) & F_LIVE) == 0) continue;
    const kg = <usize>(s.rowKeyGroupHash(r) % <u32>keyGroups);
    store<u32>(outRows + (kg << 2), load<u32>(outRows + (kg << 2)) + 1);
    let bytes = perRow;
    if (utf8) bytes += <f64>s.keyLen(r);
    if (s.valueCol != 0) bytes += <f64>(load<u64>(s.p(s.valueCol, r)) >>> 32);
    store<f64>(outBytes + (kg << 3), load<f64>(outBytes + (kg << 3)) + bytes);
  }
  return 0;
}

export function liveRows(h: i32): i32 {
  const s = get(h);
  return s == null ? E_BAD_HANDLE : s.liveRows;
}

export function memUsed(): usize { return memUsedBytes; }
export function memCap(): usize { return memCapBytes; }
/** Test hooks: turn the hopping index on or off; emissions it served so far. */
export function hopIndexEnable(on: i32): void { setHopEnabled(on != 0); }
export function hopIndexServed(): i64 { return hopServed; }
export function memTransient(): usize { return transientBytes; }
export function setMemCap(bytes: usize): void { setCap(bytes); }
/** Test hook: lowers the largest buffer a store may allocate (mem.ts blockBytesMax), never above 1 GiB. */
export function setBlockMax(bytes: usize): void { setBlock(bytes); }

// ---- hashing and routing -----------------------------------------------------------------------

export function hashKeyI64(k: i64): u32 { return hashI64(k); }
/** The index probe hash of int64 keys (internal to a store; exported so tests can build collisions). */
export function hashProbeI64(k: i64): u32 { return probeHashI64(k); }
export function hashKeyBytes(ptr: usize, len: i32): u32 { return hashBytes(ptr, len); }
/** The index probe hash of utf8 keys (internal to a store; exported so tests can build collisions). */
export function hashProbeBytes(ptr: usize, len: i32): u32 { return probeHashBytes(ptr, len); }
/** The stores' key equality on bytes, 1 or 0 (exported so tests can check every length). */
export function keyBytesEqual(a: usize, b: usize, len: i32): i32 { return bytesEqual(a, b, len) ? 1 : 0; }

export { partition, filterOwned } from './route';

export { mergeOrder, gather64, gather8, gatherUtf8 } from './merge';
