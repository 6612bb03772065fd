/**
 * Output rows: merging per-shard results into one deterministic order, and building Arrow tables
 * and plain objects from them.
 */
import { makeData, makeVector, Table, Int64, Float64, Utf8, Field, Schema, RecordBatch, Struct, type Vector } from 'apache-arrow';
import type { EncodedKeys, OutColumns } from '../../bindings/types.js';
import type { NormalizedSpec } from './spec.js';

const decoder = new TextDecoder();

function keyCompare(a: EncodedKeys, i: number, b: EncodedKeys, j: number): number {
  if (a.type === 'int64' && b.type === 'int64') {
    const x = a.values[i]!;
    const y = b.values[j]!;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const ka = a as EncodedKeys & { type: 'utf8' };
  const kb = b as EncodedKeys & { type: 'utf8' };
  const la = ka.offsets[i + 1]! - ka.offsets[i]!;
  const lb = kb.offsets[j + 1]! - kb.offsets[j]!;
  const m = Math.min(la, lb);
  const pa = ka.offsets[i]!;
  const pb = kb.offsets[j]!;
  for (let k = 0; k < m; k++) {
    const d = ka.bytes[pa + k]! - kb.bytes[pb + k]!;
    if (d !== 0) return d;
  }
  return la - lb;
}

/**
 * Merges shard outputs, each already sorted, into one sorted output. `byWindow` orders by
 * (end, key, start) (fired windows); otherwise by (key, start) (exports).
 */
export function mergeSorted(parts: OutColumns[], byWindow: boolean): OutColumns {
  const live = parts.filter((p) => p.count > 0);
  if (live.length === 0) return parts[0]!;
  if (live.length === 1) return live[0]!;
  const total = live.reduce((a, p) => a + p.count, 0);
  const cmp = (pa: OutColumns, i: number, pb: OutColumns, j: number): number => {
    if (byWindow) {
      const e = pa.end[i]! - pb.end[j]!;
      if (e !== 0n) return e < 0n ? -1 : 1;
    }
    const k = keyCompare(pa.keys, i, pb.keys, j);
    if (k !== 0) return k;
    const s = pa.start[i]! - pb.start[j]!;
    return s === 0n ? 0 : s < 0n ? -1 : 1;
  };
  const order: [number, number][] = new Array(total);
  const idx = new Array(live.length).fill(0);
  for (let o = 0; o < total; o++) {
    let best = -1;
    for (let p = 0; p < live.length; p++) {
      if (idx[p] >= live[p]!.count) continue;
      if (best < 0 || cmp(live[p]!, idx[p], live[best]!, idx[best]) < 0) best = p;
    }
    order[o] = [best, idx[best]++];
  }
  return gather(live, order);
}

function gather(parts: OutColumns[], order: [number, number][]): OutColumns {
  const n = order.length;
  const first = parts[0]!;
  let keys: EncodedKeys;
  if (first.keys.type === 'int64') {
    const v = new BigInt64Array(n);
    order.forEach(([p, i], o) => (v[o] = (parts[p]!.keys as { values: BigInt64Array }).values[i]!));
    keys = { type: 'int64', values: v };
  } else {
    let bytes = 0;
    for (const [p, i] of order) {
      const k = parts[p]!.keys as { offsets: Uint32Array };
      bytes += k.offsets[i + 1]! - k.offsets[i]!;
    }
    const offsets = new Uint32Array(n + 1);
    const data = new Uint8Array(bytes);
    let at = 0;
    order.forEach(([p, i], o) => {
      const k = parts[p]!.keys as { offsets: Uint32Array; bytes: Uint8Array };
      data.set(k.bytes.subarray(k.offsets[i]!, k.offsets[i + 1]!), at);
      at += k.offsets[i + 1]! - k.offsets[i]!;
      offsets[o + 1] = at;
    });
    keys = { type: 'utf8', offsets, bytes: data };
  }
  const start = new BigInt64Array(n);
  const end = new BigInt64Array(n);
  order.forEach(([p, i], o) => {
    start[o] = parts[p]!.start[i]!;
    end[o] = parts[p]!.end[i]!;
  });
  const values = first.values.map((v, a) => {
    const d = v instanceof BigInt64Array ? new BigInt64Array(n) : new Float64Array(n);
    order.forEach(([p, i], o) => ((d as Float64Array)[o] = (parts[p]!.values[a] as Float64Array)[i]!));
    return d;
  });
  const valid = first.valid.map((_, a) => {
    const d = new Uint8Array(n);
    order.forEach(([p, i], o) => (d[o] = parts[p]!.valid[a]![i]!));
    return d;
  });
  return { count: n, keys, start, end, values, valid };
}

function bitmapOf(valid: Uint8Array): { bitmap: Uint8Array | undefined; nulls: number } {
  if (valid.indexOf(0) < 0) return { bitmap: undefined, nulls: 0 };
  let nulls = 0;
  const bitmap = new Uint8Array((valid.length + 7) >> 3);
  for (let i = 0; i < valid.length; i++) {
    if (valid[i]) bitmap[i >> 3]! |= 1 << (i & 7);
    else nulls++;
  }
  return { bitmap: nulls ? bitmap : undefined, nulls };
}

/** Builds an Arrow table: key, [window_start, window_end,] aggregates (count Int64, others Float64). */
export function toArrow(spec: NormalizedSpec, out: OutColumns, withWindow: boolean): Table {
  const n = out.count;
  const cols: Record<string, Vector> = {};
  if (out.keys.type === 'int64') {
    cols[spec.keyField] = makeVector(out.keys.values);
  } else {
    cols[spec.keyField] = makeVector(makeData({ type: new Utf8(), length: n, valueOffsets: new Int32Array(out.keys.offsets.buffer, out.keys.offsets.byteOffset, n + 1), data: out.keys.bytes }));
  }
  if (withWindow) {
    cols['window_start'] = makeVector(out.start);
    cols['window_end'] = makeVector(out.end);
  }
  spec.aggs.forEach((a, i) => {
    const v = out.values[i]!;
    if (v instanceof BigInt64Array) {
      cols[a.name] = makeVector(makeData({ type: new Int64(), length: n, data: v }));
    } else {
      const { bitmap, nulls } = bitmapOf(out.valid[i]!);
      cols[a.name] = makeVector(makeData({ type: new Float64(), length: n, data: v, nullBitmap: bitmap, nullCount: nulls }));
    }
  });
  // Aggregates other than count are nullable (no non-null value seen); keys and bounds never are.
  const nullable = new Set(spec.aggs.filter((a) => a.fn !== 'count').map((a) => a.name));
  const fields = Object.entries(cols).map(([name, v]) => new Field(name, v.type, nullable.has(name)));
  const schema = new Schema(fields);
  const data = makeData({ type: new Struct(fields), length: n, nullCount: 0, children: Object.values(cols).map((v) => v.data[0]!) });
  return new Table(schema, [new RecordBatch(schema, data)]);
}

/** Row i as a plain object of numbers (null for null aggregates). */
export function rowObject(spec: NormalizedSpec, out: OutColumns, i: number): Record<string, number | null> {
  const o: Record<string, number | null> = {};
  spec.aggs.forEach((a, k) => {
    o[a.name] = out.valid[k]![i] ? Number(out.values[k]![i]!) : null;
  });
  return o;
}

export function keyOf(out: OutColumns, i: number): bigint | string {
  if (out.keys.type === 'int64') return out.keys.values[i]!;
  return decoder.decode(out.keys.bytes.subarray(out.keys.offsets[i], out.keys.offsets[i + 1]));
}

export function emptyOut(spec: NormalizedSpec): OutColumns {
  return {
    count: 0,
    keys: spec.keyType === 'int64' ? { type: 'int64', values: new BigInt64Array(0) } : { type: 'utf8', offsets: new Uint32Array(1), bytes: new Uint8Array(0) },
    start: new BigInt64Array(0),
    end: new BigInt64Array(0),
    values: spec.aggs.map((a) => (a.fn === 'count' ? new BigInt64Array(0) : new Float64Array(0))),
    valid: spec.aggs.map(() => new Uint8Array(0)),
  };
}
