// Proves the reference AggregateModel on small hand-computed cases: every aggregate function, null
// skipping, first/last with and without time (including ties), float sums in arrival order, key order
// (UTF-8 bytes, signed int64), delete, and all-or-nothing rejection of invalid batches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { isCairnError } from '../../src/errors.js';

const ALL = {
  n: { fn: 'count' },
  nv: { fn: 'count', field: 'v' },
  sum: { fn: 'sum', field: 'v' },
  min: { fn: 'min', field: 'v' },
  max: { fn: 'max', field: 'v' },
  mean: { fn: 'mean', field: 'v' },
  first: { fn: 'first', field: 'v' },
  last: { fn: 'last', field: 'v' },
} as const;

test('all aggregates with nulls skipped, by event time', () => {
  const m = new AggregateModel({ keyType: 'utf8', time: true, aggregates: ALL });
  m.ingest([
    { key: 'a', time: 5, values: { v: 1 } },
    { key: 'a', time: 3, values: { v: 2 } },
    { key: 'a', time: 3, values: { v: 3 } }, // ties t=3: first keeps the earlier arrival (2)
    { key: 'a', time: 1, values: { v: null } }, // null: skipped by every field aggregate, even first
    { key: 'a', time: 7, values: { v: 4 } },
    { key: 'a', time: 7, values: { v: NaN } }, // NaN is null
    { key: 'a', time: 7, values: { v: 5 } }, // ties t=7: last takes the later arrival (5)
    { key: 'a', time: 9, values: {} }, // missing field is null
  ]);
  assert.equal(m.get('a'), { n: 8, nv: 5, sum: 15, min: 1, max: 5, mean: 3, first: 2, last: 5 });
});

test('first/last without time follow arrival order', () => {
  const m = new AggregateModel({ keyType: 'int64', aggregates: ALL });
  m.ingest([
    { key: 1n, values: { v: null } },
    { key: 1n, values: { v: 9 } },
    { key: 1n, values: { v: -2 } },
    { key: 1n, values: { v: null } },
  ]);
  assert.equal(m.get(1), { n: 4, nv: 2, sum: 7, min: -2, max: 9, mean: 3.5, first: 9, last: -2 });
});

test('a key with only null values has count but null aggregates', () => {
  const m = new AggregateModel({ keyType: 'utf8', aggregates: ALL });
  m.ingest([{ key: 'x', values: { v: null } }]);
  assert.equal(m.get('x'), { n: 1, nv: 0, sum: null, min: null, max: null, mean: null, first: null, last: null });
  assert.is(m.get('y'), undefined);
});

test('float sum is accumulated in arrival order across batches', () => {
  const m = new AggregateModel({ keyType: 'utf8', aggregates: { s: { fn: 'sum', field: 'v' }, mean: { fn: 'mean', field: 'v' } } });
  // (1e16 + 1) rounds back to 1e16, so arrival order gives 0; any order adding 1 last gives 1.
  m.ingest([{ key: 'k', values: { v: 1e16 } }, { key: 'k', values: { v: 1 } }]);
  m.ingest([{ key: 'k', values: { v: -1e16 } }]);
  assert.equal(m.get('k'), { s: 0, mean: 0 });
  const m2 = new AggregateModel({ keyType: 'utf8', aggregates: { s: { fn: 'sum', field: 'v' } } });
  m2.ingest([{ key: 'k', values: { v: 0.1 } }, { key: 'k', values: { v: 0.2 } }, { key: 'k', values: { v: 0.3 } }]);
  assert.is(m2.get('k')?.s, 0.1 + 0.2 + 0.3);
  assert.is.not(m2.get('k')?.s, 0.3 + 0.2 + 0.1); // the two orders really differ for these values
});

test('utf8 keys sort by UTF-8 bytes, not UTF-16 code units', () => {
  const m = new AggregateModel({ keyType: 'utf8', aggregates: { n: { fn: 'count' } } });
  const keys = ['😀', 'b', '\uff61', 'ab', 'a', '', 'é', 'a\u0000'];
  m.ingest(keys.map((key) => ({ key, values: {} })));
  assert.equal(m.keys(), ['', 'a', 'a\u0000', 'ab', 'b', 'é', '\uff61', '😀']);
  assert.equal(m.rows()[0], { key: '', n: 1 });
});

test('int64 keys sort signed; numbers normalize to bigint', () => {
  const m = new AggregateModel({ keyType: 'int64', aggregates: { n: { fn: 'count' } } });
  m.ingest([{ key: 5, values: {} }, { key: -(2n ** 63n), values: {} }, { key: 2n ** 63n - 1n, values: {} }, { key: -1n, values: {} }, { key: 5n, values: {} }]);
  assert.equal(m.keys(), [-(2n ** 63n), -1n, 5n, 2n ** 63n - 1n]);
  assert.equal(m.get(5n), { n: 2 });
  assert.equal(m.rows().map((r) => r.n), [1, 1, 2, 1]);
});

test('delete removes a key', () => {
  const m = new AggregateModel({ keyType: 'utf8', aggregates: { n: { fn: 'count' } } });
  m.ingest([{ key: 'a', values: {} }, { key: 'b', values: {} }]);
  assert.is(m.delete('a'), true);
  assert.is(m.delete('a'), false);
  assert.equal(m.keys(), ['b']);
  m.ingest([{ key: 'a', values: {} }]);
  assert.equal(m.get('a'), { n: 1 });
});

test('an invalid batch throws invalid and changes nothing', () => {
  const m = new AggregateModel({ keyType: 'utf8', time: true, aggregates: { n: { fn: 'count' } } });
  m.ingest([{ key: 'a', time: 1, values: {} }]);
  const bad = [
    [{ key: 'a', time: 2, values: {} }, { key: null, time: 3, values: {} }],
    [{ key: 'a', time: 2, values: {} }, { key: 'b', time: 1.5, values: {} }],
    [{ key: 'a', time: 2, values: {} }, { key: 'b', time: NaN, values: {} }],
    [{ key: 'a', time: 2, values: {} }, { key: 'b', values: {} }],
    [{ key: 'a', time: 2, values: {} }, { key: 'b', time: 2 ** 53 + 2, values: {} }],
    [{ key: 'a', time: 2, values: {} }, { key: 1n, time: 2, values: {} }],
  ];
  for (const batch of bad) {
    try {
      m.ingest(batch as never);
      assert.unreachable('batch should have been rejected');
    } catch (e) {
      assert.ok(isCairnError(e, 'invalid'), String(e));
    }
  }
  assert.equal(m.rows(), [{ key: 'a', n: 1 }]);
  m.ingest([{ key: 'a', time: 2 ** 53, values: {} }, { key: 'a', time: BigInt(-(2 ** 53)), values: {} }]);
  assert.equal(m.get('a'), { n: 3 });
});

test('bad specs are invalid', () => {
  for (const aggregates of [{ s: { fn: 'sum' } }, { s: { fn: 'median', field: 'v' } }, { key: { fn: 'count' } }]) {
    assert.throws(() => new AggregateModel({ keyType: 'utf8', aggregates: aggregates as never }), (e: unknown) => isCairnError(e, 'invalid'));
  }
});

test.run();
