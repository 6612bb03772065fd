// Proves the DuckDB baseline (bench/baselines/duckdb.ts) loads the columns faithfully (including
// NaN as SQL NULL and negative times) and that its per-key, tumbling, hopping and session queries
// return exactly the reference models' final answers: AggregateModel for per-key, and WindowModel's
// rows when the watermark passes every window once at the end (no event is late). Values are
// integers, so DuckDB's summation order cannot matter. Rows are compared in the query's own order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DuckBaseline, runDuckdb, type DuckColumns, type DuckQuery } from '../../bench/baselines/duckdb.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { WindowModel, type WindowSpec } from '../oracle/window-model.js';
import { genEvents, toColumns, type GenRow } from '../oracle/gen.js';

const AGGS = { count: { fn: 'count' }, sum: { fn: 'sum', field: 'amount' }, min: { fn: 'min', field: 'amount' }, max: { fn: 'max', field: 'amount' } } as const;

/** DuckDB rows to the models' row shape: BIGINT columns come back as bigint. */
function plain(rows: Record<string, unknown>[], windowed: boolean): Record<string, unknown>[] {
  return rows.map((r) => {
    const out: Record<string, unknown> = { key: r.key };
    if (windowed) {
      out.window_start = Number(r.window_start);
      out.window_end = Number(r.window_end);
    }
    out.count = Number(r.count);
    out.sum = r.sum;
    out.min = r.min;
    out.max = r.max;
    return out;
  });
}

function streams(keyType: 'int64' | 'utf8'): GenRow[] {
  return genEvents({ seed: keyType === 'int64' ? 21 : 22, n: 3000, keys: 60, keyType, timeStart: -700, timeSpread: 1500, disorderMs: 40, nullRate: 0.2, multibyte: true, emptyKey: true, skew: 0.7 });
}

for (const keyType of ['int64', 'utf8'] as const) {
  test(`${keyType}: per-key and window queries equal the models`, async () => {
    const rows = streams(keyType);
    const cols = toColumns(rows, { keyType });
    const duck: DuckColumns = { keys: cols.user as BigInt64Array | string[], ts: cols.ts as Float64Array, amount: cols.amount as Float64Array };
    const db = await DuckBaseline.create();
    try {
      const loadMs = await db.load(duck);
      assert.ok(loadMs >= 0);

      const agg = new AggregateModel({ keyType, aggregates: AGGS });
      agg.ingest(rows);
      const perKey = plain(await db.rows({ kind: 'perKey' }), false);
      // perKey is unordered in SQL; sort by key with the model's own order by looking keys up.
      const byKey = new Map(perKey.map((r) => [String(r.key), r]));
      assert.is(perKey.length, agg.size);
      for (const expected of agg.rows()) assert.equal(byKey.get(String(expected.key)), expected, `key ${String(expected.key)}`);

      const cases: Array<[DuckQuery, WindowSpec]> = [
        [{ kind: 'tumbling', size: 50 }, { kind: 'tumbling', size: 50 }],
        [{ kind: 'hopping', size: 60, slide: 20 }, { kind: 'hopping', size: 60, slide: 20 }],
        [{ kind: 'session', gap: 15 }, { kind: 'session', gap: 15 }],
      ];
      for (const [q, spec] of cases) {
        const model = new WindowModel({ keyType, window: spec, aggregates: AGGS });
        model.ingest(rows);
        const expected = model.advanceWatermark(1_000_000);
        assert.is(model.lateEvents, 0);
        assert.equal(plain(await db.rows(q), true), expected, q.kind);
        const timed = await db.time(q);
        assert.is(timed.rows, expected.length);
      }
    } finally {
      db.close();
    }
  });
}

test('runDuckdb reports load and query separately', async () => {
  const rows = streams('int64').slice(0, 500);
  const cols = toColumns(rows, { keyType: 'int64' });
  const r = await runDuckdb({ keys: cols.user as BigInt64Array, ts: cols.ts as Float64Array, amount: cols.amount as Float64Array }, { kind: 'perKey' });
  assert.is(r.rows, new Set(rows.map((x) => x.key)).size);
  assert.ok(r.loadMs >= 0 && r.queryMs >= 0);
});

test.run();
