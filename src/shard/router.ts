/**
 * Routing: key -> key group -> shard. Key groups of a batch are computed in one pass inside Wasm
 * (the same hash the stores use), then the batch is split into one slice per shard with one copy
 * per column.
 */
import { WasmCore, bytesOf } from '../../bindings/core.js';
import { KEY_INT64, KEY_UTF8 } from '../../bindings/exports.js';
import type { EncodedBatch, EncodedKeys } from '../../bindings/types.js';

export const KEY_GROUPS_MAX = 32768;
export const SHARDS_MAX = 255;

/** Flink's default assignment: shard s owns a contiguous range of key groups. */
export function contiguousAssignment(keyGroups: number, shards: number): Uint8Array {
  const a = new Uint8Array(keyGroups);
  for (let kg = 0; kg < keyGroups; kg++) a[kg] = Math.floor((kg * shards) / keyGroups);
  return a;
}

export class Router {
  private core: WasmCore | null = null;

  /**
   * Splits a batch into per-shard batches (null where a shard gets no events), keeping event order.
   * Wasm computes key groups and shards and scatters every column into per-shard slices in one
   * pass; each slice leaves with one copy per column, as a fresh, transferable buffer. Adds the
   * batch's events per key group to `kgEvents`.
   */
  split(b: EncodedBatch, keyGroups: number, assign: Uint8Array, shards: number, kgEvents: Float64Array): (EncodedBatch | null)[] {
    const core = (this.core ??= new WasmCore(1 << 30));
    const n = b.n;
    const nf = b.values.length;
    const int64 = b.keys.type === 'int64';
    const keyBytes = b.keys.type === 'utf8' ? b.keys.bytes.length : 0;
    const pad = (x: number) => (x + 7) & ~7;
    // Scratch layout: inputs, then outputs.
    let at = 0;
    const take = (bytes: number) => { const o = at; at = pad(at + bytes); return o; };
    const oKeys = take(int64 ? n * 8 : (n + 1) * 4);
    const oKeyBytes = take(keyBytes);
    const oTimes = take(b.times ? n * 8 : 0);
    const oTable = take(nf * 4);
    const oVals = take(nf * n * 8);
    const oAssign = take(keyGroups);
    const oCounts = take(shards * 4);
    const oStarts = take((shards + 1) * 4);
    const oByteStarts = take((shards + 1) * 4);
    const oKg = take(keyGroups * 4);
    const oWork = take(shards * 8);
    const oIds = take(n);
    const oKeysOut = take(int64 ? n * 8 : (n + shards) * 4);
    const oKeyBytesOut = take(keyBytes);
    const oTimesOut = take(b.times ? n * 8 : 0);
    const oValsOut = take(nf * n * 8);
    const base = core.scratch(at);
    const u8 = core.u8;
    if (b.keys.type === 'int64') u8.set(bytesOf(b.keys.values), base + oKeys);
    else {
      u8.set(bytesOf(b.keys.offsets), base + oKeys);
      u8.set(b.keys.bytes, base + oKeyBytes);
    }
    if (b.times) u8.set(bytesOf(b.times), base + oTimes);
    const dv = core.view;
    for (let f = 0; f < nf; f++) {
      dv.setUint32(base + oTable + f * 4, base + oVals + f * n * 8, true);
      u8.set(bytesOf(b.values[f]!), base + oVals + f * n * 8);
    }
    u8.set(assign, base + oAssign);
    core.ex.partition(int64 ? KEY_INT64 : KEY_UTF8, n, base + oKeys, base + oKeyBytes, b.times ? base + oTimes : 0, nf,
      base + oTable, keyGroups, base + oAssign, shards, base + oCounts, base + oStarts, base + oByteStarts, base + oKg,
      base + oWork, base + oIds, base + oKeysOut, base + oKeyBytesOut, b.times ? base + oTimesOut : 0, base + oValsOut);
    const buf = core.u8.buffer;
    const starts = new Uint32Array(buf, base + oStarts, shards + 1);
    const byteStarts = new Uint32Array(buf, base + oByteStarts, shards + 1);
    const kg = new Uint32Array(buf, base + oKg, keyGroups);
    for (let g = 0; g < keyGroups; g++) kgEvents[g]! += kg[g]!;
    const out: (EncodedBatch | null)[] = [];
    for (let s = 0; s < shards; s++) {
      const lo = starts[s]!;
      const m = starts[s + 1]! - lo;
      if (m === 0) { out.push(null); continue; }
      const keys: EncodedKeys = int64
        ? { type: 'int64', values: new BigInt64Array(buf.slice(base + oKeysOut + lo * 8, base + oKeysOut + (lo + m) * 8)) }
        : {
            type: 'utf8',
            offsets: new Uint32Array(buf.slice(base + oKeysOut + (lo + s) * 4, base + oKeysOut + (lo + s + m + 1) * 4)),
            bytes: new Uint8Array(buf.slice(base + oKeyBytesOut + byteStarts[s]!, base + oKeyBytesOut + byteStarts[s + 1]!)),
          };
      const times = b.times ? new BigInt64Array(buf.slice(base + oTimesOut + lo * 8, base + oTimesOut + (lo + m) * 8)) : null;
      const values = b.values.map((_, f) => new Float64Array(buf.slice(base + oValsOut + (f * n + lo) * 8, base + oValsOut + (f * n + lo + m) * 8)));
      out.push({ n: m, keys, times, values });
    }
    return out;
  }
}
