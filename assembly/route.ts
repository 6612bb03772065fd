// Routing a batch to shards in one pass: each event's key group (MurmurHash3 of the key, the same
// hash the stores persist) and shard, then a counting-sort scatter of every column into one
// contiguous slice per shard, so the TypeScript side copies each slice out with one memcpy per
// column. Event order within a shard is kept.
import { KEY_INT64 } from './store';
import { hashBytes, hashI64 } from './hash';

/**
 * Partitions a batch by shard. Inputs: keys (int64: i64[n]; utf8: u32 offsets[n + 1] into
 * keyBytes), times (i64[n], or 0), values (a table of nFields pointers to f64[n]), and `assign`
 * (u8 per key group). Outputs (caller-allocated): counts u32[shards], starts u32[shards + 1],
 * byteStarts u32[shards + 1], kgCounts u32[keyGroups], work u32[2 * shards] (cursors), ids u8[n];
 * keysOut: int64 i64[n], utf8 u32[n + shards] offsets (each shard's count + 1 offsets start at
 * index starts[s] + s and at 0) and keyBytesOut; timesOut i64[n]; valsOut f64[nFields * n].
 */
export function partition(keyType: i32, n: i32, keyPtr: usize, keyBytesPtr: usize, timePtr: usize, nFields: i32,
                          valTable: usize, keyGroups: i32, assign: usize, shards: i32, counts: usize, starts: usize,
                          byteStarts: usize, kgCounts: usize, work: usize, ids: usize, keysOut: usize,
                          keyBytesOut: usize, timesOut: usize, valsOut: usize): void {
  const int64 = keyType == KEY_INT64;
  memory.fill(counts, 0, <usize>shards << 2);
  memory.fill(kgCounts, 0, <usize>keyGroups << 2);
  memory.fill(work, 0, <usize>shards << 3);
  const byteTotals = work + (<usize>shards << 2);
  // Pass 1: shard of each event, counts, key bytes per shard.
  for (let i = 0; i < n; i++) {
    let h: u32;
    let len: u32 = 0;
    if (int64) h = hashI64(load<i64>(keyPtr + (<usize>i << 3)));
    else {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      len = load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o;
      h = hashBytes(keyBytesPtr + <usize>o, <i32>len);
    }
    const kg = <usize>(h % <u32>keyGroups);
    store<u32>(kgCounts + (kg << 2), load<u32>(kgCounts + (kg << 2)) + 1);
    const sh = <usize>load<u8>(assign + kg);
    store<u8>(ids + <usize>i, <u8>sh);
    store<u32>(counts + (sh << 2), load<u32>(counts + (sh << 2)) + 1);
    store<u32>(byteTotals + (sh << 2), load<u32>(byteTotals + (sh << 2)) + len);
  }
  // Slice starts, and cursors.
  let at: u32 = 0;
  let bat: u32 = 0;
  for (let sh = 0; sh < shards; sh++) {
    const s4 = <usize>sh << 2;
    store<u32>(starts + s4, at);
    store<u32>(byteStarts + s4, bat);
    store<u32>(work + s4, at);
    at += load<u32>(counts + s4);
    bat += load<u32>(byteTotals + s4);
    store<u32>(byteTotals + s4, load<u32>(byteStarts + s4));
    if (!int64) store<u32>(keysOut + ((<usize>load<u32>(starts + s4) + <usize>sh) << 2), 0);
  }
  store<u32>(starts + (<usize>shards << 2), at);
  store<u32>(byteStarts + (<usize>shards << 2), bat);
  // Pass 2: scatter every column.
  for (let i = 0; i < n; i++) {
    const sh = <usize>load<u8>(ids + <usize>i);
    const cp = work + (sh << 2);
    const j = <usize>load<u32>(cp);
    store<u32>(cp, <u32>j + 1);
    if (int64) {
      store<i64>(keysOut + (j << 3), load<i64>(keyPtr + (<usize>i << 3)));
    } else {
      const o = load<u32>(keyPtr + (<usize>i << 2));
      const len = load<u32>(keyPtr + (<usize>(i + 1) << 2)) - o;
      const bp = byteTotals + (sh << 2);
      const b = load<u32>(bp);
      memory.copy(keyBytesOut + <usize>b, keyBytesPtr + <usize>o, len);
      store<u32>(bp, b + len);
      store<u32>(keysOut + ((j + sh + 1) << 2), b + len - load<u32>(byteStarts + (sh << 2)));
    }
    if (timePtr != 0) store<i64>(timesOut + (j << 3), load<i64>(timePtr + (<usize>i << 3)));
    for (let f = 0; f < nFields; f++) {
      const src = load<usize>(valTable + (<usize>f << 2));
      store<f64>(valsOut + ((<usize>f * <usize>n + j) << 3), load<f64>(src + (<usize>i << 3)));
    }
  }
}
