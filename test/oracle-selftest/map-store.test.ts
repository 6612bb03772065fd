// Proves the Map baseline (bench/baselines/map-store.ts) computes per-key count/sum/min/max exactly
// as the reference AggregateModel does, on seeded random streams with nulls, fractional values
// (so float sums must follow arrival order), int64 extremes and multi-byte utf8 keys.
import { test } from 'uvu';
import { vectorFromArray, Utf8 } from 'apache-arrow';
import * as assert from 'uvu/assert';
import { MapStore, measureHeapBytesPerKey } from '../../bench/baselines/map-store.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { genEvents, toColumns, type GenRow } from '../oracle/gen.js';

const AGGS = { count: { fn: 'count' }, sum: { fn: 'sum', field: 'amount' }, min: { fn: 'min', field: 'amount' }, max: { fn: 'max', field: 'amount' } } as const;

function modelOf(rows: GenRow[], keyType: 'int64' | 'utf8', batches: number): AggregateModel {
  const m = new AggregateModel({ keyType, aggregates: AGGS });
  const step = Math.ceil(rows.length / batches);
  for (let i = 0; i < rows.length; i += step) m.ingest(rows.slice(i, i + step));
  return m;
}

for (const seed of [1, 2, 3]) {
  test(`int64 keys (bigint and number modes) match the model, seed ${seed}`, () => {
    const rows = genEvents({ seed, n: 3000, keys: 200, keyType: 'int64', nullRate: 0.2, fractional: true, skew: 1 });
    const model = modelOf(rows, 'int64', 3);
    const store = new MapStore();
    const step = 1000;
    for (let i = 0; i < rows.length; i += step) {
      const cols = toColumns(rows.slice(i, i + step));
      store.ingestInt64(cols.user as BigInt64Array, cols.amount as Float64Array);
    }
    assert.is(store.size, model.size);
    for (const key of model.keys()) assert.equal(store.get(key as bigint), model.get(key), `key ${key}`);
    // Number mode rejects keys beyond 2^53 (the generator includes the int64 extremes) ...
    const cols = toColumns(rows);
    assert.throws(() => new MapStore({ int64Keys: 'number' }).ingestInt64(cols.user as BigInt64Array, cols.amount as Float64Array));
    // ... and matches the model on safe keys.
    const safe = rows.filter((r) => (r.key as bigint) >= -(2n ** 53n) + 1n && (r.key as bigint) <= 2n ** 53n - 1n);
    const safeModel = modelOf(safe, 'int64', 1);
    const numbers = new MapStore({ int64Keys: 'number' });
    const sc = toColumns(safe, { keyType: 'int64' });
    numbers.ingestInt64(sc.user as BigInt64Array, sc.amount as Float64Array);
    assert.is(numbers.size, safeModel.size);
    for (const key of safeModel.keys()) assert.equal(numbers.get(key as bigint), safeModel.get(key), `key ${key}`);
  });

  test(`utf8 keys match the model, seed ${seed}`, () => {
    const rows = genEvents({ seed, n: 3000, keys: 300, keyType: 'utf8', nullRate: 0.3, fractional: true, multibyte: true, emptyKey: true });
    const model = modelOf(rows, 'utf8', 1);
    const store = new MapStore();
    const cols = toColumns(rows);
    store.ingestUtf8(cols.user as string[], cols.amount as Float64Array);
    assert.is(store.size, model.size);
    for (const key of model.keys()) assert.equal(store.get(key as string), model.get(key), `key ${key}`);
    // The same keys as an Arrow Utf8 column, decoded per row.
    const fromArrow = new MapStore();
    fromArrow.ingestUtf8Vector(vectorFromArray(cols.user as string[], new Utf8()), cols.amount as Float64Array);
    assert.is(fromArrow.size, model.size);
    for (const key of model.keys()) assert.equal(fromArrow.get(key as string), model.get(key), `key ${key} (Arrow input)`);
  });
}

test('heap measurement returns a per-key figure', () => {
  const cols = toColumns(genEvents({ seed: 9, n: 20000, keys: 10000, keyType: 'utf8' }));
  const m = measureHeapBytesPerKey(() => {
    const s = new MapStore();
    s.ingestUtf8(cols.user as string[], cols.amount as Float64Array);
    return s;
  }, 10000);
  assert.is(typeof m.bytesPerKey, 'number');
  assert.is(typeof m.precise, 'boolean');
  if (m.precise) assert.ok(m.bytesPerKey > 16, `bytes per key ${m.bytesPerKey}`);
});

test.run();
