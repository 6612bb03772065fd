// Proves two paths of pane windows that random oracle streams almost never reach, against the
// reference model (test/oracle/window-model.ts):
// - two panes of one key (int64, and utf8) whose starts are 2^32 ms apart, chosen so that their
//   (key, pane) index hashes in a tumbling store collide (a port of that hash is below; its key
//   half is checked against the Wasm probe hash, and the pane half is XORed with the key's hash,
//   so the starts collide for any key, utf8 ones too): the probe takes the other pane's slot and
//   the verify pass must take the exact path, in the batch that opens both panes and in the next;
// - a hopping firing whose window ends span more than 2^16 slides (sparse panes far apart and a
//   watermark jump), where windows are ordered by a radix sort of their ends instead of counting
//   them per end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, type WindowSpec } from '../../src/index.js';
import { WasmCore } from '../../bindings/core.js';
import { WindowModel } from '../oracle/window-model.js';
import { rowsOf } from '../helpers.js';

const AGGS = {
  n: { fn: 'count' },
  spend: { fn: 'sum', field: 'amount' },
  lo: { fn: 'min', field: 'amount' },
  first: { fn: 'first', field: 'amount' },
} as const;

// A port of the store's index hash of (int64 key, pane start): probeHashI64 and hashWithNs in
// assembly/hash.ts. It must change with them; the probe half is checked against the Wasm export.
const MASK64 = (1n << 64n) - 1n;

function probeHashI64(key: bigint): number {
  const k = BigInt.asUintN(64, key);
  const x = k ^ (k >> 29n);
  return Number(((x * 0x9e3779b97f4a7c15n) & MASK64) >> 32n);
}

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

function mixK(k: number): number {
  return Math.imul(rotl(Math.imul(k, 0xcc9e2d51) >>> 0, 15), 0x1b873593) >>> 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function paneHash(keyHash: number, ns: bigint): number {
  const u = BigInt.asUintN(64, ns);
  const lo = Number(u & 0xffffffffn);
  const hi = Number(u >> 32n);
  return fmix32((keyHash ^ mixK(lo) ^ rotl(mixK(hi), 7)) >>> 0);
}

/** The inverse of mixK (odd multipliers are invertible mod 2^32, rotations are). */
function unmixK(x: number): number {
  const inv = (a: number) => {
    // Newton's iteration for the inverse of an odd number mod 2^32.
    let y = a;
    for (let i = 0; i < 5; i++) y = Math.imul(y, 2 - Math.imul(a, y)) >>> 0;
    return y >>> 0;
  };
  const k = Math.imul(x, inv(0x1b873593)) >>> 0;
  return Math.imul(((k >>> 15) | (k << 17)) >>> 0, inv(0xcc9e2d51)) >>> 0;
}

/**
 * Two pane starts (multiples of `size`) whose index hashes collide for every key. The hash is a
 * bijection of the start's low 32 bits for a fixed high word, so the pair differs in the high word:
 * start1 = lo1 and start2 = 2^32 + lo2 with mixK(lo2) = mixK(lo1) ^ rotl(mixK(1), 7) (mixK(0) = 0).
 */
function collidingPanes(size: number): [number, number] {
  const TRIES_MAX = 1 << 24;
  const d = rotl(mixK(1), 7);
  for (let i = 0; i < TRIES_MAX; i++) {
    const lo1 = i * size;
    if (lo1 > 0xffffffff) break;
    const lo2 = unmixK((mixK(lo1) ^ d) >>> 0);
    const ns2 = 2 ** 32 + lo2;
    if (ns2 % size === 0) return [lo1, ns2];
  }
  throw new Error(`no colliding pane starts of size ${size} found`);
}

test('the index hash port matches the Wasm probe hash', () => {
  assert.is(unmixK(mixK(123456789)), 123456789, 'unmixK inverts mixK');
  const core = new WasmCore();
  for (const k of [0n, 1n, -1n, 42n, 2n ** 62n + 12345n, -(2n ** 63n), 2n ** 63n - 1n]) {
    assert.is(probeHashI64(k), core.ex.hashProbeI64(k) >>> 0, `probe hash of ${k}`);
  }
});

for (const keyType of ['int64', 'utf8'] as const) {
  test(`two panes of one ${keyType} key with colliding index hashes stay apart`, async () => {
    const size = 1000;
    // The pane starts collide whatever the key's own probe hash (it is XORed in): utf8 keys too.
    const key = keyType === 'int64' ? 7n : 'user-7';
    const other = (k: bigint) => (keyType === 'int64' ? k : `user-${k}`);
    const [p1, p2] = collidingPanes(size);
    assert.is(paneHash(probeHashI64(7n), BigInt(p1)), paneHash(probeHashI64(7n), BigInt(p2)), 'the pane starts collide');
    const window: WindowSpec = { kind: 'tumbling', size };
    const backend = await StateBackend.open({ shards: 1 });
    const op = backend.aggregate('w', { key: { field: 'user', type: keyType }, time: 'ts', window, aggregates: AGGS });
    const model = new WindowModel({ keyType, window, allowedLateness: 0, aggregates: AGGS as never });
    try {
      // Batch 1 opens both panes in one block (the second is first taken for the first), with other
      // keys in between; batch 2 adds to both once both are in the index.
      const batches: [bigint | string, number, number][][] = [
        [[key, p1, 5], [other(3n), p1 + 1, 1], [key, p2 + 10, 7], [key, p1 + 20, -2], [other(9n), p2, 4], [key, p2 + 30, 11]],
        [[key, p2 + 40, 3], [key, p1 + 50, 8], [other(3n), p2 + 60, 6], [key, p2 + 70, -9]],
      ];
      for (const b of batches) {
        const keys = keyType === 'int64' ? BigInt64Array.from(b.map((e) => e[0] as bigint)) : b.map((e) => e[0] as string);
        await op.ingest({ user: keys, ts: b.map((e) => e[1]), amount: b.map((e) => e[2]) });
        model.ingest(b.map(([k, t, v]) => ({ key: k, time: t, values: { amount: v } })) as never);
      }
      const end = p2 + 2 * size;
      const got = rowsOf(await op.advanceWatermark(end), 'user');
      const want = model.advanceWatermark(end);
      assert.equal(got, want);
      assert.is(got.filter((r) => r.key === key).length, 2, 'one row per pane of the colliding key');
    } finally {
      await backend.close();
    }
  });
}

test('hopping windows whose ends span more than 2^16 slides fire in order', async () => {
  const window: WindowSpec = { kind: 'hopping', size: 4, slide: 2 };
  for (const lateness of [0, 1_000_000]) {
    const backend = await StateBackend.open({ shards: 1 });
    const op = backend.aggregate('h', { key: { field: 'user', type: 'int64' }, time: 'ts', window, aggregates: AGGS, allowedLateness: lateness });
    const model = new WindowModel({ keyType: 'int64', window, allowedLateness: lateness, aggregates: AGGS as never });
    try {
      const events: [bigint, number, number][] = [
        [1n, 0, 1], [2n, 1, 2], [1n, 3, 3], [3n, 400_001, 4], [2n, 400_002, 5], [1n, 900_000, 6], [-5n, 900_003, 7],
      ];
      await op.ingest({ user: BigInt64Array.from(events.map((e) => e[0])), ts: events.map((e) => e[1]), amount: events.map((e) => e[2]) });
      model.ingest(events.map(([k, t, v]) => ({ key: k, time: t, values: { amount: v } })) as never);
      // One jump past every window, then a late event into a window that is not purged yet (with
      // lateness) and a second jump, which re-fires it.
      for (const wm of [1_000_000, 1_500_000]) {
        const got = rowsOf(await op.advanceWatermark(wm), 'user');
        const want = model.advanceWatermark(wm);
        assert.equal(got, want, `fired rows at ${wm}, lateness ${lateness}`);
        const late: [bigint, number, number][] = [[2n, 400_003, 9]];
        await op.ingest({ user: BigInt64Array.from(late.map((e) => e[0])), ts: late.map((e) => e[1]), amount: late.map((e) => e[2]) });
        model.ingest(late.map(([k, t, v]) => ({ key: k, time: t, values: { amount: v } })) as never);
      }
      assert.is(await op.lateEvents(), model.lateEvents, 'late events');
    } finally {
      await backend.close();
    }
  }
});

test.run();
