// Proves Arrow key and value columns are read from their buffers exactly as the vectors' own get()
// reads them: Utf8 and Dictionary<Utf8> keys (read as UTF-8 bytes, straight from the buffers or the
// dictionary) with multi-byte, empty and long (over 32 bytes) strings, 8-, 16- and 32-bit indices,
// int64 keys and float values; for sliced vectors (a sliced chunk's buffers are already sliced,
// Data.offset only places its validity bits) and vectors of several chunks. Decimal values, which
// would read as 32-bit words, are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vectorFromArray, makeVector, Dictionary, Utf8, Int8, Int16, Int32, Int64, Float64, Decimal, makeData, type Vector, type Data } from 'apache-arrow';
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
