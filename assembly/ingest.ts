// Batch ingest: resolve every event's row first, then run one tight loop per aggregate over the
// batch. Inputs are raw columns the TypeScript side copied into the scratch arena:
//   keys   int64: i64[n]; utf8: u32 offsets[n + 1] into a byte buffer
//   times  i64[n] (0 when the operator has no time field)
//   values a table of nFields pointers, each to f64[n]; NaN means null
// All checks on user input happen in TypeScript before the call; capacity is reserved before any
// row is touched, so a batch either applies whole or (E_MEMORY_CAP) not at all.
import {
  SCRATCH_EVENTS, Store, SLOT_BYTES, bytesEqual, F_DIRTY, F_CHANGED, KEY_INT64, KIND_AGG, WIN_NONE, WIN_PANES, WIN_SESSION, FN_COUNT, FN_SUM, FN_MIN, FN_MAX, FN_MEAN, FN_FIRST,
  FN_LAST, floorDiv, probeHashOf, needsTime,
} from './store';
import { combineRows } from './combine';
import { probeHashBytes, probeHashI64, nsMix, hashWithMix } from './hash';
import { E_MEMORY_CAP } from './errors';

/** Returns the number of accepted events, or E_MEMORY_CAP. */
export function ingestBatch(s: Store, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, valTable: usize, seqBase: i64): i32 {
  let keyBytes: u32 = 0;
  if (s.keyType != KEY_INT64) keyBytes = load<u32>(keyPtr + (<usize>n << 2)) - load<u32>(keyPtr);
  // The per-event scratch (Store.reserve) holds SCRATCH_EVENTS entries: one block.
  assert(BLOCK_EVENTS <= SCRATCH_EVENTS, 'ingest block larger than its scratch');
  if (!s.reserve(n, keyBytes, 0)) return E_MEMORY_CAP;
  bindValues(s, valTable);
  if (s.win == WIN_SESSION) return ingestSessions(s, n, keyPtr, keyBytesPtr, timePtr, seqBase);

  // Blocks of BLOCK_EVENTS: resolve the rows of a block, then apply it one aggregate at a time.
  // The block's row records stay in L1/L2 between the two steps, and each step is a tight loop.
  // Late events (every window containing them is already purged) are counted and get row -1.
  let accepted = 0;
  const panes = s.win == WIN_PANES;
  const slide = s.slide;
  const ttl = s.ttl;
  const int64 = s.keyType == KEY_INT64;
  const stride = <usize>s.stride;
  // Tables larger than the L2 cache get the slot-touching pass of step 2; small ones skip it.
  const large = <usize>s.slotCap * SLOT_BYTES + <usize>s.capRows * stride > L2_BYTES;
  // Consecutive events mostly share a pane: ingestBlock reuses the last pane (and, for tumbling
  // stores, its part of the index hash) instead of an i64 division and two hash mixes.
  gLastPane = i64.MIN_VALUE;
  gLastMix = nsMix(gLastPane);
  gLate = 0;
  gBehind = 0;
  gMinPane = i64.MAX_VALUE;
  // Tumbling stores index (key, pane); hopping stores index keys and chain panes (Store.byNs).
  const byNs = s.byNs();
  const fusable = s.win == WIN_NONE && fusedPlanOnly(s);
  for (let b = 0; b < n; b += BLOCK_EVENTS) {
    const e = min<i32>(b + BLOCK_EVENTS, n);
    // Tables up to a few times L2 take one pass per event (FUSED_MAX_BYTES): the passes below
    // exist to overlap cache misses, and with few to overlap they only add stores and loads of
    // rows and hashes. Checked per block, as a cold batch grows the table.
    // Not before the store has rows: the fused loop takes field offsets from the column pointers,
    // which exist only once the row buffer does (a fresh store's first block takes the blocked path).
    if (fusable && s.rows != 0 && <usize>s.slotCap * SLOT_BYTES + <usize>s.capRows * stride + (int64 ? 0 : <usize>s.keyArena.usedBytes) <= FUSED_MAX_BYTES) {
      accepted += fusedBlock(s, b, e, keyPtr, keyBytesPtr, s.trackChanges || s.capActive);
      continue;
    }
    const hasTime = timePtr != 0;
    const ttlOn = ttl > 0;
    // The usual window plans get copies of the block's loops with their flags as constants (after
    // inlining the optimizer drops those tests from the loops).
    if (hasTime && !ttlOn && panes && int64 && large) {
      accepted += byNs
        ? ingestBlock(s, b, e, keyPtr, keyBytesPtr, timePtr, seqBase, true, false, true, true, true, true)
        : ingestBlock(s, b, e, keyPtr, keyBytesPtr, timePtr, seqBase, true, false, true, true, false, true);
    } else if (!ttlOn && !panes && int64 && large && s.win == WIN_NONE) {
      // Running aggregates of int64 keys beyond L2 (step 1 reads times only for panes and TTL;
      // first and last read them in applyBlock). Measured warm, 2M events, alternating runs: 1M
      // keys 64.5-66.6 to 59.5-61.2 ms; at 100K keys the runs spread too widely to tell (24-39 ms).
      accepted += ingestBlock(s, b, e, keyPtr, keyBytesPtr, timePtr, seqBase, false, false, false, true, false, true);
    } else {
      accepted += ingestBlock(s, b, e, keyPtr, keyBytesPtr, timePtr, seqBase, hasTime, ttlOn, panes, int64, byNs, large);
    }
  }
  const minPane = gMinPane;
  if (panes && minPane != i64.MAX_VALUE && minPane + slide < s.nextEventAt) s.nextEventAt = minPane + slide;
  s.lateEvents += gLate;
  s.hopBehind += gBehind;
  return accepted;
}

// ingestBlock's running state, kept across the blocks of one ingestBatch call.
let gLastPane: i64 = 0;
let gLastMix: u32 = 0;
let gLate: i64 = 0;
let gBehind: i64 = 0;
let gMinPane: i64 = 0;

/**
 * The blocked path for events [b, e) (see ingestBatch): windows, late events and hashes; the slot
 * reads; the probes; the row reads; the flags; then applyBlock. Returns the events accepted. The
 * flags are the store's (hasTime: a time column; ttlOn: s.ttl > 0; panes: WIN_PANES; int64 keys;
 * byNs: tumbling; large: beyond L2), passed so that callers can give constants.
 */
@inline function ingestBlock(s: Store, b: i32, e: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, seqBase: i64,
  hasTime: bool, ttlOn: bool, panes: bool, int64: bool, byNs: bool, large: bool): i32 {
  const W = s.watermark;
  const slide = s.slide;
  const horizon = s.size + s.lateness;
  const ttl = s.ttl;
  const stride = <usize>s.stride;
  let lastPane = gLastPane;
  let lastMix = gLastMix;
  let late = gLate;
  let behind = gBehind;
  let minPane = gMinPane;
  let accepted = 0;
  let slots = s.slots;
  let mask = s.slotMask;
  // Per-event scratch (row, index hash, pane) lives in BLOCK_EVENTS entries reused by every block,
  // so it stays in L1 instead of streaming a batch-sized array through the cache that holds the
  // table. Based so that event i's entry is at base + i * width (u32 arithmetic wraps).
  const rows = s.rowBuf - (<usize>b << 2);
  const hashes = s.hashBuf - (<usize>b << 2);
  const nss = s.nsBuf - (<usize>b << 3);
  // Step 1: windows, late events and key hashes; no table memory is read.
  for (let i = b; i < e; i++) {
    let ns: i64 = 0;
    if (hasTime) {
      const t = load<i64>(timePtr + (<usize>i << 3));
      // An event the TTL has already expired (t + ttl reached by the watermark) sets no eviction
      // time: a live key keeps its newer one, and an absent key is not created (step 3).
      if (ttlOn && t + ttl > W && t + ttl < s.nextEventAt) s.nextEventAt = t + ttl;
      if (panes) {
        if (t >= lastPane && t < lastPane + slide) ns = lastPane;
        else {
          ns = floorDiv(t, slide) * slide;
          lastPane = ns;
          lastMix = nsMix(ns);
        }
        store<i64>(nss + (<usize>i << 3), ns);
        if (ns + slide <= W) {
          // The pane's first window has ended: late, or (hopping) behind the index's folds.
          if (ns + horizon <= W) {
            store<i32>(rows + (<usize>i << 2), -1);
            late++;
            continue;
          }
          behind++;
        }
        if (ns < minPane) minPane = ns;
      }
    }
    store<i32>(rows + (<usize>i << 2), 0);
    let h: u32;
    if (int64) h = probeHashI64(load<i64>(keyPtr + (<usize>i << 3)));
    else {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      h = probeHashBytes(keyBytesPtr + <usize>o, <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o));
    }
    store<u32>(hashes + (<usize>i << 2), byNs ? hashWithMix(h, lastMix) : h);
  }
  slots = s.slots;
  mask = s.slotMask;
  // Step 2: read each event's home slot once, in a loop of independent loads the CPU overlaps
  // (Wasm has no prefetch instruction; this is one). The probes below then hit the cache.
  let touch: u64 = 0;
  if (large) {
    for (let i = b; i < e; i++) touch ^= load<u64>(slots + <usize>(load<u32>(hashes + (<usize>i << 2)) & mask) * SLOT_BYTES);
    if (!int64) {
      // utf8 keys: the key reference (in the row record) of a home slot with the event's hash,
      // then the key bytes it refers to, each read the same way, so that the probe's byte
      // comparison hits the cache too. (int64 keys read no row here: measured at 100K keys, reading
      // the matching row's key ahead made ingest slower, not faster.) Late events have stale
      // hashes here: their reads are wasted, not wrong.
      const keyCol = s.keyCol;
      const arena = s.keyArena.base;
      for (let i = b; i < e; i++) {
        const h = load<u32>(hashes + (<usize>i << 2));
        const sl = load<u64>(slots + <usize>(h & mask) * SLOT_BYTES);
        if (<u32>(sl >>> 32) == h && sl != 0) touch ^= load<u64>(keyCol + <usize>(<u32>sl - 1) * stride);
      }
      for (let i = b; i < e; i++) {
        const h = load<u32>(hashes + (<usize>i << 2));
        const sl = load<u64>(slots + <usize>(h & mask) * SLOT_BYTES);
        if (<u32>(sl >>> 32) == h && sl != 0) touch ^= <u64>load<u8>(arena + <usize>(<u32>load<u64>(keyCol + <usize>(<u32>sl - 1) * stride)));
      }
    }
  }
  prefetchSink ^= touch;
  // Step 3: probe (and insert).
  for (let i = b; i < e; i++) {
    if (load<i32>(rows + (<usize>i << 2)) < 0) continue;
    const ns: i64 = panes ? load<i64>(nss + (<usize>i << 3)) : 0;
    const h = load<u32>(hashes + (<usize>i << 2));
    let row: i32 = -1;
    if (int64) {
      // A slot with the event's hash whose row has the event's key is taken without comparing
      // the pane start: for tumbling stores h is the (key, pane) hash, so it is the pane unless
      // two panes of the key share the 32-bit hash; for hopping stores it is the key's newest
      // pane. The verify pass below checks the pane start and otherwise finds the pane. A probe
      // that ends on an empty slot proves the pane (tumbling) or the key (hopping) absent, so it
      // is inserted there.
      const k = load<i64>(keyPtr + (<usize>i << 3));
      const sp = s.probeI64(slots, mask, h, k);
      row = <i32>(<u32>load<u64>(sp)) - 1;
      if (row < 0) {
        if (ttlOn && expiredAt(timePtr, i, ttl, W)) {
          store<i32>(rows + (<usize>i << 2), -1);
          late++;
          continue;
        }
        row = s.insertAt(sp, h, k, 0, 0, ns);
        slots = s.slots;
        mask = s.slotMask;
      }
    } else {
      // utf8 keys the same way (the key bytes the row refers to are compared, Store.keyEqBytes);
      // panes are verified below.
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const kp = keyBytesPtr + <usize>o;
      const len = <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o);
      const sp = s.probeBytes(slots, mask, h, kp, len);
      row = <i32>(<u32>load<u64>(sp)) - 1;
      if (row < 0) {
        if (ttlOn && expiredAt(timePtr, i, ttl, W)) {
          store<i32>(rows + (<usize>i << 2), -1);
          late++;
          continue;
        }
        row = s.insertAt(sp, h, 0, kp, len, ns);
        slots = s.slots;
        mask = s.slotMask;
      }
    }
    store<i32>(rows + (<usize>i << 2), row);
    accepted++;
  }
  // Rows are read once more in their own loop of independent loads (as step 2 does for slots), so
  // that the update loops below find their records in cache: the probe above read only each row's
  // key word. For pane stores this read is the check of the pane start that the probe skipped.
  if (panes) {
    let nsCol = s.nsCol;
    for (let i = b; i < e; i++) {
      const r = load<i32>(rows + (<usize>i << 2));
      if (r < 0) continue;
      const ns = load<i64>(nss + (<usize>i << 3));
      let row = r;
      if (load<i64>(nsCol + <usize>r * stride) != ns && byNs) {
        // Two panes of this key share the 32-bit index hash: take the slow, exact path.
        row = int64
          ? s.findOrInsertIdx(load<u32>(hashes + (<usize>i << 2)), load<i64>(keyPtr + (<usize>i << 3)), 0, 0, ns)
          : s.findOrInsertIdx(load<u32>(hashes + (<usize>i << 2)), 0, eventKeyPtr(i, keyPtr, keyBytesPtr), eventKeyLen(i, keyPtr), ns);
        store<i32>(rows + (<usize>i << 2), row);
        nsCol = s.nsCol; // an insert may have grown (moved) the rows
      } else if (load<i64>(nsCol + <usize>r * stride) != ns) {
        // Not the pane the probe gave (the key's newest then; an earlier event of this block may
        // have added a newer one since): find it in the key's chain from the newest pane.
        let top = r;
        let nx = load<i32>(s.newer + (<usize>top << 2));
        while (nx >= 0) {
          top = nx;
          nx = load<i32>(s.newer + (<usize>top << 2));
        }
        row = int64
          ? s.paneOf(load<u32>(hashes + (<usize>i << 2)), top, load<i64>(keyPtr + (<usize>i << 3)), 0, 0, ns)
          : s.paneOf(load<u32>(hashes + (<usize>i << 2)), top, 0, eventKeyPtr(i, keyPtr, keyBytesPtr), eventKeyLen(i, keyPtr), ns);
        store<i32>(rows + (<usize>i << 2), row);
        nsCol = s.nsCol; // an insert may have grown (moved) the rows
      }
      // The flag pass below, done here while the row is at hand.
      s.touch(row);
    }
  } else if (large) {
    // The probe read each row's key word (the record's first); the record's last word is on the
    // next cache line for about half the rows (records are not padded to a line).
    const lastCol = s.rows + stride - 8;
    let t2: i64 = 0;
    for (let i = b; i < e; i++) {
      const r = load<i32>(rows + (<usize>i << 2));
      if (r >= 0) t2 ^= load<i64>(lastCol + <usize>r * stride);
    }
    prefetchSink ^= <u64>t2;
  }
  // Before the first checkpoint of a store without windows, no flag is read: skip the pass.
  // (Pane stores' rows were touched in their verify pass.)
  // A capture in progress always has trackChanges set (the cut restarts the change log); the
  // explicit capActive keeps this pass, which is the copy-on-write before applyBlock, from
  // depending on that.
  if (!panes && (s.trackChanges || s.win != WIN_NONE || s.capActive)) {
    for (let i = b; i < e; i++) {
      const r = load<i32>(rows + (<usize>i << 2));
      if (r >= 0) s.touch(r);
    }
  }
  applyBlock(s, b, e, rows, stride, timePtr, seqBase);
  gLastPane = lastPane;
  gLastMix = lastMix;
  gLate = late;
  gBehind = behind;
  gMinPane = minPane;
  return accepted;
}

/**
 * Whether event i would make a key of a TTL store that the watermark W has already expired
 * (t + ttl <= W): such an event is late, since its key would only show until the next advance
 * evicted it. (An event for a live key is applied: the key keeps its newer eviction time.)
 */
@inline function expiredAt(timePtr: usize, i: i32, ttl: i64, W: i64): bool {
  return load<i64>(timePtr + (<usize>i << 3)) + ttl <= W;
}

/** Event i's utf8 key bytes and length (keys given as offsets into keyBytesPtr). */
@inline function eventKeyPtr(i: i32, keyPtr: usize, keyBytesPtr: usize): usize {
  return keyBytesPtr + <usize>load<u32>(keyPtr + (<usize>i << 2));
}

@inline function eventKeyLen(i: i32, keyPtr: usize): i32 {
  return <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - load<u32>(keyPtr + (<usize>i << 2)));
}

/**
 * Whether the store's aggregates are exactly the fused plan of one value field (count, and at most
 * one each of sum or mean, min and max of that field), with nothing per row besides (no TTL time).
 */
function fusedPlanOnly(s: Store): bool {
  // needsMaxTime, not maxTimeCol: the column exists only once the rows do, and this is decided
  // before a fresh store's first block (a TTL store of counts took this loop from its second block
  // on, and lost its keys' event times).
  if (s.kind != KIND_AGG || s.nFields != 1 || s.needsMaxTime()) return false;
  for (let a = 0; a < s.nAggs; a++) {
    if (unchecked(s.aggFn[a]) != FN_COUNT && !unchecked(s.aggFused[a])) return false;
  }
  return true;
}

/**
 * Events [b, e) of a store without windows whose index and rows (and utf8 key bytes) take at most
 * FUSED_MAX_BYTES (fusedPlanOnly): per event, one probe (and insert; the key is compared in the
 * row record, or for utf8 keys the bytes the row refers to), then count, nulls, sum, min and max, with no
 * intermediate arrays. Rows are inserted in event order, as in the blocked path, so row ids are
 * the same. Returns the events applied (all of them).
 */
function fusedBlock(s: Store, b: i32, e: i32, keyPtr: usize, keyBytesPtr: usize, track: bool): i32 {
  const hasSum = unchecked(s.fusedSum[0]) != 0;
  const hasMin = unchecked(s.fusedMin[0]) != 0;
  const hasMax = unchecked(s.fusedMax[0]) != 0;
  const volatile = s.extremesVolatile;
  // The usual plan (count, sum, min and max of one field) gets loops of its own
  // (fusedUsualI64, fusedUsualUtf8), with its row layout as constants: Store.layout puts the fused
  // columns first (FIXED_STRIDE), so the field offsets are immediates of the loads and stores. That
  // frees the registers the loop spent on them, and V8 spills less in it. Measured warm, 1M events,
  // alternating runs, medians of 5 runs' medians over 25 rounds (best rounds in brackets), ns per
  // event: int64 keys, 1K keys 19.5 to 14.5 (14.3 to 12.7), 10K keys 30.9 to 26.9 (22.2 to 22.4);
  // utf8 keys, 10K keys 44.7 to 41.5 (35.9 to 30.4). (The flags as constants, earlier, on another
  // machine: int64 1K keys 7.8 to 6.9 ns per event.) Its min and max take one SIMD pmin/pmax pair
  // (applyFixed), so it needs no volatile copy: int64 1K keys, warm, median 17.7 to 16.9 ns per
  // event (best 12.6 to 12.5); a fresh store each round, 19.3 to 16.5 (14.8 to 13.8).
  // With change tracking (a store that has been checkpointed) they take copies of their own that
  // mark each row as Store.touch does.
  const usual = hasSum && hasMin && hasMax && fixedLayout(s);
  if (s.keyType == KEY_INT64) {
    if (usual) return track ? fusedUsualI64Tracked(s, b, e, keyPtr) : fusedUsualI64(s, b, e, keyPtr);
    return fusedLoop(s, b, e, keyPtr, 0, true, track, hasSum, hasMin, hasMax, volatile);
  }
  if (usual) return track ? fusedUsualUtf8Tracked(s, b, e, keyPtr, keyBytesPtr) : fusedUsualUtf8(s, b, e, keyPtr, keyBytesPtr);
  return fusedLoop(s, b, e, keyPtr, keyBytesPtr, false, track, hasSum, hasMin, hasMax, volatile);
}

/**
 * fusedLoop for the usual plan in its fixed layout with int64 keys, split in two: the inner loop
 * runs while every event's key is present, with the index and the rows as constants (no insert can
 * move them), and leaves at the first absent key, which the outer loop inserts before entering it
 * again. So the inner loop carries fewer values from one event to the next, and V8 keeps more of
 * them in registers.
 */
function fusedUsualI64(s: Store, b: i32, e: i32, keyPtr: usize): i32 {
  return fusedUsualI64Loop(s, b, e, keyPtr, false);
}

/** fusedUsualI64 on a store that tracks changes. */
function fusedUsualI64Tracked(s: Store, b: i32, e: i32, keyPtr: usize): i32 {
  return fusedUsualI64Loop(s, b, e, keyPtr, true);
}

@inline function fusedUsualI64Loop(s: Store, b: i32, e: i32, keyPtr: usize, track: bool): i32 {
  const v = unchecked(s.batchVals[0]);
  let i = b;
  while (i < e) {
    const slots = s.slots;
    const mask = s.slotMask;
    const rows = s.rows;
    for (; i < e; i++) {
      const k = load<i64>(keyPtr + (<usize>i << 3));
      const h = probeHashI64(k);
      // An empty slot (sl == 0) gives row -1, whose key word is read (the record before the first
      // row, inside the heap) but never taken.
      const sl = groupSlot(slots, mask, h);
      const base = rows + <usize>(sl - 1) * FIXED_STRIDE;
      if (!((sl != 0) & (load<i64>(base) == k))) break;
      updateFixed(s, <i32>sl - 1, base, v + (<usize>i << 3), track);
    }
    if (i < e) {
      // Outside the group, or absent: the probe loop, and an insert at the empty slot it ends on.
      const k = load<i64>(keyPtr + (<usize>i << 3));
      const h = probeHashI64(k);
      const sp = s.probeI64(slots, mask, h, k);
      let row = <i32>(<u32>load<u64>(sp)) - 1;
      if (row < 0) row = s.insertAt(sp, h, k, 0, 0, 0);
      const base = s.rows + <usize>row * FIXED_STRIDE;
      updateFixed(s, row, base, v + (<usize>i << 3), track);
      i++;
    }
  }
  s.extremesVolatile = false;
  return e - b;
}

/**
 * fusedUsualI64 for utf8 keys: the group's row is confirmed by its key reference (length, then
 * the bytes in the arena, as Store.keyEqBytes), with the rows and the arena as constants of the
 * inner loop too. WasmCore ingest at 10K keys, best rounds of alternating builds: 27.3-29.0 to
 * 23.1-27.7 ns per event; at 1K keys 19.2-24.0 to 15.0-22.5 (2026-11-27).
 */
function fusedUsualUtf8(s: Store, b: i32, e: i32, keyPtr: usize, keyBytesPtr: usize): i32 {
  return fusedUsualUtf8Loop(s, b, e, keyPtr, keyBytesPtr, false);
}

/** fusedUsualUtf8 on a store that tracks changes. */
function fusedUsualUtf8Tracked(s: Store, b: i32, e: i32, keyPtr: usize, keyBytesPtr: usize): i32 {
  return fusedUsualUtf8Loop(s, b, e, keyPtr, keyBytesPtr, true);
}

@inline function fusedUsualUtf8Loop(s: Store, b: i32, e: i32, keyPtr: usize, keyBytesPtr: usize, track: bool): i32 {
  const v = unchecked(s.batchVals[0]);
  let i = b;
  while (i < e) {
    const slots = s.slots;
    const mask = s.slotMask;
    const rows = s.rows;
    const arena = s.keyArena.base;
    for (; i < e; i++) {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const len = <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o);
      const kp = keyBytesPtr + <usize>o;
      const h = probeHashBytes(kp, len);
      const sl = groupSlot(slots, mask, h);
      if (sl == 0) break;
      const row = <i32>sl - 1;
      const base = rows + <usize>row * FIXED_STRIDE;
      const kv = load<u64>(base);
      if (!((<i32>(kv >>> 32) == len) && bytesEqual(arena + <usize>(<u32>kv), kp, len))) break;
      updateFixed(s, row, base, v + (<usize>i << 3), track);
    }
    if (i < e) {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const len = <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o);
      const kp = keyBytesPtr + <usize>o;
      const h = probeHashBytes(kp, len);
      const sp = s.probeBytes(slots, mask, h, kp, len);
      let row = <i32>(<u32>load<u64>(sp)) - 1;
      if (row < 0) row = s.insertAt(sp, h, 0, kp, len, 0);
      const base = s.rows + <usize>row * FIXED_STRIDE;
      updateFixed(s, row, base, v + (<usize>i << 3), track);
      i++;
    }
  }
  s.extremesVolatile = false;
  return e - b;
}

/**
 * The low word (row + 1, or 0 for an empty slot) of the first of the four index slots from hash
 * h's home slot whose hash is h, or of the home slot when none is: two v128 loads (SLOT_SLACK
 * covers a group past the last slot), one compare of the four hashes, and a count of trailing
 * zeros, without a branch. The caller confirms the key in the row and otherwise probes
 * (Store.probeI64, probeBytes): linear probing never puts a key past an empty slot of its run, so
 * a key in the group is found here; a key further on, or behind a slot of the same 32-bit hash,
 * is not. An empty slot reads as hash 0.
 */
@inline function groupSlot(slots: usize, mask: u32, h: u32): u32 {
  const gp = slots + <usize>(h & mask) * SLOT_BYTES;
  const tags = v128.shuffle<i32>(v128.load(gp), v128.load(gp, 16), 1, 3, 5, 7);
  const lane = ctz(i32x4.bitmask(i32x4.eq(tags, i32x4.splat(h)))) & 3;
  return load<u32>(gp + (<usize>lane << 3));
}

/** The event value at `xp` into row `row` at `base` (fixed layout), marked first when `track`. */
@inline function updateFixed(s: Store, row: i32, base: usize, xp: usize, track: bool): void {
  if (track) touchFixed(s, row, base);
  applyFixed(base, load<f64>(xp));
}

/**
 * Store.touch for row `row` at `base` in the fixed layout, whose flags byte is the top byte of the
 * null count word (Store.layout: offFlags is field 0's word + 7).
 */
@inline function touchFixed(s: Store, row: i32, base: usize): void {
  s.cow(row);
  const f = load<u8>(base, FIXED_FLAGS);
  if (s.trackChanges && (f & F_DIRTY) == 0) {
    store<i32>(s.dirtyList + (<usize>s.dirtyCount << 2), row);
    s.dirtyCount++;
  }
  store<u8>(base, f | F_DIRTY | F_CHANGED, FIXED_FLAGS);
}

/**
 * One event's value `x` into a row record of the fixed layout (`base`): count, then the null count
 * (x is NaN) or the sum, and min and max as one SIMD pmin/pmax pair, without a branch whether or
 * not extremes still change often (pmin(a, b) is b < a ? b : a, as fusedLoop's scalar test).
 */
@inline function applyFixed(base: usize, x: f64): void {
  store<i64>(base, load<i64>(base, FIXED_CNT) + 1, FIXED_CNT);
  if (x != x) {
    store<i64>(base, load<i64>(base, FIXED_NULL) + 1, FIXED_NULL);
    return;
  }
  store<f64>(base, load<f64>(base, FIXED_SUM) + x, FIXED_SUM);
  const mm = v128.load(base, FIXED_MIN);
  const xx = f64x2.splat(x);
  v128.store(base, v128.shuffle<f64>(f64x2.pmin(mm, xx), f64x2.pmax(mm, xx), 0, 3), FIXED_MIN);
}

@inline function fusedLoop(s: Store, b: i32, e: i32, keyPtr: usize, keyBytesPtr: usize, int64: bool, track: bool, hasSum: bool, hasMin: bool, hasMax: bool,
  volatile: bool): i32 {
  const stride = <usize>s.stride;
  // Offsets inside the row record (column pointers move when the rows grow; offsets do not).
  let rows = s.rows;
  const oCnt = s.cntCol - rows;
  const oKey = s.keyCol - rows;
  const oNull = unchecked(s.nullCnt[0]) - rows;
  const sumCol = unchecked(s.fusedSum[0]);
  const minCol = unchecked(s.fusedMin[0]);
  const maxCol = unchecked(s.fusedMax[0]);
  const oSum = sumCol - rows;
  const oMin = minCol - rows;
  const oMax = maxCol - rows;
  const v = unchecked(s.batchVals[0]);
  let changed = 0;
  let slots = s.slots;
  let mask = s.slotMask;
  for (let i = b; i < e; i++) {
    let row: i32 = -1;
    let sp: usize = 0;
    if (int64) {
      const k = load<i64>(keyPtr + (<usize>i << 3));
      const h = probeHashI64(k);
      // The group of four slots (groupSlot): most keys sit in it, so the branch below is well
      // predicted, where a probe loop's exit is not. Row 0 (the store has rows) stands in for an
      // empty slot.
      const sl = groupSlot(slots, mask, h);
      const ok = sl != 0;
      const r1 = select<u32>(sl, 1, ok) - 1;
      // The row is taken before its key is compared (a predicted branch, not a select), so the
      // update's loads do not wait for the key's.
      row = <i32>r1;
      if (!(ok & (load<i64>(rows + oKey + <usize>r1 * stride) == k))) {
        sp = s.probeI64(slots, mask, h, k);
        row = <i32>(<u32>load<u64>(sp)) - 1;
      }
      if (row < 0) {
        row = s.insertAt(sp, h, k, 0, 0, 0);
        slots = s.slots;
        mask = s.slotMask;
        rows = s.rows;
      }
    } else {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const len = <i32>(load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o);
      const kp = keyBytesPtr + <usize>o;
      const h = probeHashBytes(kp, len);
      sp = s.probeBytes(slots, mask, h, kp, len);
      row = <i32>(<u32>load<u64>(sp)) - 1;
      if (row < 0) {
        row = s.insertAt(sp, h, 0, kp, len, 0);
        slots = s.slots;
        mask = s.slotMask;
        rows = s.rows;
      }
    }
    if (track) s.touch(row);
    const base = rows + <usize>row * stride;
    store<i64>(base + oCnt, load<i64>(base + oCnt) + 1);
    const x = load<f64>(v + (<usize>i << 3));
    if (x != x) {
      store<i64>(base + oNull, load<i64>(base + oNull) + 1);
      continue;
    }
    if (hasSum) store<f64>(base + oSum, load<f64>(base + oSum) + x);
    if (volatile) {
      // As in applyBlock (see Store.extremesVolatile).
      if (hasMin) {
        const cur = load<f64>(base + oMin);
        const c = x < cur;
        store<f64>(base + oMin, pickF64(x, cur, c));
        changed += <i32>c;
      }
      if (hasMax) {
        const cur = load<f64>(base + oMax);
        const c = x > cur;
        store<f64>(base + oMax, pickF64(x, cur, c));
        changed += <i32>c;
      }
    } else {
      if (hasMin && x < load<f64>(base + oMin)) {
        store<f64>(base + oMin, x);
        changed++;
      }
      if (hasMax && x > load<f64>(base + oMax)) {
        store<f64>(base + oMax, x);
        changed++;
      }
    }
  }
  s.extremesVolatile = isVolatile(changed, e - b, 1);
  return e - b;
}

/**
 * The fixed layout, the row record of the usual plan without windows (Store.layout puts the fused
 * columns first): key (or utf8 key reference) at 0, then count, null count, sum, min and max.
 */
const FIXED_STRIDE: usize = 48;
const FIXED_CNT: usize = 8;
const FIXED_NULL: usize = 16;
const FIXED_FLAGS: usize = 23; // the null count word's top byte
const FIXED_SUM: usize = 24;
const FIXED_MIN: usize = 32;
const FIXED_MAX: usize = 40; // right after min: applyFixed updates both as one v128

/** Whether the store's rows have the fixed layout (fusedUsualI64 and fusedUsualUtf8 assume it). */
function fixedLayout(s: Store): bool {
  const r = s.rows;
  return s.stride == FIXED_STRIDE && s.keyCol == r && s.cntCol == r + FIXED_CNT && unchecked(s.nullCnt[0]) == r + FIXED_NULL && s.flagCol == r + FIXED_FLAGS
    && unchecked(s.fusedSum[0]) == r + FIXED_SUM && unchecked(s.fusedMin[0]) == r + FIXED_MIN && unchecked(s.fusedMax[0]) == r + FIXED_MAX;
}

export const BLOCK_EVENTS: i32 = 512;
export const L2_BYTES: usize = 512 * 1024;
/**
 * Index and rows up to this size take the fused one-pass path (fusedBlock). Beyond the L2 cache
 * the passes of the blocked path overlap misses better, but only once the table is several times
 * L2: measured on a 1 MiB-L2, 32 MiB-L3 machine (2M events, count, sum, min and max per int64 key,
 * warm), the fused path was faster at 10K keys (0.9 MB: 22-23 against 29 ms) and 20K keys (2.1 MB:
 * 26 against 31 ms), level at 30K and 50K keys (3.4 and 5.6 MB), and far slower at 70K keys
 * (7.4 MB: 62 against 40 ms). (A fused path for tumbling stores measured no faster than their
 * blocked path, 33 ms for 2M events at 1K keys either way, and 2 ms slower at 10K keys.)
 */
export const FUSED_MAX_BYTES: usize = 3 * 1024 * 1024;

/** Keeps the slot-touching loads of step 2 observable, so the optimizer cannot drop them. */
export let prefetchSink: u64 = 0;

/**
 * Applies events [b, e) whose rows were resolved into `rows`. Per value field, one loop does the
 * event count (first field only), the non-null count and the field's first sum, min and max (the
 * fused plan, see Store.rebase); the flags are loop-invariant, so the branches cost nothing. Other
 * aggregates (first, last, duplicates) run one loop each.
 */
function applyBlock(s: Store, b: i32, e: i32, rows: usize, stride: usize, timePtr: usize, seqBase: i64): void {
  const cnt = s.cntCol;
  if (s.nFields == 0) {
    for (let i = b; i < e; i++) {
      const r = load<i32>(rows + (<usize>i << 2));
      if (r < 0) continue;
      const p = cnt + <usize>r * stride;
      store<i64>(p, load<i64>(p) + 1);
    }
  }
  if (s.maxTimeCol != 0) {
    const mt = s.maxTimeCol;
    for (let i = b; i < e; i++) {
      const r = load<i32>(rows + (<usize>i << 2));
      if (r < 0) continue;
      const t = load<i64>(timePtr + (<usize>i << 3));
      const p = mt + <usize>r * stride;
      if (t > load<i64>(p)) store<i64>(p, t);
    }
  }
  const volatile = s.extremesVolatile;
  let changed = 0;
  for (let f = 0; f < s.nFields; f++) {
    const hasSum = unchecked(s.fusedSum[f]) != 0;
    const hasMin = unchecked(s.fusedMin[f]) != 0;
    const hasMax = unchecked(s.fusedMax[f]) != 0;
    // The usual plan gets a loop of its own, with the flags as constants (see fusedBlock), and its
    // min and max side by side (Store.layout) as one SIMD pair. Measured (tumbling 1 s windows,
    // 10K int64 keys, 2M events, WasmCore ingest and advance, alternating processes, 5 runs of 7
    // rounds each): best rounds 63-70 to 52-58 ns per event, medians 68-77 to 64-67.
    if (f == 0 && hasSum && hasMin && hasMax && unchecked(s.fusedMax[0]) == unchecked(s.fusedMin[0]) + 8) {
      applyField(s, b, e, rows, stride, 0, true, true, true, true, false, true);
    } else {
      changed += applyField(s, b, e, rows, stride, f, f == 0, hasSum, hasMin, hasMax, volatile, false);
    }
  }
  s.extremesVolatile = isVolatile(changed, e - b, s.nFields);
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (fn == FN_COUNT || unchecked(s.aggFused[a])) continue;
    const col = unchecked(s.aggVal[a]);
    const v = unchecked(s.batchVals[unchecked(s.aggField[a])]);
    if (fn == FN_SUM || fn == FN_MEAN) {
      for (let i = b; i < e; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        const p = col + <usize>r * stride;
        store<f64>(p, load<f64>(p) + x);
      }
    } else if (fn == FN_MIN) {
      for (let i = b; i < e; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        const p = col + <usize>r * stride;
        if (x < load<f64>(p)) store<f64>(p, x);
      }
    } else if (fn == FN_MAX) {
      for (let i = b; i < e; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        const p = col + <usize>r * stride;
        if (x > load<f64>(p)) store<f64>(p, x);
      }
    } else {
      const tcol = unchecked(s.aggTime[a]);
      const isFirst = fn == FN_FIRST;
      for (let i = b; i < e; i++) {
        const r = load<i32>(rows + (<usize>i << 2));
        const x = load<f64>(v + (<usize>i << 3));
        if (r < 0 || x != x) continue;
        // first keeps the earliest arrival on equal times; last takes the latest arrival.
        const t: i64 = s.eventTime ? load<i64>(timePtr + (<usize>i << 3)) : seqBase + i;
        const tp = tcol + <usize>r * stride;
        const cur = load<i64>(tp);
        if (isFirst ? t < cur : t >= cur) {
          store<i64>(tp, t);
          store<f64>(col + <usize>r * stride, x);
        }
      }
    }
  }
}

/**
 * applyBlock's loop for value field f: the event count (first field only), the non-null count and
 * the field's fused sum, min and max. Returns the number of new extremes stored.
 */
@inline function applyField(s: Store, b: i32, e: i32, rows: usize, stride: usize, f: i32, first: bool, hasSum: bool, hasMin: bool, hasMax: bool, volatile: bool,
  pair: bool): i32 {
  const cnt = s.cntCol;
  const nc = unchecked(s.nullCnt[f]);
  const v = unchecked(s.batchVals[f]);
  const sum = unchecked(s.fusedSum[f]);
  const mn = unchecked(s.fusedMin[f]);
  const mx = unchecked(s.fusedMax[f]);
  let changed = 0;
  for (let i = b; i < e; i++) {
    const r = load<i32>(rows + (<usize>i << 2));
    if (r < 0) continue;
    const base = <usize>r * stride;
    if (first) store<i64>(cnt + base, load<i64>(cnt + base) + 1);
    const x = load<f64>(v + (<usize>i << 3));
    if (x != x) {
      store<i64>(nc + base, load<i64>(nc + base) + 1);
      continue;
    }
    if (hasSum) store<f64>(sum + base, load<f64>(sum + base) + x);
    if (pair) {
      // Max right after min: as in the fixed layout (applyFixed), one pmin/pmax pair and no branch.
      const mm = v128.load(mn + base);
      const xx = f64x2.splat(x);
      v128.store(mn + base, v128.shuffle<f64>(f64x2.pmin(mm, xx), f64x2.pmax(mm, xx), 0, 3));
    } else if (volatile) {
      // See Store.extremesVolatile: unconditional stores while new extremes are common, a branch
      // while they are rare. pickF64 keeps the comparison's exact semantics (an equal value, or
      // -0 against 0, leaves the stored one).
      if (hasMin) {
        const cur = load<f64>(mn + base);
        const c = x < cur;
        store<f64>(mn + base, pickF64(x, cur, c));
        changed += <i32>c;
      }
      if (hasMax) {
        const cur = load<f64>(mx + base);
        const c = x > cur;
        store<f64>(mx + base, pickF64(x, cur, c));
        changed += <i32>c;
      }
    } else {
      if (hasMin && x < load<f64>(mn + base)) {
        store<f64>(mn + base, x);
        changed++;
      }
      if (hasMax && x > load<f64>(mx + base)) {
        store<f64>(mx + base, x);
        changed++;
      }
    }
  }
  return changed;
}

/**
 * Whether new minima and maxima were common in a block: `changed` stores of a new extreme over
 * `events` events and `fields` value fields, more than 1 in EXTREMES_VOLATILE_DEN. A mispredicted
 * branch costs several times what the unconditional store does, so the crossover is well above
 * the rate where mispredictions start (measured: about 13% in a second pass over 100K keys runs
 * 7-9% faster with the branch; about 58% in their first pass runs 10-14% faster without it).
 */
@inline function isVolatile(changed: i32, events: i32, fields: i32): bool {
  return changed * EXTREMES_VOLATILE_DEN > events * fields;
}

const EXTREMES_VOLATILE_DEN: i32 = 4;

/**
 * `c ? a : b` by masking the bits: V8 compiles a Wasm select of two f64 (and f64.min/max) to a
 * branch, which mispredicts as often as the comparison is unpredictable.
 */
@inline function pickF64(a: f64, b: f64, c: bool): f64 {
  const m = -<i64>c;
  return reinterpret<f64>((reinterpret<i64>(a) & m) | (reinterpret<i64>(b) & ~m));
}

/** Points the store's per-field value pointers at this batch's value columns. */
function bindValues(s: Store, valTable: usize): void {
  for (let f = 0; f < s.nFields; f++) unchecked(s.batchVals[f] = load<usize>(valTable + (<usize>f << 2)));
}

/** Applies event i (time t) of the bound batch to one row record. */
@inline function applyOne(s: Store, row: i32, i: i32, t: i64, seqBase: i64): void {
  const base = <usize>row * s.stride;
  const i8 = <usize>i << 3;
  const cp = s.cntCol + base;
  store<i64>(cp, load<i64>(cp) + 1);
  if (s.maxTimeCol != 0) {
    const mp = s.maxTimeCol + base;
    if (t > load<i64>(mp)) store<i64>(mp, t);
  }
  for (let f = 0; f < s.nFields; f++) {
    const x = load<f64>(unchecked(s.batchVals[f]) + i8);
    if (x == x) continue;
    const p = unchecked(s.nullCnt[f]) + base;
    store<i64>(p, load<i64>(p) + 1);
  }
  for (let a = 0; a < s.nAggs; a++) {
    const fn = unchecked(s.aggFn[a]);
    if (fn == FN_COUNT) continue;
    const x = load<f64>(unchecked(s.batchVals[unchecked(s.aggField[a])]) + i8);
    if (x != x) continue;
    const p = unchecked(s.aggVal[a]) + base;
    if (fn == FN_SUM || fn == FN_MEAN) store<f64>(p, load<f64>(p) + x);
    else if (fn == FN_MIN) { if (x < load<f64>(p)) store<f64>(p, x); }
    else if (fn == FN_MAX) { if (x > load<f64>(p)) store<f64>(p, x); }
    else {
      // first keeps the earliest arrival on equal times; last takes the latest arrival.
      const et: i64 = s.eventTime ? t : seqBase + i;
      const tp = unchecked(s.aggTime[a]) + base;
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
function ingestSessions(s: Store, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, seqBase: i64): i32 {
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
    const h = probeHashOf(s, keyI64, ptr, len);
    let head = s.find(h, keyI64, ptr, len, 0);
    // An interval of length gap overlaps at most two sessions of the key (live sessions never
    // overlap and each is at least gap long). When it bridges two, the one with the smaller session
    // id survives, so the result does not depend on list order (which differs after a restore).
    let o1 = -1;
    let o2 = -1;
    for (let r = head; r >= 0; r = load<i32>(s.p(s.nextCol, r))) {
      const start = load<i64>(s.p(s.startCol, r));
      const end = load<i64>(s.p(s.maxTimeCol, r)) + gap;
      if (start < t + gap && t < end) {
        if (o1 < 0) o1 = r;
        else o2 = r;
      }
    }
    let target = o1;
    if (o2 >= 0) {
      const keep = load<i64>(s.p(s.nsCol, o1)) <= load<i64>(s.p(s.nsCol, o2)) ? o1 : o2;
      const drop = keep == o1 ? o2 : o1;
      combineRows(s, keep, drop);
      head = unlinkSession(s, head, drop);
      s.freeRow(drop);
      target = keep;
    }
    const curHead = head;
    if (target < 0) {
      s.prepareInsert(len);
      target = s.newRow(keyI64, ptr, len, t);
      store<i64>(s.p(s.startCol, target), t);
      if (curHead < 0) {
        s.insertSlot(h, target);
      } else {
        store<i32>(s.p(s.nextCol, target), curHead);
        s.repointSlot(curHead, target);
      }
    } else {
      const sp = s.p(s.startCol, target);
      if (t < load<i64>(sp)) store<i64>(sp, t);
    }
    applyOne(s, target, i, t, seqBase);
    s.touch(target);
    const end = load<i64>(s.p(s.maxTimeCol, target)) + gap;
    if (end < s.nextEventAt) s.nextEventAt = end;
    accepted++;
  }
  return accepted;
}

/** Unlinks `r` from the list starting at `head`, keeping the index on the head; returns the new head. */
function unlinkSession(s: Store, head: i32, r: i32): i32 {
  const nx = load<i32>(s.p(s.nextCol, r));
  if (head == r) {
    // nx exists: the other overlapping session is still in the list.
    s.repointSlot(r, nx);
    return nx;
  }
  let p = head;
  while (load<i32>(s.p(s.nextCol, p)) != r) p = load<i32>(s.p(s.nextCol, p));
  store<i32>(s.p(s.nextCol, p), nx);
  return head;
}


