/**
 * Arrow IPC input. Offsets and lines count rows, not bytes (see ../readers.ts).
 */
import type { FileHandle } from 'node:fs/promises';
import { RecordBatchReader, Type, type RecordBatch, type Vector } from 'apache-arrow';
import { UsageError, ValueError, quote } from '../errors.js';
import { parseTime } from '../parse.js';
import { type Batch, type Column, type FieldSpec, type Opened, type ReaderOptions, listNames } from './shape.js';
import { INT64_MAX, INT64_MIN, utf8Key } from './values.js';

/**
 * Arrow IPC (file or stream format, detected from the magic bytes) through apache-arrow's
 * `RecordBatchReader`, which reads one record batch at a time from the file handle. Offsets and lines
 * count rows (see the file comment); a resume reads and drops the record batches before the offset.
 */
export async function openArrow(fh: FileHandle, options: ReaderOptions, startOffset: number): Promise<Opened> {
  const { path, fields } = options;
  let reader: Awaited<ReturnType<typeof RecordBatchReader.from>>;
  try {
    reader = await RecordBatchReader.from(fh);
    await reader.open();
  } catch (e) {
    throw new UsageError(`${path}: expected an Arrow IPC file or stream, found unreadable data (${(e as Error).message})`, { cause: e });
  }
  const header = reader.schema.fields.map((f) => f.name);
  for (const field of fields) {
    if (!header.includes(field.name)) {
      throw new UsageError(`${path}: expected a field ${quote(field.name)} in the Arrow schema, found ${listNames(header)}`);
    }
  }
  return { header, batches: arrowBatches(reader, options, startOffset) };
}

async function* arrowBatches(
  reader: AsyncIterable<RecordBatch>,
  options: ReaderOptions,
  startOffset: number,
): AsyncGenerator<Batch, void, undefined> {
  const { path, fields, batchRows } = options;
  const skipBad = options.skipBad === true;
  let offset = 0; // rows of the stream before `record`
  for await (const record of reader) {
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
      for (let r = 0; r < rows; r++) {
        const v = vector.get(r);
        if (v === null || v === undefined) {
          bad(r, 'expected a string, found null');
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
      for (let r = 0; r < rows; r++) {
        const v = vector.get(r) as unknown;
        try {
          if (v === null || v === undefined) throw new ValueError('expected a time, found null');
          if (isTimestamp) out[r] = Math.floor(typeof v === 'number' ? v : Number(v));
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
