// Memory per key of the issue 2 store against its baselines, for one scenario's input.
//
// - Cairn: a fresh backend; a first operator gets one batch of `batchRows` events of a single key
//   (so the shard's scratch arena has its working size), then the measured operator (`spec`, key
//   field 'k', value field 'v') gets one batch of its first key, then the whole input. Readings of
//   the shard's used Wasm bytes (metrics().shards[0].stateBytes) give: the operator's bytes per key
//   (growth from before the operator existed, divided by its keys: its tables, rows and key bytes,
//   nothing shared); its footprint with one key (initial tables); the growth per key beyond that;
//   all used bytes per key; and Wasm memory per key (memoryBytes: what the process reserves).
// - Map: retained heap bytes of a MapStore built from the same input (measureHeapBytesPerKey), precise
//   when a global gc is exposed (bench/run.ts re-spawns Node with --expose-gc for that).
// - typed: the typed-array bytes of the open-addressing table (exact, from its capacity).
import { StateBackend, type AggregateSpec } from '../src/index.js';
import type { BenchColumns } from './data.js';
import { MapStore, measureHeapBytesPerKey } from './baselines/map-store.js';
import { TypedTableInt64, TypedTableUtf8 } from './baselines/typed-table.js';

/** Keys the Map heap measurement spans (over copies of the Map when the input has fewer). */
export const MAP_KEYS_MEASURED = 1_000_000;

/** The distinct keys of a column, in first-seen order. */
function distinctOf(keys: BigInt64Array | string[]): BigInt64Array | string[] {
  if (keys instanceof BigInt64Array) return BigInt64Array.from(new Set(keys));
  return [...new Set(keys)];
}

export interface MemoryResult {
  /** Distinct keys actually present after the input (uniform draws miss some of the key space). */
  keys: number;
  cairnStateBytes: number;
  cairnMemoryBytes: number;
  /** The measured operator's used bytes over its keys (what the memory target compares). */
  cairnBytesPerKey: number;
  /** The operator's used bytes with one key: its initial tables. */
  cairnOneKeyBytes: number;
  /** Growth per key after the first. */
  cairnGrowthBytesPerKey: number;
  cairnStateBytesPerKey: number;
  cairnMemoryBytesPerKey: number;
  mapHeapBytesPerKey: number;
  mapHeapPrecise: boolean;
  typedBytesPerKey: number;
}

export async function measureMemory(keyType: 'int64' | 'utf8', cols: BenchColumns, spec: AggregateSpec, batchRows: number): Promise<MemoryResult> {
  const n = cols.amount.length;
  const backend = await StateBackend.open({ shards: 1 });
  let keys: number;
  let state0: number;
  let stateOne: number;
  let state1: number;
  let memory1: number;
  try {
    // A first operator with one key, fed one full batch, sizes the shard's scratch arena; the
    // measured operator is declared after the first reading, so its own initial tables count.
    const sizer = backend.aggregate('sizer', spec);
    const one = keyType === 'int64' ? new BigInt64Array(batchRows).fill((cols.keys as BigInt64Array)[0]!) : new Array<string>(batchRows).fill((cols.keys as string[])[0]!);
    await sizer.ingest({ k: one, v: new Float64Array(batchRows).fill(1) });
    state0 = (await backend.metrics()).shards[0]!.stateBytes;
    const op = backend.aggregate('memory', spec);
    await op.ingest({ k: one, v: new Float64Array(batchRows).fill(1) });
    stateOne = (await backend.metrics()).shards[0]!.stateBytes;
    for (let at = 0; at < n; at += batchRows) {
      const end = Math.min(n, at + batchRows);
      const k = cols.keys instanceof BigInt64Array ? cols.keys.subarray(at, end) : cols.keys.slice(at, end);
      await op.ingest({ k, v: cols.amount.subarray(at, end) });
    }
    const m = (await backend.metrics()).shards[0]!;
    keys = m.rows - 1;
    state1 = m.stateBytes;
    memory1 = m.memoryBytes;
  } finally {
    await backend.close();
  }

  // The Map's heap is measured over enough copies of it to reach MAP_KEYS_MEASURED keys in all, each
  // built from the distinct keys of the input (its bytes depend only on them), so that heap noise of
  // a few hundred KB does not swamp a Map of 1K keys.
  const distinct = distinctOf(cols.keys);
  const copies = Math.max(1, Math.ceil(MAP_KEYS_MEASURED / distinct.length));
  const ones = new Float64Array(distinct.length).fill(1);
  const heap = measureHeapBytesPerKey(() => {
    const maps: MapStore[] = [];
    for (let c = 0; c < copies; c++) {
      const map = new MapStore();
      if (distinct instanceof BigInt64Array) map.ingestInt64(distinct, ones);
      else map.ingestUtf8(distinct, ones);
      maps.push(map);
    }
    return maps;
  }, copies * distinct.length);

  const typed = keyType === 'int64' ? new TypedTableInt64() : new TypedTableUtf8();
  if (typed instanceof TypedTableInt64) typed.ingest(cols.keys as BigInt64Array, cols.amount);
  else typed.ingest(cols.keys as string[], cols.amount);

  return {
    keys,
    cairnStateBytes: state1,
    cairnMemoryBytes: memory1,
    cairnBytesPerKey: (state1 - state0) / keys,
    cairnOneKeyBytes: stateOne - state0,
    cairnGrowthBytesPerKey: (state1 - stateOne) / Math.max(1, keys - 1),
    cairnStateBytesPerKey: state1 / keys,
    cairnMemoryBytesPerKey: memory1 / keys,
    mapHeapBytesPerKey: heap.bytesPerKey,
    mapHeapPrecise: heap.precise,
    typedBytesPerKey: typed.bytes() / typed.size,
  };
}
