/**
 * CSV rows: the record scanner, the header, and the batch loop. The dialect is described in
 * ../readers.ts.
 */
import { UsageError, ValueError, quote } from '../errors.js';
import { type Batch, type FieldSpec, HEADER_FIELDS_MAX, listNames } from './shape.js';
import type { TextSource } from './text-source.js';
import { BatchBuilder, KIND_FLOAT64, KIND_INT64, KIND_UTF8, parseFloat64, parseTimeSpan, putInt64, utf8Key } from './values.js';

const COMMA = 44;
const QUOTE = 34;
export const LF = 10;
export const CR = 13;

/**
 * Finds the fields of one CSV record. `scan` records the span of each of the first `capacity` fields
 * (between the quotes for a quoted field) and returns the index just after the record, or -1 when the
 * record may continue beyond the text read so far. A malformed record (junk after a closing quote, an
 * unclosed quote at end of file) sets `error` and ends at the next line feed (or the end of the file).
 */
export class CsvScanner {
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
export function csvFieldText(s: string, scanner: CsvScanner, h: number): string {
  const text = s.slice(scanner.starts[h]!, scanner.ends[h]!);
  return scanner.quoting[h] === 2 ? text.replaceAll('""', '"') : text;
}

/**
 * Reads the CSV header from the start of `source` (skipping a byte order mark and blank lines), checks
 * that every requested field appears exactly once, and leaves `source.pos` just after the header.
 * Returns the header names, the header position of each requested field, and the line after it.
 */
export async function readCsvHeader(
  source: TextSource,
  path: string,
  fields: readonly FieldSpec[],
): Promise<{ header: string[]; headerIndex: Int32Array; nextLine: number }> {
  let line = 1;
  const scanner = new CsvScanner(HEADER_FIELDS_MAX);
  let next = -1;
  // Skipped so that a quoted first field still starts with '"'.
  await source.skipByteOrderMark();
  for (;;) {
    const s = source.text;
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
  const header: string[] = [];
  for (let h = 0; h < scanner.fieldCount; h++) header.push(csvFieldText(source.text, scanner, h));
  const headerIndex = new Int32Array(fields.length);
  fields.forEach((field, f) => {
    const at = header.indexOf(field.name);
    if (at < 0) {
      throw new UsageError(`${path}: expected a field ${quote(field.name)} in the header, found ${listNames(header)}`);
    }
    if (header.indexOf(field.name, at + 1) >= 0) {
      throw new UsageError(`${path}: expected one field named ${quote(field.name)} in the header, found several`);
    }
    headerIndex[f] = at;
  });
  line += scanner.lineFeeds;
  source.pos = next;
  return { header, headerIndex, nextLine: line };
}

/**
 * Reads CSV records from `source` (positioned after the header or at a resume offset) into batches of
 * at most `batchRows` rows, kept plus skipped. `headerIndex[f]` is the header position of `fields[f]`.
 */
export async function* csvBatches(
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
                (b.columns[f] as string[])[row] = utf8Key(escaped ? text : s.slice(start, end));
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
