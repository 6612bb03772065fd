// Proves both merges of per-shard outputs on the caller's thread (mergeSorted in the helper Wasm
// instance, mergeSortedJs for merges too large for it) against an obviously correct model: concatenate the parts and stable-sort them with BigInt and byte comparisons. Parts
// are generated sorted, with ties across parts, negative and large int64 values (the merge compares
// 32-bit halves), utf8 keys, nulls, and empty parts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mergeSorted, mergeSortedJs } from '../../src/store/output.js';
import type { OutColumns } from '../../bindings/types.js';

interface Row { key: bigint | string; start: bigint; end: bigint; n: bigint; v: number; valid: number }

const enc = new TextEncoder();

function cmpBytes(a: string, b: string): number {
  const x = enc.encode(a);
  const y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

function cmpRows(byWindow: boolean) {
  const big = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
  return (a: Row, b: Row): number => {
    if (byWindow && a.end !== b.end) return big(a.end, b.end);
    const k = typeof a.key === 'bigint' ? big(a.key, b.key as bigint) : cmpBytes(a.key, b.key as string);
    return k !== 0 ? k : big(a.start, b.start);
  };
}

function columns(rows: Row[], utf8: boolean): OutColumns {
  const n = rows.length;
  let keys: OutColumns['keys'];
  if (utf8) {
    const parts = rows.map((r) => enc.encode(r.key as string));
    const offsets = new Uint32Array(n + 1);
    parts.forEach((p, i) => (offsets[i + 1] = offsets[i]! + p.length));
    const bytes = new Uint8Array(offsets[n]!);
    parts.forEach((p, i) => bytes.set(p, offsets[i]!));
    keys = { type: 'utf8', offsets, bytes };
  } else {
    keys = { type: 'int64', values: BigInt64Array.from(rows.map((r) => r.key as bigint)) };
  }
  return {
    count: n,
    keys,
    start: BigInt64Array.from(rows.map((r) => r.start)),
    end: BigInt64Array.from(rows.map((r) => r.end)),
    values: [BigInt64Array.from(rows.map((r) => r.n)), Float64Array.from(rows.map((r) => r.v))],
    valid: [Uint8Array.from(rows.map(() => 1)), Uint8Array.from(rows.map((r) => r.valid))],
  };
}

function rowsOf(o: OutColumns): Row[] {
  return Array.from({ length: o.count }, (_, i) => ({
    key: o.keys.type === 'int64' ? o.keys.values[i]! : new TextDecoder().decode(o.keys.bytes.subarray(o.keys.offsets[i], o.keys.offsets[i + 1])),
    start: o.start[i]!,
    end: o.end[i]!,
    n: (o.values[0] as BigInt64Array)[i]!,
    v: (o.values[1] as Float64Array)[i]!,
    valid: o.valid[1]![i]!,
  }));
}

const i64 = fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -3n, max: 3n }), fc.constantFrom(-(2n ** 32n), 2n ** 32n - 1n, 2n ** 31n, -(2n ** 31n) - 1n));
const row = (utf8: boolean) => fc.record({
  key: utf8 ? fc.string({ maxLength: 6, unit: 'grapheme' }) : i64,
  start: i64,
  end: fc.bigInt({ min: -2n, max: 2n }).map((x) => x * 2n ** 40n),
  n: i64,
  v: fc.double(),
  valid: fc.integer({ min: 0, max: 1 }),
}) as fc.Arbitrary<Row>;

for (const [name, merge] of [['wasm', mergeSorted], ['js', mergeSortedJs]] as const) {
  for (const utf8 of [false, true]) {
    for (const byWindow of [true, false]) {
      test(`${name}: merges sorted parts like a stable sort (${utf8 ? 'utf8' : 'int64'} keys, ${byWindow ? 'by window' : 'by key'})`, () => {
        const cmp = cmpRows(byWindow);
        fc.assert(fc.property(fc.array(fc.array(row(utf8), { maxLength: 40 }), { minLength: 1, maxLength: 5 }), (raw) => {
          const parts = raw.map((rows) => [...rows].sort(cmp));
          const want = parts.flat().sort(cmp); // Array.prototype.sort is stable: ties keep part order
          const got = rowsOf(merge(parts.map((p) => columns(p, utf8)), byWindow));
          assert.equal(got.map((r) => ({ ...r, v: Object.is(r.v, -0) ? '-0' : r.v })), want.map((r) => ({ ...r, v: Object.is(r.v, -0) ? '-0' : r.v })));
        }), { numRuns: 200 });
      });
    }
  }
}

// Two parts with int64 keys take a merge loop of their own (assembly/merge.ts merge2I64): many
// more two-part cases, with many ties of window end, key and start across the parts.
for (const byWindow of [true, false]) {
  test(`wasm: merges two sorted parts like a stable sort (int64 keys, ${byWindow ? 'by window' : 'by key'})`, () => {
    const cmp = cmpRows(byWindow);
    const small = fc.bigInt({ min: -2n, max: 2n });
    const tied = fc.record({ key: fc.oneof(small, i64), start: fc.oneof(small, i64), end: small.map((x) => x * 2n ** 40n), n: i64, v: fc.double(), valid: fc.integer({ min: 0, max: 1 }) }) as fc.Arbitrary<Row>;
    fc.assert(fc.property(fc.array(tied, { minLength: 1, maxLength: 60 }), fc.array(tied, { minLength: 1, maxLength: 60 }), (a, b) => {
      const parts = [a, b].map((rows) => [...rows].sort(cmp));
      const want = parts.flat().sort(cmp);
      const got = rowsOf(mergeSorted(parts.map((p) => columns(p, false)), byWindow));
      assert.equal(got.map((r) => ({ ...r, v: Object.is(r.v, -0) ? '-0' : r.v })), want.map((r) => ({ ...r, v: Object.is(r.v, -0) ? '-0' : r.v })));
    }), { numRuns: 400 });
  });
}

test.run();
