// Proves Arrow key and value columns are read from their buffers exactly as the vectors' own get()
// reads them: Utf8 and Dictionary<Utf8> keys (read as UTF-8 bytes, straight from the buffers or the
// dictionary) with multi-byte, empty and long (over 32 bytes) strings, 8-, 16- and 32-bit indices,
// int64 keys and float values; for sliced vectors (a sliced chunk's buffers are already sliced,
// Data.offset only places its validity bits) and vectors of several chunks. Dictionaries with 64-bit
// indices (as pyarrow writes them), which Vector.get cannot look up, are read as the same strings.
// Float16 values and times, stored as raw 16-bit words, are read as the numbers get() gives.
// Decimal values, which would read as 32-bit words, are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vectorFromArray, makeVector, Dictionary, Utf8, Int8, Int16, Int32, Int64, Uint64, Float16, Float64, Decimal, makeData, type Vector, type Data } from 'apache-arrow';
import { encodeBatch } from '../../src/store/batch.js';
import { normalizeAggregateSpec } from '../../src/store/spec.js';
import { Rng } from '../oracle/gen.js';

const spec = normalizeAggregateSpec({ key: { field: 'user', type: 'utf8' }, aggregates: { n: { fn: 'count' } } });
const WORDS = ['', 'a', 'é', '日本', '😀', 'user-', 'x'.repeat(40), 'ß'.repeat(20), 'Ж'];

function randomStringVector(rng: Rng): Vector {
  const dictionary = rng.float() < 0.5;
  const indexType = rng.pick([new Int8(), new Int16(), new Int32()]);
  const chunks: Data[] = [];
  const nChunks = rng.int(1, 3);
  for (let c = 0; c < nChunks; c++) {
    const distinct = rng.int(1, indexType instanceof Int8 ? 100 : 300);
    const values = Array.from({ length: distinct }, (_, i) => `${rng.pick(WORDS)}${i}${rng.pick(WORDS)}`);
    const rows = Array.from({ length: rng.int(0, 400) }, () => values[rng.int(0, distinct - 1)]!);
    let v: Vector = dictionary ? vectorFromArray(rows, new Dictionary(new Utf8(), indexType)) : vectorFromArray(rows, new Utf8());
    if (rows.length > 2 && rng.float() < 0.5) v = v.slice(rng.int(0, 2), rows.length - rng.int(0, 2));
    chunks.push(...(v.data as Data[]));
  }
  return makeVector(chunks);
}

test('Utf8 and Dictionary<Utf8> keys encode to the bytes of their decoded strings', () => {
  const rng = new Rng(0x3c6ef372);
  const enc = new TextEncoder();
  for (let run = 0; run < 300; run++) {
    const keys = randomStringVector(rng);
    const n = keys.length;
    const got = encodeBatch({ user: keys } as never, spec).keys;
    if (got.type !== 'utf8') throw new Error('expected utf8 keys');
    assert.is(got.offsets.length, n + 1, `run ${run}: offsets`);
    for (let i = 0; i < n; i++) {
      const want = enc.encode(keys.get(i) as string);
      const have = got.bytes.subarray(got.offsets[i]!, got.offsets[i + 1]!);
      assert.equal(Array.from(have), Array.from(want), `run ${run}, row ${i}`);
    }
    assert.is(got.offsets[n], got.bytes.length, `run ${run}: byte count`);
  }
});

/** A vector of several chunks, some sliced, of `make(rows)` vectors. */
function chunked(rng: Rng, make: (rows: number[]) => Vector): Vector {
  const chunks: Data[] = [];
  for (let c = rng.int(1, 3); c > 0; c--) {
    const rows = Array.from({ length: rng.int(3, 50) }, () => rng.int(-1000, 1000));
    let v = make(rows);
    if (rng.float() < 0.5) v = v.slice(rng.int(0, 2), rows.length - rng.int(0, 2));
    chunks.push(...(v.data as Data[]));
  }
  return makeVector(chunks);
}

test('int64 keys and float values of sliced and chunked vectors are read as get() reads them', () => {
  const rng = new Rng(0x510e527f);
  const ints = normalizeAggregateSpec({ key: { field: 'k', type: 'int64' }, aggregates: { s: { fn: 'sum', field: 'v' } } });
  for (let run = 0; run < 100; run++) {
    const k = chunked(rng, (rows) => vectorFromArray(rows.map(BigInt), new Int64()));
    const v = chunked(rng, (rows) => vectorFromArray(rows.map((x) => x / 4), new Float64()));
    const n = Math.min(k.length, v.length);
    const b = encodeBatch({ k: k.slice(0, n), v: v.slice(0, n) } as never, ints);
    if (b.keys.type !== 'int64') throw new Error('expected int64 keys');
    assert.equal(Array.from(b.keys.values), Array.from({ length: n }, (_, i) => k.get(i) as bigint), `run ${run}: keys`);
    assert.equal(Array.from(b.values[0]!), Array.from({ length: n }, (_, i) => v.get(i) as number), `run ${run}: values`);
  }
});

/** The strings of `rows` as one Dictionary<Utf8> chunk with 64-bit indices (signed or not). */
function dict64(rows: string[], unsigned: boolean, dictionaryRows?: (string | null)[]): Data {
  const entries = dictionaryRows ?? [...new Set(rows)];
  const at = new Map(entries.map((e, i) => [e, i]));
  const idx = rows.map((r) => BigInt(at.get(r)!));
  return makeData({
    type: new Dictionary(new Utf8(), (unsigned ? new Uint64() : new Int64()) as never),
    length: rows.length,
    data: (unsigned ? BigUint64Array.from(idx) : BigInt64Array.from(idx)) as never,
    dictionary: vectorFromArray(entries, new Utf8()),
  });
}

test('Dictionary<Utf8> keys with 64-bit indices encode to the bytes of the strings they index', () => {
  const rng = new Rng(0x9b05688c);
  const enc = new TextEncoder();
  for (let run = 0; run < 60; run++) {
    const chunks: Data[] = [];
    const rows: string[] = [];
    for (let c = rng.int(1, 3); c > 0; c--) {
      const values = Array.from({ length: rng.int(1, 20) }, (_, i) => `${rng.pick(WORDS)}${i}`);
      const part = Array.from({ length: rng.int(0, 60) }, () => values[rng.int(0, values.length - 1)]!);
      // Some chunks' dictionaries hold an unreferenced null entry: the row-by-row path.
      const withNull = rng.float() < 0.3;
      chunks.push(dict64(part, rng.float() < 0.5, withNull ? [...new Set(part), null] : undefined));
      rows.push(...part);
    }
    let keys = makeVector(chunks);
    let want = rows;
    if (rows.length > 4 && rng.float() < 0.5) {
      keys = keys.slice(1, rows.length - 1);
      want = rows.slice(1, rows.length - 1);
    }
    const got = encodeBatch({ user: keys } as never, spec).keys;
    if (got.type !== 'utf8') throw new Error('expected utf8 keys');
    const decoded = Array.from({ length: want.length }, (_, i) => new TextDecoder().decode(got.bytes.subarray(got.offsets[i]!, got.offsets[i + 1]!)));
    assert.equal(decoded, want, `run ${run}`);
    assert.is(got.bytes.length, want.reduce((a, w) => a + enc.encode(w).length, 0), `run ${run}: byte count`);
  }
});

test('a 64-bit dictionary index of a null entry is a null key, refused as invalid', () => {
  const keys = makeVector(dict64(['a', 'b'], false, ['a', null, 'b']));
  // Index 1 names the null entry.
  const bad = makeVector(makeData({ type: new Dictionary(new Utf8(), new Int64() as never), length: 2, data: BigInt64Array.of(0n, 1n) as never, dictionary: vectorFromArray(['a', null], new Utf8()) }));
  assert.is(encodeBatch({ user: keys } as never, spec).n, 2);
  try {
    encodeBatch({ user: bad } as never, spec);
    assert.unreachable('accepted a null key');
  } catch (e) {
    assert.is((e as { kind?: string }).kind, 'invalid');
    assert.match((e as Error).message, /row 1 is null/);
  }
});

test('Float16 values and times are read as the numbers the vectors\' get() gives', () => {
  const rng = new Rng(0x1f83d9ab);
  const timed = normalizeAggregateSpec({ key: { field: 'k', type: 'int64' }, time: 't', aggregates: { s: { fn: 'sum', field: 'v' } } });
  // Every half-precision bit pattern as values: subnormals, both zeros, the largest finite values,
  // infinities and NaNs (a NaN value is null).
  const all = makeVector(makeData({ type: new Float16(), length: 65536, data: Uint16Array.from({ length: 65536 }, (_, i) => i) }));
  const k = BigInt64Array.from({ length: 65536 }, () => 1n);
  const times = vectorFromArray(Array.from({ length: 65536 }, () => rng.int(-2048, 2048)), new Float16());
  const b = encodeBatch({ k, t: times, v: all } as never, timed);
  const got = b.values[0]!;
  for (let i = 0; i < 65536; i++) {
    const want = all.get(i) as number;
    assert.ok(Object.is(got[i], want) || (Number.isNaN(got[i]) && Number.isNaN(want)), `bits ${i.toString(16)}: ${got[i]} against ${want}`);
  }
  const t = b.times!;
  // The first difference only: uvu's diff of 65536-element arrays would take minutes.
  const wrong = Array.from(t, Number).findIndex((x, i) => x !== (times.get(i) as number));
  assert.is(wrong, -1, `time ${wrong}: ${t[wrong]} against ${times.get(wrong)}`);
  // A half that is not an integer is not a time.
  try {
    encodeBatch({ k: BigInt64Array.of(1n), t: vectorFromArray([1.5], new Float16()), v: [1] } as never, timed);
    assert.unreachable('accepted a time of 1.5 ms');
  } catch (e) {
    assert.is((e as { kind?: string }).kind, 'invalid');
  }
});

test('Decimal value columns are refused with a hint', () => {
  const ints = normalizeAggregateSpec({ key: { field: 'k', type: 'int64' }, aggregates: { s: { fn: 'sum', field: 'v' } } });
  const type = new Decimal(2, 10, 128);
  const v = makeVector(makeData({ type, length: 1, data: new Uint32Array([150, 0, 0, 0]) }));
  try {
    encodeBatch({ k: BigInt64Array.of(1n), v } as never, ints);
    assert.unreachable('accepted a Decimal column');
  } catch (e) {
    assert.is((e as { kind?: string }).kind, 'invalid');
    assert.match((e as Error).message, /Decimal is not read: cast it to Float64/);
  }
});

test.run();
