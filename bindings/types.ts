/**
 * Plain, transferable shapes that cross between the SDK, shards and workers. Every buffer is a
 * standalone typed array (never a view into Wasm memory), so it can be posted to a worker.
 */

/** Keys of a batch: int64 as a BigInt64Array, utf8 as UTF-8 bytes with n + 1 offsets. */
export type EncodedKeys =
  | { type: 'int64'; values: BigInt64Array }
  | { type: 'utf8'; offsets: Uint32Array; bytes: Uint8Array };

/** A validated batch: n events, event times (or null), one Float64Array per value field (NaN = null). */
export interface EncodedBatch {
  n: number;
  keys: EncodedKeys;
  /**
   * int64 ms (checked to be within ±2^53); or ms as doubles, which Wasm checks to be integers within
   * ±2^53 and converts as the batch is copied in, before any state changes (WasmCore.writeBatch).
   */
  times: BigInt64Array | Float64Array | null;
  /** The time field's name, for the error that rejects a batch with a bad double time. */
  timeField?: string;
  values: Float64Array[];
}

/** Rows copied out of Wasm: keys, window bounds, and per aggregate values with validity (1 = valid). */
export interface OutColumns {
  count: number;
  keys: EncodedKeys;
  start: BigInt64Array;
  end: BigInt64Array;
  /** Per aggregate: BigInt64Array for count, Float64Array otherwise. */
  values: (BigInt64Array | Float64Array)[];
  valid: Uint8Array[];
}

/** A single key for point operations. */
export type EncodedKey = { type: 'int64'; value: bigint } | { type: 'utf8'; bytes: Uint8Array };

export interface StoreConfig {
  kind: 'aggregate' | 'value';
  keyType: 'int64' | 'utf8';
  window: { kind: 'none'; ttl: number } | { kind: 'panes'; size: number; slide: number } | { kind: 'session'; gap: number };
  lateness: number;
  eventTime: boolean;
  /** Per aggregate: function code and value-field index (-1 for count(*)). */
  aggs: { fn: number; field: number }[];
  nFields: number;
}
