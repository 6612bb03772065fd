// Pins the key-group hash forever: known keys map to known hashes and key groups (values computed
// once from the independent MurmurHash3 reference in test/oracle/hash.ts, itself checked against
// published vectors), and the TypeScript twin, the Wasm hash and the reference agree on random keys.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashKey } from '../../src/index.js';
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

test.run();
