// Event times given as a Float64Array are checked in Wasm (bindings/core.ts writeBatch), not in
// TypeScript. Proves that a bad time anywhere in such a batch (NaN, fractional, infinite, beyond
// ±2^53; first row, last row, an odd tail row, the middle) rejects the whole batch with kind
// `invalid` naming the field and the row, on every path a batch takes into Wasm: one in-process
// shard, a router splitting for several shards, and worker shards; and that state is exactly as it
// was: the fired windows agree with a Map fed only the good batches, and the operator's arrival
// sequence (persisted in checkpoints) and the shards' event counts count only the good events.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend } from '../../src/index.js';

const BAD = [NaN, 1.5, -0.25, Infinity, -Infinity, 2 ** 53 + 2, -(2 ** 53) - 2];
const SIZES = [1, 2, 7, 64, 1001, 5000]; // 5000: three blocks of the Wasm check (TIME_BLOCK)

function good(n: number, seed: number): { k: BigInt64Array; t: Float64Array; v: Float64Array } {
  const k = new BigInt64Array(n);
  const t = new Float64Array(n);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    k[i] = BigInt((i * 7 + seed) % 13);
    t[i] = (i * 31 + seed * 17) % 5000;
    v[i] = (i + seed) % 11;
  }
  return { k, t, v };
}

for (const [label, shards, workers] of [['1 shard', 1, false], ['3 shards', 3, false], ['1 worker', 1, true], ['2 workers', 2, true]] as const) {
  test(`bad Float64Array times reject the whole batch, state unchanged (${label})`, async () => {
    const backend = await StateBackend.open({ shards, workers });
    try {
      const op = backend.aggregate('w', {
        key: { field: 'k', type: 'int64' }, time: 'ts', window: { kind: 'tumbling', size: 1000 },
        aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } },
      });
      const model = new Map<string, { n: number; s: number }>();
      let goodEvents = 0;
      const feed = async (b: { k: BigInt64Array; t: Float64Array; v: Float64Array }) => {
        await op.ingest({ k: b.k, ts: b.t, v: b.v });
        goodEvents += b.k.length;
        for (let i = 0; i < b.k.length; i++) {
          const id = `${b.k[i]}@${Math.floor(b.t[i]! / 1000) * 1000}`;
          const m = model.get(id) ?? { n: 0, s: 0 };
          m.n++;
          m.s += b.v[i]!;
          model.set(id, m);
        }
      };
      await feed(good(50, 1));
      let seed = 2;
      for (const n of SIZES) {
        for (const at of new Set([0, n - 1, n >> 1, n - 1 - ((n - 1) & 1)])) {
          for (const x of BAD) {
            const b = good(n, seed++);
            b.t[at] = x;
            try {
              await op.ingest({ k: b.k, ts: b.t, v: b.v });
              assert.unreachable(`n=${n} at=${at} t=${x}`);
            } catch (e) {
              assert.is((e as { kind?: string }).kind, 'invalid', `n=${n} at=${at} t=${x}`);
              assert.match((e as Error).message, new RegExp(`time field 'ts' row ${at}: `), `n=${n} at=${at} t=${x}`);
            }
          }
        }
        await feed(good(n, seed++));
      }
      assert.is(op.seq, BigInt(goodEvents), 'a refused batch moved the arrival sequence');
      const events = (await backend.metrics()).shards.reduce((a, x) => a + x.events, 0);
      assert.is(events, goodEvents, 'a refused batch counted in the shards\' events');
      const out = await op.advanceWatermark(10_000);
      const got = new Map<string, { n: number; s: number }>();
      for (const r of out.toArray()) got.set(`${r.k}@${r.window_start}`, { n: Number(r.n), s: r.s });
      assert.equal(got, model);
    } finally {
      await backend.close();
    }
  });
}

test('times given as doubles convert exactly: the same windows as the same times given as int64', async () => {
  // Every kind of value the conversion treats apart: around 0 (and -0), negative, both sides of
  // ±2^51 (where two-at-a-time conversion gives way to one at a time), up to ±2^53; in blocks of
  // the check (TIME_BLOCK 2048) that are all small, all large, or mixed, and odd-length tails.
  const specials = [0, -0, 1, -1, 2 ** 51 - 1, 2 ** 51, 2 ** 51 + 1, -(2 ** 51) + 1, -(2 ** 51), -(2 ** 51) - 1, 2 ** 53, -(2 ** 53), 2 ** 52 + 3, 1_700_000_000_123];
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (const n of [1, 3, 2047, 2048, 2049, 5001]) {
    for (const mode of ['small', 'mixed', 'large'] as const) {
      const t = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const r = rnd();
        const mag = mode === 'small' ? 2 ** 40 : mode === 'large' ? 2 ** 53 : r < 0.5 ? 2 ** 30 : 2 ** 53;
        let v = Math.floor((rnd() * 2 - 1) * mag);
        if (mode === 'large' && Math.abs(v) < 2 ** 51) v = Math.sign(v || 1) * (2 ** 51 + Math.floor(rnd() * 2 ** 40));
        if (rnd() < 0.02) v = specials[Math.floor(rnd() * specials.length)]!;
        t[i] = v;
      }
      const k = new BigInt64Array(n).map((_, i) => BigInt(i % 7));
      const ti = BigInt64Array.from(t, (v) => BigInt(v));
      const backend = await StateBackend.open();
      try {
        const spec = (name: string) => backend.aggregate(name, {
          key: { field: 'k', type: 'int64' }, time: 'ts', window: { kind: 'tumbling', size: 1 }, aggregates: { n: { fn: 'count' } },
        });
        const a = spec('f64');
        const b = spec('i64');
        await a.ingest({ k, ts: t });
        await b.ingest({ k, ts: ti });
        const rows = async (op: ReturnType<typeof spec>) => (await op.advanceWatermark(2n ** 53n + 1n)).toArray().map((r) => `${r.k}@${r.window_start}:${r.n}`);
        const got = await rows(a);
        assert.ok(got.length > 0, `n=${n} ${mode}: nothing fired`);
        assert.equal(got, await rows(b), `n=${n} ${mode}`);
      } finally {
        await backend.close();
      }
    }
  }
});

test.run();
