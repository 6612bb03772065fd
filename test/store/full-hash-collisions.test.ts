// Keys built to share their whole 32-bit index hash, not only its low bits: so every probe for them
// reaches the key equality check (int64 value, or utf8 bytes), through inserts, deletes (backward
// shift), re-inserts and windowed panes, on the blocked ingest path and on the single-pass one.
// The store must keep them apart exactly as a Map does.
//
// utf8 stores index by MurmurHash3 of the key bytes: two 4-byte blocks, the second solved for from
// the first so that the state after both equals a fixed target (murmur's block mix is invertible).
// int64 stores probe with the upper 32 bits of (k ^ k >>> 29) * G: x_j = X + j * G^-1 gives
// x_j * G = X * G + j (mod 2^64), all with the same upper half; k_j inverts the xor-shift.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend } from '../../src/index.js';
import { murmur3Bytes } from '../../src/shard/hash.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { WindowModel } from '../oracle/window-model.js';
import { Rng } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';

const M32 = 0xffffffffn;
const M64 = (1n << 64n) - 1n;
const mul = (a: number, b: number) => Math.imul(a, b) >>> 0;
const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
const rotr = (x: number, r: number) => ((x >>> r) | (x << (32 - r))) >>> 0;
const inv32 = (a: number): number => {
  let y = 1n;
  for (let i = 0; i < 5; i++) y = (y * (2n - BigInt(a) * y)) & M32;
  return Number(y);
};
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const mixK = (k: number) => mul(rotl(mul(k, C1), 15), C2);
const unmixK = (y: number) => mul(rotr(mul(y, inv32(C2)), 15), inv32(C1));
const mixH = (h: number, k: number) => (mul(rotl((h ^ mixK(k)) >>> 0, 13), 5) + 0xe6546b64) >>> 0;

/** `n` distinct printable 8-byte ASCII keys with one MurmurHash3 value. */
function utf8Colliding(n: number): string[] {
  const rng = new Rng(99);
  const target = mixH(mixH(0, 0x41414141), 0x41414141);
  const keys = ['AAAAAAAA'];
  const x = mul((target - 0xe6546b64) >>> 0, inv32(5));
  while (keys.length < n) {
    const a = Array.from({ length: 4 }, () => rng.int(0x21, 0x7e));
    const k1 = (a[0]! | (a[1]! << 8) | (a[2]! << 16) | (a[3]! << 24)) >>> 0;
    const k2 = unmixK((rotr(x, 13) ^ mixH(0, k1)) >>> 0);
    const b = [k2 & 255, (k2 >>> 8) & 255, (k2 >>> 16) & 255, k2 >>> 24];
    const key = String.fromCharCode(...a, ...b);
    if (b.every((c) => c >= 0x21 && c <= 0x7e) && !keys.includes(key)) keys.push(key);
  }
  return keys;
}

const G = 0x9e3779b97f4a7c15n;
const probeHash = (k: bigint): number => {
  const u = BigInt.asUintN(64, k);
  const x = u ^ (u >> 29n);
  return Number(((x * G) & M64) >> 32n);
};

/** `n` distinct int64 keys with one int64 probe hash. */
function int64Colliding(n: number): bigint[] {
  let ginv = 1n;
  for (let i = 0; i < 7; i++) ginv = (ginv * (2n - G * ginv)) & M64;
  const base = ((0x12345n << 32n) * ginv) & M64;
  const unXorShift = (y: bigint) => (y ^ (y >> 29n) ^ (y >> 58n)) & M64;
  return Array.from({ length: n }, (_, j) => BigInt.asIntN(64, unXorShift((base + BigInt(j) * ginv) & M64)));
}

test('the constructed keys really share their whole index hash', () => {
  const enc = new TextEncoder();
  const u = utf8Colliding(40);
  assert.is(new Set(u).size, 40);
  assert.is(new Set(u.map((k) => murmur3Bytes(enc.encode(k)))).size, 1);
  const i = int64Colliding(40);
  assert.is(new Set(i).size, 40);
  assert.is(new Set(i.map(probeHash)).size, 1);
});

const AGGS = { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' }, l: { fn: 'last', field: 'v' } } as const;
/** count, sum, min and max of one field: small stores of this plan take the single-pass path. */
const FUSED = { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' }, lo: { fn: 'min', field: 'v' }, hi: { fn: 'max', field: 'v' } } as const;

const PLANS = [['last', AGGS], ['single-pass', FUSED]] as const;

for (const keyType of ['utf8', 'int64'] as const) for (const [plan, aggs] of PLANS) {
  test(`${keyType} keys with one full hash (${plan} plan): running aggregates, deletes and re-inserts match the model`, async () => {
    const keys: (string | bigint)[] = keyType === 'utf8' ? utf8Colliding(40) : int64Colliding(40);
    const rng = new Rng(7);
    const b = await StateBackend.open();
    try {
      const op = b.aggregate('c', { key: { field: 'k', type: keyType }, aggregates: aggs });
      const model = new AggregateModel({ keyType, aggregates: aggs as never });
      for (let round = 0; round < 6; round++) {
        const rows = Array.from({ length: 500 }, () => ({ key: keys[rng.int(0, keys.length - 1)]!, values: { v: rng.int(0, 99) } }));
        await op.ingest({ k: rows.map((r) => r.key) as never, v: rows.map((r) => r.values.v) });
        model.ingest(rows);
        // Delete a third of the keys (the index shifts the rest of the probe run back).
        for (const k of keys) {
          if (rng.int(0, 2) === 0) assert.is(await op.delete(k), model.delete(k), `delete ${String(k)}`);
        }
        assert.equal(rowsOf(await op.toArrow(), 'k'), model.rows(), `round ${round}`);
      }
      for (const k of keys) {
        const got = await op.get(k);
        const want = model.rows().find((r) => r.key === k);
        assert.is(got?.['n'], want?.['n'], `get ${String(k)}`);
      }
    } finally {
      await b.close();
    }
  });

}

for (const keyType of ['utf8', 'int64'] as const) {
  test(`${keyType} keys with one full hash: tumbling windows match the model`, async () => {
    const keys: (string | bigint)[] = keyType === 'utf8' ? utf8Colliding(30) : int64Colliding(30);
    const rng = new Rng(8);
    const window = { kind: 'tumbling', size: 100 } as const;
    const b = await StateBackend.open();
    try {
      const op = b.aggregate('w', { key: { field: 'k', type: keyType }, time: 't', window, aggregates: AGGS });
      const model = new WindowModel({ keyType, window, aggregates: AGGS as never });
      let t = 0;
      for (let round = 0; round < 5; round++) {
        const rows = Array.from({ length: 400 }, () => ({ key: keys[rng.int(0, keys.length - 1)]!, time: t + rng.int(0, 299), values: { v: rng.int(0, 99) } }));
        await op.ingest({ k: rows.map((r) => r.key) as never, t: rows.map((r) => r.time), v: rows.map((r) => r.values.v) });
        model.ingest(rows);
        t += 200;
        assert.equal(rowsOf(await op.advanceWatermark(t), 'k'), model.advanceWatermark(t), `fired at ${t}`);
      }
    } finally {
      await b.close();
    }
  });
}

test.run();
