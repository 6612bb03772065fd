/**
 * Turns a user batch (an Arrow Table or RecordBatch, or plain columns) into an EncodedBatch, checking
 * everything first: column lengths, missing fields, types, null keys, event times. Any problem
 * rejects the whole batch with an `invalid` error before state is touched.
 */
import { isUtf8 } from 'node:buffer';
import { Table, RecordBatch, Vector, Type, Precision, type Data } from 'apache-arrow';
import { CairnError } from '../errors.js';
import type { EncodedBatch, EncodedKeys, EncodedKey } from '../../bindings/types.js';
import type { NormalizedSpec, KeyType } from './spec.js';
import { forEachInvalidUtf8Key, hexPrefix } from './utf8.js';

/** What ingest accepts. */
export type Column =
  | string[] | number[] | bigint[] | (number | null | undefined)[] | (string | null | undefined)[]
  | Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Int8Array | Uint8Array | Uint16Array
  | BigInt64Array | Vector;
export type BatchInput = Table | RecordBatch | Record<string, Column>;

export const BATCH_ROWS_MAX = 1 << 24;
export const TIME_ABS_MAX = 2 ** 53;
export const KEY_BYTES_MAX = 1 << 16;

const encoder = new TextEncoder();

function invalid(msg: string): CairnError {
  return new CairnError('invalid', msg);
}

/** Resolves a field of the batch to a column, or throws naming the available fields. */
function columnOf(input: BatchInput, field: string): Column {
  if (input instanceof Table || input instanceof RecordBatch) {
    const v = input.getChild(field);
    if (!v) throw invalid(`batch: missing field '${field}' (available: ${input.schema.fields.map((f) => f.name).join(', ')})`);
    return v;
  }
  refuseForeignArrow(input);
  // Own properties only: a field named 'constructor' or 'toString' is missing, not Object.prototype's.
  if (!Object.hasOwn(input, field)) throw invalid(`batch: missing field '${field}' (available: ${Object.keys(input).join(', ')})`);
  const c = (input as Record<string, Column>)[field];
  if (!(Array.isArray(c) || (ArrayBuffer.isView(c) && !(c instanceof DataView)) || c instanceof Vector)) {
    // Anything else with a length (an Arrow Data, an arguments object) would read as all nulls.
    const found = c === null ? 'null' : typeof c !== 'object' ? typeof c : `an object (${(c as object).constructor?.name ?? 'no prototype'})`;
    const ctor = c !== null && typeof c === 'object' ? (c as { constructor?: { name?: string } }).constructor?.name : undefined;
    const hint = ctor === 'Data' ? ': pass the Arrow vector (makeVector(data)), not its Data'
      : ctor === 'Vector' ? ': a vector of another copy of apache-arrow (Cairn reads its own copy\'s vectors)' : '';
    throw invalid(`batch: column '${field}' must be an array, a typed array or an Arrow vector, found ${found}${hint}`);
  }
  return c;
}

/**
 * A Table or RecordBatch made by another copy of apache-arrow (the application's own version, where
 * npm installed Cairn's ^21 under it) fails instanceof, and would read as a plain object of columns
 * named after its properties ("missing field 'user' (available: schema, batches, _offsets)").
 */
function refuseForeignArrow(input: object): void {
  const ctor = (input as { constructor?: { name?: string } }).constructor?.name;
  if ((ctor === 'Table' || ctor === 'RecordBatch') && typeof (input as { getChild?: unknown }).getChild === 'function' && 'schema' in input) {
    throw invalid(`batch: an Arrow ${ctor} of another copy of apache-arrow, which Cairn cannot read (it reads the objects of its own apache-arrow ^21): ` +
      'make the application use the same version (npm ls apache-arrow; npm dedupe), or pass plain columns');
  }
}

/**
 * The value of an IEEE 754 half-precision number given as its 16 bits (Arrow's Float16 columns
 * hold them as a Uint16Array, which would otherwise read as integers).
 */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** Whether an Arrow vector is of Float16 (half precision, stored as raw 16-bit words). */
function isHalf(c: Vector): boolean {
  return c.type.typeId === Type.Float && (c.type as { precision: number }).precision === Precision.HALF;
}

function lengthOf(c: Column): number {
  return c instanceof Vector ? c.length : (c as ArrayLike<unknown>).length;
}

export function batchLength(input: BatchInput): number {
  if (input instanceof Table || input instanceof RecordBatch) return input.numRows;
  if (input === null || typeof input !== 'object') throw invalid('batch: expected an Arrow Table, RecordBatch or an object of columns');
  const first = Object.keys(input)[0];
  return first === undefined ? 0 : lengthOf(columnOf(input, first));
}

function isArrowInt(t: Type): boolean {
  return t === Type.Int;
}

/** Writes a safe integer as int64 into the i32 pair at index i of `w` (little endian). */
function putSafeInt(w: Int32Array, i: number, x: number): void {
  const hi = Math.floor(x / 4294967296);
  w[2 * i] = (x - hi * 4294967296) | 0;
  w[2 * i + 1] = hi;
}

function encodeInt64Keys(c: Column, field: string, n: number): BigInt64Array {
  if (c instanceof BigInt64Array) return c;
  const out = new BigInt64Array(n);
  const w = new Int32Array(out.buffer);
  if (c instanceof Vector) {
    const t = c.type.typeId;
    if (c.nullCount > 0) throw invalid(`batch: key field '${field}' has ${c.nullCount} null keys`);
    if (!isArrowInt(t)) throw invalid(`batch: key field '${field}' must be an integer column for int64 keys, found ${c.type}`);
    // Uint64 values of 2^63 and more do not fit int64 (they would alias negative keys).
    const unsigned64 = !(c.type as { isSigned: boolean }).isSigned && (c.type as { bitWidth: number }).bitWidth === 64;
    let i = 0;
    for (const d of c.data as Data[]) {
      const vals = d.values as ArrayLike<number | bigint>;
      for (let j = 0; j < d.length; j++, i++) {
        const v = vals[j]!;
        if (typeof v === 'bigint') {
          if (unsigned64 && v >= 2n ** 63n) throw invalid(`batch: key field '${field}' row ${i}: ${v} does not fit int64`);
          out[i] = v;
        } else putSafeInt(w, i, v);
      }
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = (c as ArrayLike<unknown>)[i];
    if (typeof v === 'bigint') {
      if (v < -(2n ** 63n) || v >= 2n ** 63n) throw invalid(`batch: key field '${field}' row ${i}: ${v} does not fit int64`);
      out[i] = v;
    } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
      putSafeInt(w, i, v);
    } else if (v === null || v === undefined) {
      throw invalid(`batch: key field '${field}' row ${i} is null; keys must not be null`);
    } else {
      throw invalid(`batch: key field '${field}' row ${i}: expected an integer (number or bigint) for an int64 key, found ${typeof v} ${String(v)}`);
    }
  }
  return out;
}

function encodeUtf8Keys(c: Column, field: string, n: number): EncodedKeys {
  const offsets = new Uint32Array(n + 1);
  if (c instanceof Vector) {
    if (c.nullCount > 0) throw invalid(`batch: key field '${field}' has ${c.nullCount} null keys`);
    const t = c.type.typeId;
    if (t === Type.Utf8 || t === Type.LargeUtf8) {
      // One chunk whose offsets start at 0 (an unsliced column): its buffers are the batch's, as
      // views (the one copy is into Wasm memory, as for numeric columns).
      const only = c.data.length === 1 ? c.data[0]! : null;
      const vo = only?.valueOffsets;
      if (vo instanceof Int32Array && vo.length >= n + 1 && vo[0] === 0) {
        const keyOffsets = new Uint32Array(vo.buffer, vo.byteOffset, n + 1);
        return checkArrowKeys({ type: 'utf8', offsets: keyOffsets, bytes: (only!.values as Uint8Array).subarray(0, vo[n]!) }, field, n);
      }
      // Otherwise copy the UTF-8 bytes of every chunk straight from Arrow's buffers. A sliced chunk's offsets
      // buffer is already sliced (Data.offset only places its validity bits); its bytes are not.
      let total = 0;
      for (const d of c.data as Data[]) {
        const o = d.valueOffsets as ArrayLike<number | bigint>;
        total += Number(o[d.length]!) - Number(o[0]!);
      }
      const bytes = new Uint8Array(total);
      let i = 0;
      let at = 0;
      for (const d of c.data as Data[]) {
        const o = d.valueOffsets as ArrayLike<number | bigint>;
        const first = Number(o[0]!);
        const last = Number(o[d.length]!);
        bytes.set((d.values as Uint8Array).subarray(first, last), at);
        for (let j = 0; j < d.length; j++) offsets[++i] = at + Number(o[j + 1]!) - first;
        at += last - first;
      }
      return checkArrowKeys({ type: 'utf8', offsets, bytes }, field, n);
    }
    if (t === Type.Dictionary) {
      const direct = dictionaryKeys(c, field, n, offsets);
      if (direct) return checkArrowKeys(direct, field, n);
      return encodeStrings(dictionaryStrings(c, field, n), field, n, offsets);
    }
    throw invalid(`batch: key field '${field}' must be a Utf8 or Dictionary<Utf8> column for utf8 keys, found ${c.type}`);
  }
  return encodeStrings(c as ArrayLike<unknown>, field, n, offsets);
}

/**
 * Dictionary<Utf8> keys copied as UTF-8 bytes straight from each chunk's dictionary, by index,
 * without decoding a JS string per row. Null when the layout is one this does not handle (a
 * dictionary with nulls or in several chunks, 64-bit indices): the caller then decodes per row.
 * Sliced buffers (indices, dictionary offsets) are already sliced: Data.offset is not added.
 */
function dictionaryKeys(c: Vector, field: string, n: number, offsets: Uint32Array): (EncodedKeys & { type: 'utf8' }) | null {
  interface Part { dOff: Int32Array; dBytes: Uint8Array; idx: ArrayLike<number>; len: number }
  const parts: Part[] = [];
  let total = 0;
  for (const d of c.data as Data[]) {
    const dict = d.dictionary as Vector | undefined;
    if (!dict || dict.nullCount > 0 || dict.data.length !== 1 || dict.type.typeId !== Type.Utf8) return null;
    const raw = d.values as unknown;
    // 64-bit indices (as pyarrow can write) as doubles: any that large is outside the dictionary.
    const idx = raw instanceof BigInt64Array || raw instanceof BigUint64Array
      ? Float64Array.from(raw.subarray(0, d.length), Number)
      : raw as ArrayLike<number>;
    const dd = dict.data[0]!;
    const p: Part = { dOff: dd.valueOffsets as Int32Array, dBytes: dd.values as Uint8Array, idx, len: d.length };
    const entries = dd.length;
    for (let j = 0; j < p.len; j++) {
      const k = p.idx[j]!;
      if (!(k >= 0 && k < entries)) {
        throw invalid(`batch: key field '${field}' row ${parts.reduce((a, q) => a + q.len, 0) + j}: dictionary index ${String((raw as ArrayLike<unknown>)[j])} is outside the dictionary's ${entries} entries`);
      }
      total += p.dOff[k + 1]! - p.dOff[k]!;
    }
    parts.push(p);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  let i = 0;
  for (const p of parts) {
    const { dOff, dBytes } = p;
    for (let j = 0; j < p.len; j++) {
      const k = p.idx[j]!;
      const s = dOff[k]!;
      const e = dOff[k + 1]!;
      if (e - s <= 32) for (let q = s; q < e; q++) bytes[at++] = dBytes[q]!;
      else {
        bytes.set(dBytes.subarray(s, e), at);
        at += e - s;
      }
      offsets[++i] = at;
    }
  }
  return i === n ? { type: 'utf8', offsets, bytes } : null;
}

/**
 * Dictionary keys decoded to strings row by row, for the layouts dictionaryKeys declines (null or
 * non-Utf8 dictionary entries, a dictionary in several chunks): indices of any width, read from
 * each chunk (Vector.get cannot look up 64-bit indices). A null index or entry stays null, which
 * encodeStrings rejects as a null key.
 */
function dictionaryStrings(c: Vector, field: string, n: number): unknown[] {
  const strings: unknown[] = new Array(n);
  let i = 0;
  for (const d of c.data as Data[]) {
    const dict = d.dictionary as Vector | undefined;
    if (!dict) throw invalid(`batch: key field '${field}' has a dictionary chunk without its dictionary`);
    const idx = d.values as ArrayLike<number | bigint>;
    // Decoding would turn invalid UTF-8 into U+FFFD: each entry used is checked once, as bytes.
    const checked = dict.type.typeId === Type.Utf8 ? new Uint8Array(dict.length) : null;
    for (let j = 0; j < d.length; j++, i++) {
      if (!d.getValid(j)) {
        strings[i] = null;
        continue;
      }
      const k = Number(idx[j]!);
      if (!(k >= 0 && k < dict.length)) throw invalid(`batch: key field '${field}' row ${i}: dictionary index ${idx[j]} is outside the dictionary's ${dict.length} entries`);
      if (checked && checked[k] === 0) {
        const bytes = utf8Entry(dict, k);
        if (bytes && !isUtf8(bytes)) throw invalid(`batch: key field '${field}' row ${i}: expected UTF-8 text, found the bytes ${hexPrefix(bytes)}`);
        checked[k] = 1;
      }
      strings[i] = dict.get(k);
    }
  }
  return strings;
}

/** The bytes of entry k of a Utf8 vector (in whichever of its chunks holds it), or null if null. */
function utf8Entry(v: Vector, k: number): Uint8Array | null {
  for (const d of v.data as Data[]) {
    if (k >= d.length) {
      k -= d.length;
      continue;
    }
    if (!d.getValid(k)) return null;
    const o = d.valueOffsets as Int32Array;
    return (d.values as Uint8Array).subarray(o[k]!, o[k + 1]!);
  }
  return null;
}

/** Reused output of encodeStrings (grown on demand; kept only up to SCRATCH_KEEP_BYTES). */
let stringScratch = new Uint8Array(1 << 16);
const SCRATCH_KEEP_BYTES = 8 << 20;

/**
 * Encodes string keys to UTF-8 in one pass over their characters: ASCII (the common case) is
 * written byte by byte, anything else goes through TextEncoder for that key. A TextEncoder call
 * per key, or joining the keys first, costs more than the encoding itself. The bytes go to a reused
 * scratch buffer and leave as one exact-size copy: one pass touches each key string once (a first
 * pass to size the output measured 15% slower), and no output buffer is zero-filled at 3 bytes a
 * character.
 */
function encodeStrings(c: ArrayLike<unknown>, field: string, n: number, offsets: Uint32Array): EncodedKeys {
  let bytes = stringScratch;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const s = c[i];
    if (typeof s !== 'string') {
      if (s === null || s === undefined) throw invalid(`batch: key field '${field}' row ${i} is null; keys must not be null`);
      throw invalid(`batch: key field '${field}' row ${i}: expected a string for a utf8 key, found ${typeof s}`);
    }
    const len = s.length;
    if (at + len * 3 > bytes.length) {
      const grown = new Uint8Array(Math.max(bytes.length * 2, at + len * 3));
      grown.set(bytes.subarray(0, at));
      bytes = grown;
      if (grown.length <= SCRATCH_KEEP_BYTES) stringScratch = grown;
    }
    let j = 0;
    for (; j < len; j++) {
      const ch = s.charCodeAt(j);
      if (ch >= 0x80) break;
      bytes[at + j] = ch;
    }
    at += j < len ? encoder.encodeInto(s, bytes.subarray(at)).written : len;
    offsets[i + 1] = at;
  }
  return checkKeyLengths({ type: 'utf8', offsets, bytes: bytes.slice(0, at) }, field, n);
}

/**
 * Checks utf8 keys taken as bytes from Arrow: each at most KEY_BYTES_MAX bytes, and each valid
 * UTF-8. Keys are compared on their bytes, so an invalid sequence would be a key of its own that
 * toArrow() decodes (with U+FFFD) to the same string as another key, and that no string names.
 */
function checkArrowKeys(k: EncodedKeys & { type: 'utf8' }, field: string, n: number): EncodedKeys {
  checkKeyLengths(k, field, n);
  const o = k.offsets;
  forEachInvalidUtf8Key(k.bytes, (j) => o[j]!, n, (i) => {
    throw invalid(`batch: key field '${field}' row ${i}: expected UTF-8 text, found the bytes ${hexPrefix(k.bytes.subarray(o[i]!, o[i + 1]!))}`);
  });
  return k;
}

/** Each utf8 key at most KEY_BYTES_MAX bytes. */
function checkKeyLengths(k: EncodedKeys & { type: 'utf8' }, field: string, n: number): EncodedKeys {
  const o = k.offsets;
  for (let i = 0; i < n; i++) {
    if (o[i + 1]! - o[i]! > KEY_BYTES_MAX) throw invalid(`batch: key field '${field}' row ${i}: key of ${o[i + 1]! - o[i]!} bytes exceeds KEY_BYTES_MAX ${KEY_BYTES_MAX}`);
  }
  return k;
}


/** Values as Float64Array with NaN for null. Accepts numeric Arrow and JS columns. */
function encodeValues(c: Column, field: string, n: number): Float64Array {
  if (c instanceof Float64Array) return c;
  const out = new Float64Array(n);
  if (c instanceof Vector) {
    const t = c.type.typeId;
    if (t !== Type.Float && t !== Type.Int) {
      const hint = t === Type.Decimal ? ' (Decimal is not read: cast it to Float64)' : '';
      throw invalid(`batch: value field '${field}' must be a Float or Int column, found ${c.type}${hint}`);
    }
    const half = isHalf(c);
    let i = 0;
    for (const d of c.data as Data[]) {
      const vals = d.values as ArrayLike<number | bigint>;
      if (half) for (let j = 0; j < d.length; j++, i++) out[i] = halfToNumber(vals[j] as number);
      else for (let j = 0; j < d.length; j++, i++) out[i] = Number(vals[j]!);
      if (d.nullCount > 0) {
        for (let j = 0; j < d.length; j++) if (!d.getValid(j)) out[i - d.length + j] = NaN;
      }
    }
    return out;
  }
  if (ArrayBuffer.isView(c)) {
    const a = c as unknown as ArrayLike<number | bigint>;
    for (let i = 0; i < n; i++) out[i] = Number(a[i]!);
    return out;
  }
  const a = c as ArrayLike<unknown>;
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (typeof v === 'number') out[i] = v;
    else if (v === null || v === undefined) out[i] = NaN;
    else if (typeof v === 'bigint') out[i] = Number(v);
    else throw invalid(`batch: value field '${field}' row ${i}: expected a number, found ${typeof v}`);
  }
  return out;
}

/**
 * Checks times given as doubles (integers within ±2^53) on the caller's thread, as Wasm does in
 * WasmCore.writeBatch: for a batch bound for a worker, whose check would come back too late.
 */
export function checkTimes(t: Float64Array, field = 'time'): void {
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if (Math.floor(v) !== v || v > TIME_ABS_MAX || v < -TIME_ABS_MAX) throw badTime(field, i, v);
  }
}

/** The error for row i's time (as bindings/core.ts words it for times checked in Wasm). */
function badTime(field: string, i: number, v: unknown): CairnError {
  return invalid(`batch: time field '${field}' row ${i}: expected an integer number of ms within ±2^53, found ${String(v)}`);
}

/**
 * The largest event time (ms) of a batch's time field, read exactly as ingest reads it (Arrow
 * timestamps in their unit, dates, bigints); -Infinity for no rows. For the streams adapter's
 * watermark, after ingest has accepted the batch.
 */
export function maxEventTime(input: BatchInput, field: string): number {
  const c = columnOf(input, field);
  const t = encodeTimes(c, field, lengthOf(c));
  let max = -Infinity;
  if (t instanceof Float64Array) {
    for (let i = 0; i < t.length; i++) if (t[i]! > max) max = t[i]!;
    return max;
  }
  for (let i = 0; i < t.length; i++) {
    const v = Number(t[i]!);
    if (v > max) max = v;
  }
  return max;
}

/**
 * An Arrow Timestamp value in its unit (TimeUnit 0 s, 1 ms, 2 us, 3 ns) as ms, rounded down (toward
 * -infinity, so times before 1970 too).
 */
export function timestampToMs(v: bigint, unit: number): bigint {
  if (unit === 0) return v * 1000n;
  const div = unit === 2 ? 1000n : unit === 3 ? 1000000n : 1n;
  const ms = v / div;
  return ms * div > v ? ms - 1n : ms;
}

/**
 * Event times as int64 ms; missing, null, NaN or non-integer times reject the batch. A Float64Array
 * is passed through as it is (like int64 keys and float values): bindings/ checks and converts it
 * in Wasm as it copies the batch in (SIMD, a fraction of a JS pass), before any state changes.
 */
function encodeTimes(c: Column, field: string, n: number): BigInt64Array | Float64Array {
  const bad = (i: number, v: unknown) => badTime(field, i, v);
  if (c instanceof Float64Array) return c;
  const out = new BigInt64Array(n);
  const w = new Int32Array(out.buffer);
  if (c instanceof BigInt64Array || (c instanceof Vector && c.type.typeId === Type.Int && (c.type as { bitWidth: number }).bitWidth === 64)) {
    const src = c instanceof Vector ? (c.toArray() as BigInt64Array) : c;
    if (c instanceof Vector && c.nullCount > 0) throw invalid(`batch: time field '${field}' has ${c.nullCount} null times`);
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      if (v > 9007199254740992n || v < -9007199254740992n) throw bad(i, v);
      out[i] = v;
    }
    return out;
  }
  if (c instanceof Vector && c.type.typeId === Type.Timestamp) {
    // Arrow timestamps count seconds, ms, us or ns (TimeUnit 0-3): event time is ms, rounded down.
    if (c.nullCount > 0) throw invalid(`batch: time field '${field}' has ${c.nullCount} null times`);
    const unit = (c.type as { unit: number }).unit;
    const raw = c.toArray() as ArrayLike<bigint | number>;
    for (let i = 0; i < n; i++) {
      const v = BigInt(raw[i]!);
      const ms = timestampToMs(v, unit);
      if (ms > 9007199254740992n || ms < -9007199254740992n) {
        const unitName = ['s', 'ms', 'us', 'ns'][unit] ?? `unit ${unit}`;
        throw invalid(`batch: time field '${field}' row ${i}: ${v} ${unitName} is ${ms} ms, outside ±2^53 ms`);
      }
      out[i] = ms;
    }
    return out;
  }
  let src: ArrayLike<unknown>;
  if (c instanceof Vector) {
    const t = c.type.typeId;
    if (t !== Type.Int && t !== Type.Float && t !== Type.Timestamp && t !== Type.Date) {
      throw invalid(`batch: time field '${field}' must be numeric, found ${c.type}`);
    }
    if (c.nullCount > 0) throw invalid(`batch: time field '${field}' has ${c.nullCount} null times`);
    src = c.toArray() as ArrayLike<unknown>;
    if (isHalf(c)) src = Array.from(src as Uint16Array, halfToNumber);
  } else {
    src = c as ArrayLike<unknown>;
  }
  for (let i = 0; i < n; i++) {
    const v = src[i];
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || Math.abs(v) > TIME_ABS_MAX) throw bad(i, v);
      putSafeInt(w, i, v);
    } else if (typeof v === 'bigint') {
      if (v > 9007199254740992n || v < -9007199254740992n) throw bad(i, v);
      out[i] = v;
    } else {
      throw bad(i, v);
    }
  }
  return out;
}

/** Validates and encodes a batch for an aggregate operator. */
export function encodeBatch(input: BatchInput, spec: NormalizedSpec): EncodedBatch {
  if (input === null || typeof input !== 'object') throw invalid('batch: expected an Arrow Table, RecordBatch or an object of columns');
  const keyCol = columnOf(input, spec.keyField);
  const n = lengthOf(keyCol);
  if (n > BATCH_ROWS_MAX) throw invalid(`batch: ${n} rows exceeds BATCH_ROWS_MAX ${BATCH_ROWS_MAX}; split it`);
  const check = (c: Column, f: string) => {
    const len = lengthOf(c);
    if (len !== n) throw invalid(`batch: column '${f}' has length ${len}, expected ${n} (the length of key column '${spec.keyField}')`);
  };
  const timeCol = spec.timeField ? columnOf(input, spec.timeField) : null;
  if (timeCol) check(timeCol, spec.timeField!);
  const valCols = spec.fields.map((f) => {
    const c = columnOf(input, f);
    check(c, f);
    return c;
  });
  if (!(input instanceof Table || input instanceof RecordBatch)) {
    // Columns the spec does not read must still be columns of the batch's length.
    for (const f of Object.keys(input)) check(columnOf(input, f), f);
  }
  const keys: EncodedKeys = spec.keyType === 'int64'
    ? { type: 'int64', values: encodeInt64Keys(keyCol, spec.keyField, n) }
    : encodeUtf8Keys(keyCol, spec.keyField, n);
  const times = timeCol ? encodeTimes(timeCol, spec.timeField!, n) : null;
  const timeField = times instanceof Float64Array ? spec.timeField! : undefined;
  const values = valCols.map((c, i) => encodeValues(c, spec.fields[i]!, n));
  return timeField === undefined ? { n, keys, times, values } : { n, keys, times, values, timeField };
}

/** Encodes one key for point operations. */
export function encodeKey(key: unknown, type: KeyType): EncodedKey {
  if (type === 'int64') {
    if (typeof key === 'bigint') {
      if (key < -(2n ** 63n) || key >= 2n ** 63n) throw invalid(`key ${key} does not fit int64`);
      return { type, value: key };
    }
    if (typeof key === 'number' && Number.isSafeInteger(key)) return { type, value: BigInt(key) };
    throw invalid(`key: expected an integer (number or bigint) for an int64 key, found ${key === null ? 'null' : typeof key}`);
  }
  if (typeof key !== 'string') throw invalid(`key: expected a string for a utf8 key, found ${key === null ? 'null' : typeof key}`);
  const bytes = encoder.encode(key);
  if (bytes.length > KEY_BYTES_MAX) throw invalid(`key of ${bytes.length} bytes exceeds KEY_BYTES_MAX ${KEY_BYTES_MAX}`);
  return { type, bytes };
}

/** Slices rows [lo, hi) of keys, for splitting a batch by shard. */
export function keyAt(keys: EncodedKeys, i: number): bigint | string {
  if (keys.type === 'int64') return keys.values[i]!;
  return new TextDecoder().decode(keys.bytes.subarray(keys.offsets[i], keys.offsets[i + 1]));
}
