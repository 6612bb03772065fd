// Proves Router.split routes exactly as the key-group definition says: every event lands on the
// shard that owns hash(key) % keyGroups (the independent reference hash in test/oracle/hash.ts),
// in its original order, with its time and values, and per key group counts add up. Covers int64
// and utf8 keys, with and without times, power-of-two key group counts (masked) and others (the
// fast modulo), including 1 and KEY_GROUPS_MAX, and non-contiguous assignments.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Router, contiguousAssignment, KEY_GROUPS_MAX } from '../../src/shard/router.js';
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

test.run();
