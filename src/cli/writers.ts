/**
 * Result writers: CSV (with a header row) or NDJSON, chosen by the file extension, written through a
 * bounded buffer and resumable after a crash.
 *
 * Resumption. A checkpoint records `bytesWritten` after `sync()`. A resumed run reopens the file with
 * `truncateTo` set to that length: everything the crashed run wrote after the checkpoint is cut off,
 * and the rows the resumed run recomputes are appended, so the final file is byte-identical to one
 * written in a single run. A CSV header is written only by the first write into an empty file; on a
 * resume into a non-empty file the existing header is read back and must match the columns written.
 *
 * Formatting is deterministic: strings as they are (CSV quotes a field containing ',', '"', CR or LF,
 * and writes the empty string as ""), integers (bigint, or integral numbers) without a decimal point,
 * other numbers with JavaScript's `String(x)` (shortest round-trip form), and null (null, undefined or
 * NaN) as an empty CSV field or JSON `null`. JSON has no infinities, so ±Infinity is `null` in NDJSON
 * and `Infinity`/`-Infinity` in CSV.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { CairnError } from '../errors.js';
import { UsageError, quote } from './errors.js';
import type { OutputFormat } from './parse.js';

/** One output column; at least as long as the `rows` written from it. */
export type OutputColumn =
  | readonly (string | number | bigint | boolean | null | undefined)[]
  | BigInt64Array
  | BigUint64Array
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/** Buffered text (UTF-16 code units) that triggers a write; at most 3 bytes each in UTF-8. */
export const WRITE_BUFFER_CHARS = 1 << 20;
/** Longest CSV header line read back on resume. */
export const HEADER_BYTES_MAX = 1 << 20;

/** The output format of `path` from its extension: .csv, or .ndjson / .jsonl. */
export function outputFormatOf(path: string): OutputFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.ndjson') || lower.endsWith('.jsonl')) return 'ndjson';
  throw new UsageError(`expected an output file ending in .csv, .ndjson or .jsonl, found ${quote(path)}`);
}

const CSV_SPECIAL_RE = /[",\r\n]/;

function csvString(s: string): string {
  if (s === '') return '""';
  return CSV_SPECIAL_RE.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function csvValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return csvString(v);
    case 'number':
      return v === v ? String(v) : ''; // NaN is null
    case 'bigint':
    case 'boolean':
      return String(v);
    default:
      if (v === null || v === undefined) return '';
      throw new CairnError('invalid', `expected an output value (string, number, bigint, boolean or null), found ${typeof v}`);
  }
}

function jsonValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'bigint':
    case 'boolean':
      return String(v);
    default:
      if (v === null || v === undefined) return 'null';
      throw new CairnError('invalid', `expected an output value (string, number, bigint, boolean or null), found ${typeof v}`);
  }
}

export class OutputWriter {
  /** File length once everything handed to `fh.write` has landed. */
  private written: number;
  private pending: string[] = [];
  private pendingChars = 0;
  /** The columns as first written (their names joined), to check later calls against. */
  private columnKey: string | undefined;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly format: OutputFormat,
    start: number,
    /** The header found in the file on resume (CSV, non-empty file), without its line terminator. */
    private readonly existingHeader: string | undefined,
  ) {
    this.written = start;
  }

  /**
   * Opens `path` for writing. Without `truncateTo` the file is created or emptied. With `truncateTo`
   * (a `bytesWritten` recorded earlier) the file must exist with at least that many bytes (unless it is
   * 0) and is cut to exactly that length. `format` overrides the extension.
   */
  static async open(path: string, options: { truncateTo?: number; format?: OutputFormat } = {}): Promise<OutputWriter> {
    const format = options.format ?? outputFormatOf(path);
    const truncateTo = options.truncateTo;
    if (truncateTo === undefined) {
      return new OutputWriter(await openOrFail(path, 'w'), path, format, 0, undefined);
    }
    if (!Number.isSafeInteger(truncateTo) || truncateTo < 0) {
      throw new CairnError('invalid', `expected truncateTo to be a non-negative integer, found ${truncateTo}`);
    }
    let size: number | undefined;
    try {
      size = (await stat(path)).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`cannot open output ${quote(path)}: ${(e as Error).message}`, { cause: e });
    }
    if (size === undefined) {
      if (truncateTo > 0) {
        throw new UsageError(`cannot resume output ${quote(path)}: expected a file of at least ${truncateTo} bytes, found no file`);
      }
      return new OutputWriter(await openOrFail(path, 'w'), path, format, 0, undefined);
    }
    if (size < truncateTo) {
      throw new UsageError(
        `cannot resume output ${quote(path)}: expected at least ${truncateTo} bytes (as checkpointed), found ${size} (was it changed?)`,
      );
    }
    const fh = await openOrFail(path, 'r+');
    try {
      await fh.truncate(truncateTo);
      const header = format === 'csv' && truncateTo > 0 ? await readHeaderLine(fh, path, truncateTo) : undefined;
      return new OutputWriter(fh, path, format, truncateTo, header);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /**
   * Exact length of the file once buffered text is flushed: bytes on disk plus buffered bytes. Record it
   * in a checkpoint only after `sync()`, so that the bytes it counts are durable.
   */
  get bytesWritten(): number {
    if (this.pending.length === 0) return this.written;
    if (this.pending.length > 1) this.pending = [this.pending.join('')];
    return this.written + Buffer.byteLength(this.pending[0]!, 'utf8');
  }

  /** Appends `rows` rows, taking row r from index r of every column (in the object's key order). */
  async writeRows(columns: Readonly<Record<string, OutputColumn>>, rows: number): Promise<void> {
    this.checkOpen();
    const names = Object.keys(columns);
    const cols = names.map((n) => columns[n]!);
    const key = names.join('\u0000');
    if (this.columnKey === undefined) {
      if (names.length === 0) throw new CairnError('invalid', 'expected at least one output column, found none');
      this.columnKey = key;
      if (this.format === 'csv') {
        const header = names.map(csvString).join(',');
        if (this.existingHeader !== undefined) {
          if (this.existingHeader !== header) {
            throw new UsageError(
              `cannot resume output ${quote(this.path)}: expected its header to be ${quote(header)}, found ${quote(this.existingHeader)}`,
            );
          }
        } else if (this.written === 0) {
          this.push(header + '\n');
        }
      }
    } else if (key !== this.columnKey) {
      throw new CairnError('invalid', `expected the output columns ${this.columnKey.split('\u0000').join(',')}, found ${names.join(',')}`);
    }
    if (!Number.isSafeInteger(rows) || rows < 0) throw new CairnError('invalid', `expected a row count, found ${rows}`);
    cols.forEach((c, i) => {
      if (c.length < rows) throw new CairnError('invalid', `expected column ${quote(names[i]!)} to have ${rows} values, found ${c.length}`);
    });
    const width = cols.length;
    if (this.format === 'csv') {
      for (let r = 0; r < rows; r++) {
        let line = csvValue(cols[0]![r]);
        for (let c = 1; c < width; c++) line += ',' + csvValue(cols[c]![r]);
        this.push(line + '\n');
        if (this.pendingChars >= WRITE_BUFFER_CHARS) await this.flush();
      }
    } else {
      const prefixes = names.map((n, i) => (i === 0 ? '{' : ',') + JSON.stringify(n) + ':');
      for (let r = 0; r < rows; r++) {
        let line = '';
        for (let c = 0; c < width; c++) line += prefixes[c] + jsonValue(cols[c]![r]);
        this.push(line + '}\n');
        if (this.pendingChars >= WRITE_BUFFER_CHARS) await this.flush();
      }
    }
  }

  private push(text: string): void {
    this.pending.push(text);
    this.pendingChars += text.length;
  }

  /** Hands buffered text to the operating system (not yet durable; see `sync`). */
  async flush(): Promise<void> {
    this.checkOpen();
    if (this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingChars = 0;
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done, this.written + done);
      if (bytesWritten <= 0) throw new CairnError('unavailable', `expected to write ${bytes.length - done} bytes to ${quote(this.path)}, wrote none`);
      done += bytesWritten;
    }
    this.written += bytes.length;
  }

  /** Flushes and then fsyncs, so `bytesWritten` bytes survive a crash. */
  async sync(): Promise<void> {
    await this.flush();
    await this.fh.sync();
  }

  /** Flushes and closes. Later calls of any method but `close` throw a `closed` CairnError. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.fh.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new CairnError('closed', `output ${quote(this.path)} is closed`);
  }
}

async function openOrFail(path: string, flags: 'w' | 'r+'): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (e) {
    throw new UsageError(`cannot open output ${quote(path)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

/** The first line of `fh` (within its first `length` bytes), without the LF. */
async function readHeaderLine(fh: FileHandle, path: string, length: number): Promise<string> {
  const buffer = Buffer.alloc(Math.min(length, HEADER_BYTES_MAX));
  const { bytesRead } = await fh.read(buffer, 0, buffer.length, 0);
  const lf = buffer.subarray(0, bytesRead).indexOf(10);
  if (lf < 0) {
    throw new UsageError(`cannot resume output ${quote(path)}: expected a CSV header line in its first ${bytesRead} bytes, found none`);
  }
  return buffer.toString('utf8', 0, lf);
}
