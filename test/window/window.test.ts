// Proves event-time windowing (tumbling, hopping via panes, session merging, TTL eviction, allowed
// lateness with late re-firing, late-event dropping and counting) matches a naive reference model
// (test/oracle/window-model.ts) on random out-of-order streams with duplicate keys, checking every
// advanceWatermark's fired rows in order and the late-event count. Also proves state stays bounded
// under an endless stream: rows and Wasm memory stay flat as hundreds of windows pass.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { StateBackend, type WindowSpec } from '../../src/index.js';
import { WindowModel } from '../oracle/window-model.js';
import { genEvents, toColumns, Rng } from '../oracle/gen.js';
import { rowsOf, show, WINDOW_AGGS as AGGS } from '../helpers.js';

export interface WindowCase {
  seed: number;
  keyType: 'int64' | 'utf8';
  window: WindowSpec;
  lateness: number;
  keys: number;
  n: number;
  steps: number;
  disorder: number;
  shards?: number;
  workers?: boolean;
  /** Default WINDOW_AGGS. */
  aggregates?: Record<string, { fn: string; field?: string }>;
}

/** Runs one random case through Cairn and the model, comparing every firing. */
export async function runWindowCase(p: WindowCase): Promise<void> {
  const rows = genEvents({ seed: p.seed, n: p.n, keys: p.keys, keyType: p.keyType, disorderMs: p.disorder, timeSpread: p.n * 4, nullRate: 0.1, multibyte: true, skew: 0.5 });
  const backend = await StateBackend.open({ shards: p.shards ?? 1, workers: p.workers ?? false, keyGroups: 64 });
  const aggregates = p.aggregates ?? AGGS;
  const op = backend.aggregate('w', { key: { field: 'user', type: p.keyType }, time: 'ts', window: p.window, aggregates: aggregates as never, allowedLateness: p.lateness });
  const model = new WindowModel({ keyType: p.keyType, window: p.window, allowedLateness: p.lateness, aggregates: aggregates as never });
  const rng = new Rng(p.seed ^ 0x5bd1e995);
  const size = Math.max(1, Math.ceil(rows.length / p.steps));
  try {
    for (let o = 0; o < rows.length; o += size) {
      const part = rows.slice(o, o + size);
      await op.ingest(toColumns(part, { keyType: p.keyType }));
      model.ingest(part as never);
      // Watermarks: trailing the newest event by a random amount (sometimes going backwards), or
      // exactly on a boundary (an event's window end plus lateness, a slide multiple plus lateness),
      // where off-by-one mistakes in firing, purging and late-dropping would show.
      const newest = part[part.length - 1]!.time;
      const unit = p.window.kind === 'session' ? p.window.gap : p.window.kind === 'hopping' ? p.window.slide : p.window.kind === 'tumbling' ? p.window.size : (p.window.ttl ?? 1);
      const pick = rng.int(0, 2);
      const wm = pick === 0 ? newest - Math.floor(rng.float() * p.disorder * 2)
        : pick === 1 ? part[rng.int(0, part.length - 1)]!.time + unit + p.lateness
        : Math.floor(newest / unit) * unit + p.lateness - unit * rng.int(0, 2);
      const got = rowsOf(await op.advanceWatermark(wm), 'user');
      const want = model.advanceWatermark(wm);
      assert.is(got.length, want.length, `fired rows at watermark ${wm}: got ${show(got.slice(0, 5))} want ${show(want.slice(0, 5))}`);
      for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `fired row ${i} at watermark ${wm}`);
    }
    // The end of input: fire everything.
    const end = rows.reduce((a, r) => Math.max(a, r.time), 0) + 10 * (p.window.kind === 'none' ? 1 : 'size' in p.window ? p.window.size : 'gap' in p.window ? p.window.gap : 1) + p.lateness + 1;
    assert.equal(rowsOf(await op.advanceWatermark(end), 'user'), model.advanceWatermark(end), 'final firing');
    assert.is(await op.lateEvents(), model.lateEvents, 'late events');
    if (p.window.kind === 'none') {
      assert.equal(rowsOf(await op.toArrow(), 'user'), model.state(), 'state after ttl');
      // An advance of a TTL store (which fires nothing) has toArrow()'s columns, no window bounds.
      const names = (t: { schema: { fields: { name: string }[] } }) => t.schema.fields.map((f) => f.name);
      assert.equal(names(await op.advanceWatermark(end + 1)), names(await op.toArrow()), 'columns of an advance without windows');
    }
  } finally {
    await backend.close();
  }
}

const windowArb = fc.oneof(
  fc.integer({ min: 1, max: 200 }).map((size): WindowSpec => ({ kind: 'tumbling', size })),
  fc.tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 8 })).map(([slide, k]): WindowSpec => ({ kind: 'hopping', size: slide * k, slide })),
  fc.integer({ min: 1, max: 100 }).map((gap): WindowSpec => ({ kind: 'session', gap })),
  fc.integer({ min: 1, max: 300 }).map((ttl): WindowSpec => ({ kind: 'none', ttl })),
);

export const windowCaseArb = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
  keyType: fc.constantFrom('int64' as const, 'utf8' as const),
  window: windowArb,
  lateness: fc.constantFrom(0, 0, 25, 120),
  keys: fc.integer({ min: 1, max: 60 }),
  n: fc.integer({ min: 1, max: 1500 }),
  steps: fc.integer({ min: 1, max: 12 }),
  disorder: fc.constantFrom(0, 10, 80),
});

test('windows match the reference model on random out-of-order streams', async () => {
  await fc.assert(fc.asyncProperty(windowCaseArb, runWindowCase), { numRuns: process.env.CAIRN_STRESS ? 1000 : 120 });
});

test('tables beyond the L2 cache (the blocked ingest path and its loops for the usual plans) match the model', async () => {
  // Windowed stores always take the blocked ingest path; the random cases above keep their tables
  // within L2 (512 KiB), where it skips its read-ahead passes. Beyond that, tumbling and hopping
  // stores of int64 keys take copies of the block's loops with their flags as constants, and the
  // plan of count, sum, min and max its own copy of the apply loop: this covers them. 20K keys
  // over 8 panes of 12.5K events hold about 20K live rows (over 1 MB) after the first batch.
  const plan = { n: { fn: 'count' }, spend: { fn: 'sum', field: 'amount' }, lo: { fn: 'min', field: 'amount' }, hi: { fn: 'max', field: 'amount' } };
  const windows: WindowSpec[] = [{ kind: 'tumbling', size: 50_000 }, { kind: 'hopping', size: 100_000, slide: 25_000 }];
  let seed = 11;
  for (const window of windows) {
    for (const aggregates of [plan, AGGS]) {
      await runWindowCase({ seed: seed++, keyType: 'int64', window, lateness: 5_000, keys: 20_000, n: 100_000, steps: 8, disorder: 3_000, aggregates });
    }
  }
});

test('TTL stores of count-only plans keep every key\'s event time from their first batch on', async () => {
  // A store whose aggregates are counts only may take the single-pass ingest loop, which keeps no
  // event times; TTL stores must not take it, from their first batch on (its later blocks too, once
  // the store has rows). First batches of 1,500 events here span three ingest blocks.
  const aggregates = { n: { fn: 'count' }, c: { fn: 'count', field: 'amount' } };
  let seed = 31;
  for (const keyType of ['int64', 'utf8'] as const) {
    await runWindowCase({ seed: seed++, keyType, window: { kind: 'none', ttl: 400 }, lateness: 0, keys: 1_000, n: 6_000, steps: 4, disorder: 50, aggregates });
  }
});

test('TTL: an event that would create a key the TTL has already expired is late; a live key takes old events', async () => {
  for (const [shards, workers] of [[1, false], [3, false], [2, true]] as const) {
    const backend = await StateBackend.open({ shards, workers });
    try {
      const op = backend.aggregate('t', { key: { field: 'k', type: 'int64' }, time: 't', window: { kind: 'none', ttl: 10 }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } });
      const model = new WindowModel({ keyType: 'int64', window: { kind: 'none', ttl: 10 }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } });
      const step = async (rows: { key: bigint; time: number; values: { v: number } }[]) => {
        const r = await op.ingest({ k: rows.map((x) => x.key), t: rows.map((x) => x.time), v: rows.map((x) => x.values.v) });
        const late = model.lateEvents;
        model.ingest(rows as never);
        assert.is(r.accepted, rows.length - (model.lateEvents - late), `accepted (shards ${shards}, workers ${workers})`);
        assert.equal(rowsOf(await op.toArrow(), 'k'), model.state(), 'state right after the ingest');
        assert.is(await op.lateEvents(), model.lateEvents);
      };
      await step([{ key: 1n, time: 15, values: { v: 1 } }, { key: 2n, time: 18, values: { v: 2 } }]);
      await op.advanceWatermark(20);
      model.advanceWatermark(20);
      // Key 3 at t = 3 (3 + 10 <= 20) and t = 10 (exactly at the watermark): expired, never visible;
      // key 1 at t = 9 applies, its key being live (newest time 15), as does key 2 at t = 11; key 4
      // at t = 2 is expired, and then made live by its event at t = 30, in the same batch.
      await step([
        { key: 3n, time: 3, values: { v: 4 } }, { key: 3n, time: 10, values: { v: 8 } }, { key: 1n, time: 9, values: { v: 16 } },
        { key: 2n, time: 11, values: { v: 32 } }, { key: 4n, time: 2, values: { v: 64 } }, { key: 4n, time: 30, values: { v: 128 } },
        { key: 4n, time: 1, values: { v: 256 } },
      ]);
      assert.is(await op.get(3n), undefined);
      assert.equal(await op.get(1n), { n: 2, s: 17 });
      assert.equal(await op.get(2n), { n: 2, s: 34 });
      assert.equal(await op.get(4n), { n: 2, s: 384 });
      assert.is(await op.lateEvents(), 3);
      // At the next advance key 1 (newest 15) goes; keys 2 (newest 18) and 4 (newest 30) stay.
      await op.advanceWatermark(25);
      model.advanceWatermark(25);
      assert.equal(rowsOf(await op.toArrow(), 'k'), model.state());
      assert.equal(rowsOf(await op.toArrow(), 'k').map((r) => String(r['key'])), ['2', '4']);
    } finally {
      await backend.close();
    }
  }
});

test('an event bridging two sessions merges them', async () => {
  const backend = await StateBackend.open();
  const op = backend.aggregate('s', { key: { field: 'k', type: 'utf8' }, time: 't', window: { kind: 'session', gap: 10 }, aggregates: { n: { fn: 'count' } } });
  await op.ingest({ k: ['a', 'a'], t: [0, 30] });
  await op.ingest({ k: ['a', 'a'], t: [9, 21] }); // [0,19) and [21,40) bridged by 9..19 / 21
  await op.ingest({ k: ['a'], t: [15] });
  const rows = rowsOf(await op.advanceWatermark(100), 'k');
  assert.equal(rows, [{ key: 'a', window_start: 0, window_end: 40, n: 5 }]);
  await backend.close();
});

test('a bad window spec is rejected with a clear message', async () => {
  const backend = await StateBackend.open();
  const bad: [object, RegExp][] = [
    [{ kind: 'hopping', size: 10, slide: 3 }, /slide must divide size/],
    [{ kind: 'tumbling', size: 0 }, /tumbling window size/],
    [{ kind: 'session', gap: 1.5 }, /session window gap/],
    [{ kind: 'sliding', size: 5 }, /window.kind/],
  ];
  for (const [w, re] of bad) {
    try {
      backend.aggregate('x', { key: { field: 'k', type: 'utf8' }, time: 't', window: w as WindowSpec, aggregates: { n: { fn: 'count' } } });
      assert.unreachable(`accepted ${show(w)}`);
    } catch (e) {
      assert.instance(e, Error);
      assert.is((e as { kind?: string }).kind, 'invalid');
      assert.match((e as Error).message, re);
    }
  }
  await backend.close();
});

test('missing, NaN and fractional times reject the whole batch', async () => {
  const backend = await StateBackend.open();
  const op = backend.aggregate('w', { key: { field: 'k', type: 'utf8' }, time: 't', window: { kind: 'tumbling', size: 10 }, aggregates: { n: { fn: 'count' } } });
  await op.ingest({ k: ['a'], t: [1] });
  for (const t of [[2, NaN], [2, 1.5], [2, null], [2, undefined]]) {
    try {
      await op.ingest({ k: ['a', 'b'], t: t as number[] });
      assert.unreachable();
    } catch (e) {
      assert.is((e as { kind?: string }).kind, 'invalid', show(t));
    }
  }
  try {
    await op.ingest({ k: ['a'] });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /missing field 't'/);
  }
  assert.equal(rowsOf(await op.advanceWatermark(10), 'k'), [{ key: 'a', window_start: 0, window_end: 10, n: 1 }]);
  await backend.close();
});

test('state stays bounded over hundreds of windows (rows and Wasm memory flat)', async () => {
  for (const window of [{ kind: 'tumbling', size: 100 }, { kind: 'hopping', size: 400, slide: 100 }, { kind: 'session', gap: 30 }] as WindowSpec[]) {
    const backend = await StateBackend.open();
    const op = backend.aggregate('w', { key: { field: 'k', type: 'int64' }, time: 't', window, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } });
    const keys = 2000;
    const samples: { rows: number; mem: number }[] = [];
    for (let w = 0; w < 400; w++) {
      const k = new BigInt64Array(keys);
      const t = new Float64Array(keys);
      const v = new Float64Array(keys);
      for (let i = 0; i < keys; i++) { k[i] = BigInt(i); t[i] = w * 100 + (i % 100); v[i] = i; }
      await op.ingest({ k, t, v });
      await op.advanceWatermark(w * 100 + 99 - 50);
      if (w >= 50 && w % 50 === 0) {
        const m = await backend.metrics();
        samples.push({ rows: m.shards[0]!.rows, mem: m.shards[0]!.memoryBytes });
      }
    }
    const rows = samples.map((s) => s.rows);
    const mems = samples.map((s) => s.mem);
    assert.ok(Math.max(...rows) <= Math.min(...rows) * 1.01 + 10, `${window.kind}: rows grew: ${rows}`);
    assert.ok(Math.max(...rows) <= keys * ('size' in window ? window.size / ('slide' in window ? window.slide : window.size) + 2 : 2), `${window.kind}: too many rows: ${rows}`);
    assert.is(Math.max(...mems), Math.min(...mems), `${window.kind}: Wasm memory grew: ${mems}`);
    await backend.close();
  }
});

test.run();
