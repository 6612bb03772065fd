// Baseline: the keyed aggregate store a competent JS developer writes first, a `Map` from key to a
// small `{ count, sum, min, max }` object. It computes exactly what Cairn's per-key count/sum/min/max
// computes (count = events, sum/min/max skip NaN as null), so benchmark ratios compare equal work.
//
// int64 keys: by default the Map is keyed by the bigint read from the BigInt64Array. It is exact for
// every int64 and, measured on this machine with bench/data.ts keys (random values below 2^53, which
// are heap numbers, not small integers, once converted), it was also faster than the other idiomatic
// choice, Number(key), which `int64Keys: 'number'` selects. Number() is lossy above 2^53, so that mode
// checks the range and throws rather than silently merging keys.

import { CairnError } from '../../src/errors.js';

export interface Agg {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Non-null values seen; sum/min/max are null when 0. */
  valued: number;
}

export interface AggResult {
  count: number;
  sum: number | null;
  min: number | null;
  max: number | null;
}

export interface MapStoreOptions {
  int64Keys?: 'number' | 'bigint';
}

const SAFE_MAX = Number.MAX_SAFE_INTEGER;

function newAgg(): Agg {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity, valued: 0 };
}

function toResult(a: Agg): AggResult {
  return a.valued === 0 ? { count: a.count, sum: null, min: null, max: null } : { count: a.count, sum: a.sum, min: a.min, max: a.max };
}

export class MapStore {
  readonly int64Keys: 'number' | 'bigint';
  private readonly map = new Map<number | bigint | string, Agg>();

  constructor(options: MapStoreOptions = {}) {
    this.int64Keys = options.int64Keys ?? 'bigint';
  }

  get size(): number {
    return this.map.size;
  }

  ingestInt64(keys: BigInt64Array, values: Float64Array): void {
    checkLengths(keys.length, values.length);
    const map = this.map;
    if (this.int64Keys === 'number') {
      for (let i = 0; i < keys.length; i++) {
        const k = Number(keys[i]);
        if (k > SAFE_MAX || k < -SAFE_MAX) throw new CairnError('invalid', `expected a key within +-2^53 for number keys, found ${keys[i]} (row ${i})`);
        let a = map.get(k);
        if (a === undefined) {
          a = newAgg();
          map.set(k, a);
        }
        update(a, values[i]);
      }
    } else {
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        let a = map.get(k);
        if (a === undefined) {
          a = newAgg();
          map.set(k, a);
        }
        update(a, values[i]);
      }
    }
  }

  ingestUtf8(keys: readonly string[], values: Float64Array): void {
    checkLengths(keys.length, values.length);
    const map = this.map;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      let a = map.get(k);
      if (a === undefined) {
        a = newAgg();
        map.set(k, a);
      }
      update(a, values[i]);
    }
  }

  /**
   * utf8 keys from an Arrow Utf8 column, the idiomatic way: one string decoded per row (`get(i)`),
   * then the Map. A null key is an error, as in Cairn.
   */
  ingestUtf8Vector(keys: { readonly length: number; get(i: number): string | null }, values: Float64Array): void {
    checkLengths(keys.length, values.length);
    const map = this.map;
    for (let i = 0; i < keys.length; i++) {
      const k = keys.get(i);
      if (k === null) throw new CairnError('invalid', `expected a key, found null (row ${i})`);
      let a = map.get(k);
      if (a === undefined) {
        a = newAgg();
        map.set(k, a);
      }
      update(a, values[i]);
    }
  }

  get(key: bigint | string): AggResult | undefined {
    const k = typeof key === 'bigint' && this.int64Keys === 'number' ? Number(key) : key;
    const a = this.map.get(k);
    return a === undefined ? undefined : toResult(a);
  }

  /** Every key (as stored: number, bigint or string) with its result, in Map insertion order. */
  entries(): Array<[number | bigint | string, AggResult]> {
    return [...this.map].map(([k, a]) => [k, toResult(a)]);
  }
}

function update(a: Agg, v: number): void {
  a.count++;
  if (v !== v) return; // NaN is null: counted as an event, skipped by sum/min/max
  a.valued++;
  a.sum += v;
  if (v < a.min) a.min = v;
  if (v > a.max) a.max = v;
}

function checkLengths(keys: number, values: number): void {
  if (keys !== values) throw new CairnError('invalid', `expected columns of equal length, found keys ${keys} and values ${values}`);
}

export interface HeapMeasurement {
  bytesPerKey: number;
  /** True when a full GC ran before each reading (`--expose-gc` under Node, `--v8-flags=--expose-gc` under Deno). */
  precise: boolean;
}

/**
 * Estimates retained heap bytes per key of a structure: heapUsed after building it minus heapUsed
 * before, divided by `keys` (pass the number of distinct keys actually stored). `build` must return
 * the structure (it is kept alive until the second reading). Create the input columns before the
 * call: then utf8 key strings, which the Map retains but the input already holds, are not counted
 * (a parser-fed Map would also pay ~20-30 bytes per retained string). Without a global `gc` the
 * readings include garbage and are only indicative.
 */
export function measureHeapBytesPerKey(build: () => unknown, keys: number): HeapMeasurement {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const kept = build();
  gc?.();
  const after = process.memoryUsage().heapUsed;
  // Touch `kept` after the reading so it cannot be collected before it.
  if (kept === undefined) throw new CairnError('invalid', 'expected build() to return the structure it built, found undefined');
  return { bytesPerKey: (after - before) / keys, precise: gc !== undefined };
}
