// Exports and fired windows come out ordered by radix sorts of int64 values (assembly/sort.ts
// radixByI64): signed order across the sign bit and the int64 ends, every digit width (8-bit digits
// below 2048 entries, 11-bit below 65536, 16-bit from there), and stability (a sort by key keeps the
// pane order of an earlier sort by pane start). The oracle is JS's own ordering of BigInts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend } from '../../src/index.js';
import { Rng } from '../oracle/gen.js';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const byBigInt = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** Asserts got equals want, reporting the first difference (uvu's diff of long arrays takes minutes). */
function sameList<T>(got: readonly T[], want: readonly T[], what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  const i = got.findIndex((x, j) => x !== want[j]);
  assert.is(i, -1, `${what}: first difference at ${i}: ${String(got[i])}, expected ${String(want[i])}`);
}

/** `n` distinct int64 keys: the ends and values near zero, then random ones of every magnitude. */
function keys(n: number, rng: Rng): bigint[] {
  const out = new Set<bigint>([INT64_MIN, INT64_MAX, -1n, 0n, 1n, INT64_MIN + 1n, INT64_MAX - 1n]);
  while (out.size < n) {
    const r = rng.float();
    // Keys that agree on their high digits, their low digits, or neither.
    out.add(r < 0.3 ? BigInt(rng.int(-5000, 5000)) : r < 0.5 ? (rng.int64() >> 40n) << 40n : rng.int64());
  }
  return [...out].slice(0, n);
}

for (const n of [2, 300, 2047, 2048, 5000, 65535, 65536, 90_000]) {
  test(`an export of ${n} int64 keys is in signed key order`, async () => {
    const rng = new Rng(n);
    const ks = keys(n, rng);
    const b = await StateBackend.open({ shards: 1 });
    try {
      const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
      // Each key once, a few of them twice, in random order.
      const order = ks.map((k) => [k, rng.float()] as const).sort((x, y) => x[1] - y[1]).map((x) => x[0]);
      const twice = new Set(order.slice(0, 50));
      const input = BigInt64Array.from([...order, ...twice]);
      await op.ingest({ k: input });
      const t = await op.toArrow();
      const got = t.getChild('k')!.toArray() as BigInt64Array;
      sameList([...got], [...ks].sort(byBigInt), 'keys');
      const counts = t.getChild('n')!.toArray() as Float64Array | BigInt64Array;
      for (let i = 0; i < got.length; i++) assert.is(Number(counts[i]), twice.has(got[i]!) ? 2 : 1, `count of ${got[i]}`);
    } finally {
      await b.close();
    }
  });
}

test('open panes export by (key, window start): panes arrive out of order, keys across the sign bit', async () => {
  const rng = new Rng(7);
  const ks = keys(3000, rng);
  const b = await StateBackend.open({ shards: 1 });
  try {
    const op = b.aggregate('w', { key: { field: 'k', type: 'int64' }, time: 't', window: { kind: 'tumbling', size: 10 }, aggregates: { n: { fn: 'count' } } });
    // Up to four panes per key, each key's panes in a random order and keys interleaved, some of
    // them before the epoch.
    const events: [bigint, number][] = [];
    for (const k of ks) {
      const panes = new Set<number>();
      const m = rng.int(1, 4);
      while (panes.size < m) panes.add(rng.int(-20, 20) * 10);
      for (const p of panes) events.push([k, p + rng.int(0, 9)]);
    }
    events.sort(() => rng.float() - 0.5);
    await op.ingest({ k: BigInt64Array.from(events.map((e) => e[0])), t: Float64Array.from(events.map((e) => e[1])) });
    const t = await op.toArrow();
    const gk = t.getChild('k')!.toArray() as BigInt64Array;
    const gs = t.getChild('window_start')!;
    const got = [...gk].map((k, i) => `${k} ${Number(gs.get(i))}`);
    const want = [...new Set(events.map((e) => `${e[0]} ${Math.floor(e[1] / 10) * 10}`))]
      .map((s) => s.split(' ')).map(([k, p]) => [BigInt(k!), Number(p)] as const)
      .sort((x, y) => byBigInt(x[0], y[0]) || x[1] - y[1]).map(([k, p]) => `${k} ${p}`);
    sameList(got, want, '(key, window start)');
  } finally {
    await b.close();
  }
});

test.run();
