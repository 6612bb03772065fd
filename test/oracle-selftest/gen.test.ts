// Proves the seeded stream generators: the same seed gives the same stream, a different seed a
// different one; times stay within the stated disorder bound; skew makes the first key dominant;
// multibyte and empty keys appear when asked; toColumns maps rows to columns with NaN for null.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genEvents, mulberry32, toColumns } from '../oracle/gen.js';

test('mulberry32 is deterministic and in [0, 1)', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.equal(xs, Array.from({ length: 1000 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.ok(new Set(xs).size > 990);
});

test('genEvents is reproducible and respects time bounds', () => {
  const opts = { seed: 7, n: 500, keys: 20, keyType: 'int64' as const, timeStart: 1000, timeSpread: 250, disorderMs: 30, nullRate: 0.2 };
  const rows = genEvents(opts);
  assert.equal(rows, genEvents(opts));
  assert.not.equal(rows, genEvents({ ...opts, seed: 8 }));
  rows.forEach((r, i) => {
    const slot = 1000 + Math.floor((i * 250) / 500);
    assert.ok(r.time <= slot && r.time >= slot - 30, `row ${i} time ${r.time}`);
    assert.is(typeof r.key, 'bigint');
  });
  const nulls = rows.filter((r) => r.values.amount === null).length;
  assert.ok(nulls > 50 && nulls < 150, `nulls ${nulls}`);
  assert.ok(rows.every((r) => r.values.amount === null || Number.isInteger(r.values.amount)));
  assert.ok(new Set(rows.map((r) => r.key)).size <= 20);
});

test('skew concentrates events on the first keys', () => {
  const uniform = genEvents({ seed: 1, n: 5000, keys: 100, keyType: 'utf8' });
  const skewed = genEvents({ seed: 1, n: 5000, keys: 100, keyType: 'utf8', skew: 1.5 });
  const share = (rows: typeof uniform) => rows.filter((r) => r.key === 'k0').length / rows.length;
  assert.ok(share(uniform) < 0.03, `uniform ${share(uniform)}`);
  assert.ok(share(skewed) > 0.2, `skewed ${share(skewed)}`);
});

test('multibyte and empty keys appear', () => {
  const rows = genEvents({ seed: 3, n: 2000, keys: 30, keyType: 'utf8', multibyte: true, emptyKey: true });
  const keys = new Set(rows.map((r) => r.key as string));
  assert.ok(keys.has(''));
  assert.ok([...keys].some((k) => new TextEncoder().encode(k).length > k.length + 2), 'some key has multi-byte characters');
  assert.ok([...keys].some((k) => /[\ud800-\udbff]/.test(k)), 'some key has a surrogate pair');
});

test('toColumns produces plain typed columns with NaN for null', () => {
  const rows = [
    { key: 5n, time: 10, values: { amount: 1.5, x: null } },
    { key: -1n, time: 11, values: { amount: null, x: 2 } },
  ];
  const cols = toColumns(rows, { keyField: 'user', timeField: 'ts', valueFields: ['amount', 'x'] });
  assert.ok(cols.user instanceof BigInt64Array);
  assert.equal([...(cols.user as BigInt64Array)], [5n, -1n]);
  assert.equal([...(cols.ts as Float64Array)], [10, 11]);
  assert.equal([...(cols.amount as Float64Array)].map((v) => (Number.isNaN(v) ? 'null' : v)), [1.5, 'null']);
  assert.equal([...(cols.x as Float64Array)].map((v) => (Number.isNaN(v) ? 'null' : v)), ['null', 2]);
  const s = toColumns([{ key: 'a', time: 1, values: { amount: 3 } }]);
  assert.equal(s.user, ['a']);
  assert.equal(Object.keys(toColumns([], { keyType: 'int64' })), ['user', 'ts', 'amount']);
});

test.run();
