/**
 * Arrow IPC input. Offsets and lines count rows, not bytes (see ../readers.ts).
 */
import type { FileHandle } from 'node:fs/promises';
import { RecordBatchReader, Type, type Data, type RecordBatch, type Vector } from 'apache-arrow';
import { UsageError, ValueError, quote } from '../errors.js';
import { parseTime } from '../parse.js';
import { type Batch, type Column, type FieldSpec, type Opened, type ReaderOptions, listNames } from './shape.js';
import { INT64_MAX, INT64_MIN, utf8Key } from './values.js';
import { forEachInvalidUtf8Key } from '../../store/utf8.js';
import { timestampToMs } from '../../store/batch.js';

/**
 * Arrow IPC (file or stream format, detected from the magic bytes) through apache-arrow's
 * `RecordBatchReader`, which reads one record batch at a time from the file handle. Offsets and lines
 * count rows (see the file comment); a resume reads and drops the record batches before the offset.
 */
export async function openArrow(fh: FileHandle, options: ReaderOptions, startOffset: number): Promise<Opened> {
  const { path, fields } = options;
  let reader: Awaited<ReturnType<typeof RecordBatchReader.from>>;
  const tracked = new TrackedHandle(fh);
  let size: number;
  try {
    size = (await fh.stat()).size;
    reader = await RecordBatchReader.from(tracked as unknown as FileHandle);
    await reader.open();
  } catch (e) {
    throw new UsageError(`${path}: expected an Arrow IPC file or stream, found unreadable data (${(e as Error).message})`, { cause: e });
  }
  // An empty file opens as a reader without a schema.
  if (!reader.schema) throw new UsageError(`${path}: expected an Arrow IPC file or stream, found no schema (an empty file?)`);
  const header = reader.schema.fields.map((f) => f.name);
  for (const field of fields) {
    const count = header.filter((h) => h === field.name).length;
    if (count === 0) {
      throw new UsageError(`${path}: expected a field ${quote(field.name)} in the Arrow schema, found ${listNames(header)}`);
    }
    // As for a CSV header: which of the columns was meant is not for the reader to guess.
    if (count > 1) throw new UsageError(`${path}: expected one field named ${quote(field.name)} in the Arrow schema, found ${count}`);
  }
  // The file format's footer lists its record batches: a damaged one must not end the input early.
  const listed = reader.isFile() ? reader.numRecordBatches : null;
  // A stream format has no footer: its end-of-stream marker must be where the file ends, or a
  // damaged message header that reads as that marker would end the input early.
  const streamEnd = listed === null ? () => ({ read: tracked.end, size }) : null;
  return { header, batches: arrowBatches(reader, options, startOffset, listed, streamEnd) };
}

/**
 * The file handle as apache-arrow reads it (it calls `stat`, `read` and `close`, and checks `fd`),
 * noting the end of the furthest byte read. Closing is left to the caller, who owns the handle.
 */
class TrackedHandle {
  readonly fd: number;
  end = 0;

  constructor(private readonly fh: FileHandle) {
    this.fd = fh.fd;
  }

  stat(): ReturnType<FileHandle['stat']> {
    return this.fh.stat();
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    const r = await this.fh.read(buffer, offset, length, position);
    this.end = Math.max(this.end, position + r.bytesRead);
    return r;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function* arrowBatches(
  reader: AsyncIterable<RecordBatch>,
  options: ReaderOptions,
  startOffset: number,
  listed: number | null,
  streamEnd: (() => { read: number; size: number }) | null,
): AsyncGenerator<Batch, void, undefined> {
  const { path, fields, batchRows } = options;
  const skipBad = options.skipBad === true;
  let offset = 0; // rows of the stream before `record`
  let records = 0;
  const it = reader[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<RecordBatch>;
    try {
      next = await it.next();
    } catch (e) {
      // A truncated or damaged message: input the user must look at, not a bug.
      throw new UsageError(`${path}: unreadable Arrow data after row ${offset} (record batch ${records + 1}): ${(e as Error).message}`, { cause: e });
    }
    if (next.done) break;
    const record = next.value;
    records++;
    const recordRows = record.numRows;
    let begin = Math.max(0, Math.min(recordRows, startOffset - offset));
    while (begin < recordRows) {
      const end = Math.min(recordRows, begin + batchRows);
      const slice = record.slice(begin, end);
      const rows = end - begin;
      const keep = new Uint8Array(rows).fill(1);
      const columns: Column[] = fields.map((field) => {
        const vector = slice.getChild(field.name)!;
        return arrowColumn(vector, field, rows, (r, why) => {
          if (!skipBad) throw new UsageError(`${path}:row ${offset + begin + r + 1}: field ${quote(field.name)}: ${why}`);
          keep[r] = 0;
        });
      });
      const kept = keep.reduce((a, k) => a + k, 0);
      const out: Record<string, Column> = {};
      fields.forEach((field, f) => {
        out[field.name] = kept === rows ? columns[f]! : compact(columns[f]!, keep, kept);
      });
      yield {
        columns: out,
        rows: kept,
        endOffset: offset + end,
        firstLine: offset + begin + 1,
        nextLine: offset + end + 1,
        skipped: rows - kept,
      };
      begin = end;
    }
    offset += recordRows;
  }
  if (listed !== null && records !== listed) {
    throw new UsageError(`${path}: the Arrow file's footer lists ${listed} record batches, but ${records} could be read (${offset} rows): the file is damaged`);
  }
  const end = streamEnd?.();
  if (end !== undefined && end.read < end.size) {
    throw new UsageError(`${path}: the Arrow stream ends at byte ${end.read} (after ${records} record batches, ${offset} rows), but the file has ${end.size} bytes: the file is damaged, or holds more than one stream`);
  }
  if (startOffset > offset) {
    throw new UsageError(`cannot resume ${quote(path)} at row ${startOffset}: expected a row within the stream, found ${offset} rows (did it change?)`);
  }
}

function compact(column: Column, keep: Uint8Array, kept: number): Column {
  if (Array.isArray(column)) return column.filter((_, r) => keep[r] === 1);
  const out = column instanceof BigInt64Array ? new BigInt64Array(kept) : new Float64Array(kept);
  let w = 0;
  for (let r = 0; r < keep.length; r++) if (keep[r] === 1) out[w++] = column[r] as never;
  return out;
}

/** Converts one Arrow column; `bad(row, why)` is called for each value that does not fit `field.kind`. */
function arrowColumn(vector: Vector, field: FieldSpec, rows: number, bad: (row: number, why: string) => void): Column {
  const typeId = vector.type.typeId;
  const noNulls = vector.nullCount === 0;
  const isInt = typeId === Type.Int;
  const isFloat = typeId === Type.Float;
  const isUtf8 = typeId === Type.Utf8 || typeId === Type.LargeUtf8;
  const isTimestamp = typeId === Type.Timestamp || typeId === Type.Date;
  // Fast paths: the exact storage type and no nulls; a copy, so the batch owns its memory.
  if (noNulls && field.kind === 'int64' && isInt && vector.type.ArrayType === BigInt64Array) {
    return (vector.toArray() as BigInt64Array).slice();
  }
  if (noNulls && field.kind === 'float64' && isFloat && vector.type.ArrayType === Float64Array) {
    return (vector.toArray() as Float64Array).slice();
  }
  const typeName = String(vector.type);
  switch (field.kind) {
    case 'utf8': {
      const out = new Array<string>(rows);
      const notUtf8 = invalidUtf8Rows(vector);
      for (let r = 0; r < rows; r++) {
        const v = vector.get(r);
        if (v === null || v === undefined) {
          // A valid dictionary index that reads as null: outside the dictionary, or a null entry.
          bad(r, typeId === Type.Dictionary && vector.isValid(r) ? 'expected a string, found a dictionary index with no entry' : 'expected a string, found null');
          continue;
        }
        if (notUtf8 !== null && notUtf8.has(r)) {
          // Decoding would make it U+FFFD, and so the same key as other text.
          bad(r, 'expected UTF-8 text, found invalid bytes');
          continue;
        }
        try {
          out[r] = utf8Key(isUtf8 ? (v as string) : String(v));
        } catch (e) {
          if (!(e instanceof ValueError)) throw e;
          bad(r, e.message);
        }
      }
      return out;
    }
    case 'int64': {
      const out = new BigInt64Array(rows);
      if (!isInt) {
        bad(0, `expected an integer column, found ${typeName}`);
        for (let r = 1; r < rows; r++) bad(r, `expected an integer column, found ${typeName}`);
        return out;
      }
      for (let r = 0; r < rows; r++) {
        const v = vector.get(r) as number | bigint | null;
        if (v === null) bad(r, 'expected an integer, found null');
        else if (typeof v === 'bigint' && (v < INT64_MIN || v > INT64_MAX)) bad(r, `expected a 64-bit integer, found ${v}`);
        else out[r] = BigInt(v);
      }
      return out;
    }
    case 'float64': {
      const out = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        const v = vector.get(r) as unknown;
        if (v === null || v === undefined) out[r] = NaN;
        else if (isInt || isFloat) out[r] = Number(v);
        else bad(r, `expected a number, found ${typeName}`);
      }
      return out;
    }
    default: {
      const out = new Float64Array(rows);
      // Timestamps are read from their int64 values in their unit: apache-arrow's get() gives
      // fractional ms as a double, which rounds up near a ms boundary (ns) or loses range.
      const stamps = typeId === Type.Timestamp ? timestampMs(vector) : null;
      for (let r = 0; r < rows; r++) {
        // (get() of a timestamp beyond 2^53 ms throws a TypeError: its value is read from stamps.)
        const v = stamps !== null ? (vector.isValid(r) ? 0 : null) : vector.get(r) as unknown;
        try {
          if (v === null || v === undefined) throw new ValueError('expected a time, found null');
          if (stamps !== null) out[r] = parseTime(stamps[r]!);
          else if (isTimestamp) out[r] = parseTime(Math.floor(typeof v === 'number' ? v : Number(v)));
          else if (isInt || isUtf8) out[r] = parseTime(v as number | bigint | string);
          else throw new ValueError(`expected a time, found ${typeName}`);
        } catch (e) {
          if (!(e instanceof ValueError)) throw e;
          bad(r, e.message);
        }
      }
      return out;
    }
  }
}

/**
 * A Timestamp column's values as int64 ms, rounded down (toward -infinity), from its raw int64
 * values and unit (0 s, 1 ms, 2 us, 3 ns). Null rows read as 0 (the caller checks nulls).
 */
function timestampMs(vector: Vector): bigint[] {
  const unit = (vector.type as { unit: number }).unit;
  const out: bigint[] = [];
  for (const d of vector.data as Data[]) {
    // Fixed-width values of a sliced chunk are already sliced (Data.offset places validity bits only).
    const raw = d.values as BigInt64Array | Int32Array;
    for (let j = 0; j < d.length; j++) {
      const v = raw instanceof BigInt64Array ? raw[j]! : BigInt.asIntN(64, (BigInt(raw[2 * j + 1]!) << 32n) | BigInt(raw[2 * j]! >>> 0));
      out.push(timestampToMs(v, unit));
    }
  }
  return out;
}

/**
 * Rows of a Utf8 or Dictionary<Utf8> column whose bytes are not valid UTF-8, or null when all are
 * (one pass over each chunk's bytes in the common case).
 */
function invalidUtf8Rows(vector: Vector): Set<number> | null {
  let bad: Set<number> | null = null;
  const mark = (r: number) => (bad ??= new Set()).add(r);
  let base = 0;
  for (const d of vector.data as Data[]) {
    if (d.type.typeId === Type.Utf8 || d.type.typeId === Type.LargeUtf8) {
      const o = d.valueOffsets as ArrayLike<number | bigint>;
      const b = base;
      forEachInvalidUtf8Key(d.values as Uint8Array, (j) => Number(o[j]!), d.length, (j) => mark(b + j));
    } else if (d.type.typeId === Type.Dictionary && d.dictionary) {
      const entries = invalidUtf8Rows(d.dictionary);
      if (entries !== null) {
        const idx = d.values as ArrayLike<number | bigint>;
        for (let j = 0; j < d.length; j++) if (d.getValid(j) && entries.has(Number(idx[j]!))) mark(base + j);
      }
    }
    base += d.length;
  }
  return bad;
}
