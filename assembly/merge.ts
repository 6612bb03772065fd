// Merging the sorted outputs of several shards into one sorted output, on the caller's thread (its
// helper instance): every fired batch of windows of a sharded operator passes through here, so the
// ordering and the gather of every column run in Wasm rather than in JavaScript, where each int64
// read allocates a BigInt and the per-column gathers cost several times as much.
import { cmpI64 } from './sort';
import { E_BAD_ARGUMENT } from './errors';

/** Parts (shards) merged at once: a part index is stored in one byte per output row. */
export const MERGE_PARTS_MAX: i32 = 255;
/** u32 words per part in the part table: count, end, start, keys (i64 or u32 offsets), key bytes. */
const PART_WORDS: usize = 5;

@inline function word(table: usize, p: i32, w: usize): usize {
  return <usize>load<u32>(table + ((<usize>p * PART_WORDS + w) << 2));
}

/** Compares row i of part a with row j of part b: (end,) key, start; utf8 keys by unsigned bytes. */
function cmpRows(table: usize, byWindow: bool, int64: bool, a: i32, i: usize, b: i32, j: usize): i32 {
  if (byWindow) {
    const e = cmpI64(load<i64>(word(table, a, 1) + (i << 3)), load<i64>(word(table, b, 1) + (j << 3)));
    if (e != 0) return e;
  }
  let k: i32;
  if (int64) k = cmpI64(load<i64>(word(table, a, 3) + (i << 3)), load<i64>(word(table, b, 3) + (j << 3)));
  else {
    const oa = word(table, a, 3) + (i << 2);
    const ob = word(table, b, 3) + (j << 2);
    const sa = load<u32>(oa);
    const sb = load<u32>(ob);
    const la = load<u32>(oa, 4) - sa;
    const lb = load<u32>(ob, 4) - sb;
    const c = memory.compare(word(table, a, 4) + <usize>sa, word(table, b, 4) + <usize>sb, <usize>min<u32>(la, lb));
    k = c != 0 ? (c < 0 ? -1 : 1) : la < lb ? -1 : la > lb ? 1 : 0;
  }
  if (k != 0) return k;
  return cmpI64(load<i64>(word(table, a, 2) + (i << 3)), load<i64>(word(table, b, 2) + (j << 3)));
}

/**
 * Orders the rows of nParts parts, each sorted by (end, key, start) when byWindow, else by
 * (key, start): output row o is row fromRow[o] (u32) of part fromPart[o] (u8). Ties go to the lower
 * part. `heads` is u32[nParts] of work space. Returns 0, or E_BAD_ARGUMENT.
 */
export function mergeOrder(nParts: i32, table: usize, byWindow: i32, int64: i32, heads: usize, total: i32,
                           fromPart: usize, fromRow: usize): i32 {
  if (nParts < 1 || nParts > MERGE_PARTS_MAX || total < 0) return E_BAD_ARGUMENT;
  let sum: i64 = 0;
  for (let p = 0; p < nParts; p++) sum += <i64>word(table, p, 0);
  if (sum != <i64>total) return E_BAD_ARGUMENT;
  memory.fill(heads, 0, <usize>nParts << 2);
  const w = byWindow != 0;
  const i64k = int64 != 0;
  // Two shards with int64 keys (the usual case) take a loop without calls or table reads per row.
  if (nParts == 2 && i64k) {
    if (w) merge2I64(table, true, fromPart, fromRow);
    else merge2I64(table, false, fromPart, fromRow);
    return 0;
  }
  for (let o = 0; o < total; o++) {
    let best = -1;
    let bestRow: usize = 0;
    for (let p = 0; p < nParts; p++) {
      const h = <usize>load<u32>(heads + (<usize>p << 2));
      if (h >= word(table, p, 0)) continue;
      if (best < 0 || cmpRows(table, w, i64k, p, h, best, bestRow) < 0) {
        best = p;
        bestRow = h;
      }
    }
    store<u8>(fromPart + <usize>o, <u8>best);
    store<u32>(fromRow + (<usize>o << 2), <u32>bestRow);
    store<u32>(heads + (<usize>best << 2), <u32>bestRow + 1);
  }
  return 0;
}

/**
 * mergeOrder of two parts with int64 keys: one comparison of (end,) key, start per output row,
 * without branches on the data (which part wins is as good as random), ties to part 0.
 */
@inline function merge2I64(table: usize, byWindow: bool, fromPart: usize, fromRow: usize): void {
  const n0 = <i32>word(table, 0, 0);
  const n1 = <i32>word(table, 1, 0);
  const e0 = word(table, 0, 1);
  const e1 = word(table, 1, 1);
  const s0 = word(table, 0, 2);
  const s1 = word(table, 1, 2);
  const k0 = word(table, 0, 3);
  const k1 = word(table, 1, 3);
  let i = 0;
  let j = 0;
  let o = 0;
  while (i < n0 && j < n1) {
    const ka = load<i64>(k0 + (<usize>i << 3));
    const kb = load<i64>(k1 + (<usize>j << 3));
    const sa = load<i64>(s0 + (<usize>i << 3));
    const sb = load<i64>(s1 + (<usize>j << 3));
    // Part 1's row comes first only when strictly less.
    let one = (kb < ka) | ((kb == ka) & (sb < sa));
    if (byWindow) {
      const ea = load<i64>(e0 + (<usize>i << 3));
      const eb = load<i64>(e1 + (<usize>j << 3));
      one = (eb < ea) | ((eb == ea) & one);
    }
    store<u8>(fromPart + <usize>o, <u8>one);
    store<u32>(fromRow + (<usize>o << 2), <u32>select<i32>(j, i, one));
    i += 1 - <i32>one;
    j += <i32>one;
    o++;
  }
  for (; i < n0; i++, o++) {
    store<u8>(fromPart + <usize>o, 0);
    store<u32>(fromRow + (<usize>o << 2), <u32>i);
  }
  for (; j < n1; j++, o++) {
    store<u8>(fromPart + <usize>o, 1);
    store<u32>(fromRow + (<usize>o << 2), <u32>j);
  }
}

/** dst[o] = the 8-byte element fromRow[o] of srcs[fromPart[o]] (srcs: u32 pointer per part). */
export function gather64(srcs: usize, fromPart: usize, fromRow: usize, total: i32, dst: usize): void {
  for (let o = 0; o < total; o++) {
    const src = <usize>load<u32>(srcs + (<usize>load<u8>(fromPart + <usize>o) << 2));
    store<i64>(dst + (<usize>o << 3), load<i64>(src + (<usize>load<u32>(fromRow + (<usize>o << 2)) << 3)));
  }
}

/** The same for 1-byte elements (validity). */
export function gather8(srcs: usize, fromPart: usize, fromRow: usize, total: i32, dst: usize): void {
  for (let o = 0; o < total; o++) {
    const src = <usize>load<u32>(srcs + (<usize>load<u8>(fromPart + <usize>o) << 2));
    store<u8>(dst + <usize>o, load<u8>(src + <usize>load<u32>(fromRow + (<usize>o << 2))));
  }
}

/**
 * utf8 keys: dstOffsets u32[total + 1] from 0, and the key bytes in output order to dstBytes.
 * Part p's offsets and bytes are words 3 and 4 of its table entry.
 */
export function gatherUtf8(table: usize, fromPart: usize, fromRow: usize, total: i32, dstOffsets: usize, dstBytes: usize): void {
  let at: u32 = 0;
  store<u32>(dstOffsets, 0);
  for (let o = 0; o < total; o++) {
    const p = <i32>load<u8>(fromPart + <usize>o);
    const op = word(table, p, 3) + (<usize>load<u32>(fromRow + (<usize>o << 2)) << 2);
    const s = load<u32>(op);
    const len = load<u32>(op, 4) - s;
    memory.copy(dstBytes + <usize>at, word(table, p, 4) + <usize>s, <usize>len);
    at += len;
    store<u32>(dstOffsets + (<usize>(o + 1) << 2), at);
  }
}
