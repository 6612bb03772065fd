/**
 * Streaming input readers: CSV, NDJSON and Arrow IPC files, read in batches of typed columns.
 *
 * A reader never holds the whole file: CSV and NDJSON are read in `chunkBytes` pieces (1 MiB by
 * default) through one reused buffer, decoded to text, and cut into rows; Arrow is read one record batch
 * at a time. Each batch reports `endOffset`, the position just after its last row, so a run that
 * checkpointed after a batch can reopen the file at that offset and read exactly the remaining rows.
 *
 * Offsets. For CSV and NDJSON an offset is a byte position in the file, counted exactly (a multi-byte
 * UTF-8 character counts all its bytes). For Arrow it counts rows: offset k resumes at the (k+1)-th
 * row of the stream, whatever record batch holds it.
 *
 * Lines. Errors name the physical line where the bad row starts (1-based; a newline inside a quoted
 * CSV field starts a new physical line). A batch reports `firstLine` (the line of its first row) and
 * `nextLine` (1 + the number of line feeds before `endOffset`), which a checkpoint may store and pass
 * back as `startLine` so messages after a resume still carry true line numbers. Without `startLine` a
 * resumed reader counts the line feeds before `startOffset` once. For Arrow, lines are 1-based rows.
 *
 * Values. utf8 -> string[]; int64 -> BigInt64Array; float64 -> Float64Array in which NaN stands for
 * null (an empty CSV field, a JSON null or a missing JSON key, an Arrow null); time -> Float64Array of
 * ms since the epoch (see `parseTime`). utf8, int64 and time values are required: an empty int64 or time
 * field, or a missing/null JSON value, makes the row malformed. (An empty CSV utf8 field is the empty
 * string.) Strings may share memory with the reader's text buffer; a consumer that keeps them beyond
 * the batch (rather than copying them into Wasm memory) should copy them.
 *
 * CSV dialect (RFC 4180): a header row is required; fields are separated by ',' and rows end with LF or
 * CRLF; a field that starts with '"' is quoted, may contain ',', CR and LF, and writes '"' as '""'. A
 * '"' inside an unquoted field is kept as data. A CR is a line terminator only before LF or at the end
 * of the file. Blank lines are skipped, so in a one-column file an empty value must be written "". A
 * UTF-8 byte order mark before the header is ignored.
 *
 * NDJSON: one JSON object per line; blank lines and a UTF-8 byte order mark at the start are skipped. int64 values must be JSON integers within
 * ±(2^53 - 1) (beyond that JSON numbers lose digits) or strings of digits. Because a missing key on a float64
 * field is a null, not an error, a misspelt field name is not refused as it is for a CSV header or an
 * Arrow schema; instead each batch reports in `present` how many of its rows have each float64 key.
 *
 * Malformed rows (wrong field count, unparsable value, missing required value, invalid JSON, invalid
 * UTF-8 aside) throw `UsageError("<file>:<line>: expected ..., found ...")`, or with `skipBad` are
 * counted in `skipped` and left out. Invalid UTF-8 is always fatal and is located by byte offset.
 *
 * This file is the front door; the pieces live in readers/: shape.ts (types and limits),
 * text-source.ts (bounded UTF-8 reading with exact offsets), values.ts (text to column values),
 * csv.ts, ndjson.ts and arrow.ts (one per format).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { UsageError, quote } from './errors.js';
import { openArrow } from './readers/arrow.js';
import { LF, csvBatches, readCsvHeader } from './readers/csv.js';
import { ndjsonBatches } from './readers/ndjson.js';
import {
  BATCH_ROWS_MAX,
  CHUNK_BYTES_DEFAULT,
  CHUNK_BYTES_MAX,
  FIELDS_MAX,
  ROW_CHARS_MAX,
  type BatchReader,
  type Opened,
  type ReaderOptions,
} from './readers/shape.js';
import { TextSource, lineAt } from './readers/text-source.js';
import { KIND_CODES } from './readers/values.js';

export {
  BATCH_ROWS_MAX,
  CHUNK_BYTES_DEFAULT,
  CHUNK_BYTES_MAX,
  FIELDS_MAX,
  HEADER_FIELDS_MAX,
  ROW_CHARS_MAX,
  type Batch,
  type BatchReader,
  type Column,
  type FieldKind,
  type FieldSpec,
  type ReaderOptions,
} from './readers/shape.js';
export { utf8Length } from './readers/text-source.js';

/**
 * Opens `options.path`, validates the requested fields against the header (CSV, Arrow), positions the
 * reader at `startOffset`, and returns an async iterator of batches. Errors in the header or the
 * options are thrown here, before any row is read.
 */
export async function openReader(options: ReaderOptions): Promise<BatchReader> {
  const { path, fields, batchRows } = options;
  const startOffset = options.startOffset ?? 0;
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES_DEFAULT;
  if (!Number.isSafeInteger(batchRows) || batchRows < 1 || batchRows > BATCH_ROWS_MAX) {
    throw new UsageError(`expected batchRows between 1 and ${BATCH_ROWS_MAX}, found ${batchRows}`);
  }
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 4 || chunkBytes > CHUNK_BYTES_MAX) {
    throw new UsageError(`expected chunkBytes between 4 and ${CHUNK_BYTES_MAX}, found ${chunkBytes}`);
  }
  if (!Number.isSafeInteger(startOffset) || startOffset < 0) {
    throw new UsageError(`expected a non-negative integer start offset, found ${startOffset}`);
  }
  if (fields.length === 0 || fields.length > FIELDS_MAX) {
    throw new UsageError(`expected 1 to ${FIELDS_MAX} fields to read, found ${fields.length}`);
  }
  const names = new Set(fields.map((f) => f.name));
  if (names.size !== fields.length) throw new UsageError(`expected distinct field names, found ${fields.map((f) => f.name).join(', ')}`);

  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new UsageError(`cannot open input ${quote(path)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  let closed = false;
  const closeFile = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  try {
    const opened =
      options.format === 'arrow'
        ? await openArrow(fh, options, startOffset)
        : await openText(fh, options, startOffset, chunkBytes);
    const generator = opened.batches;
    const reader: BatchReader = {
      header: opened.header,
      next: async () => {
        try {
          const r = await generator.next();
          if (r.done === true) await closeFile();
          return r;
        } catch (e) {
          await closeFile();
          throw e;
        }
      },
      return: async () => {
        await generator.return(undefined);
        await closeFile();
        return { done: true, value: undefined };
      },
      close: async () => {
        await generator.return(undefined);
        await closeFile();
      },
      [Symbol.asyncIterator]() {
        return reader;
      },
    };
    return reader;
  } catch (e) {
    await closeFile();
    throw e;
  }
}

/** Opens CSV or NDJSON: reads the CSV header, then positions the text source at `startOffset`. */
async function openText(fh: FileHandle, options: ReaderOptions, startOffset: number, chunkBytes: number): Promise<Opened> {
  const { path, fields, batchRows } = options;
  const skipBad = options.skipBad === true;
  const rowCharsMax = options.rowCharsMax ?? ROW_CHARS_MAX;
  if (!Number.isSafeInteger(rowCharsMax) || rowCharsMax < 1 || rowCharsMax > ROW_CHARS_MAX) {
    throw new UsageError(`expected rowCharsMax between 1 and ${ROW_CHARS_MAX}, found ${rowCharsMax}`);
  }
  const { size } = await fh.stat();
  if (startOffset > size) {
    throw new UsageError(`cannot resume ${quote(path)} at byte ${startOffset}: expected an offset within the file, found a file of ${size} bytes (did it change?)`);
  }
  const kinds = Uint8Array.from(fields, (f) => KIND_CODES[f.kind]);
  let header: string[] | undefined;
  let headerIndex: Int32Array | undefined;
  let dataStart = 0;
  let line = 1;
  let source = new TextSource(fh, path, 0, chunkBytes, rowCharsMax);

  if (options.format === 'csv') {
    // The header is always read from the start of the file, also when resuming.
    ({ header, headerIndex, nextLine: line } = await readCsvHeader(source, path, fields));
    dataStart = source.byteOffset(source.pos);
  } else if (startOffset === 0) {
    await source.skipByteOrderMark();
  }

  if (startOffset > 0) {
    if (startOffset < dataStart) {
      throw new UsageError(`cannot resume ${quote(path)} at byte ${startOffset}: expected an offset after the header (byte ${dataStart} or later)`);
    }
    if (startOffset < size) {
      const probe = Buffer.alloc(1);
      await fh.read(probe, 0, 1, startOffset - 1);
      if (probe[0] !== LF) {
        throw new UsageError(`cannot resume ${quote(path)} at byte ${startOffset}: expected the start of a line, found the middle of one (did the file change?)`);
      }
    }
    line = options.startLine ?? (await lineAt(fh, startOffset, chunkBytes));
    source = new TextSource(fh, path, startOffset, chunkBytes, rowCharsMax);
  }

  const batches =
    options.format === 'csv'
      ? csvBatches(source, path, fields, kinds, headerIndex!, header!.length, batchRows, skipBad, line)
      : ndjsonBatches(source, path, fields, kinds, batchRows, skipBad, line);
  return { header, batches };
}
