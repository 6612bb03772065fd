/**
 * Routing: key -> key group -> shard. Key groups of a batch are computed in one pass inside Wasm
 * (the same hash the stores use), then the batch is split into one slice per shard with one copy
 * per column.
 */
import { WasmCore } from '../../bindings/core.js';
import type { EncodedBatch } from '../../bindings/types.js';
import { BufferPool } from './pool.js';

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
  /** Buffers for the slices; shards give them back once copied (see pool.ts). */
  readonly pool = new BufferPool();
  private readonly alloc = (bytes: number): ArrayBuffer => this.pool.take(bytes);

  /** The router's own Wasm instance, made on first use. */
  private wasm(): WasmCore {
    return (this.core ??= new WasmCore(1 << 30));
  }

  /** Float event times checked and rewritten as int64 in place (WasmCore.timesToInt64). */
  timesToInt64(t: Float64Array, field?: string): BigInt64Array {
    const out = new BigInt64Array(t.buffer, t.byteOffset, t.length);
    this.wasm().timesToInt64(t, out, field);
    return out;
  }

  /**
   * Splits a batch into per-shard batches (null where a shard gets no events), keeping event order:
   * one Wasm pass computes key groups and shards and scatters every column (bindings/core.ts
   * partition). Adds the batch's events per key group to `kgEvents`. Each slice's columns are views
   * into one buffer from `pool`, which its shard gives back.
   */
  split(b: EncodedBatch, keyGroups: number, assign: Uint8Array, shards: number, kgEvents: Float64Array): (EncodedBatch | null)[] {
    const { slices, kgCounts } = this.wasm().partition(b, keyGroups, assign, shards, this.alloc);
    for (let g = 0; g < keyGroups; g++) kgEvents[g]! += kgCounts[g]!;
    return slices;
  }
}
