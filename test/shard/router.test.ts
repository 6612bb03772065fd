// Proves Router.split routes exactly as the key-group definition says: every event lands on the
// shard that owns hash(key) % keyGroups (the independent reference hash in test/oracle/hash.ts),
// in its original order, with its time and values, and per key group counts add up. Covers int64
// and utf8 keys, with and without times, power-of-two key group counts (masked) and others (the
// fast modulo), including 1 and KEY_GROUPS_MAX, and non-contiguous assignments. Also proves a
// worker shard's filter of a broadcast batch (WasmCore.stageOwned, assembly/route.ts filterOwned)
// keeps exactly the events of its key groups, in order, against the same reference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Router, contiguousAssignment, KEY_GROUPS_MAX } from '../../src/shard/router.js';
import { WasmCore } from '../../bindings/core.js';
import type { EncodedBatch } from '../../bindings/types.js';
import { hashKey as refHash } from '../oracle/hash.js';

const enc = new TextEncoder();

function batchOf(keys: (bigint | string)[], withTimes: boolean, fields: number): EncodedBatch {
  const n = keys.length;
  const times = withTimes ? BigInt64Array.from(keys.map((_, i) => BigInt(i * 7 - 50))) : null;
  const values = Array.from({ length: fields }, (_, f) => Float64Array.from(keys.map((_, i) => (i % 5 === f ? NaN : i * 10 + f))));
  if (typeof keys[0] === 'bigint') return { n, keys: { type: 'int64', values: BigInt64Array.from(keys as bigint[]) }, times, values };
  const parts = (keys as string[]).map((k) => enc.encode(k));
  const offsets = new Uint32Array(n + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i]! + p.length));
  const bytes = new Uint8Array(offsets[n]!);
  parts.forEach((p, i) => bytes.set(p, offsets[i]!));
  return { n, keys: { type: 'utf8', offsets, bytes }, times, values };
}

/** The reference: filter the events of each shard in order, key by key. */
function expected(keys: (bigint | string)[], b: EncodedBatch, keyGroups: number, assign: Uint8Array, shards: number) {
  const per = Array.from({ length: shards }, () => [] as number[]);
  const kg = new Float64Array(keyGroups);
  keys.forEach((k, i) => {
    const g = refHash(k) % keyGroups;
    kg[g]!++;
    per[assign[g]!]!.push(i);
  });
  return { per, kg, b };
}

function check(keys: (bigint | string)[], withTimes: boolean, fields: number, keyGroups: number, assign: Uint8Array, shards: number): void {
  const b = batchOf(keys, withTimes, fields);
  const kgEvents = new Float64Array(keyGroups);
  const slices = new Router().split(b, keyGroups, assign, shards, kgEvents);
  const want = expected(keys, b, keyGroups, assign, shards);
  assert.equal([...kgEvents], [...want.kg], 'events per key group');
  assert.is(slices.length, shards);
  for (let s = 0; s < shards; s++) {
    const idx = want.per[s]!;
    const got = slices[s];
    if (idx.length === 0) {
      assert.is(got, null, `shard ${s} gets no slice`);
      continue;
    }
    assert.ok(got, `shard ${s} gets a slice`);
    assert.is(got!.n, idx.length);
    const gotKeys = got!.keys.type === 'int64'
      ? [...got!.keys.values]
      : Array.from({ length: got!.n }, (_, i) => {
          const k = got!.keys as { offsets: Uint32Array; bytes: Uint8Array };
          return new TextDecoder().decode(k.bytes.subarray(k.offsets[i], k.offsets[i + 1]));
        });
    assert.equal(gotKeys, idx.map((i) => keys[i]), `shard ${s} keys in event order`);
    if (withTimes) assert.equal([...got!.times!], idx.map((i) => b.times![i]), `shard ${s} times`);
    else assert.is(got!.times, null);
    for (let f = 0; f < fields; f++) assert.equal([...got!.values[f]!], idx.map((i) => b.values[f]![i]), `shard ${s} field ${f}`);
  }
}

const int64Key = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const utf8Key = fc.string({ maxLength: 12, unit: 'grapheme' });
const keyGroupCount = fc.oneof(fc.constantFrom(1, 2, 7, 128, 1000, KEY_GROUPS_MAX), fc.integer({ min: 1, max: KEY_GROUPS_MAX }));

test('int64 batches split by the reference key group, in order, with every column', () => {
  fc.assert(fc.property(fc.array(int64Key, { minLength: 1, maxLength: 300 }), keyGroupCount, fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.integer({ min: 0, max: 3 }),
    (keys, keyGroups, shardsWanted, withTimes, fields) => {
      const shards = Math.min(shardsWanted, keyGroups);
      check(keys, withTimes, fields, keyGroups, contiguousAssignment(keyGroups, shards), shards);
    }), { numRuns: 150 });
});

test('utf8 batches split by the reference key group, in order, with every column', () => {
  fc.assert(fc.property(fc.array(utf8Key, { minLength: 1, maxLength: 200 }), keyGroupCount, fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.integer({ min: 0, max: 3 }),
    (keys, keyGroups, shardsWanted, withTimes, fields) => {
      const shards = Math.min(shardsWanted, keyGroups);
      check(keys, withTimes, fields, keyGroups, contiguousAssignment(keyGroups, shards), shards);
    }), { numRuns: 150 });
});

test('non-contiguous assignments route by the assignment table', () => {
  fc.assert(fc.property(fc.array(int64Key, { minLength: 1, maxLength: 300 }), fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 64, maxLength: 64 }),
    (keys, owners) => check(keys, true, 2, 64, Uint8Array.from(owners), 5)), { numRuns: 50 });
});

test('a large batch keeps every event (ranks past 16 bits)', () => {
  const n = 200_000;
  const keys = Array.from({ length: n }, (_, i) => BigInt(i) * 2654435761n);
  check(keys, true, 1, 128, contiguousAssignment(128, 3), 3);
});

/** One WasmCore for the filter tests (its scratch is reused, as on a worker shard). */
let filterCore: WasmCore | null = null;

/** Filters `keys` to the key groups of shard `me` in Wasm and reads the kept columns back from scratch. */
function checkFilter(keys: (bigint | string)[], withTimes: boolean, fields: number, keyGroups: number, assign: Uint8Array, me: number): void {
  const b = batchOf(keys, withTimes, fields);
  const core = (filterCore ??= new WasmCore());
  const owned = assign.map((sh) => (sh === me ? 1 : 0));
  const st = core.stageOwned(b, keyGroups, owned);
  const want = expected(keys, b, keyGroups, assign, Math.max(...assign) + 1);
  const idx = want.per[me]!;
  const kgWant = [...want.kg].map((c, g) => (owned[g] ? c : 0));
  assert.equal([...st.kgCounts], kgWant, 'kept events per key group');
  assert.is(st.n, idx.length, 'events kept');
  const dv = new DataView(core.u8.buffer);
  const u8 = core.u8;
  let gotKeys: (bigint | string)[];
  if (b.keys.type === 'int64') gotKeys = Array.from({ length: st.n }, (_, i) => dv.getBigInt64(st.keys + i * 8, true));
  else {
    const off = (i: number) => dv.getUint32(st.keys + i * 4, true);
    assert.is(off(0), 0, 'offsets start at 0');
    assert.is(st.keyBytes, off(st.n), 'key bytes kept');
    gotKeys = Array.from({ length: st.n }, (_, i) => new TextDecoder().decode(u8.slice(st.keyBytesPtr + off(i), st.keyBytesPtr + off(i + 1))));
  }
  assert.equal(gotKeys, idx.map((i) => keys[i]), 'kept keys in event order');
  if (withTimes) assert.equal(Array.from({ length: st.n }, (_, i) => dv.getBigInt64(st.times + i * 8, true)), idx.map((i) => b.times![i]), 'kept times');
  else assert.is(st.times, 0);
  for (let f = 0; f < fields; f++) {
    const col = dv.getUint32(st.table + f * 4, true);
    assert.equal(Array.from({ length: st.n }, (_, i) => dv.getFloat64(col + i * 8, true)), idx.map((i) => b.values[f]![i]), `kept field ${f}`);
  }
}

test('a shard\'s filter of a broadcast batch keeps its key groups\' events, in order, with every column', () => {
  fc.assert(fc.property(fc.array(fc.oneof(int64Key), { minLength: 1, maxLength: 300 }), keyGroupCount, fc.integer({ min: 1, max: 5 }), fc.nat(), fc.boolean(), fc.integer({ min: 0, max: 3 }),
    (keys, keyGroups, shardsWanted, pick, withTimes, fields) => {
      const shards = Math.min(shardsWanted, keyGroups);
      checkFilter(keys, withTimes, fields, keyGroups, contiguousAssignment(keyGroups, shards), pick % shards);
    }), { numRuns: 150 });
  fc.assert(fc.property(fc.array(utf8Key, { minLength: 1, maxLength: 200 }), keyGroupCount, fc.integer({ min: 1, max: 5 }), fc.nat(), fc.boolean(), fc.integer({ min: 0, max: 3 }),
    (keys, keyGroups, shardsWanted, pick, withTimes, fields) => {
      const shards = Math.min(shardsWanted, keyGroups);
      checkFilter(keys, withTimes, fields, keyGroups, contiguousAssignment(keyGroups, shards), pick % shards);
    }), { numRuns: 150 });
  // A non-contiguous assignment, and a large batch (every event kept, and none).
  fc.assert(fc.property(fc.array(int64Key, { minLength: 1, maxLength: 300 }), fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 4 }),
    (keys, owners, me) => checkFilter(keys, true, 2, 64, Uint8Array.from(owners), me)), { numRuns: 50 });
  const big = Array.from({ length: 100_000 }, (_, i) => BigInt(i) * 2654435761n);
  checkFilter(big, true, 1, 128, contiguousAssignment(128, 3), 1);
  checkFilter(big, false, 1, 128, new Uint8Array(128), 0);
  checkFilter(big, false, 1, 128, new Uint8Array(128).fill(1), 0);
});

test.run();
