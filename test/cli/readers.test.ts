// Proves the streaming readers (src/cli/readers.ts) return exactly the rows of a file, with exact
// byte offsets and line numbers, however the file is cut into reads and batches.
//
// How: fast-check generates tables of values (strings with quotes, commas, CR/LF and multi-byte UTF-8;
// full-range int64; floats in many spellings; times as integers or ISO text). An oracle writer, which
// shares no code with the reader, turns each table into CSV or NDJSON text and records, for every row,
// its expected values (via Number, BigInt, JSON.parse and Date, not the reader's converters), its line,
// and the byte offset just after it (via Buffer.byteLength). The reader then reads the file with random
// batch sizes and read sizes as small as 4 bytes (so rows and UTF-8 characters straddle reads); every
// batch must end at an oracle row boundary, and resuming at every batch's endOffset, with and without
// its nextLine, must yield exactly the remaining rows. For NDJSON the oracle also knows which records
// omit each float64 key, and every batch's `present` counts must match. Fixed files then check error
// messages (file and line), skipBad counts (and that skipped rows add nothing to `present`), header and
// offset validation, and Arrow IPC files and streams.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dictionary, Int32, Float64, Int64, RecordBatch, Table, Utf8, makeData, makeVector, tableToIPC, vectorFromArray, Schema, Field, Struct, TimestampNanosecond, TimestampMillisecond } from 'apache-arrow';
import { UsageError } from '../../src/cli/errors.js';
import { firstInvalidUtf8 } from '../../src/store/utf8.js';
import { isUtf8 } from 'node:buffer';
import { openReader, utf8Length, type Batch, type FieldKind, type FieldSpec, type ReaderOptions } from '../../src/cli/readers.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-readers-'));
let fileCounter = 0;
function tempFile(ext: string, content: string | Uint8Array): string {
  const path = join(dir, `f${fileCounter++}.${ext}`);
  writeFileSync(path, content);
  return path;
}

// ---------------------------------------------------------------------------------------------------
// Helpers shared by the tests

/** A comparable rendering of a value, so NaN, -0, bigint and string differences all show. */
function show(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? 'num:-0' : `num:${v}`;
  if (typeof v === 'bigint') return `big:${v}`;
  return `str:${JSON.stringify(v)}`;
}

async function readAll(options: ReaderOptions): Promise<{ rows: string[][]; batches: Batch[] }> {
  const reader = await openReader(options);
  const rows: string[][] = [];
  const batches: Batch[] = [];
  for await (const batch of reader) {
    batches.push(batch);
    for (const field of options.fields) assert.is(batch.columns[field.name]!.length, batch.rows, 'column length');
    for (let r = 0; r < batch.rows; r++) rows.push(options.fields.map((f) => show(batch.columns[f.name]![r])));
  }
  await reader.close();
  return { rows, batches };
}

async function rejects(f: () => Promise<unknown>, ...parts: string[]): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.instance(e, UsageError, `expected a UsageError, got ${String(e)}`);
    for (const p of parts) assert.ok((e as Error).message.includes(p), `message ${JSON.stringify((e as Error).message)} lacks ${JSON.stringify(p)}`);
    return;
  }
  assert.unreachable(`expected a UsageError with ${parts.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------
// Oracle: generated tables and their text

/** One generated value: how it is written, and what a reader must return for it. */
interface Cell {
  text: string; // CSV text before quoting
  json: unknown; // the JSON value (undefined: key omitted)
  expected: string; // show() of the expected value
}

const awkward = fc.constantFrom('"', ',', '\n', '\r', '\r\n', '""', 'é', '€', '😀', '𝄞', ' ', 'a', 'Z', '0', '\t', '\u2028');
const textArb = fc.array(fc.oneof(awkward, fc.string({ unit: 'binary', maxLength: 3 })), { maxLength: 6 }).map((parts) => parts.join(''));

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const int64Arb = fc.oneof(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.integer({ min: -1000, max: 1000 }).map(BigInt), fc.constantFrom(INT64_MIN, INT64_MAX, 0n));

const decimalText = fc
  .tuple(fc.constantFrom('', '-', '+'), fc.string({ unit: fc.constantFrom('0', '1', '5', '9'), minLength: 1, maxLength: 20 }), fc.option(fc.string({ unit: fc.constantFrom('0', '3', '7'), maxLength: 25 })), fc.option(fc.integer({ min: -30, max: 30 })))
  .map(([sign, whole, frac, exp]) => `${sign}${whole}${frac === null ? '' : '.' + frac}${exp === null ? '' : 'e' + exp}`);
const float64Text = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => String(x)), decimalText, fc.constant(''), fc.constantFrom('.5', '5.', '-0', '1E3', '0.1', '123456789012345.6'));

const MS_MIN = Date.parse('0000-01-01T00:00:00Z');
const MS_MAX = Date.parse('9999-12-31T23:59:59.999Z');
const timeArb = fc.tuple(fc.integer({ min: MS_MIN, max: MS_MAX }), fc.constantFrom('digits', 'iso', 'number')).map(([ms, style]) => ({ ms, style }));

/**
 * An integer as a JSON number literal of its exact digits: JSON.stringify writes the marker object,
 * and `unraw` turns it into the bare digits (a number JSON.parse would round beyond 2^53).
 */
function raw(v: bigint): { $raw: string } {
  return { $raw: String(v) };
}
function unraw(json: string): string {
  return json.replace(/\{"\$raw":"(-?\d+)"\}/g, '$1');
}

function cellArb(kind: FieldKind, format: 'csv' | 'ndjson'): fc.Arbitrary<Cell> {
  switch (kind) {
    case 'utf8':
      return fc.oneof(
        textArb.map((s) => ({ text: s, json: s, expected: show(s) })),
        // NDJSON numbers are accepted for utf8 fields and read as their decimal text, integers
        // beyond 2^53 as their digits (not as the double JSON.parse rounds them to).
        fc.integer().map((n) => ({ text: String(n), json: format === 'ndjson' ? n : String(n), expected: show(String(n)) })),
        fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map((n) => ({ text: String(n), json: format === 'ndjson' ? raw(n) : String(n), expected: show(String(n)) })),
      );
    case 'int64':
      return fc.tuple(int64Arb, fc.boolean()).map(([v, asNumber]) => {
        const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
        return { text: String(v), json: asNumber ? (safe ? Number(v) : raw(v)) : String(v), expected: show(v) };
      });
    case 'float64':
      return fc.oneof(
        float64Text.map((t) => ({ text: t, json: t, expected: show(t === '' ? NaN : Number(t)) })),
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => ({ text: String(x), json: x, expected: show(JSON.parse(JSON.stringify(x)) as number) })),
        fc.constantFrom(null, undefined).map((j) => ({ text: '', json: j, expected: show(NaN) })),
      );
    case 'time':
      return timeArb.map(({ ms, style }) => {
        const iso = new Date(ms).toISOString();
        const text = style === 'iso' ? iso : String(ms);
        return { text, json: style === 'number' ? ms : text, expected: show(ms) };
      });
  }
}

interface Generated {
  text: string;
  fields: FieldSpec[];
  /**
   * Per data row: expected values in `fields` order, start line, line after it, byte offset after it,
   * and (NDJSON only) whether its object has each field's key.
   */
  rows: { values: string[]; line: number; lineAfter: number; endByte: number; hasKey?: boolean[] }[];
}

const kindArb = fc.constantFrom<FieldKind>('utf8', 'int64', 'float64', 'time');
const headerNameArb = fc.oneof(fc.constantFrom('a', 'user', 'amount', 'with,comma', 'with "quote"', 'multi\nline', 'ünï', '😀'), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 5 }));
const eolArb = fc.constantFrom('\n', '\r\n');

/** Tracks text, lines and byte offsets as an oracle file is assembled. */
class TextBuilder {
  text = '';
  private lineFeeds = 0;
  append(s: string): void {
    this.text += s;
    for (const ch of s) if (ch === '\n') this.lineFeeds++;
  }
  get line(): number {
    return this.lineFeeds + 1;
  }
  get bytes(): number {
    return Buffer.byteLength(this.text, 'utf8');
  }
}

function csvQuote(s: string, force: boolean): string {
  return force || /[",\r\n]/.test(s) || s.startsWith('"') ? `"${s.replaceAll('"', '""')}"` : s;
}

const csvArb: fc.Arbitrary<Generated> = fc
  .uniqueArray(fc.tuple(headerNameArb, kindArb, fc.boolean()), { minLength: 1, maxLength: 5, selector: ([name]) => name })
  .filter((cols) => cols.some(([, , wanted]) => wanted) && !cols[0]![0].startsWith('\ufeff'))
  .chain((cols) => {
    const rowArb = fc.tuple(
      fc.tuple(...cols.map(([, kind]) => cellArb(kind, 'csv'))),
      // Quoting fields that need no quotes is rare, so many rows take the reader's quote-free path.
      fc.array(fc.integer({ min: 0, max: 3 }).map((x) => x === 0), { minLength: cols.length, maxLength: cols.length }),
      eolArb,
      fc.nat({ max: 2 }),
    );
    return fc.record({
      cols: fc.constant(cols),
      order: fc.shuffledSubarray(cols.map((_, i) => i).filter((i) => cols[i]![2]), { minLength: 1 }),
      rows: fc.array(rowArb, { maxLength: 25 }),
      headerEol: eolArb,
      bom: fc.boolean(),
      finalEol: fc.boolean(),
    });
  })
  .map(({ cols, order, rows, headerEol, bom, finalEol }) => {
    const b = new TextBuilder();
    if (bom) b.append('\ufeff');
    b.append(cols.map(([name]) => csvQuote(name, false)).join(',') + headerEol);
    const out: Generated['rows'] = [];
    rows.forEach(([cells, forceQuotes, eol, blanks], r) => {
      for (let k = 0; k < blanks; k++) b.append(eol);
      const line = b.line;
      // A one-column empty value must be quoted, or the row would be a blank line.
      const fieldsText = cells.map((c, i) => csvQuote(c.text, forceQuotes[i]! || (cells.length === 1 && c.text === '')));
      const last = r === rows.length - 1 && !finalEol;
      b.append(fieldsText.join(',') + (last ? '' : eol));
      out.push({ values: order.map((i) => cells[i]!.expected), line, lineAfter: b.line, endByte: b.bytes });
    });
    return { text: b.text, fields: order.map((i) => ({ name: cols[i]![0], kind: cols[i]![1] })), rows: out };
  });

const ndjsonArb: fc.Arbitrary<Generated> = fc
  .uniqueArray(fc.tuple(headerNameArb, kindArb), { minLength: 1, maxLength: 4, selector: ([name]) => name })
  .chain((cols) => {
    const rowArb = fc.tuple(fc.tuple(...cols.map(([, kind]) => cellArb(kind, 'ndjson'))), eolArb, fc.constantFrom('', '\n', '  \t\n', '\r\n'), fc.boolean(), fc.integer({ min: 0, max: 1000 }));
    return fc.record({ cols: fc.constant(cols), rows: fc.array(rowArb, { maxLength: 25 }), finalEol: fc.boolean(), bom: fc.boolean() });
  })
  .map(({ cols, rows, finalEol, bom }) => {
    const b = new TextBuilder();
    if (bom) b.append('\ufeff');
    const out: Generated['rows'] = [];
    rows.forEach(([cells, eol, blank, reverse, extra], r) => {
      b.append(blank);
      const line = b.line;
      // A nested object first, with every field's name and a number of its own: only top-level keys count.
      const object: Record<string, unknown> = { extra_field: extra, nested: Object.fromEntries(cols.map(([name]) => [name, raw(10n ** 25n + BigInt(extra))])) };
      const entries = cols.map(([name], i) => [name, cells[i]!.json] as const);
      if (reverse) entries.reverse();
      for (const [name, json] of entries) if (json !== undefined) object[name] = json;
      const last = r === rows.length - 1 && !finalEol;
      b.append(unraw(JSON.stringify(object)) + (last ? '' : eol));
      out.push({ values: cols.map((_, i) => cells[i]!.expected), line, lineAfter: b.line, endByte: b.bytes, hasKey: cells.map((c) => c.json !== undefined) });
    });
    // Parse failures of the oracle itself would make the test meaningless: check the text is NDJSON.
    for (const l of b.text.replace(/^\ufeff/, '').split('\n')) if (l.trim() !== '') JSON.parse(l);
    return { text: b.text, fields: cols.map(([name, kind]) => ({ name, kind })), rows: out };
  });

/** Reads `g` whole and from every batch boundary, and compares everything with the oracle. */
async function checkAgainstOracle(g: Generated, ext: 'csv' | 'ndjson', batchRows: number, chunkBytes: number): Promise<void> {
  const path = tempFile(ext, g.text);
  const base: ReaderOptions = { path, format: ext, fields: g.fields, batchRows, chunkBytes };
  const whole = await readAll(base);
  assert.equal(whole.rows, g.rows.map((r) => r.values));
  // Batches: full except the last, each ending exactly at an oracle row boundary.
  let seen = 0;
  const resumePoints: { offset: number; line: number; rowIndex: number }[] = [];
  for (const batch of whole.batches) {
    assert.is(batch.skipped, 0);
    assert.ok(batch.rows >= 1 && batch.rows <= batchRows);
    const first = g.rows[seen]!;
    const last = g.rows[seen + batch.rows - 1]!;
    assert.is(batch.firstLine, first.line, 'firstLine');
    assert.is(batch.endOffset, last.endByte, 'endOffset');
    assert.is(batch.nextLine, last.lineAfter, 'nextLine');
    if (ext === 'csv') {
      assert.is(batch.present, undefined, 'present (CSV)');
    } else {
      // Float64 fields only; a key with a null value counts, an omitted key does not.
      const batchRows = g.rows.slice(seen, seen + batch.rows);
      const expected: Record<string, number> = {};
      g.fields.forEach((f, i) => {
        if (f.kind === 'float64') expected[f.name] = batchRows.filter((r) => r.hasKey![i]).length;
      });
      assert.equal(batch.present, expected, 'present');
    }
    seen += batch.rows;
    resumePoints.push({ offset: batch.endOffset, line: batch.nextLine, rowIndex: seen });
  }
  assert.is(seen, g.rows.length);
  for (const point of resumePoints) {
    const expectedRest = g.rows.slice(point.rowIndex);
    for (const startLine of [point.line, undefined]) {
      const rest = await readAll({ ...base, startOffset: point.offset, ...(startLine === undefined ? {} : { startLine }) });
      assert.equal(rest.rows, expectedRest.map((r) => r.values), `resume at ${point.offset}`);
      if (expectedRest.length > 0) assert.is(rest.batches[0]!.firstLine, expectedRest[0]!.line, 'firstLine after resume');
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Property tests

test('utf8Length matches Buffer.byteLength', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      assert.is(utf8Length(s, 0, s.length), Buffer.byteLength(s, 'utf8'));
    }),
  );
});

test('CSV: whole reads and resumes from every batch match the oracle', async () => {
  await fc.assert(
    fc.asyncProperty(csvArb, fc.integer({ min: 1, max: 7 }), fc.constantFrom(4, 5, 7, 16, 64, 1 << 20), async (g, batchRows, chunkBytes) => {
      await checkAgainstOracle(g, 'csv', batchRows, chunkBytes);
    }),
    { numRuns: 150 },
  );
});

test('NDJSON: whole reads and resumes from every batch match the oracle', async () => {
  await fc.assert(
    fc.asyncProperty(ndjsonArb, fc.integer({ min: 1, max: 7 }), fc.constantFrom(4, 5, 9, 64, 1 << 20), async (g, batchRows, chunkBytes) => {
      await checkAgainstOracle(g, 'ndjson', batchRows, chunkBytes);
    }),
    { numRuns: 150 },
  );
});

// ---------------------------------------------------------------------------------------------------
// Fixed cases: dialect details

test('CSV: bare quotes inside unquoted fields, lone CRs, blank lines, BOM, final row without newline', async () => {
  const path = tempFile('csv', '\ufeffk,v\r\n\r\n5" screen,a\rb\n\n"x""y",""\nlast,row');
  const { rows, batches } = await readAll({ path, format: 'csv', fields: [{ name: 'k', kind: 'utf8' }, { name: 'v', kind: 'utf8' }], batchRows: 10 });
  assert.equal(rows, [
    [show('5" screen'), show('a\rb')],
    [show('x"y'), show('')],
    [show('last'), show('row')],
  ]);
  assert.is(batches[0]!.firstLine, 3);
  assert.is(batches[0]!.endOffset, Buffer.byteLength('\ufeffk,v\r\n\r\n5" screen,a\rb\n\n"x""y",""\nlast,row'));
});

test('CSV: header fields must exist; the message lists what the header has', async () => {
  const path = tempFile('csv', 'user,amount,ts\nu1,5,0\n');
  await rejects(() => openReader({ path, format: 'csv', fields: [{ name: 'price', kind: 'float64' }], batchRows: 10 }), path, '"price"', '"user", "amount", "ts"');
  const dup = tempFile('csv', 'a,a\n1,2\n');
  await rejects(() => openReader({ path: dup, format: 'csv', fields: [{ name: 'a', kind: 'int64' }], batchRows: 10 }), 'one field named "a"');
  const empty = tempFile('csv', '');
  await rejects(() => openReader({ path: empty, format: 'csv', fields: [{ name: 'a', kind: 'int64' }], batchRows: 10 }), 'header row', 'empty file');
  await rejects(() => openReader({ path: join(dir, 'missing.csv'), format: 'csv', fields: [{ name: 'a', kind: 'int64' }], batchRows: 10 }), 'cannot open input', 'ENOENT');
  const headerOnly = tempFile('csv', 'a,b\n');
  assert.equal((await readAll({ path: headerOnly, format: 'csv', fields: [{ name: 'b', kind: 'int64' }], batchRows: 10 })).batches, []);
});

// A file with one good row and several kinds of bad ones, with quoted newlines shifting physical lines.
const BAD_CSV = [
  'id,name,amount,ts', // line 1
  '1,"multi', // line 2
  'line",2.5,1000', // line 3
  '2,short', // line 4: too few fields
  '3,x,abc,1000', // line 5: amount not a number
  '4,y,1,yesterday', // line 6: bad time
  '5,z,1,1000', // line 7: good
  ',w,1,1000', // line 8: empty int64
  '7,"q"x,1,1000', // line 9: junk after a closing quote
  '8,v,,2024-01-01T00:00:00Z', // line 10: good, amount null
  '9,"open,1,1000', // line 11: unclosed quote to the end of the file
].join('\n');
const BAD_FIELDS: FieldSpec[] = [
  { name: 'id', kind: 'int64' },
  { name: 'name', kind: 'utf8' },
  { name: 'amount', kind: 'float64' },
  { name: 'ts', kind: 'time' },
];

test('CSV: a bad row stops the read with file:line and what was expected', async () => {
  const path = tempFile('csv', BAD_CSV);
  await rejects(() => readAll({ path, format: 'csv', fields: BAD_FIELDS, batchRows: 100 }), `${path}:4: expected 4 fields (as in the header), found 2`);
  // Each later bad row, after the good first row and blank lines in place of the others, reports its
  // own line (blank lines are skipped but counted).
  const lines = BAD_CSV.split('\n');
  const expectations: [number, string[]][] = [
    [5, ['field "amount"', 'expected a number, found "abc"']],
    [6, ['field "ts"', 'found "yesterday"']],
    [8, ['field "id"', 'expected an integer, found an empty value']],
    [9, [`expected ',' or the end of the line after a closing '"', found "x,1,1000"`]],
    [11, [`expected a closing '"', found the end of the file`]],
  ];
  for (const [line, parts] of expectations) {
    const text = [...lines.slice(0, 3), ...lines.slice(3, line - 1).map(() => ''), lines[line - 1]!].join('\n');
    const p = tempFile('csv', text);
    await rejects(() => readAll({ path: p, format: 'csv', fields: BAD_FIELDS, batchRows: 100 }), `${p}:${line}: `, ...parts);
  }
});

test('CSV: skipBad leaves bad rows out and counts them per batch', async () => {
  const path = tempFile('csv', BAD_CSV);
  for (const batchRows of [1, 2, 3, 100]) {
    const { rows, batches } = await readAll({ path, format: 'csv', fields: BAD_FIELDS, batchRows, skipBad: true, chunkBytes: 7 });
    assert.equal(rows, [
      [show(1n), show('multi\nline'), show(2.5), show(1000)],
      [show(5n), show('z'), show(1), show(1000)],
      [show(8n), show('v'), show(NaN), show(Date.UTC(2024, 0, 1))],
    ]);
    assert.is(batches.reduce((a, b) => a + b.skipped, 0), 6, `batchRows ${batchRows}`);
    for (const b of batches) assert.ok(b.rows + b.skipped <= batchRows);
    assert.is(batches[batches.length - 1]!.endOffset, Buffer.byteLength(BAD_CSV));
  }
});

test('NDJSON: bad rows name their line; skipBad counts them', async () => {
  const lines = [
    '{"k":"a","n":1,"t":5}', // 1 good
    '', // 2 blank
    '{"k":"b","n":1', // 3 invalid JSON
    '[1,2]', // 4 not an object
    '{"k":"c","t":5}', // 5 n missing
    '{"k":"d","n":1.5,"t":5}', // 6 n not an integer
    '{"k":"e","n":1e20,"t":5}', // 7 n beyond 2^53 and not in plain digits
    '{"k":true,"n":1,"t":5}', // 8 k not a string
    '{"k":"f","n":"-9223372036854775808","t":"2024-01-01T00:00:00+01:00"}', // 9 good
    '{"k":"g","n":1,"t":null}', // 10 t null
    '{"k":"h","n":1,"t":5,"constructor":1}', // 11 good
    '{"n":1,"t":5}', // 12 k missing
    'null', // 13
    '{"k":"i","n":9223372036854775808,"t":5}', // 14 n beyond int64
    '{"k":"j","n":9007199254740993,"t":5}', // 15 good: beyond 2^53, read exactly
    '{"k":"l","n":1,"n":-9007199254740995,"t":5,"o":{"n":7}}', // 16 good: the last top-level "n"
    '{"k":"m","o":{"n":[{"n":9}]},"\\u006e":9223372036854775807,"t":5}', // 17 good: escaped key
    '{"k":"p","n":1,"t":9007199254740993}', // 18 t beyond the time range, reported as written
  ];
  const fields: FieldSpec[] = [
    { name: 'k', kind: 'utf8' },
    { name: 'n', kind: 'int64' },
    { name: 't', kind: 'time' },
  ];
  const expected: [number, string][] = [
    [3, 'expected a JSON object, found invalid JSON'],
    [4, 'expected a JSON object, found an array'],
    [5, 'field "n": expected an integer, found it missing'],
    [6, 'field "n": expected an integer, found 1.5'],
    [7, 'field "n": expected an integer beyond ±(2^53 - 1) written in plain digits, found 1e20'],
    [8, 'field "k": expected a string, found true'],
    [10, 'field "t": expected a time, found null'],
    [12, 'field "k": expected a string, found it missing'],
    [13, 'expected a JSON object, found null'],
    [14, 'field "n": expected a 64-bit integer, found "9223372036854775808" (out of range)'],
    [18, 'field "t": expected a time as integer milliseconds since the epoch or ISO 8601 like 2024-01-02T03:04:05.678Z within ±8640000000000000, found "9007199254740993"'],
  ];
  for (const [line, part] of expected) {
    const text = lines.map((l, i) => (i === 0 || i + 1 === line ? l : '')).join('\n');
    const path = tempFile('ndjson', text);
    await rejects(() => readAll({ path, format: 'ndjson', fields, batchRows: 4 }), `${path}:${line}: ${part}`);
  }
  const path = tempFile('ndjson', lines.join('\r\n'));
  const { rows, batches } = await readAll({ path, format: 'ndjson', fields, batchRows: 3, skipBad: true, chunkBytes: 8 });
  assert.equal(rows, [
    [show('a'), show(1n), show(5)],
    [show('f'), show(-(2n ** 63n)), show(Date.UTC(2023, 11, 31, 23))],
    [show('h'), show(1n), show(5)],
    [show('j'), show(2n ** 53n + 1n), show(5)],
    [show('l'), show(-(2n ** 53n) - 3n), show(5)],
    [show('m'), show(2n ** 63n - 1n), show(5)],
  ]);
  assert.is(batches.reduce((a, b) => a + b.skipped, 0), 11);
});

test('NDJSON: a utf8 key given as a number beyond 2^53 keeps its digits; one with an exponent reads as its JavaScript text', async () => {
  const long = '9'.repeat(300); // near float64's largest: read whole, not rounded
  const path = tempFile('ndjson', ['{"k":12345678901234567891}', '{"k":1e21}', '{"k":-9007199254740993}', '{"k":2.5}', `{"k":${long}0}`].join('\n'));
  const { rows } = await readAll({ path, format: 'ndjson', fields: [{ name: 'k', kind: 'utf8' }], batchRows: 10 });
  assert.equal(rows, [[show('12345678901234567891')], [show('1e+21')], [show('-9007199254740993')], [show('2.5')], [show(long + '0')]]);
});

test('a number beyond float64 range is a bad row (not ±Infinity), in CSV and NDJSON, as a number or a string', async () => {
  const fields: FieldSpec[] = [{ name: 'k', kind: 'utf8' }, { name: 'v', kind: 'float64' }];
  const csv = tempFile('csv', 'k,v\na,1e308\nb,1e400\nc,-2e308\nd,1.7976931348623157e308\n');
  await rejects(() => readAll({ path: csv, format: 'csv', fields, batchRows: 10 }), `${csv}:3: field "v": expected a number within the float64 range (±1.8e308), found "1e400"`);
  const kept = await readAll({ path: csv, format: 'csv', fields, batchRows: 10, skipBad: true });
  assert.equal(kept.rows, [[show('a'), show(1e308)], [show('d'), show(Number.MAX_VALUE)]]);
  const ndjson = tempFile('ndjson', ['{"k":"a","v":1e308}', '{"k":"b","v":1e400}', '{"k":"c","v":"-1e400"}', '{"k":"d","v":-1.7976931348623157e308}'].join('\n'));
  await rejects(() => readAll({ path: ndjson, format: 'ndjson', fields, batchRows: 10 }), `${ndjson}:2: field "v": expected a number within the float64 range (±1.8e308), found 1e400`);
  const kept2 = await readAll({ path: ndjson, format: 'ndjson', fields, batchRows: 10, skipBad: true });
  assert.equal(kept2.rows, [[show('a'), show(1e308)], [show('d'), show(-Number.MAX_VALUE)]]);
  assert.is(kept2.batches[0]!.skipped, 2);
});

test('NDJSON: present counts float64 keys of kept rows, null values too, and nothing of skipped rows', async () => {
  const lines = [
    '{"k":"a","x":1,"t":5}', // kept, x present
    '{"k":"b","x":null,"t":5}', // kept, x present (null)
    '{"k":"c","t":5}', // kept, x missing
    '{"k":"d","x":2,"t":null}', // skipped after x was counted (t comes after x)
    '{"k":"e","x":3,"y":4}', // skipped at t, after x and y were counted
    '{"k":"f","x":"nope","y":4,"t":5}', // skipped at x itself
    '{"k":"g","y":"","t":5,"constructor":1}', // kept, y present (an empty string is null), x missing
    '{"k":"h","t":5,"__proto__":1}', // kept, neither
  ];
  const fields: FieldSpec[] = [
    { name: 'k', kind: 'utf8' },
    { name: 'x', kind: 'float64' },
    { name: 'y', kind: 'float64' },
    { name: 't', kind: 'time' },
    { name: 'constructor', kind: 'float64' },
  ];
  const path = tempFile('ndjson', lines.join('\n'));
  for (const batchRows of [1, 3, 100]) {
    const { rows, batches } = await readAll({ path, format: 'ndjson', fields, batchRows, skipBad: true });
    assert.is(rows.length, 5, `batchRows ${batchRows}`);
    const sum = (name: string) => batches.reduce((a, b) => a + b.present![name]!, 0);
    assert.equal([sum('x'), sum('y'), sum('constructor')], [2, 1, 1], `batchRows ${batchRows}`);
    for (const b of batches) assert.equal(Object.keys(b.present!), ['x', 'y', 'constructor']);
  }
});

test('resume offsets are validated against the file', async () => {
  const text = 'a,b\n1,2\n3,4\n';
  const path = tempFile('csv', text);
  const fields: FieldSpec[] = [{ name: 'a', kind: 'int64' }];
  await rejects(() => openReader({ path, format: 'csv', fields, batchRows: 1, startOffset: 6 }), 'start of a line');
  await rejects(() => openReader({ path, format: 'csv', fields, batchRows: 1, startOffset: 2 }), 'after the header');
  await rejects(() => openReader({ path, format: 'csv', fields, batchRows: 1, startOffset: 100 }), 'within the file', '12 bytes');
  assert.equal((await readAll({ path, format: 'csv', fields, batchRows: 1, startOffset: text.length })).rows, []);
  assert.equal((await readAll({ path, format: 'csv', fields, batchRows: 1, startOffset: 8 })).rows, [[show(3n)]]);
  await rejects(() => openReader({ path, format: 'csv', fields, batchRows: 0 }), 'batchRows');
  await rejects(() => openReader({ path, format: 'csv', fields: [...fields, ...fields], batchRows: 1 }), 'distinct field names');
});

test('invalid UTF-8 is reported with its line, byte offset and bytes, whatever the chunk size', async () => {
  const bytes = Buffer.concat([Buffer.from('a\nok\n"é\nx"\nbad'), Buffer.from([0xff, 0xfe]), Buffer.from('\nmore\n')]);
  const path = tempFile('csv', bytes);
  const json = tempFile('ndjson', Buffer.concat([Buffer.from('{"a":"1"}\n{"a":"é"}\n{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]));
  for (const chunkBytes of [4, 5, 7, 64, 1 << 16]) {
    await rejects(() => readAll({ path, format: 'csv', fields: [{ name: 'a', kind: 'utf8' }], batchRows: 10, chunkBytes }), `${path}:5: expected UTF-8 text, found the bytes ff fe`, ' at byte 15 (');
    await rejects(() => readAll({ path: json, format: 'ndjson', fields: [{ name: 'a', kind: 'utf8' }], batchRows: 10, chunkBytes }), `${json}:3: expected UTF-8 text, found the bytes c3 28`, ' at byte 27 (');
  }
  const truncated = tempFile('csv', Buffer.concat([Buffer.from('a\n\n'), Buffer.from([0xe2, 0x82])]));
  for (const chunkBytes of [4, 64]) {
    await rejects(() => readAll({ path: truncated, format: 'csv', fields: [{ name: 'a', kind: 'utf8' }], batchRows: 10, chunkBytes }), `${truncated}:3: expected UTF-8 text, found the bytes e2 82 at byte 3`);
  }
});

test('firstInvalidUtf8 agrees with the platform UTF-8 check, and the prefix before it is valid', () => {
  const byteArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0x9f, 0xa0, 0x8f, 0x90));
  const textBytes = fc.string({ unit: 'binary', maxLength: 8 }).map((s) => [...Buffer.from(s)]);
  fc.assert(
    fc.property(fc.array(fc.oneof(byteArb.map((b) => [b]), textBytes), { maxLength: 12 }), (parts) => {
      const b = Uint8Array.from(parts.flat());
      const at = firstInvalidUtf8(b);
      assert.is(at === -1, isUtf8(b));
      if (at >= 0) {
        assert.ok(isUtf8(b.subarray(0, at)), 'valid before it');
        // No valid character starts at `at`: every length of sequence from there is invalid.
        for (let k = 1; k <= 4 && at + k <= b.length; k++) assert.not.ok(isUtf8(b.subarray(at, at + k)), `a character of ${k} bytes at ${at}`);
      }
    }),
    { numRuns: 5000 },
  );
});

test('a runaway quoted field does not grow without bound', async () => {
  // An unclosed quote makes the rest of the file one row: with a row limit it stops at the limit, not
  // at the end of the heap; without one it stops at the end of the file with its own message.
  const path = tempFile('csv', 'a\n"' + 'x'.repeat(10_000));
  const fields: FieldSpec[] = [{ name: 'a', kind: 'utf8' }];
  await rejects(() => readAll({ path, format: 'csv', fields, batchRows: 10, chunkBytes: 64, rowCharsMax: 1000 }), `${path}:2: expected a row of at most 1000 characters`);
  await rejects(() => readAll({ path, format: 'csv', fields, batchRows: 10, chunkBytes: 64 }), `${path}:2:`, 'closing');
});

// ---------------------------------------------------------------------------------------------------
// Arrow

function arrowTable(batchSizes: number[], withNulls: boolean): { table: Table; expected: string[][] } {
  const expected: string[][] = [];
  const batches: RecordBatch[] = [];
  let n = 0;
  const schema = new Schema([new Field('id', new Int64(), true), new Field('name', new Utf8(), true), new Field('x', new Float64(), true), new Field('ts', new Int64(), false)]);
  for (const size of batchSizes) {
    const ids: (bigint | null)[] = [];
    const names: string[] = [];
    const xs: (number | null)[] = [];
    const ts: bigint[] = [];
    for (let i = 0; i < size; i++, n++) {
      const nullId = withNulls && n % 5 === 3;
      ids.push(nullId ? null : BigInt(n) * 1_000_000_007n - 3n);
      names.push(`name ${n} é😀`);
      xs.push(n % 4 === 1 ? null : n / 7);
      ts.push(BigInt(1_704_067_200_000 + n * 1000));
      if (!nullId) expected.push([show(BigInt(n) * 1_000_000_007n - 3n), show(`name ${n} é😀`), show(n % 4 === 1 ? NaN : n / 7), show(1_704_067_200_000 + n * 1000)]);
    }
    const children = [
      vectorFromArray(ids, new Int64()).data[0]!,
      vectorFromArray(names, new Utf8()).data[0]!,
      vectorFromArray(xs, new Float64()).data[0]!,
      vectorFromArray(ts, new Int64()).data[0]!,
    ];
    const data = makeData({ type: new Struct(schema.fields), length: size, nullCount: 0, children });
    batches.push(new RecordBatch(schema, data));
  }
  return { table: new Table(schema, batches), expected };
}

const ARROW_FIELDS: FieldSpec[] = [
  { name: 'id', kind: 'int64' },
  { name: 'name', kind: 'utf8' },
  { name: 'x', kind: 'float64' },
  { name: 'ts', kind: 'time' },
];

test('Arrow: file and stream formats, split record batches, resume at every offset', async () => {
  const { table, expected } = arrowTable([5, 1, 0, 9, 4], false);
  for (const kind of ['file', 'stream'] as const) {
    const path = tempFile(kind === 'file' ? 'arrow' : 'arrows', tableToIPC(table, kind));
    for (const batchRows of [1, 3, 100]) {
      const whole = await readAll({ path, format: 'arrow', fields: ARROW_FIELDS, batchRows });
      assert.equal(whole.rows, expected, `${kind} batchRows ${batchRows}`);
      let seen = 0;
      for (const b of whole.batches) {
        assert.is(b.firstLine, seen + 1);
        seen += b.rows;
        assert.is(b.endOffset, seen);
        assert.is(b.nextLine, seen + 1);
        const rest = await readAll({ path, format: 'arrow', fields: ARROW_FIELDS, batchRows, startOffset: b.endOffset });
        assert.equal(rest.rows, expected.slice(seen));
      }
    }
  }
});

test('a utf8 key over 64 KiB of UTF-8 is a bad row with its line, in CSV, NDJSON and Arrow; skipBad skips it', async () => {
  // 'é' is 2 bytes: 32768 of them are exactly 65536 bytes (kept), one more is too long.
  const fits = 'é'.repeat(32768);
  const long = 'é'.repeat(32769);
  const keys = ['a', fits, long, 'b'];
  const fields: FieldSpec[] = [{ name: 'k', kind: 'utf8' }, { name: 'v', kind: 'float64' }];
  const csv = tempFile('csv', 'k,v\n' + keys.map((k, i) => `${k},${i}`).join('\n') + '\n');
  const ndjson = tempFile('ndjson', keys.map((k, i) => JSON.stringify({ k, v: i })).join('\n') + '\n');
  const arrow = tempFile('arrow', tableToIPC(new Table({ k: vectorFromArray(keys, new Utf8()), v: vectorFromArray([0, 1, 2, 3], new Float64()) }), 'file'));
  for (const [path, format, where] of [[csv, 'csv', ':4:'], [ndjson, 'ndjson', ':3:'], [arrow, 'arrow', ':row 3:']] as const) {
    await rejects(() => readAll({ path, format, fields, batchRows: 10 }), `${path}${where}`, 'expected a key of at most 65536 bytes of UTF-8, found 65538 bytes');
    const { rows, batches } = await readAll({ path, format, fields, batchRows: 10, skipBad: true });
    assert.equal(rows.map((r) => r[1]), ['num:0', 'num:1', 'num:3'], format);
    assert.is(rows[1]![0], show(fits), format);
    assert.is(batches.reduce((a, b) => a + b.skipped, 0), 1, format);
  }
});

test('Arrow: nulls in required fields are bad rows; missing fields are listed', async () => {
  const { table, expected } = arrowTable([7, 6], true);
  const path = tempFile('arrow', tableToIPC(table, 'file'));
  await rejects(() => readAll({ path, format: 'arrow', fields: ARROW_FIELDS, batchRows: 100 }), `${path}:row 4: field "id": expected an integer, found null`);
  const { rows, batches } = await readAll({ path, format: 'arrow', fields: ARROW_FIELDS, batchRows: 4, skipBad: true });
  assert.equal(rows, expected);
  assert.is(batches.reduce((a, b) => a + b.skipped, 0), 13 - expected.length);
  await rejects(() => openReader({ path, format: 'arrow', fields: [{ name: 'price', kind: 'int64' }], batchRows: 4 }), '"price"', '"id", "name", "x", "ts"');
  const notArrow = tempFile('arrow', 'a,b\n1,2\n');
  await rejects(() => openReader({ path: notArrow, format: 'arrow', fields: [{ name: 'a', kind: 'int64' }], batchRows: 4 }), 'Arrow IPC');
});

test('Arrow: invalid UTF-8 keys and out-of-range or ns timestamps are bad rows; damaged and empty files are usage errors', async () => {
  // Keys as raw bytes: row 1 is not UTF-8, row 2 is a character split over... its own truncation.
  const keyBytes = [[0x61], [0x61, 0xff], [0x61, 0xc3], [0xc3, 0xa9]];
  const offsets = new Int32Array(keyBytes.length + 1);
  keyBytes.forEach((k, i) => (offsets[i + 1] = offsets[i]! + k.length));
  const k = makeData({ type: new Utf8(), length: 4, valueOffsets: offsets, data: Uint8Array.from(keyBytes.flat()) });
  // ns timestamps: one just below a ms boundary (must round down), one out of range once in ms
  // is fine for ns, so use ms for out of range: 2^60 ms.
  const tsNs = makeData({ type: new TimestampNanosecond(), data: BigInt64Array.from([1_699_999_999_999_999_999n, 1_000_000n, -1n, 5n]) });
  const tsMs = makeData({ type: new TimestampMillisecond(), data: BigInt64Array.from([1n, 2n ** 60n, 3n, 4n]) });
  const table = new Table({ k: makeVector(k), t: makeVector(tsNs), u: makeVector(tsMs) });
  const path = tempFile('arrow', tableToIPC(table, 'file'));
  const fieldsT: FieldSpec[] = [{ name: 'k', kind: 'utf8' }, { name: 't', kind: 'time' }];
  await rejects(() => readAll({ path, format: 'arrow', fields: fieldsT, batchRows: 10 }), `${path}:row 2: field "k": expected UTF-8 text`);
  const { rows } = await readAll({ path, format: 'arrow', fields: fieldsT, batchRows: 10, skipBad: true });
  assert.equal(rows, [[show('a'), show(1_699_999_999_999)], [show('é'), show(0)]]);
  const { rows: ns } = await readAll({ path, format: 'arrow', fields: [{ name: 't', kind: 'time' }], batchRows: 10 });
  assert.equal(ns.map((r) => r[0]), [1_699_999_999_999, 1, -1, 0].map(show), 'ns rounded down, before 1970 too');
  await rejects(() => readAll({ path, format: 'arrow', fields: [{ name: 'u', kind: 'time' }], batchRows: 10 }), `${path}:row 2: field "u":`);
  const { rows: u } = await readAll({ path, format: 'arrow', fields: [{ name: 'u', kind: 'time' }], batchRows: 10, skipBad: true });
  assert.equal(u.map((r) => r[0]), [1, 3, 4].map(show));
  // Empty, truncated and damaged files; a field named twice.
  await rejects(() => readAll({ path: tempFile('arrow', new Uint8Array(0)), format: 'arrow', fields: fieldsT, batchRows: 10 }), 'expected an Arrow IPC file or stream');
  // Four record batches of small doubles (no 0xFFFFFFFF in the data: it would look like a marker).
  const a: FieldSpec[] = [{ name: 'a', kind: 'float64' }];
  const four = new Table([0, 1, 2, 3].flatMap((b) => new Table({ a: vectorFromArray(Array.from({ length: 100 }, (_, i) => b * 100 + i), new Float64()) }).batches));
  assert.is((await readAll({ path: tempFile('arrow', tableToIPC(four, 'file')), format: 'arrow', fields: a, batchRows: 1000 })).rows.length, 400);
  const stream = tableToIPC(four, 'stream');
  await rejects(() => readAll({ path: tempFile('arrows', stream.subarray(0, stream.length >> 1)), format: 'arrow', fields: a, batchRows: 1000 }), 'unreadable Arrow data after row');
  const file = Buffer.from(tableToIPC(four, 'file'));
  // Zero the header of the second record batch's message (the third continuation marker).
  let at = -1;
  for (let i = 0; i < 3; i++) at = file.indexOf(Buffer.from([255, 255, 255, 255]), at + 1);
  file.fill(0, at, at + 8);
  await rejects(() => readAll({ path: tempFile('arrow', file), format: 'arrow', fields: a, batchRows: 1000 }), 'footer lists 4 record batches');
  // The stream format has no footer: the same damage reads as its end-of-stream marker, with bytes after it.
  assert.is((await readAll({ path: tempFile('arrows', stream), format: 'arrow', fields: a, batchRows: 1000 })).rows.length, 400);
  const damaged = Buffer.from(stream);
  at = -1;
  for (let i = 0; i < 3; i++) at = damaged.indexOf(Buffer.from([255, 255, 255, 255]), at + 1);
  damaged.fill(0, at, at + 8);
  await rejects(() => readAll({ path: tempFile('arrows', damaged), format: 'arrow', fields: a, batchRows: 1000 }), `the Arrow stream ends at byte ${at + 4} (after 1 record batches, 100 rows), but the file has ${stream.length} bytes`);
  const two = Buffer.concat([stream, stream]);
  await rejects(() => readAll({ path: tempFile('arrows', two), format: 'arrow', fields: a, batchRows: 1000 }), `the Arrow stream ends at byte ${stream.length}`, 'more than one stream');
  const twice = new Table({ k: makeVector(k), t: makeVector(tsNs) });
  const dup = tableToIPC(new Table(new Schema([new Field('k', new Utf8()), new Field('t', new TimestampNanosecond()), new Field('t', new TimestampNanosecond())]), twice.batches.map((b) => new RecordBatch(new Schema([new Field('k', new Utf8()), new Field('t', new TimestampNanosecond()), new Field('t', new TimestampNanosecond())]), makeData({ type: new Struct([new Field('k', new Utf8()), new Field('t', new TimestampNanosecond()), new Field('t', new TimestampNanosecond())]), length: 4, nullCount: 0, children: [k, tsNs, tsNs] })))), 'file');
  await rejects(() => openReader({ path: tempFile('arrow', dup), format: 'arrow', fields: fieldsT, batchRows: 10 }), 'expected one field named "t"');
  // A dictionary index outside its dictionary is named as such, not as a null.
  const dict = makeData({ type: new Dictionary(new Utf8(), new Int32()), data: new Int32Array([0, 5, 1]), dictionary: vectorFromArray(['a', 'b'], new Utf8()) });
  const dictPath = tempFile('arrow', tableToIPC(new Table({ k: makeVector(dict) }), 'file'));
  await rejects(() => readAll({ path: dictPath, format: 'arrow', fields: [{ name: 'k', kind: 'utf8' }], batchRows: 10 }), `${dictPath}:row 2: field "k": expected a string, found a dictionary index with no entry`);
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
