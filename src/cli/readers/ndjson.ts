/**
 * NDJSON rows: one JSON object per line, parsed with `JSON.parse` and converted field by field.
 *
 * A missing key on a float64 field reads as null, like a JSON null, so a sparse field needs no
 * placeholder in every record. That also lets a misspelt field name through without an error (there is
 * no header to check it against), so each batch counts, per float64 field, the kept rows whose object
 * has the key (`Batch.present`); `cairn run` warns about a field that no event had.
 */
import { UsageError, ValueError, quote } from '../errors.js';
import { parseTime } from '../parse.js';
import type { Batch, FieldSpec } from './shape.js';
import type { TextSource } from './text-source.js';
import { BatchBuilder, KIND_FLOAT64, KIND_INT64, KIND_UTF8, parseFloat64, putInt64, utf8Key } from './values.js';

const CR = 13;

/** Reads NDJSON lines from `source` into batches of at most `batchRows` rows, kept plus skipped. */
export async function* ndjsonBatches(
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
    // Per field, the kept rows of this batch whose object has the key (counted for float64 fields only).
    const present = new Uint32Array(fields.length);
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
      const problem = putJsonLine(b, present, s.slice(pos, end), names, kinds);
      if (problem === null) continue; // a line of blanks
      if (firstLine < 0) firstLine = rowLine;
      if (problem === undefined) continue;
      if (!skipBad) throw new UsageError(`${path}:${rowLine}: ${problem}`);
      b.skipped++;
    }
    if (b.rows === 0 && b.skipped === 0) return;
    yield {
      columns: b.finish(fields),
      rows: b.rows,
      endOffset: source.byteOffset(source.pos),
      firstLine,
      nextLine: line,
      skipped: b.skipped,
      present: presentOf(fields, kinds, present),
    };
  }
}

/** The float64 entries of `present`, by field name, as `Batch.present` holds them. */
function presentOf(fields: readonly FieldSpec[], kinds: Uint8Array, present: Uint32Array): Record<string, number> {
  const out: Record<string, number> = {};
  fields.forEach((field, f) => {
    if (kinds[f] === KIND_FLOAT64) out[field.name] = present[f]!;
  });
  return out;
}

/**
 * Parses one NDJSON line and stores it as row `b.rows`. Returns undefined when the row was stored, null
 * when the line holds only blanks, and otherwise what is wrong with it. A stored row adds 1 to
 * `present[f]` for each float64 field `f` whose key its object has (whatever the value, null too).
 */
function putJsonLine(b: BatchBuilder, present: Uint32Array, text: string, names: readonly string[], kinds: Uint8Array): string | null | undefined {
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
      const kind = kinds[f]!;
      let v = object[name];
      if (v !== undefined && !Object.hasOwn(object, name)) v = undefined; // inherited, e.g. "constructor"
      putJson(b, f, kind, row, v, text, name);
      // JSON.parse never yields undefined, so here undefined means exactly "no own key".
      if (kind === KIND_FLOAT64 && v !== undefined) present[f]!++;
    }
  } catch (e) {
    if (!(e instanceof ValueError)) throw e;
    // The row is left out, so `present` takes back what the fields before the bad one added.
    for (let g = 0; g < f; g++) if (kinds[g] === KIND_FLOAT64 && Object.hasOwn(object, names[g]!)) present[g]!--;
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

function putJson(b: BatchBuilder, f: number, kind: number, row: number, v: unknown, text: string, name: string): void {
  switch (kind) {
    case KIND_UTF8:
      if (typeof v === 'string') (b.columns[f] as string[])[row] = utf8Key(v);
      else if (typeof v === 'number' && Number.isFinite(v)) (b.columns[f] as string[])[row] = Number.isSafeInteger(v) || !Number.isInteger(v) ? String(v) : writtenDigits(text, name) ?? String(v);
      else throw new ValueError(`expected a string, found ${describeJson(v)}`);
      return;
    case KIND_INT64:
      if (typeof v === 'number') {
        if (Number.isSafeInteger(v)) b.setInt64(f, row, v);
        else if (!Number.isInteger(v)) throw new ValueError(`expected an integer, found ${v}`);
        else {
          // JSON.parse rounded it: read its digits from the line instead.
          const digits = writtenDigits(text, name);
          if (digits === undefined) throw new ValueError(`expected an integer beyond ±(2^53 - 1) written in plain digits, found ${topLevelLiteral(text, name) ?? String(v)}`);
          putInt64(b, f, row, digits, 0, digits.length);
        }
      } else if (typeof v === 'string') {
        putInt64(b, f, row, v, 0, v.length);
      } else {
        throw new ValueError(`expected an integer, found ${describeJson(v)}`);
      }
      return;
    case KIND_FLOAT64:
      if (typeof v === 'number') (b.columns[f] as Float64Array)[row] = finite(v, text, name);
      else if (v === null || v === undefined) (b.columns[f] as Float64Array)[row] = NaN;
      else if (typeof v === 'string') (b.columns[f] as Float64Array)[row] = parseFloat64(v, 0, v.length);
      else throw new ValueError(`expected a number, found ${describeJson(v)}`);
      return;
    default:
      // An integer JSON.parse rounded (beyond 2^53, out of range anyway) is reported as written.
      if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) (b.columns[f] as Float64Array)[row] = parseTime(topLevelLiteral(text, name) ?? v);
      else if (typeof v === 'number' || typeof v === 'string') (b.columns[f] as Float64Array)[row] = parseTime(v);
      else throw new ValueError(`expected a time, found ${describeJson(v)}`);
  }
}

/**
 * The digits that top-level key `name` was written with in `text`, when plain digits, else
 * undefined. For integers beyond 2^53, which JSON.parse rounds (rounding would merge distinct ids).
 */
function writtenDigits(text: string, name: string): string | undefined {
  const literal = topLevelLiteral(text, name);
  return literal !== undefined && /^-?\d+$/.test(literal) ? literal : undefined;
}

/** A number JSON.parse read as ±Infinity overflowed float64 (JSON has no infinities): a ValueError. */
function finite(v: number, text: string, name: string): number {
  if (Number.isFinite(v)) return v;
  throw new ValueError(`expected a number within the float64 range (±1.8e308), found ${topLevelLiteral(text, name) ?? String(v)}`);
}

/**
 * The source text of the number that top-level key `name` holds in the JSON object `text` (the last
 * such key, as JSON.parse keeps the last of duplicates), or undefined when its value is not a
 * number. `text` has already been parsed, so it is valid JSON.
 */
/** A JSON number starting exactly at `lastIndex` (sticky): the whole literal, however long. */
const NUMBER_AT = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function topLevelLiteral(text: string, name: string): string | undefined {
  let depth = 0;
  let expectKey = false;
  let key: string | undefined;
  let found: string | undefined;
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const start = i++;
      while (i < text.length) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \\ */) i += 2;
        else if (d === 34) break;
        else i++;
      }
      i++;
      if (depth === 1 && expectKey) {
        key = JSON.parse(text.slice(start, i)) as string;
        expectKey = false;
      }
      continue;
    }
    if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      expectKey = depth === 1 && c === 123;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
    } else if (c === 44 /* , */ && depth === 1) {
      expectKey = true;
    } else if (c === 58 /* : */ && depth === 1 && key === name) {
      let j = i + 1;
      while (j < text.length && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9 || text.charCodeAt(j) === 10 || text.charCodeAt(j) === 13)) j++;
      NUMBER_AT.lastIndex = j;
      const m = NUMBER_AT.exec(text);
      found = m === null ? undefined : m[0];
    }
    i++;
  }
  return found;
}
