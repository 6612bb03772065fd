// Proves the result writers (src/cli/writers.ts) format values exactly as documented, report the exact
// file length, and make crash-and-resume byte-identical to a single run.
//
// How: fixed rows check the CSV and NDJSON text character for character. A property test writes
// generated rows in one go, then again as a "crashed" run (rows up to a checkpoint, sync, record
// bytesWritten, more rows that the crash loses, close) followed by a resumed run (open with truncateTo,
// write the rows after the checkpoint); the two files must be equal byte for byte, with bytesWritten
// equal to the real file size at every step. The CSV output is also read back with the CSV reader and
// compared with the rows, so writer and reader agree on quoting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnError } from '../../src/errors.js';
import { UsageError } from '../../src/cli/errors.js';
import { openReader } from '../../src/cli/readers.js';
import { OutputWriter, outputFormatOf, type OutputColumn } from '../../src/cli/writers.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-writers-'));
let counter = 0;
const tempPath = (ext: string): string => join(dir, `w${counter++}.${ext}`);

async function rejects(f: () => Promise<unknown>, kind: new (...a: never[]) => Error, ...parts: string[]): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.instance(e, kind, String(e));
    for (const p of parts) assert.ok((e as Error).message.includes(p), `${JSON.stringify((e as Error).message)} lacks ${JSON.stringify(p)}`);
    return;
  }
  assert.unreachable('expected a rejection');
}

const FIXED: Record<string, OutputColumn> = {
  key: ['a', 'with,comma', 'with "quote"', '', null, 'multi\nline', 'é😀'],
  n: BigInt64Array.from([0n, -1n, 9223372036854775807n, -9223372036854775808n, 5n, 6n, 7n]),
  x: Float64Array.from([1, 2.5, -0, NaN, Infinity, 1e21, 0.1 + 0.2]),
  t: Float64Array.from([1704067200000, 0, -1, 3, 4, 5, 6]),
};

test('CSV formatting: header, quoting, integers, floats, nulls', async () => {
  const path = tempPath('csv');
  const w = await OutputWriter.open(path);
  await w.writeRows(FIXED, 7);
  await w.close();
  assert.is(
    readFileSync(path, 'utf8'),
    [
      'key,n,x,t',
      'a,0,1,1704067200000',
      '"with,comma",-1,2.5,0',
      '"with ""quote""",9223372036854775807,0,-1',
      '"",-9223372036854775808,,3',
      ',5,Infinity,4',
      '"multi\nline",6,1e+21,5',
      'é😀,7,0.30000000000000004,6',
      '',
    ].join('\n'),
  );
});

test('NDJSON formatting: one object per line, nulls and non-finite numbers as null', async () => {
  const path = tempPath('ndjson');
  const w = await OutputWriter.open(path);
  await w.writeRows(FIXED, 3);
  await w.writeRows({ key: [null, 'z'], n: [1n, 2n], x: [NaN, Infinity], t: [true, 1.5] }, 2);
  await w.close();
  assert.is(
    readFileSync(path, 'utf8'),
    [
      '{"key":"a","n":0,"x":1,"t":1704067200000}',
      '{"key":"with,comma","n":-1,"x":2.5,"t":0}',
      '{"key":"with \\"quote\\"","n":9223372036854775807,"x":0,"t":-1}',
      '{"key":null,"n":1,"x":null,"t":true}',
      '{"key":"z","n":2,"x":null,"t":1.5}',
      '',
    ].join('\n'),
  );
});

test('format by extension, and misuse is reported', async () => {
  assert.is(outputFormatOf('a/b.CSV'), 'csv');
  assert.is(outputFormatOf('b.jsonl'), 'ndjson');
  assert.is(outputFormatOf('b.ndjson'), 'ndjson');
  assert.throws(() => outputFormatOf('b.txt'), (e: unknown) => e instanceof UsageError && e.message.includes('.csv, .ndjson or .jsonl'));
  const w = await OutputWriter.open(tempPath('csv'));
  await w.writeRows({ a: [1], b: [2] }, 1);
  await rejects(() => w.writeRows({ b: [1], a: [2] }, 1), CairnError, 'expected the output columns a,b, found b,a');
  await rejects(() => w.writeRows({ a: [1], b: [2] }, 2), CairnError, 'to have 2 values, found 1');
  await rejects(() => w.writeRows({ a: [{} as never], b: [2] }, 1), CairnError, 'found object');
  await w.close();
  await rejects(() => w.writeRows({ a: [1], b: [2] }, 1), CairnError, 'closed');
  await w.close(); // a second close is harmless
});

test('resume validation: missing file, short file, different header', async () => {
  await rejects(() => OutputWriter.open(tempPath('csv'), { truncateTo: 10 }), UsageError, 'expected a file of at least 10 bytes, found no file');
  const path = tempPath('csv');
  writeFileSync(path, 'a,b\n1,2\n');
  await rejects(() => OutputWriter.open(path, { truncateTo: 100 }), UsageError, 'expected at least 100 bytes', 'found 8');
  const w = await OutputWriter.open(path, { truncateTo: 4 });
  assert.is(w.bytesWritten, 4);
  await rejects(() => w.writeRows({ a: [1], c: [2] }, 1), UsageError, 'expected its header to be "a,c", found "a,b"');
  await w.close();
  // truncateTo 0 on an existing file starts over, header included.
  const again = await OutputWriter.open(path, { truncateTo: 0 });
  await again.writeRows({ a: [7], b: [8] }, 1);
  await again.close();
  assert.is(readFileSync(path, 'utf8'), 'a,b\n7,8\n');
});

// ---------------------------------------------------------------------------------------------------
// Crash and resume against a one-shot oracle

const cellArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('', ',', '"', '\r\n', 'x,"y"'),
);
const rowsArb = (doubles: fc.Arbitrary<number>) =>
  fc.array(fc.tuple(cellArb, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), doubles), { maxLength: 40 });

function columnsOf(rows: [string, bigint, number][], from: number, to: number): Record<string, OutputColumn> {
  const part = rows.slice(from, to);
  return {
    name: part.map((r) => r[0]),
    id: BigInt64Array.from(part.map((r) => r[1])),
    value: Float64Array.from(part.map((r) => r[2])),
  };
}

test('crash after a checkpoint, then resume with truncateTo: byte-identical to one run', async () => {
  await fc.assert(
    fc.asyncProperty(
      rowsArb(fc.double()),
      fc.constantFrom('csv', 'ndjson'),
      fc.nat(),
      fc.nat(),
      fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }),
      async (rows, ext, checkpointSeed, lostSeed, pieces) => {
        const oneShot = tempPath(ext);
        const w1 = await OutputWriter.open(oneShot);
        await w1.writeRows(columnsOf(rows, 0, rows.length), rows.length);
        await w1.close();

        const checkpoint = checkpointSeed % (rows.length + 1);
        const lost = Math.min(rows.length, checkpoint + (lostSeed % 5));
        const resumed = tempPath(ext);
        // The crashed run writes rows in pieces, checkpoints, writes on, and dies (closes).
        const w2 = await OutputWriter.open(resumed);
        let written = 0;
        let piece = 0;
        while (written < checkpoint) {
          const next = Math.min(checkpoint, written + pieces[piece++ % pieces.length]!);
          await w2.writeRows(columnsOf(rows, written, next), next - written);
          written = next;
        }
        if (checkpoint === 0) await w2.writeRows(columnsOf(rows, 0, 0), 0); // the header, if CSV
        await w2.sync();
        const recorded = w2.bytesWritten;
        assert.is(recorded, statSync(resumed).size, 'bytesWritten after sync is the file size');
        await w2.writeRows(columnsOf(rows, checkpoint, lost), lost - checkpoint);
        await w2.flush();
        assert.is(w2.bytesWritten, statSync(resumed).size, 'bytesWritten after flush is the file size');
        await w2.close();
        // The resumed run cuts the file back and writes the rest.
        const w3 = await OutputWriter.open(resumed, { truncateTo: recorded });
        assert.is(w3.bytesWritten, recorded);
        await w3.writeRows(columnsOf(rows, checkpoint, rows.length), rows.length - checkpoint);
        const expectedLength = readFileSync(oneShot).length;
        assert.is(w3.bytesWritten, expectedLength, 'bytesWritten counts buffered bytes exactly');
        await w3.close();
        assert.ok(readFileSync(resumed).equals(readFileSync(oneShot)), 'resumed file differs from one-shot file');
      },
    ),
    { numRuns: 120 },
  );
});

test('CSV output reads back through the CSV reader', async () => {
  await fc.assert(
    // CSV writes Infinity as text that the reader does not take as a number, so doubles here are finite
    // or NaN (written as an empty field, read back as NaN).
    fc.asyncProperty(rowsArb(fc.double({ noDefaultInfinity: true })), async (rows) => {
      const path = tempPath('csv');
      const w = await OutputWriter.open(path);
      await w.writeRows(columnsOf(rows, 0, rows.length), rows.length);
      await w.close();
      const reader = await openReader({
        path,
        format: 'csv',
        fields: [
          { name: 'name', kind: 'utf8' },
          { name: 'id', kind: 'int64' },
          { name: 'value', kind: 'float64' },
        ],
        batchRows: 16,
      });
      const back: [string, bigint, number][] = [];
      for await (const b of reader) {
        for (let r = 0; r < b.rows; r++) {
          back.push([(b.columns.name as string[])[r]!, (b.columns.id as BigInt64Array)[r]!, (b.columns.value as Float64Array)[r]!]);
        }
      }
      const expected = rows.map(([s, i, x]) => [s, i, Object.is(x, -0) ? 0 : x]);
      assert.equal(back, expected);
    }),
    { numRuns: 60 },
  );
});

test('large writes flush in bounded pieces and still count exactly', async () => {
  const path = tempPath('ndjson');
  const w = await OutputWriter.open(path);
  const rows = 50_000;
  const names = Array.from({ length: rows }, (_, i) => `ключ-${i}-😀`);
  await w.writeRows({ name: names, i: Float64Array.from({ length: rows }, (_, i) => i) }, rows);
  const before = w.bytesWritten;
  await w.sync();
  assert.is(before, statSync(path).size);
  await w.close();
  assert.is(readFileSync(path, 'utf8').split('\n').length, rows + 1);
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
