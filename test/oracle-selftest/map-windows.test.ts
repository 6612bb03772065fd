// Proves the Map windowing baseline (bench/baselines/map-windows.ts) follows the window semantics:
// on seeded random streams with disorder, nulls and allowed lateness, every advanceWatermark call
// (including ones that move the watermark backwards) emits exactly the rows the reference
// WindowModel emits, in the same order, and both count the same late events. Values are integers,
// so session merges that add partial sums agree exactly with the model's arrival-order sum.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MapWindows, compareUtf8, type MapWindowSpec } from '../../bench/baselines/map-windows.js';
import { WindowModel } from '../oracle/window-model.js';
import { genEvents, Rng, toColumns } from '../oracle/gen.js';
import { compareKeys } from '../oracle/keys.js';

const AGGS = { count: { fn: 'count' }, sum: { fn: 'sum', field: 'amount' }, min: { fn: 'min', field: 'amount' }, max: { fn: 'max', field: 'amount' } } as const;

function run(spec: MapWindowSpec, keyType: 'int64' | 'utf8', seed: number, lateness: number, grid: number): { refires: number; late: number } {
  // With grid > 1, times and watermarks are multiples of grid, so events and watermarks land exactly
  // on window boundaries (end == W, end + L == W) often: that is where off-by-one errors live.
  const snap = (t: number) => Math.round(t / grid) * grid;
  const rows = genEvents({ seed, n: 2500, keys: 40, keyType, timeStart: -300, timeSpread: 2000, disorderMs: 60, nullRate: 0.15, multibyte: true, emptyKey: true, skew: 0.8 }).map((r) => ({ ...r, time: snap(r.time) }));
  const model = new WindowModel({ keyType, window: spec, allowedLateness: lateness, aggregates: AGGS });
  const base = new MapWindows({ window: spec, allowedLateness: lateness });
  const rng = new Rng(seed * 7 + 1);
  let emitted = 0;
  let refires = 0;
  const seen = new Set<string>();
  for (let i = 0; i < rows.length; ) {
    const batch = rows.slice(i, i + rng.int(1, 120));
    i += batch.length;
    model.ingest(batch);
    const cols = toColumns(batch, { keyType });
    if (keyType === 'int64') base.ingestInt64(cols.user as BigInt64Array, cols.ts as Float64Array, cols.amount as Float64Array);
    else base.ingestUtf8(cols.user as string[], cols.ts as Float64Array, cols.amount as Float64Array);
    // Watermark trails the newest time by a random lag, sometimes moving backwards.
    const wm = snap(batch[batch.length - 1].time - rng.int(-50, 80));
    const expected = model.advanceWatermark(wm);
    assert.equal(base.advanceWatermark(wm), expected, `advance to ${wm} after ${i} events`);
    emitted += expected.length;
    for (const r of expected) {
      const id = `${String(r.key)}|${r.window_start}|${r.window_end}`;
      if (seen.has(id)) refires++;
      seen.add(id);
    }
    assert.is(base.lateEvents, model.lateEvents);
  }
  const last = model.advanceWatermark(10_000);
  assert.equal(base.advanceWatermark(10_000), last);
  assert.ok(emitted + last.length > 50, 'the stream produced windows');
  return { refires, late: model.lateEvents };
}

const SPECS: MapWindowSpec[] = [
  { kind: 'tumbling', size: 50 },
  { kind: 'hopping', size: 60, slide: 20 },
  { kind: 'session', gap: 10 },
];

for (const spec of SPECS) {
  for (const keyType of ['int64', 'utf8'] as const) {
    for (const lateness of [0, 15]) {
      test(`${spec.kind} ${keyType} L=${lateness} matches the model`, () => {
        let refires = 0;
        let late = 0;
        for (const [seed, grid] of [[1, 1], [2, 1], [3, 5], [4, 10]]) {
          const r = run(spec, keyType, seed, lateness, grid);
          refires += r.refires;
          late += r.late;
        }
        // The streams must exercise the interesting paths, or the comparison proves little.
        assert.ok(late > 0, 'some events were dropped as late');
        if (lateness > 0) assert.ok(refires > 0, 'some windows re-fired after late updates');
      });
    }
  }
}

test('a late drop is counted by both', () => {
  const model = new WindowModel({ keyType: 'utf8', window: { kind: 'tumbling', size: 10 }, aggregates: AGGS });
  const base = new MapWindows({ window: { kind: 'tumbling', size: 10 } });
  model.advanceWatermark(20);
  base.advanceWatermark(20);
  const batch = [{ key: 'a', time: 5, values: { amount: 1 } }, { key: 'a', time: 25, values: { amount: 2 } }];
  model.ingest(batch);
  const cols = toColumns(batch);
  base.ingestUtf8(cols.user as string[], cols.ts as Float64Array, cols.amount as Float64Array);
  assert.is(base.lateEvents, 1);
  assert.is(model.lateEvents, 1);
});

test('compareUtf8 agrees with UTF-8 byte order', () => {
  const keys = ['', 'a', 'a\u0000', 'ab', 'b', 'é', '\uff61', '😀', '\ud7ff', '\ue000', 'ꙮ', '𝄞x', '𝄞'];
  const byBytes = [...keys].sort(compareKeys);
  assert.equal([...keys].sort(compareUtf8), byBytes);
  assert.not.equal([...keys].sort(), byBytes, 'plain JS sort differs, so the check has teeth');
});

test.run();
