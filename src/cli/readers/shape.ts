/**
 * The shapes and limits shared by the input readers (see ../readers.ts for what they mean).
 */
import { quote } from '../errors.js';
import type { InputFormat } from '../parse.js';

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
  /**
   * NDJSON only: per float64 field, the rows of this batch (kept ones) whose object has the field's
   * key, null or not; the other rows read it as null because the key is missing. Undefined for CSV and
   * Arrow, where every row has every field of the header or schema.
   */
  present?: Record<string, number>;
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

/** What a format-specific opener hands back to `openReader`. */
export interface Opened {
  header: readonly string[] | undefined;
  batches: AsyncGenerator<Batch, void, undefined>;
}

/** Names for a message, at most 20 of them. */
export function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 20).map((n) => quote(n)).join(', ');
  return names.length > 20 ? `${shown} and ${names.length - 20} more` : shown === '' ? 'no fields' : shown;
}
