// The store's compact bookkeeping (assembly/store.ts): freed row ids are a bit each (a word per 64
// ids, a summary bit per word) and are reused lowest first; the change log exists only once a
// checkpoint captured the store; every buffer is released on close. These workloads cross the
// bitmap's word (64 ids) and summary (4096 ids) boundaries and check the results against the
// reference model, and the memory accounting against the bytes the store held before. The flags
// byte shares a word with the first null count, so a snapshot's null counts must be in range.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, CairnError } from '../../src/index.js';
import { WasmCore } from '../../bindings/core.js';
import { encodeBatch } from '../../src/store/batch.js';
import { normalizeAggregateSpec, storeConfigOf } from '../../src/store/spec.js';
import { MODE_DELTA, MODE_FULL } from '../../bindings/exports.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { Rng } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';

const AGGS = { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' }, hi: { fn: 'max', field: 'v' } } as const;

function shuffle<T>(rng: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

for (const keyType of ['int64', 'utf8'] as const) {
  const keyOf = (i: number): string | bigint => (keyType === 'int64' ? BigInt(i) * 7919n - 40_000n : `k${i}-${'é'.repeat(i % 3)}`);
  const column = (keys: (string | bigint)[]) => (keyType === 'int64' ? BigInt64Array.from(keys as bigint[]) : (keys as string[]));

  test(`${keyType}: churn of deletes and new keys reuses freed rows (no growth) and matches the model`, async () => {
    const b = await StateBackend.open({ shards: 1 });
    const model = new AggregateModel({ keyType, aggregates: AGGS as never });
    const rng = new Rng(keyType === 'int64' ? 5 : 6);
    try {
      const op = b.aggregate('churn', { key: { field: 'k', type: keyType }, aggregates: AGGS });
      const ingest = async (keys: (string | bigint)[]) => {
        const v = Float64Array.from(keys, () => (rng.int(0, 9) === 0 ? NaN : rng.int(-50, 50)));
        await op.ingest({ k: column(keys), v });
        model.ingest(keys.map((key, i) => ({ key, values: { v: Number.isNaN(v[i]!) ? null : v[i]! } })));
      };
      // 10K keys (row ids 0..9999), then rounds that delete 2,000 live keys, ids spread over every
      // bitmap word and summary word, and insert 2,000 new keys (with events of live keys mixed in).
      let next = 0;
      await ingest(Array.from({ length: 10_000 }, () => keyOf(next++)));
      const live = new Set<number>(Array.from({ length: 10_000 }, (_, i) => i));
      const settled = (await b.metrics()).shards[0]!.stateBytes;
      for (let round = 0; round < 12; round++) {
        for (const i of shuffle(rng, [...live]).slice(0, 2_000)) {
          assert.is(await op.delete(keyOf(i)), model.delete(keyOf(i)), `round ${round}: delete ${i}`);
          live.delete(i);
        }
        const fresh = Array.from({ length: 2_000 }, () => next++);
        for (const i of fresh) live.add(i);
        await ingest(shuffle(rng, [...fresh, ...shuffle(rng, [...live]).slice(0, 3_000)]).map(keyOf));
        // 10K live keys throughout: without reuse, 2,000 new row ids a round would grow the rows.
        assert.is((await b.metrics()).shards[0]!.stateBytes <= settled + (keyType === 'utf8' ? 1 << 20 : 0), true, `round ${round}: the store grew`);
      }
      if (keyType === 'int64') assert.is((await b.metrics()).shards[0]!.stateBytes, settled, 'int64 state bytes unchanged');
      assert.equal(rowsOf(await op.toArrow(), 'k'), model.rows());
    } finally {
      await b.close();
    }
  });

  test(`${keyType}: closing a store releases all it held, change log and free-row bits included`, () => {
    const spec = normalizeAggregateSpec({ key: { field: 'k', type: keyType }, aggregates: AGGS });
    const core = new WasmCore();
    const utf8 = new TextEncoder();
    const keys = Array.from({ length: 5_000 }, (_, i) => keyOf(i));
    // A store's life: ingest, a full checkpoint (allocates the change log), deletes (free rows),
    // more ingest, a delta, close. The second life must end where the first ended: the shard's
    // shared buffers (scratch, output) stay, but nothing the store held.
    const life = () => {
      const h = core.openStore(storeConfigOf(spec));
      core.ingest(h, encodeBatch({ k: column(keys), v: new Float64Array(5_000).fill(1) }, spec), 0n);
      core.captureBytes(h, MODE_FULL, 16, null);
      core.releaseSnapshot(h);
      for (let i = 0; i < 5_000; i += 3) {
        const k = keyOf(i);
        assert.ok(core.deleteKey(h, typeof k === 'bigint' ? { type: 'int64', value: k } : { type: 'utf8', bytes: utf8.encode(k) }));
      }
      core.ingest(h, encodeBatch({ k: column(keys.slice(0, 4_000)), v: new Float64Array(4_000).fill(2) }, spec), 5_000n);
      core.captureBytes(h, MODE_DELTA, 16, null);
      core.releaseSnapshot(h);
      core.check(core.ex.storeClose(h), 'close');
      return [core.memUsedBytes(), core.ex.memTransient()];
    };
    const before = core.memUsedBytes();
    const first = life();
    assert.is(first[0], before, 'state bytes after the first close');
    assert.equal(life(), first, 'state and transient bytes after the second close');
  });

  test(`${keyType}: a store checkpointed while empty tracks the rows it grows afterwards (delta restore matches the model)`, async () => {
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ shards: 1, keyGroups: 16, checkpoints: { storage, retain: 4, maxDeltaRatio: 100 } });
    const spec = { key: { field: 'k', type: keyType }, aggregates: AGGS };
    const model = new AggregateModel({ keyType, aggregates: AGGS as never });
    const rng = new Rng(keyType === 'int64' ? 7 : 8);
    let taken;
    try {
      const op = b.aggregate('t', spec);
      await b.checkpoint(); // full, of an empty store: the change log starts with no rows
      // New keys grow the rows several times over (64 to 6,000); deletes make free rows.
      const keys = Array.from({ length: 6_000 }, (_, i) => keyOf(i));
      const v = Float64Array.from(keys, () => rng.int(0, 99));
      await op.ingest({ k: column(keys), v });
      model.ingest(keys.map((key, i) => ({ key, values: { v: v[i]! } })));
      for (let i = 0; i < 6_000; i += 7) assert.is(await op.delete(keyOf(i)), model.delete(keyOf(i)));
      await op.ingest({ k: column(keys.slice(0, 50)), v: new Float64Array(50).fill(500) });
      model.ingest(keys.slice(0, 50).map((key) => ({ key, values: { v: 500 } })));
      taken = await b.checkpoint();
      assert.ok(taken.incremental, 'the checkpoint after the empty one is incremental');
    } finally {
      await b.close();
    }
    const r = await StateBackend.restore({ storage, shards: 1, checkpointId: taken!.id });
    try {
      const op = r.aggregate('t', spec);
      assert.equal(rowsOf(await op.toArrow(), 'k'), model.rows());
    } finally {
      await r.close();
    }
  });
}

test('a snapshot whose null count is out of range (above the count, or in the flags byte) is refused as corrupt', () => {
  const aggs = { n: { fn: 'count' }, valued: { fn: 'count', field: 'v' }, s: { fn: 'sum', field: 'v' } } as const;
  const spec = normalizeAggregateSpec({ key: { field: 'k', type: 'int64' }, aggregates: aggs });
  const cfg = storeConfigOf(spec);
  const core = new WasmCore();
  const h = core.openStore(cfg);
  // One key, 1000 events of which 777 are null: count 1000, null count 777.
  const v = Float64Array.from({ length: 1000 }, (_, i) => (i < 777 ? NaN : 1));
  core.ingest(h, encodeBatch({ k: new BigInt64Array(1000).fill(123_456_789n), v }, spec), 0n);
  const snap = core.captureBytes(h, MODE_FULL, 16, null);
  const words = new BigInt64Array(snap.buffer, snap.byteOffset, snap.byteLength >> 3);
  const at = words.indexOf(777n);
  assert.ok(at >= 0 && words.indexOf(777n, at + 1) < 0, 'the null count is one word of the snapshot');
  assert.ok(words.indexOf(1000n) >= 0 && words.indexOf(1000n) < at, 'the count precedes it');
  const loadInto = (bytes: Uint8Array) => {
    const t = core.openStore(cfg);
    try {
      core.load(t, bytes, 16, null);
      return core.exportRows(t, cfg);
    } finally {
      core.ex.storeClose(t);
    }
  };
  const intact = loadInto(snap);
  assert.equal([intact.count, Number(intact.values[0]![0]!), Number(intact.values[1]![0]!), intact.values[2]![0]], [1, 1000, 223, 223]);
  for (const bad of [1001n, 777n | (1n << 56n), -1n]) {
    const copy = snap.slice();
    new BigInt64Array(copy.buffer, 0, copy.byteLength >> 3)[at] = bad;
    try {
      loadInto(copy);
      assert.unreachable(`null count ${bad} was accepted`);
    } catch (e) {
      assert.instance(e, CairnError);
      assert.is((e as CairnError).kind, 'corruption', String(e));
    }
  }
});

test.run();
