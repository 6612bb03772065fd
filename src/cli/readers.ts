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
 * NDJSON: one JSON object per line; blank lines are skipped. int64 values must be JSON integers within
 * ±2^53 (beyond that JSON numbers lose digits) or strings of digits.
 *
 * Malformed rows (wrong field count, unparsable value, missing required value, invalid JSON, invalid
 * UTF-8 aside) throw `UsageError("<file>:<line>: expected ..., found ...")`, or with `skipBad` are
 * counted in `skipped` and left out. Invalid UTF-8 is always fatal and is located by byte offset.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { RecordBatchReader, Type, type RecordBatch, type Vector } from 'apache-arrow';
import { invariant } from '../errors.js';
import { UsageError, ValueError, quote } from './errors.js';
import { parseTime, type InputFormat } from './parse.js';

// ---------------------------------------------------------------------------------------------------
// Public shapes

export type FieldKind = 'utf8' | 'int64' | 'float64' | 'time';

export interface FieldSpec {
  name: string;
  kind: FieldKind;
}

export type Column = string[] | BigInt64Array | Float64Array;

export interface Batch {
  /** One column per requested field, keyed by field name, each `rows` long. */
  columns: Record<string, Column>;
  rows: number;
  /** Offset just after the last row (kept or skipped) of this batch; pass as `startOffset` to resume. */
  endOffset: number;
  /** Line of the first row of this batch (kept or skipped). */
  firstLine: number;
  /** Line at which the row after this batch starts; pass as `startLine` to resume. */
  nextLine: number;
  /** Malformed rows left out of this batch (only with `skipBad`). */
  skipped: number;
}

export interface ReaderOptions {
  path: string;
  format: InputFormat;
  fields: readonly FieldSpec[];
  /** Most rows (kept plus skipped) per batch; at most `BATCH_ROWS_MAX`. */
  batchRows: number;
  /** An `endOffset` from an earlier batch of the same file, or 0 for the start. */
  startOffset?: number;
  /** The matching `nextLine`; counted from the file when omitted. */
  startLine?: number;
  skipBad?: boolean;
  /** Read size; only tests change it (to split rows and characters across reads). */
  chunkBytes?: number;
  /** Longest row in UTF-16 code units (default and most `ROW_CHARS_MAX`); only tests change it. */
  rowCharsMax?: number;
}

export interface BatchReader extends AsyncIterableIterator<Batch> {
  /** Field names of the CSV header or Arrow schema; undefined for NDJSON. */
  readonly header: readonly string[] | undefined;
  /** Closes the file. Safe to call more than once and after the iteration finished. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Limits

export const CHUNK_BYTES_DEFAULT = 1 << 20;
/** Largest read size accepted from `chunkBytes`. */
export const CHUNK_BYTES_MAX = 64 << 20;
export const BATCH_ROWS_MAX = 1 << 22;
/** Longest row, in UTF-16 code units; beyond this the reader reports a runaway row (an unclosed quote?). */
export const ROW_CHARS_MAX = 64 << 20;
/** Most columns in a CSV header. */
export const HEADER_FIELDS_MAX = 10_000;
/** Most requested fields. */
export const FIELDS_MAX = 1_000;

// ---------------------------------------------------------------------------------------------------
// Entry point

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

interface Opened {
  header: readonly string[] | undefined;
  batches: AsyncGenerator<Batch, void, undefined>;
}

// ---------------------------------------------------------------------------------------------------
// Text source: bounded reads, exact byte accounting

/**
 * Decodes a file as UTF-8 in bounded chunks and keeps the not-yet-consumed text.
 *
 * `text[pos..]` is the unconsumed text. Every chunk handed to the decoder ends on a character boundary
 * (up to three bytes of an incomplete character are carried into the next read), so the byte offset of
 * any position in `text` is known exactly: `byteOffset(i)` adds the UTF-8 length of the characters since
 * the last position asked for, and is a plain addition while the text is pure ASCII.
 */
class TextSource {
  text = '';
  pos = 0;
  eof = false;
  /** Changes whenever `text` is replaced. */
  version = 0;
  /** True while `text` holds only ASCII, so that a character index is also a byte count. */
  private ascii = true;
  /** Byte offset of `text[markChar]`; `markChar` only moves forward between refills. */
  private markChar = 0;
  private markByte: number;
  private filePos: number;
  /** Bytes of an incomplete character kept at the start of `buffer` for the next read. */
  private carry = 0;
  /** Bytes decoded by the last `readChunk`. */
  private lastChunkBytes = 0;
  private readonly buffer: Buffer;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    startByte: number,
    private readonly chunkBytes: number,
    private readonly rowCharsMax: number,
  ) {
    this.buffer = Buffer.allocUnsafe(chunkBytes + 4);
    this.markByte = startByte;
    this.filePos = startByte;
  }

  /** Byte offset in the file of `text[charIndex]`. `charIndex` must not go backwards between refills. */
  byteOffset(charIndex: number): number {
    invariant(charIndex >= this.markChar, `byte offsets asked out of order (${charIndex} < ${this.markChar})`);
    if (this.ascii) return this.markByte + (charIndex - this.markChar);
    this.markByte += utf8Length(this.text, this.markChar, charIndex);
    this.markChar = charIndex;
    return this.markByte;
  }

  /**
   * Drops `text[0..pos)` and appends the next chunk of the file. Sets `eof` (and leaves the text as it
   * was) when the file has no more bytes. `rowLine` names the row being read, for the runaway-row error.
   */
  async refill(rowLine: number): Promise<void> {
    if (this.text.length - this.pos > this.rowCharsMax) {
      throw new UsageError(
        `${this.path}:${rowLine}: expected a row of at most ${this.rowCharsMax} characters, found a longer one (an unclosed quote?)`,
      );
    }
    const keptByte = this.byteOffset(this.pos);
    let tail = this.text.slice(this.pos);
    let tailAscii = this.ascii || utf8Length(tail, 0, tail.length) === tail.length;
    const decoded = await this.readChunk();
    if (decoded === undefined) {
      this.eof = true;
    } else {
      tail = tail.length === 0 ? decoded : tail + decoded;
      tailAscii = tailAscii && decoded.length === this.lastChunkBytes;
    }
    this.text = tail;
    this.version++;
    this.pos = 0;
    this.ascii = tailAscii;
    this.markChar = 0;
    this.markByte = keptByte;
  }

  /** Reads and decodes up to `chunkBytes`, ending on a character boundary; undefined at end of file. */
  private async readChunk(): Promise<string | undefined> {
    for (;;) {
      const { bytesRead } = await this.fh.read(this.buffer, this.carry, this.chunkBytes, this.filePos);
      const total = this.carry + bytesRead;
      if (bytesRead === 0) {
        if (this.carry > 0) this.invalidUtf8(this.filePos - this.carry);
        return undefined;
      }
      const chunkStart = this.filePos - this.carry;
      this.filePos += bytesRead;
      const cut = completeUtf8Prefix(this.buffer, total);
      let text: string;
      try {
        text = this.decoder.decode(this.buffer.subarray(0, cut));
      } catch {
        return this.invalidUtf8(chunkStart);
      }
      this.lastChunkBytes = cut;
      this.carry = total - cut;
      this.buffer.copyWithin(0, cut, total);
      if (cut > 0) return text;
      // Fewer than four bytes arrived and they do not end a character yet: read on.
    }
  }

  private invalidUtf8(from: number): never {
    throw new UsageError(
      `${this.path}: expected UTF-8 text, found an invalid byte sequence in bytes ${from}..${this.filePos} (the file may be binary or in another encoding)`,
    );
  }
}

/** Length of the longest prefix of `bytes[0..end)` that does not end inside a UTF-8 sequence. */
function completeUtf8Prefix(bytes: Uint8Array, end: number): number {
  // Look back at most 3 bytes for the lead byte of the last sequence.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + need > end ? i : end;
  }
  return end; // only continuation bytes: invalid, and the decoder will say so
}

/** UTF-8 byte length of `s[from..to)`. A lone surrogate would be 3 bytes, but decoded UTF-8 has none. */
export function utf8Length(s: string, from: number, to: number): number {
  let bytes = to - from;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    // 2 bytes below U+0800; a surrogate half is half of a 4-byte character; the rest of the BMP is 3.
    bytes += c < 0x800 ? 1 : c >= 0xd800 && c <= 0xdfff ? 1 : 2;
  }
  return bytes;
}

/** 1 + the number of line feeds in `fh[0..end)`, read in bounded chunks. */
async function lineAt(fh: FileHandle, end: number, chunkBytes: number): Promise<number> {
  const buffer = Buffer.allocUnsafe(chunkBytes);
  let line = 1;
  for (let pos = 0; pos < end; ) {
    const { bytesRead } = await fh.read(buffer, 0, Math.min(chunkBytes, end - pos), pos);
    if (bytesRead === 0) break;
    for (let i = buffer.indexOf(10, 0); i >= 0 && i < bytesRead; i = buffer.indexOf(10, i + 1)) line++;
    pos += bytesRead;
  }
  return line;
}

// ---------------------------------------------------------------------------------------------------
// Value conversion (shared by CSV and NDJSON)

const KIND_UTF8 = 0;
const KIND_INT64 = 1;
const KIND_FLOAT64 = 2;
const KIND_TIME = 3;
const KIND_CODES: Record<FieldKind, number> = { utf8: KIND_UTF8, int64: KIND_INT64, float64: KIND_FLOAT64, time: KIND_TIME };

/** Exact powers of ten for the float fast path (10^22 is the largest exactly representable one). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Rows allocated when a batch starts; it doubles up to `batchRows`, so tiny files stay cheap. */
const BATCH_CAPACITY_INITIAL = 1024;

/** Column storage for one batch, with the int64 columns also seen as 32-bit halves for fast writes. */
class BatchBuilder {
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
function putInt64(b: BatchBuilder, f: number, row: number, s: string, start: number, end: number): void {
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
 * correctly rounded); anything else is validated and handed to `Number`.
 */
function parseFloat64(s: string, start: number, end: number): number {
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
  return Number(text);
}

/** Parses a time from `s[start..end)`: a fast path for plain digits, else `parseTime`. */
function parseTimeSpan(s: string, start: number, end: number): number {
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

// ---------------------------------------------------------------------------------------------------
// CSV and NDJSON

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;

/**
 * Finds the fields of one CSV record. `scan` records the span of each of the first `capacity` fields
 * (between the quotes for a quoted field) and returns the index just after the record, or -1 when the
 * record may continue beyond the text read so far. A malformed record (junk after a closing quote, an
 * unclosed quote at end of file) sets `error` and ends at the next line feed (or the end of the file).
 */
class CsvScanner {
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  /** 0: unquoted, 1: quoted, 2: quoted with "" escapes. */
  readonly quoting: Uint8Array;
  fieldCount = 0;
  /** Line feeds inside the record, its terminator included. */
  lineFeeds = 0;
  error: string | undefined;

  constructor(readonly capacity: number) {
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
    this.quoting = new Uint8Array(capacity);
  }

  /**
   * Positions of the next '"' and ',' at or after the last scan, in the text of `version`; Infinity
   * when there is none. Caching them keeps the native `indexOf` searches linear over the whole text.
   */
  private version = -1;
  private quoteAt = -1;
  private commaAt = -1;

  /**
   * Scans the record at `s[pos..]`. `version` must change whenever `s` does (after a refill). Rows
   * without any '"' take a fast path that finds delimiters with `indexOf`; the general path walks the
   * record character by character.
   */
  scan(s: string, pos: number, eof: boolean, version: number): number {
    const n = s.length;
    this.error = undefined;
    if (version !== this.version) {
      this.version = version;
      this.quoteAt = -1;
      this.commaAt = -1;
    }
    if (this.quoteAt < pos) {
      const q = s.indexOf('"', pos);
      this.quoteAt = q < 0 ? Infinity : q;
    }
    let lf = s.indexOf('\n', pos);
    if (lf < 0) {
      if (!eof) return -1;
      lf = n;
    }
    if (lf < this.quoteAt) {
      // No quote in this record: fields run between commas; a CR before the LF (or ending the file)
      // belongs to the terminator.
      const end = lf > pos && s.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
      let start = pos;
      let field = 0;
      for (;;) {
        if (this.commaAt < start) {
          const c = s.indexOf(',', start);
          this.commaAt = c < 0 ? Infinity : c;
        }
        const comma = this.commaAt;
        if (comma >= end) break;
        if (field < this.capacity) {
          this.starts[field] = start;
          this.ends[field] = comma;
          this.quoting[field] = 0;
        }
        field++;
        start = comma + 1;
      }
      if (field < this.capacity) {
        this.starts[field] = start;
        this.ends[field] = end;
        this.quoting[field] = 0;
      }
      return lf < n ? this.done(field + 1, 1, lf + 1) : this.done(field + 1, 0, n);
    }
    return this.scanQuoted(s, pos, eof);
  }

  private scanQuoted(s: string, pos: number, eof: boolean): number {
    const n = s.length;
    let i = pos;
    let field = 0;
    let lineFeeds = 0;
    for (;;) {
      let start: number;
      let end: number;
      let quoting = 0;
      if (i < n && s.charCodeAt(i) === QUOTE) {
        start = i + 1;
        quoting = 1;
        let j = start;
        for (;;) {
          const q = s.indexOf('"', j);
          if (q < 0) {
            if (!eof) return -1;
            this.error = 'expected a closing \'"\', found the end of the file';
            return this.fail(n, countLineFeeds(s, start, n));
          }
          if (q + 1 >= n && !eof) return -1; // cannot tell '"' from '""' yet
          if (q + 1 < n && s.charCodeAt(q + 1) === QUOTE) {
            quoting = 2;
            j = q + 2;
            continue;
          }
          end = q;
          i = q + 1;
          break;
        }
        lineFeeds += countLineFeeds(s, start, end);
      } else {
        start = i;
        let c = 0;
        for (;;) {
          while (i < n) {
            c = s.charCodeAt(i);
            if (c === COMMA || c === LF || c === CR) break;
            i++;
          }
          // A CR not followed by LF is data (unless it ends the text; decided below).
          if (i + 1 < n && c === CR && s.charCodeAt(i + 1) !== LF) {
            i++;
            continue;
          }
          break;
        }
        end = i;
      }
      if (field < this.capacity) {
        this.starts[field] = start;
        this.ends[field] = end;
        this.quoting[field] = quoting;
      }
      field++;
      if (i >= n) {
        if (!eof) return -1;
        return this.done(field, lineFeeds, n);
      }
      const c = s.charCodeAt(i);
      if (c === COMMA) {
        i++;
        continue;
      }
      if (c === LF) return this.done(field, lineFeeds + 1, i + 1);
      if (c === CR) {
        if (i + 1 >= n) return eof ? this.done(field, lineFeeds, n) : -1;
        if (s.charCodeAt(i + 1) === LF) return this.done(field, lineFeeds + 1, i + 2);
      }
      // Only reachable just after a closing quote.
      this.error = `expected ',' or the end of the line after a closing '"', found ${quote(s.slice(i, i + 10))}`;
      const lf = s.indexOf('\n', i);
      if (lf < 0 && !eof) return -1;
      return this.fail(lf < 0 ? n : lf + 1, lineFeeds + (lf < 0 ? 0 : 1));
    }
  }

  private done(fieldCount: number, lineFeeds: number, next: number): number {
    this.fieldCount = fieldCount;
    this.lineFeeds = lineFeeds;
    return next;
  }

  private fail(next: number, lineFeeds: number): number {
    this.fieldCount = 0;
    this.lineFeeds = lineFeeds;
    return next;
  }
}

function countLineFeeds(s: string, from: number, to: number): number {
  let count = 0;
  for (let i = s.indexOf('\n', from); i >= 0 && i < to; i = s.indexOf('\n', i + 1)) count++;
  return count;
}

/** Text of field `h` of the last scanned record, with "" unescaped. */
function csvFieldText(s: string, scanner: CsvScanner, h: number): string {
  const text = s.slice(scanner.starts[h]!, scanner.ends[h]!);
  return scanner.quoting[h] === 2 ? text.replaceAll('""', '"') : text;
}

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
    const scanner = new CsvScanner(HEADER_FIELDS_MAX);
    let next = -1;
    let bomChecked = false;
    for (;;) {
      const s = source.text;
      if (!bomChecked && s.length > 0) {
        // A byte order mark is not data; skip it so that a quoted first field still starts with '"'.
        bomChecked = true;
        if (s.charCodeAt(0) === 0xfeff) source.pos = 1;
      }
      // Skip blank lines before the header.
      while (source.pos < s.length && (s.charCodeAt(source.pos) === LF || (s.charCodeAt(source.pos) === CR && s.charCodeAt(source.pos + 1) === LF))) {
        source.pos += s.charCodeAt(source.pos) === LF ? 1 : 2;
        line++;
      }
      if (source.pos < s.length) {
        next = scanner.scan(s, source.pos, source.eof, source.version);
        if (next >= 0) break;
      } else if (source.eof) {
        throw new UsageError(`${path}: expected a header row, found an empty file`);
      }
      await source.refill(line);
    }
    if (scanner.error !== undefined) throw new UsageError(`${path}:${line}: in the header, ${scanner.error}`);
    if (scanner.fieldCount > HEADER_FIELDS_MAX) {
      throw new UsageError(`${path}:${line}: expected at most ${HEADER_FIELDS_MAX} header fields, found ${scanner.fieldCount}`);
    }
    header = [];
    for (let h = 0; h < scanner.fieldCount; h++) header.push(csvFieldText(source.text, scanner, h));
    headerIndex = new Int32Array(fields.length);
    fields.forEach((field, f) => {
      const at = header!.indexOf(field.name);
      if (at < 0) {
        throw new UsageError(`${path}: expected a field ${quote(field.name)} in the header, found ${listNames(header!)}`);
      }
      if (header!.indexOf(field.name, at + 1) >= 0) {
        throw new UsageError(`${path}: expected one field named ${quote(field.name)} in the header, found several`);
      }
      headerIndex![f] = at;
    });
    line += scanner.lineFeeds;
    source.pos = next;
    dataStart = source.byteOffset(next);
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

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 20).map((n) => quote(n)).join(', ');
  return names.length > 20 ? `${shown} and ${names.length - 20} more` : shown === '' ? 'no fields' : shown;
}

async function* csvBatches(
  source: TextSource,
  path: string,
  fields: readonly FieldSpec[],
  kinds: Uint8Array,
  headerIndex: Int32Array,
  headerCount: number,
  batchRows: number,
  skipBad: boolean,
  startLine: number,
): AsyncGenerator<Batch, void, undefined> {
  const scanner = new CsvScanner(headerCount);
  const fieldCount = fields.length;
  let line = startLine;
  for (;;) {
    const b = new BatchBuilder(kinds, batchRows);
    let firstLine = -1;
    while (b.rows + b.skipped < batchRows) {
      const s = source.text;
      const pos = source.pos;
      const n = s.length;
      if (pos >= n) {
        if (source.eof) break;
        await source.refill(line);
        continue;
      }
      const c = s.charCodeAt(pos);
      if (c === LF) {
        source.pos = pos + 1;
        line++;
        continue;
      }
      if (c === CR && (pos + 1 < n || source.eof)) {
        // A blank CRLF line, or a lone CR ending the file.
        if (pos + 1 === n) {
          source.pos = n;
          continue;
        }
        if (s.charCodeAt(pos + 1) === LF) {
          source.pos = pos + 2;
          line++;
          continue;
        }
      }
      const next = scanner.scan(s, pos, source.eof, source.version);
      if (next < 0) {
        await source.refill(line);
        continue;
      }
      const rowLine = line;
      line += scanner.lineFeeds;
      source.pos = next;
      if (firstLine < 0) firstLine = rowLine;
      let problem = scanner.error;
      if (problem === undefined && scanner.fieldCount !== headerCount) {
        problem = `expected ${headerCount} fields (as in the header), found ${scanner.fieldCount}`;
      }
      if (problem === undefined) {
        b.reserve();
        const row = b.rows;
        let f = 0;
        try {
          for (; f < fieldCount; f++) {
            const h = headerIndex[f]!;
            // Most fields are read in place; only a field with "" escapes is copied out first.
            const escaped = scanner.quoting[h] === 2;
            const text = escaped ? csvFieldText(s, scanner, h) : s;
            const start = escaped ? 0 : scanner.starts[h]!;
            const end = escaped ? text.length : scanner.ends[h]!;
            switch (kinds[f]) {
              case KIND_UTF8:
                (b.columns[f] as string[])[row] = escaped ? text : s.slice(start, end);
                break;
              case KIND_INT64:
                putInt64(b, f, row, text, start, end);
                break;
              case KIND_FLOAT64:
                (b.columns[f] as Float64Array)[row] = parseFloat64(text, start, end);
                break;
              default:
                (b.columns[f] as Float64Array)[row] = parseTimeSpan(text, start, end);
            }
          }
          b.rows++;
          continue;
        } catch (e) {
          if (!(e instanceof ValueError)) throw e;
          problem = `field ${quote(fields[f]!.name)}: ${e.message}`;
        }
      }
      if (!skipBad) throw new UsageError(`${path}:${rowLine}: ${problem}`);
      b.skipped++;
    }
    if (b.rows === 0 && b.skipped === 0) return;
    yield { columns: b.finish(fields), rows: b.rows, endOffset: source.byteOffset(source.pos), firstLine, nextLine: line, skipped: b.skipped };
  }
}

async function* ndjsonBatches(
  source: TextSource,
  path: string,
  fields: readonly FieldSpec[],
  kinds: Uint8Array,
  batchRows: number,
  skipBad: boolean,
  startLine: number,
): AsyncGenerator<Batch, void, undefined> {
  const names = fields.map((f) => f.name);
  let line = startLine;
  for (;;) {
    const b = new BatchBuilder(kinds, batchRows);
    let firstLine = -1;
    while (b.rows + b.skipped < batchRows) {
      const s = source.text;
      const pos = source.pos;
      if (pos >= s.length) {
        if (source.eof) break;
        await source.refill(line);
        continue;
      }
      const lf = s.indexOf('\n', pos);
      if (lf < 0 && !source.eof) {
        await source.refill(line);
        continue;
      }
      const end = lf < 0 ? s.length : lf;
      const rowLine = line;
      source.pos = lf < 0 ? s.length : lf + 1;
      if (lf >= 0) line++;
      if (end === pos || (end === pos + 1 && s.charCodeAt(pos) === CR)) continue; // blank line
      const problem = putJsonLine(b, s.slice(pos, end), names, kinds);
      if (problem === null) continue; // a line of blanks
      if (firstLine < 0) firstLine = rowLine;
      if (problem === undefined) continue;
      if (!skipBad) throw new UsageError(`${path}:${rowLine}: ${problem}`);
      b.skipped++;
    }
    if (b.rows === 0 && b.skipped === 0) return;
    yield { columns: b.finish(fields), rows: b.rows, endOffset: source.byteOffset(source.pos), firstLine, nextLine: line, skipped: b.skipped };
  }
}

/**
 * Parses one NDJSON line and stores it as row `b.rows`. Returns undefined when the row was stored, null
 * when the line holds only blanks, and otherwise what is wrong with it.
 */
function putJsonLine(b: BatchBuilder, text: string, names: readonly string[], kinds: Uint8Array): string | null | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    if (text.trim() === '') return null;
    return `expected a JSON object, found invalid JSON (${(e as Error).message.split('\n')[0]})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `expected a JSON object, found ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
  }
  const object = value as Record<string, unknown>;
  b.reserve();
  const row = b.rows;
  let f = 0;
  try {
    for (; f < names.length; f++) {
      const name = names[f]!;
      let v = object[name];
      if (v !== undefined && !Object.hasOwn(object, name)) v = undefined; // inherited, e.g. "constructor"
      putJson(b, f, kinds[f]!, row, v);
    }
  } catch (e) {
    if (!(e instanceof ValueError)) throw e;
    return `field ${quote(names[f]!)}: ${e.message}`;
  }
  b.rows++;
  return undefined;
}

function describeJson(v: unknown): string {
  if (v === undefined) return 'it missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${quote(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

function putJson(b: BatchBuilder, f: number, kind: number, row: number, v: unknown): void {
  switch (kind) {
    case KIND_UTF8:
      if (typeof v === 'string') (b.columns[f] as string[])[row] = v;
      else if (typeof v === 'number' && Number.isFinite(v)) (b.columns[f] as string[])[row] = String(v);
      else throw new ValueError(`expected a string, found ${describeJson(v)}`);
      return;
    case KIND_INT64:
      if (typeof v === 'number') {
        if (!Number.isSafeInteger(v)) {
          throw new ValueError(`expected an integer within ±2^53 (write larger ones as strings), found ${v}`);
        }
        b.setInt64(f, row, v);
      } else if (typeof v === 'string') {
        putInt64(b, f, row, v, 0, v.length);
      } else {
        throw new ValueError(`expected an integer, found ${describeJson(v)}`);
      }
      return;
    case KIND_FLOAT64:
      if (typeof v === 'number') (b.columns[f] as Float64Array)[row] = v;
      else if (v === null || v === undefined) (b.columns[f] as Float64Array)[row] = NaN;
      else if (typeof v === 'string') (b.columns[f] as Float64Array)[row] = parseFloat64(v, 0, v.length);
      else throw new ValueError(`expected a number, found ${describeJson(v)}`);
      return;
    default:
      if (typeof v === 'number' || typeof v === 'string') (b.columns[f] as Float64Array)[row] = parseTime(v);
      else throw new ValueError(`expected a time, found ${describeJson(v)}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Arrow

/**
 * Arrow IPC (file or stream format, detected from the magic bytes) through apache-arrow's
 * `RecordBatchReader`, which reads one record batch at a time from the file handle. Offsets and lines
 * count rows (see the file comment); a resume reads and drops the record batches before the offset.
 */
async function openArrow(fh: FileHandle, options: ReaderOptions, startOffset: number): Promise<Opened> {
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
        if (v === null || v === undefined) bad(r, 'expected a string, found null');
        else out[r] = isUtf8 ? (v as string) : String(v);
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
