// Keys built to share their whole 32-bit index hash, not only its low bits: so every probe for them
// reaches the key equality check (int64 value, or utf8 bytes), through inserts, deletes (backward
// shift), re-inserts and windowed panes, on the blocked ingest path and on the single-pass one.
// The store must keep them apart exactly as a Map does.
//
// int64 stores probe with the upper 32 bits of (k ^ k >>> 29) * G: x_j = X + j * G^-1 gives
// x_j * G = X * G + j (mod 2^64), all with the same upper half; k_j inverts the xor-shift.
// utf8 stores probe an 8-byte key a as that same hash of (8 * G ^ a) * M (assembly/hash.ts,
// probeHashBytes): a_j = x_j * M^-1 ^ 8 * G, kept when all eight bytes are ASCII; a 16-byte key
// (words a, b) as that hash of ((16 * G ^ a) * M ^ b) * M, solved for b given a, or for a given b. The Wasm export
// hashProbeBytes confirms it, so a change of the probe hash fails here instead of silently
// testing keys that no longer collide.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend } from '../../src/index.js';
import { WasmCore } from '../../bindings/core.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { WindowModel } from '../oracle/window-model.js';
import { Rng } from '../oracle/gen.js';
import { rowsOf, wasmProbeHashUtf8 } from '../helpers.js';

const M64 = (1n << 64n) - 1n;
const G = 0x9e3779b97f4a7c15n;
const M = 0xbf58476d1ce4e5b9n;
const inv64 = (a: bigint): bigint => {
  let y = 1n;
  for (let i = 0; i < 7; i++) y = (y * (2n - a * y)) & M64;
  return y;
};
const probeHash = (k: bigint): number => {
  const u = BigInt.asUintN(64, k);
  const x = u ^ (u >> 29n);
  return Number(((x * G) & M64) >> 32n);
};

/** Distinct 64-bit values x_j (j = 0, 1, ...) with one probe hash (`hash`), as unsigned. */
function collidingWords(hash = 0x12345n): () => bigint {
  const ginv = inv64(G);
  const base = ((hash << 32n) * ginv) & M64;
  const unXorShift = (y: bigint) => (y ^ (y >> 29n) ^ (y >> 58n)) & M64;
  let j = 0n;
  return () => unXorShift((base + j++ * ginv) & M64);
}

/** `n` distinct int64 keys with one int64 probe hash (`hash`). */
function int64Colliding(n: number, hash?: bigint): bigint[] {
  const next = collidingWords(hash);
  return Array.from({ length: n }, () => BigInt.asIntN(64, next()));
}

/**
 * `n` distinct ASCII keys (no NUL) with one utf8 probe hash: 8 bytes long, then 16 bytes long with
 * the first word shared by all of them and the second solved for as above, then 16 bytes long with
 * the second word shared and the first solved for, in turn. So equality must look at both words.
 */
function utf8Colliding(n: number): string[] {
  const next = collidingWords();
  const minv = inv64(M);
  const ascii = (w: bigint): number[] | null => {
    const bytes = Array.from({ length: 8 }, (_, i) => Number((w >> BigInt(8 * i)) & 0xffn));
    return bytes.every((c) => c >= 1 && c < 0x80) ? bytes : null;
  };
  const word = (text: string) => [...text].reduce((acc, c, i) => acc | (BigInt(c.charCodeAt(0)) << BigInt(8 * i)), 0n);
  const seed16 = (16n * G) & M64;
  const first = word('FIRSTWRD');
  const last = word('LASTWORD');
  const keys: string[] = [];
  while (keys.length < n) {
    const x = next();
    if (keys.length % 3 === 0) {
      const a = ascii(((x * minv) & M64) ^ ((8n * G) & M64));
      if (a) keys.push(String.fromCharCode(...a));
    } else if (keys.length % 3 === 1) {
      const b = ascii(((x * minv) & M64) ^ (((seed16 ^ first) * M) & M64));
      if (b) keys.push('FIRSTWRD' + String.fromCharCode(...b));
    } else {
      const a = ascii(((((x * minv) & M64) ^ last) * minv & M64) ^ seed16);
      if (a) keys.push(String.fromCharCode(...a) + 'LASTWORD');
    }
  }
  return keys;
}

test('the constructed keys really share their whole index hash', () => {
  const core = new WasmCore(1 << 26);
  const enc = new TextEncoder();
  const wasmProbe = (k: string): number => wasmProbeHashUtf8(core, k);
  const u = utf8Colliding(40);
  assert.is(new Set(u).size, 40);
  assert.equal(u.map((k) => enc.encode(k).length), u.map((_, j) => (j % 3 === 0 ? 8 : 16)));
  assert.is(new Set(u.map(wasmProbe)).size, 1);
  const i = int64Colliding(40);
  assert.is(new Set(i).size, 40);
  assert.is(new Set(i.map(probeHash)).size, 1);
  assert.is(new Set(i.map((k) => core.ex.hashProbeI64(k) >>> 0)).size, 1);
});

test('key equality on bytes: every length to 40, a difference at every byte', () => {
  const core = new WasmCore(1 << 26);
  const rng = new Rng(5);
  const a = core.scratch(128);
  const b = a + 64;
  for (let len = 0; len <= 40; len++) {
    const bytes = Array.from({ length: len }, () => rng.int(0, 255));
    core.u8.set(bytes, a);
    core.u8.set(bytes, b);
    // Bytes past the keys differ: they must not count.
    core.u8[a + len] = 1;
    core.u8[b + len] = 2;
    assert.is(core.ex.keyBytesEqual(a, b, len), 1, `equal keys of ${len} bytes`);
    for (let at = 0; at < len; at++) {
      core.u8[b + at] = bytes[at]! ^ (1 << rng.int(0, 7));
      assert.is(core.ex.keyBytesEqual(a, b, len), 0, `${len}-byte keys differing at byte ${at}`);
      core.u8[b + at] = bytes[at]!;
    }
  }
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

test('int64 keys hashed to the first and the last slot: the group probe past the end and the hash 0 of empty slots', async () => {
  // The single-pass loop reads the four slots from a key's home slot at once and takes the first
  // with the key's hash. Keys of hash 2^32 - 1 start in the last slot, so their group reads past
  // the end of the index and their run wraps to slot 0; keys of hash 0 start in slot 0, and an
  // empty slot reads as hash 0 too. A few keys of other hashes share the table.
  const top = int64Colliding(25, 0xffffffffn);
  const zero = int64Colliding(25, 0n);
  const core = new WasmCore(1 << 26);
  assert.equal([...new Set(top.map((k) => core.ex.hashProbeI64(k) >>> 0))], [0xffffffff]);
  assert.equal([...new Set(zero.map((k) => core.ex.hashProbeI64(k) >>> 0))], [0]);
  const keys = [...top, ...zero, ...Array.from({ length: 10 }, (_, i) => BigInt(i * 7919 + 1))];
  const rng = new Rng(11);
  const b = await StateBackend.open();
  try {
    const op = b.aggregate('edge', { key: { field: 'k', type: 'int64' }, aggregates: FUSED });
    const model = new AggregateModel({ keyType: 'int64', aggregates: FUSED as never });
    for (let round = 0; round < 8; round++) {
      // Early rounds use few keys, so that the index stays small and the runs wrap.
      const pool = keys.filter(() => rng.int(0, 3) !== 0).slice(0, 12 + round * 6);
      const rows = Array.from({ length: 600 }, () => ({ key: pool[rng.int(0, pool.length - 1)]!, values: { v: rng.int(0, 99) } }));
      await op.ingest({ k: BigInt64Array.from(rows.map((r) => r.key)), v: Float64Array.from(rows.map((r) => r.values.v)) });
      model.ingest(rows);
      for (const k of keys) {
        if (rng.int(0, 3) === 0) assert.is(await op.delete(k), model.delete(k), `delete ${k}`);
      }
      assert.equal(rowsOf(await op.toArrow(), 'k'), model.rows(), `round ${round}`);
    }
  } finally {
    await b.close();
  }
});

test('a utf8 key whose home slot holds a longer key that starts with it stays apart from it', async () => {
  // Pairs (key, key + 'x') whose index hashes agree in their low 12 bits: in any index of up to
  // 4096 slots both keys have one home slot. The longer one is inserted first, so it sits there,
  // and the single-pass loop checks the shorter one against it: its bytes are a prefix, so only
  // the length tells them apart.
  const core = new WasmCore(1 << 26);
  const pairs: [string, string][] = [];
  for (let i = 0; pairs.length < 6; i++) {
    const short = `p${i}`;
    if (((wasmProbeHashUtf8(core, short) ^ wasmProbeHashUtf8(core, short + 'x')) & 0xfff) === 0) pairs.push([short, short + 'x']);
  }
  const rng = new Rng(12);
  const b = await StateBackend.open();
  try {
    const op = b.aggregate('prefix', { key: { field: 'k', type: 'utf8' }, aggregates: FUSED });
    const model = new AggregateModel({ keyType: 'utf8', aggregates: FUSED as never });
    const step = async (keys: string[]) => {
      const rows = Array.from({ length: 300 }, () => ({ key: keys[rng.int(0, keys.length - 1)]!, values: { v: rng.int(0, 99) } }));
      await op.ingest({ k: rows.map((r) => r.key), v: rows.map((r) => r.values.v) });
      model.ingest(rows);
      assert.equal(rowsOf(await op.toArrow(), 'k'), model.rows());
    };
    await step(pairs.map((p) => p[1]));
    await step(pairs.map((p) => p[0]));
    await step(pairs.flat());
  } finally {
    await b.close();
  }
});

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
