// Proves the reference key-group hash: murmur3 x86_32 reproduces published MurmurHash3 test vectors
// (SMHasher / widely cited vectors), int64 keys hash their 8 little-endian two's-complement bytes,
// utf8 keys their UTF-8 bytes, and key groups and shards follow the stated formulas on hand-computed cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashKey, keyBytes, keyGroupOf, murmur3, shardOf } from '../oracle/hash.js';
import { collidingInt64Keys, collidingUtf8Keys } from '../oracle/gen.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

test('murmur3 matches published vectors', () => {
  const vectors: Array<[Uint8Array, number, number]> = [
    [utf8(''), 0, 0],
    [utf8(''), 1, 0x514e28b7],
    [utf8(''), 0xffffffff, 0x81f16f39],
    [new Uint8Array(4), 0, 0x2362f9de],
    [new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0, 0x76293b50],
    [new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0, 0xf55b516b],
    [new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0x5082edee, 0x2362f9de],
    [utf8('hello'), 0, 0x248bfa47],
    [utf8('Hello, world!'), 0, 0xc0363e43],
    [utf8('Hello, world!'), 0x9747b28c, 0x24884cba],
    [utf8('The quick brown fox jumps over the lazy dog'), 0, 0x2e4ff723],
    [utf8('a'), 0x9747b28c, 0x7fa09ea6],
    [utf8('aa'), 0x9747b28c, 0x5d211726],
    [utf8('aaa'), 0x9747b28c, 0x283e0130],
    [utf8('aaaa'), 0x9747b28c, 0x5a97808a],
    [utf8('abcd'), 0x9747b28c, 0xf0478627],
  ];
  for (const [bytes, seed, expected] of vectors) {
    assert.is(murmur3(bytes, seed), expected, `bytes=${[...bytes]} seed=${seed}`);
  }
});

test('key bytes: int64 little-endian two\'s complement, utf8 as UTF-8', () => {
  assert.equal([...keyBytes(1n)], [1, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal([...keyBytes(-1n)], [255, 255, 255, 255, 255, 255, 255, 255]);
  assert.equal([...keyBytes(0x0102030405060708n)], [8, 7, 6, 5, 4, 3, 2, 1]);
  assert.equal([...keyBytes(-(2n ** 63n))], [0, 0, 0, 0, 0, 0, 0, 0x80]);
  assert.equal([...keyBytes(258)], [2, 1, 0, 0, 0, 0, 0, 0]); // safe-integer numbers normalize to int64
  assert.equal([...keyBytes('é😀')], [0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]);
  assert.is(hashKey('hello'), 0x248bfa47);
  assert.is(hashKey(0n), murmur3(new Uint8Array(8)));
  assert.is(hashKey(258), hashKey(258n));
});

test('key group is the unsigned hash modulo key groups; shards are contiguous ranges', () => {
  assert.is(keyGroupOf('hello', 128), 0x47); // 0x248bfa47 % 128
  // 0xc0363e43 has its high bit set; as unsigned it is 3224780355, so the group is 355 (a signed
  // hash would give a negative remainder).
  assert.is(keyGroupOf('Hello, world!', 1000), 355);
  assert.is(keyGroupOf('', 7), 0);
  assert.equal([0, 31, 32, 63, 64, 127].map((g) => shardOf(g, 128, 4)), [0, 0, 1, 1, 2, 3]);
  // 10 groups over 3 shards: floor(g * 3 / 10).
  assert.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((g) => shardOf(g, 10, 3)), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.throws(() => shardOf(10, 10, 3));
});

test('colliding key generators collide in the low bits and are distinct', () => {
  const ints = collidingInt64Keys(8, 12);
  const strs = collidingUtf8Keys(8, 12);
  assert.is(new Set(ints).size, 8);
  assert.is(new Set(strs).size, 8);
  for (const keys of [ints, strs]) {
    const low = keys.map((k) => hashKey(k) & 0xfff);
    assert.ok(low.every((h) => h === low[0]), `low bits ${low}`);
    assert.ok(new Set(keys.map((k) => hashKey(k))).size > 1, 'full hashes are not all equal');
  }
});

test.run();
