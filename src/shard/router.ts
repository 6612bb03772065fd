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

  /** Shard id per event, and events per shard. */
  route(keys: EncodedKeys, n: number, keyGroups: number, assign: Uint8Array, shards: number): { ids: Uint8Array; counts: Uint32Array; kgCounts: Uint32Array } {
    const core = (this.core ??= new WasmCore(1 << 30));
    const keyLen = keys.type === 'int64' ? n * 8 : (n + 1) * 4;
    const keyBytes = keys.type === 'utf8' ? keys.bytes.length : 0;
    const pad = (x: number) => (x + 7) & ~7;
    const oBytes = pad(keyLen);
    const oAssign = pad(oBytes + keyBytes);
    const oIds = pad(oAssign + keyGroups);
    const oCounts = pad(oIds + n);
    const oKg = pad(oCounts + shards * 4);
    const base = core.scratch(oKg + keyGroups * 4);
    const u8 = core.u8;
    if (keys.type === 'int64') u8.set(bytesOf(keys.values), base);
    else {
      u8.set(bytesOf(keys.offsets), base);
      u8.set(keys.bytes, base + oBytes);
    }
    u8.set(assign, base + oAssign);
    core.ex.route(keys.type === 'int64' ? KEY_INT64 : KEY_UTF8, n, base, base + oBytes, keyGroups, base + oAssign, shards,
      base + oIds, base + oCounts, base + oKg);
    const after = core.u8;
    return {
      ids: after.slice(base + oIds, base + oIds + n),
      counts: new Uint32Array(after.buffer.slice(base + oCounts, base + oCounts + shards * 4)),
      kgCounts: new Uint32Array(after.buffer.slice(base + oKg, base + oKg + keyGroups * 4)),
    };
  }

  /** Splits a batch into per-shard batches (null where a shard gets no events). Order is kept. */
  split(b: EncodedBatch, keyGroups: number, assign: Uint8Array, shards: number, kgEvents: Float64Array): (EncodedBatch | null)[] {
    const { ids, counts, kgCounts } = this.route(b.keys, b.n, keyGroups, assign, shards);
    for (let kg = 0; kg < keyGroups; kg++) kgEvents[kg]! += kgCounts[kg]!;
    const n = b.n;
    const out: (EncodedBatch | null)[] = [];
    // Position of each event within its shard's slice.
    const pos = new Uint32Array(n);
    const fill = new Uint32Array(shards);
    for (let i = 0; i < n; i++) pos[i] = fill[ids[i]!]!++;
    for (let s = 0; s < shards; s++) {
      const m = counts[s]!;
      if (m === 0) { out.push(null); continue; }
      let keys: EncodedKeys;
      if (b.keys.type === 'int64') {
        const dst = new BigInt64Array(m);
        const d32 = new Int32Array(dst.buffer);
        const s32 = new Int32Array(b.keys.values.buffer, b.keys.values.byteOffset, n * 2);
        for (let i = 0; i < n; i++) {
          if (ids[i] !== s) continue;
          const j = pos[i]!;
          d32[2 * j] = s32[2 * i]!;
          d32[2 * j + 1] = s32[2 * i + 1]!;
        }
        keys = { type: 'int64', values: dst };
      } else {
        const o = b.keys.offsets;
        let bytes = 0;
        for (let i = 0; i < n; i++) if (ids[i] === s) bytes += o[i + 1]! - o[i]!;
        const offsets = new Uint32Array(m + 1);
        const data = new Uint8Array(bytes);
        let at = 0;
        for (let i = 0; i < n; i++) {
          if (ids[i] !== s) continue;
          data.set(b.keys.bytes.subarray(o[i]!, o[i + 1]!), at);
          at += o[i + 1]! - o[i]!;
          offsets[pos[i]! + 1] = at;
        }
        keys = { type: 'utf8', offsets, bytes: data };
      }
      let times: BigInt64Array | null = null;
      if (b.times) {
        times = new BigInt64Array(m);
        const d32 = new Int32Array(times.buffer);
        const s32 = new Int32Array(b.times.buffer, b.times.byteOffset, n * 2);
        for (let i = 0; i < n; i++) {
          if (ids[i] !== s) continue;
          const j = pos[i]!;
          d32[2 * j] = s32[2 * i]!;
          d32[2 * j + 1] = s32[2 * i + 1]!;
        }
      }
      const values = b.values.map((v) => {
        const d = new Float64Array(m);
        for (let i = 0; i < n; i++) if (ids[i] === s) d[pos[i]!] = v[i]!;
        return d;
      });
      out.push({ n: m, keys, times, values });
    }
    return out;
  }
}
