/**
 * Converting field text to column values, and the per-batch column storage. Shared by the CSV and
 * NDJSON readers; the Arrow reader uses the int64 bounds.
 */
import { Buffer } from 'node:buffer';
import { invariant } from '../../errors.js';
import { KEY_BYTES_MAX } from '../../store/batch.js';
import { ValueError, quote } from '../errors.js';
import { parseTime } from '../parse.js';
import type { Column, FieldKind, FieldSpec } from './shape.js';

/** Field kinds as small integers, for the switch in the per-field loops. */
export const KIND_UTF8 = 0;
export const KIND_INT64 = 1;
export const KIND_FLOAT64 = 2;
export const KIND_TIME = 3;
export const KIND_CODES: Record<FieldKind, number> = { utf8: KIND_UTF8, int64: KIND_INT64, float64: KIND_FLOAT64, time: KIND_TIME };

/** Exact powers of ten for the float fast path (10^22 is the largest exactly representable one). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * `s` as a utf8 key: at most KEY_BYTES_MAX bytes of UTF-8 (the store's limit), else a ValueError,
 * so that the row is a malformed row with its line (skipped by --skip-bad) rather than a batch the
 * store refuses whole.
 */
export function utf8Key(s: string): string {
  // Up to 3 bytes per UTF-16 unit: most keys are settled without counting.
  if (s.length * 3 > KEY_BYTES_MAX) {
    const bytes = Buffer.byteLength(s, 'utf8');
    if (bytes > KEY_BYTES_MAX) throw new ValueError(`expected a key of at most ${KEY_BYTES_MAX} bytes of UTF-8, found ${bytes} bytes`);
  }
  return s;
}

/** Rows allocated when a batch starts; it doubles up to `batchRows`, so tiny files stay cheap. */
const BATCH_CAPACITY_INITIAL = 1024;

/** Column storage for one batch, with the int64 columns also seen as 32-bit halves for fast writes. */
export class BatchBuilder {
  columns: Column[] = [];
  private lo: (Uint32Array | undefined)[] = [];
  private hi: (Int32Array | undefined)[] = [];
  capacity = 0;
  rows = 0;
  skipped = 0;

  constructor(
    private readonly kinds: Uint8Array,
    private readonly limit: number,
  ) {
    this.allocate(Math.min(limit, BATCH_CAPACITY_INITIAL));
  }

  /** Makes room for row `this.rows`. Called before each row is converted. */
  reserve(): void {
    if (this.rows < this.capacity) return;
    invariant(this.capacity < this.limit, `batch overflow (${this.rows} rows, limit ${this.limit})`);
    const old = this.columns;
    this.allocate(Math.min(this.limit, this.capacity * 2));
    old.forEach((column, f) => {
      const target = this.columns[f]!;
      if (Array.isArray(column)) for (let r = 0; r < column.length; r++) (target as string[])[r] = column[r]!;
      else (target as BigInt64Array | Float64Array).set(column as never);
    });
  }

  private allocate(capacity: number): void {
    this.capacity = capacity;
    this.columns = [];
    this.lo = [];
    this.hi = [];
    for (const kind of this.kinds) {
      let column: Column;
      if (kind === KIND_UTF8) column = new Array<string>(capacity);
      else if (kind === KIND_INT64) column = new BigInt64Array(capacity);
      else column = new Float64Array(capacity);
      this.columns.push(column);
      const wide = column instanceof BigInt64Array && LITTLE_ENDIAN ? column.buffer : undefined;
      this.lo.push(wide === undefined ? undefined : new Uint32Array(wide, 0, capacity * 2));
      this.hi.push(wide === undefined ? undefined : new Int32Array(wide, 0, capacity * 2));
    }
  }

  /** Stores a safe integer into int64 column `f` without allocating a BigInt. */
  setInt64(f: number, row: number, v: number): void {
    const lo = this.lo[f];
    if (lo === undefined) {
      (this.columns[f] as BigInt64Array)[row] = BigInt(v);
      return;
    }
    const high = Math.floor(v / 4294967296);
    lo[2 * row] = v - high * 4294967296;
    this.hi[f]![2 * row + 1] = high;
  }

  finish(fields: readonly FieldSpec[]): Record<string, Column> {
    const out: Record<string, Column> = {};
    fields.forEach((field, f) => {
      const column = this.columns[f]!;
      if (column.length === this.rows) out[field.name] = column;
      else out[field.name] = Array.isArray(column) ? column.slice(0, this.rows) : column.subarray(0, this.rows);
    });
    return out;
  }
}

/**
 * Parses an integer from `s[start..end)` into column `f`. Up to 15 digits are accumulated in a double
 * (exact below 2^53); longer ones go through BigInt with a range check.
 */
export function putInt64(b: BatchBuilder, f: number, row: number, s: string, start: number, end: number): void {
  let i = start;
  const sign = s.charCodeAt(i);
  const negative = sign === 45; /* - */
  if (negative || sign === 43 /* + */) i++;
  const digits = end - i;
  if (digits > 0 && digits <= 15) {
    let v = 0;
    for (; i < end; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) throw notInteger(s, start, end);
      v = v * 10 + d;
    }
    b.setInt64(f, row, negative ? -v : v);
    return;
  }
  const text = s.slice(start, end);
  if (digits === 0 || !/^[+-]?\d+$/.test(text)) throw notInteger(s, start, end);
  const big = BigInt(text);
  if (big < INT64_MIN || big > INT64_MAX) throw new ValueError(`expected a 64-bit integer, found ${quote(text)} (out of range)`);
  (b.columns[f] as BigInt64Array)[row] = big;
}

function notInteger(s: string, start: number, end: number): ValueError {
  return new ValueError(start === end ? 'expected an integer, found an empty value' : `expected an integer, found ${quote(s.slice(start, end))}`);
}

/**
 * Parses a decimal number from `s[start..end)`; empty is NaN (null). Plain decimals with at most 15
 * significant digits take Clinger's fast path (an exact integer divided by an exact power of ten is
 * correctly rounded); anything else is validated and handed to `Number`. A number beyond float64's
 * range (`1e400`) is a ValueError, not ±Infinity.
 */
export function parseFloat64(s: string, start: number, end: number): number {
  if (start === end) return NaN;
  let i = start;
  const sign = s.charCodeAt(i);
  const negative = sign === 45;
  if (negative || sign === 43) i++;
  let mantissa = 0;
  let digits = 0;
  let fraction = -1;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    const d = c - 48;
    if (d >= 0 && d <= 9) {
      mantissa = mantissa * 10 + d;
      digits++;
    } else if (c === 46 /* . */ && fraction < 0) {
      fraction = i;
    } else {
      break;
    }
  }
  if (i === end && digits > 0 && digits <= 15) {
    const scale = fraction < 0 ? 0 : end - fraction - 1;
    const v = scale === 0 ? mantissa : mantissa / POW10[scale]!;
    return negative ? -v : v;
  }
  const text = s.slice(start, end);
  if (!FLOAT_RE.test(text)) throw new ValueError(`expected a number, found ${quote(text)}`);
  const v = Number(text);
  if (!Number.isFinite(v)) throw new ValueError(`expected a number within the float64 range (±1.8e308), found ${quote(text)}`);
  return v;
}

/** Parses a time from `s[start..end)`: a fast path for plain digits, else `parseTime`. */
export function parseTimeSpan(s: string, start: number, end: number): number {
  const n = end - start;
  if (n > 0 && n <= 15) {
    let v = 0;
    let i = start;
    for (; i < end; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (i === end) return v;
  }
  if (n === 0) throw new ValueError('expected a time, found an empty value');
  return parseTime(s.slice(start, end));
}
