// Pins the key-group hash forever: known keys map to known hashes and key groups (values computed
// once from the independent MurmurHash3 reference in test/oracle/hash.ts, itself checked against
// published vectors), and the TypeScript twin, the Wasm hash and the reference agree on random keys.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashKey, CairnError, StateBackend } from '../../src/index.js';
import { WasmCore } from '../../bindings/core.js';
import { hashKey as refHash } from '../oracle/hash.js';

const PINNED: [string | bigint, number, number][] = [
  ['alice', 1280413405, 93],
  ['', 0, 0],
  ['日本', 3302619458, 66],
  ['user-42', 3111312080, 80],
  [0n, 1669671676, 124],
  [42n, 1871679806, 62],
  [-1n, 1651860712, 104],
  [9007199254740993n, 2321329414, 6],
];

test('known keys map to pinned hashes and key groups (128 key groups)', () => {
  for (const [k, h, kg] of PINNED) {
    assert.is(hashKey(k), h, `hash of ${String(k)}`);
    assert.is(hashKey(k) % 128, kg, `key group of ${String(k)}`);
  }
});

test('TypeScript, Wasm and the reference agree on random keys', () => {
  const core = new WasmCore(1 << 26);
  const enc = new TextEncoder();
  let x = 1;
  const rnd = () => (x = (Math.imul(x, 48271) + 11) >>> 0);
  for (let i = 0; i < 2000; i++) {
    const big = BigInt.asIntN(64, (BigInt(rnd()) << 32n) | BigInt(rnd()));
    assert.is(hashKey(big), refHash(big));
    assert.is(core.ex.hashKeyI64(big) >>> 0, refHash(big));
    const s = String.fromCodePoint(...Array.from({ length: rnd() % 12 }, () => 32 + (rnd() % 0x2ff0)));
    const bytes = enc.encode(s);
    const p = core.scratch(bytes.length + 1);
    core.u8.set(bytes, p);
    assert.is(hashKey(s), refHash(s));
    assert.is(core.ex.hashKeyBytes(p, bytes.length) >>> 0, refHash(s));
  }
});

test('hashKey takes an int64 key as a number too, the way every other call does; anything else is invalid', async () => {
  // The key group a number key is routed to: that of its bigint, not that of its decimal string.
  const b = await StateBackend.open({ shards: 2, keyGroups: 128 });
  try {
    const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    await op.ingest({ k: [42] });
    const routed = (await b.metrics()).keyGroups.filter((g) => g.rows > 0).map((g) => g.keyGroup);
    assert.equal(routed, [hashKey(42) % 128]);
  } finally {
    await b.close();
  }
  for (const k of [0, 42, -1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
    assert.is(hashKey(k), refHash(BigInt(k)), `hash of the number ${k}`);
  }
  assert.is.not(hashKey(42), hashKey('42'));
  for (const bad of [1.5, NaN, Infinity, 2 ** 53, 2n ** 63n, -(2n ** 63n) - 1n, null, undefined, {}, true]) {
    try {
      hashKey(bad as never);
      assert.unreachable(`hashKey(${String(bad)})`);
    } catch (e) {
      assert.instance(e, CairnError, String(bad));
      assert.is((e as CairnError).kind, 'invalid', String(bad));
    }
  }
  assert.is(hashKey(2n ** 63n - 1n), refHash(2n ** 63n - 1n));
  assert.is(hashKey(-(2n ** 63n)), refHash(-(2n ** 63n)));
});

test.run();
