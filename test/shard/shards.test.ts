// Proves sharding keeps meaning: the same random windowed workload through 1, 3 and 8 shards,
// in-process and on worker threads, and with a rescale in the middle, gives exactly the reference
// model's output (so all runs are identical to each other). Also: a dead worker surfaces as a
// CairnError on the next call (never a hang), metrics add up, and rebalance evens out skew.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, CairnError, MemoryCheckpointStorage, type AggregateOperator } from '../../src/index.js';
import process from 'node:process';
import type { StoreStats } from '../../src/shard/protocol.js';
import { WindowModel } from '../oracle/window-model.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { genEvents, toColumns } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';

const AGGS = { n: { fn: 'count' }, s: { fn: 'sum', field: 'amount' }, hi: { fn: 'max', field: 'amount' }, l: { fn: 'last', field: 'amount' } } as const;

async function workload(shards: number, workers: boolean, rescaleTo: number | null, keyType: 'int64' | 'utf8') {
  const rows = genEvents({ seed: 4242, n: 12000, keys: 700, keyType, disorderMs: 40, timeSpread: 30000, nullRate: 0.05, multibyte: true, skew: 0.7 });
  const b = await StateBackend.open({ shards, workers, keyGroups: 64 });
  const op = b.aggregate('w', { key: { field: 'user', type: keyType }, time: 'ts', window: { kind: 'hopping', size: 400, slide: 100 }, aggregates: AGGS, allowedLateness: 50 });
  const run = b.aggregate('r', { key: { field: 'user', type: keyType }, time: 'ts', aggregates: AGGS });
  const wm = new WindowModel({ keyType, window: { kind: 'hopping', size: 400, slide: 100 }, allowedLateness: 50, aggregates: AGGS as never });
  const am = new AggregateModel({ keyType, time: true, aggregates: AGGS as never });
  const step = 1000;
  try {
    for (let o = 0; o < rows.length; o += step) {
      const part = rows.slice(o, o + step);
      const cols = toColumns(part, { keyType });
      await Promise.all([op.ingest(cols), run.ingest(cols)]);
      wm.ingest(part as never);
      am.ingest(part as never);
      if (rescaleTo !== null && o === 6000) await b.rescale(rescaleTo);
      const t = part[part.length - 1]!.time - 60;
      assert.equal(rowsOf(await op.advanceWatermark(t), 'user'), wm.advanceWatermark(t), `fired at ${t} (shards=${b.shardCount})`);
    }
    assert.equal(rowsOf(await run.toArrow(), 'user'), am.rows(), 'running aggregates');
    const m = await b.metrics();
    assert.is(m.shards.length, rescaleTo ?? shards);
    assert.is(m.shards.reduce((a, s) => a + s.rows, 0), m.keyGroups.reduce((a, k) => a + k.rows, 0), 'rows per shard and per key group add up');
    assert.is(m.lateEvents, wm.lateEvents);
  } finally {
    await b.close();
  }
}

for (const workers of [false, true]) {
  for (const shards of [1, 3, 8]) {
    test(`identical results with ${shards} shard(s)${workers ? ' on workers' : ''}`, async () => {
      await workload(shards, workers, null, shards === 3 ? 'utf8' : 'int64');
    });
  }
  test(`a rescale in the middle loses and duplicates nothing${workers ? ' (workers)' : ''}`, async () => {
    await workload(2, workers, 5, 'utf8');
    await workload(4, workers, 1, 'int64');
  });
}

/** Kills worker shard 1 (`how`), then checks that the next split batch fails with a CairnError, not a hang. */
async function killAndIngest(how: 'exit' | 'throw' | 'unreadable', before?: (b: StateBackend, op: AggregateOperator) => Promise<void>): Promise<void> {
  const b = await StateBackend.open({ shards: 2, workers: true });
  try {
    const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    await op.ingest({ k: [1, 2, 3, 4] });
    await before?.(b, op);
    await b.manager.call(1, { op: 'crash', how }).catch(() => undefined);
    let err: unknown;
    try {
      await op.ingest({ k: [1, 2, 3, 4, 5, 6, 7, 8] });
    } catch (e) {
      err = e;
    }
    assert.instance(err, CairnError);
    assert.is((err as CairnError).kind, 'unavailable');
    assert.match((err as Error).message, /worker/);
  } finally {
    await b.close();
  }
}

test('a dead worker is a CairnError on the next call, never a hang', async () => {
  await killAndIngest('exit');
});

test('a worker that cannot read a request gives the shard up: a CairnError on the next call, never a hang', async () => {
  await killAndIngest('unreadable');
});

test('a worker that throws is a CairnError on the next call, never a hang; a refused request leaves the shard usable', async () => {
  await killAndIngest('throw', async (b, op) => {
    // A request the shard refuses comes back as its CairnError; the shard goes on.
    let refused: unknown;
    await b.manager.call(0, { op: 'get', id: 999, key: { type: 'int64', value: 1n } }).catch((e: unknown) => { refused = e; });
    assert.instance(refused, CairnError);
    assert.is((refused as CairnError).kind, 'internal');
    assert.match((refused as Error).message, /no operator 999/);
    await op.ingest({ k: [1, 2, 3, 4] });
    assert.equal(await op.get(1), { n: 2 });
  });
});

test('after a worker died no call posts anything: a batch applies on no shard, a checkpoint fails cleanly', async () => {
  let unhandled = 0;
  const count = () => { unhandled++; };
  process.on('unhandledRejection', count);
  try {
    // 2 and 3 worker shards get batches broadcast on credit; 6 get them split and voted on.
    for (const shards of [2, 3, 6]) {
      const storage = new MemoryCheckpointStorage();
      const b = await StateBackend.open({ shards, workers: true, keyGroups: 32, checkpoints: { storage } });
      try {
        const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
        await op.ingest({ k: Array.from({ length: 64 }, (_, i) => i) });
        const c1 = await b.checkpoint();
        const rowsOf0 = async () => (await b.manager.call<StoreStats>(0, { op: 'stats', id: op.id, keyGroups: 32 })).rows;
        const before = await rowsOf0();
        await b.manager.call(shards - 1, { op: 'crash', how: 'exit' }).catch(() => undefined);
        // The death is known now (the crash call settled on it): later calls fail before posting.
        for (let attempt = 0; attempt < 3; attempt++) {
          const e = await op.ingest({ k: Array.from({ length: 64 }, (_, i) => 1000 + i) }).then(() => null, (x: unknown) => x);
          assert.instance(e, CairnError, `${shards} shards: ingest after a worker died succeeded`);
          assert.is((e as CairnError).kind, 'unavailable');
          assert.match((e as Error).message, /must be restored from a checkpoint/);
        }
        assert.is(await rowsOf0(), before, `${shards} shards: a refused batch was applied on a live shard`);
        const ck = await b.checkpoint().then(() => null, (x: unknown) => x);
        assert.instance(ck, CairnError);
        assert.is((ck as CairnError).kind, 'unavailable');
        // What the checkpoint before the death holds restores whole.
        const r = await StateBackend.restore({ storage });
        assert.is(r.restoreReport!.checkpointId, c1.id);
        assert.is((await r.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } }).toArrow()).numRows, 64);
        await r.close();
      } finally {
        await b.close();
      }
    }
    // A worker dying while a checkpoint captures: the checkpoint fails, and nothing else rejects.
    const b = await StateBackend.open({ shards: 2, workers: true, checkpoints: { storage: new MemoryCheckpointStorage() } });
    const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    await op.ingest({ k: [1, 2, 3, 4] });
    void b.manager.call(1, { op: 'crash', how: 'exit' }).catch(() => undefined);
    const ck = await b.checkpoint().then(() => null, (x: unknown) => x);
    assert.instance(ck, CairnError);
    assert.is((ck as CairnError).kind, 'unavailable');
    await b.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.is(unhandled, 0, 'a failed checkpoint left a rejection unhandled');
  } finally {
    process.off('unhandledRejection', count);
  }
});

test('metrics() reports the state at its call, not calls made after it; a second close() waits for the first', async () => {
  for (const workers of [false, true]) {
    const b = await StateBackend.open({ shards: workers ? 2 : 1, workers });
    const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    const m = b.metrics();
    const ingested = op.ingest({ k: [1, 2, 3, 4, 5] });
    const [metrics] = await Promise.all([m, ingested]);
    assert.equal(metrics.shards.map((s) => s.rows), workers ? [0, 0] : [0], `workers ${workers}: metrics saw a later ingest`);
    assert.is(metrics.shards.reduce((a, s) => a + s.events, 0), 0);
    assert.is((await b.metrics()).shards.reduce((a, s) => a + s.rows, 0), 5);
    let done = false;
    void op.ingest({ k: Array.from({ length: 200_000 }, (_, i) => i) }).then(() => (done = true));
    void b.close();
    await b.close();
    assert.ok(done, `workers ${workers}: the second close() resolved before a call made before it finished`);
  }
});

test('rebalance evens out a skewed assignment and keeps every row', async () => {
  const b = await StateBackend.open({ shards: 4, keyGroups: 32 });
  const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  const am = new AggregateModel({ keyType: 'int64', aggregates: { n: { fn: 'count' } } });
  // Keys chosen so most land in the key groups of shard 0.
  const { hashKey } = await import('../../src/index.js');
  const keys: bigint[] = [];
  for (let k = 0n; keys.length < 3000; k++) if (hashKey(k) % 32 < 8 || k % 7n === 0n) keys.push(k);
  const rows = keys.flatMap((k, i) => Array.from({ length: 1 + (i % 5) }, () => ({ key: k, values: {} })));
  await op.ingest({ k: rows.map((r) => r.key) });
  am.ingest(rows as never);
  const before = await b.metrics();
  const assignment = await b.rebalance();
  const after = await b.metrics();
  assert.ok(before.skew > 1.5, `workload not skewed: ${before.skew}`);
  assert.is(assignment.length, 32);
  // Events moved with their key groups: judge by rows now owned per shard.
  const rowsPer = after.shards.map((s) => s.rows);
  const mean = rowsPer.reduce((a, x) => a + x, 0) / rowsPer.length;
  assert.ok(Math.max(...rowsPer) / mean < before.skew, `rows per shard after rebalance: ${rowsPer}, skew before ${before.skew}`);
  // The reported skew follows the key groups to their new shards.
  assert.ok(after.skew < before.skew, `skew after rebalance ${after.skew}, before ${before.skew}`);
  assert.equal(rowsOf(await op.toArrow(), 'k'), am.rows());
  await b.close();
});

test('metrics: events, rows and state bytes per key group and per shard add up, and follow moves', async () => {
  for (const workers of [false, true]) {
    const b = await StateBackend.open({ shards: 3, workers, keyGroups: 16 });
    try {
      const agg = b.aggregate('a', { key: { field: 'k', type: 'utf8' }, aggregates: { n: { fn: 'count' } } });
      const kv = b.values('v', { key: { type: 'utf8' } });
      const { hashKey } = await import('../../src/index.js');
      // Per key group, independently of Cairn: events, keys, and key and value bytes.
      const events = new Float64Array(16);
      const keys = new Map<string, number>();
      const batch: string[] = [];
      for (let i = 0; i < 4000; i++) {
        const k = `key-${(i * 7919) % 1300}-${'x'.repeat(i % 9)}`;
        batch.push(k);
        events[hashKey(k) % 16]! += 1;
        keys.set(k, hashKey(k) % 16);
      }
      await agg.ingest({ k: batch });
      const valueBytes = new Float64Array(16);
      for (let i = 0; i < 50; i++) {
        const k = `v${i}`;
        await kv.put(k, new Uint8Array(100 + i));
        valueBytes[hashKey(k) % 16]! += 100 + i;
      }
      const check = async (what: string) => {
        const m = await b.metrics();
        assert.equal(m.keyGroups.map((g) => g.events), Array.from(events), `${what}: events per key group`);
        const rowsPerKg = new Float64Array(16);
        for (const kg of keys.values()) rowsPerKg[kg]! += 1;
        for (let i = 0; i < 50; i++) rowsPerKg[hashKey(`v${i}`) % 16]! += 1;
        assert.equal(m.keyGroups.map((g) => g.rows), Array.from(rowsPerKg), `${what}: rows per key group`);
        // State bytes: at least each key group's key and value bytes, and within the shards' total.
        const keyBytes = new Float64Array(16);
        for (const [k, kg] of keys) keyBytes[kg]! += new TextEncoder().encode(k).length;
        for (let i = 0; i < 50; i++) keyBytes[hashKey(`v${i}`) % 16]! += `v${i}`.length;
        m.keyGroups.forEach((g, kg) => assert.ok(g.stateBytes >= keyBytes[kg]! + valueBytes[kg]!, `${what}: key group ${kg} holds ${g.stateBytes} bytes`));
        const kgTotal = m.keyGroups.reduce((a, g) => a + g.stateBytes, 0);
        const shardTotal = m.shards.reduce((a, x) => a + x.stateBytes, 0);
        assert.ok(kgTotal <= shardTotal, `${what}: key groups hold ${kgTotal} bytes, shards ${shardTotal}`);
        // Events and rows per shard are those of the key groups it owns.
        m.shards.forEach((x, s) => {
          const owned = m.keyGroups.filter((g) => g.shard === s);
          assert.is(x.events, owned.reduce((a, g) => a + g.events, 0), `${what}: events of shard ${s}`);
          assert.is(x.rows, owned.reduce((a, g) => a + g.rows, 0), `${what}: rows of shard ${s}`);
        });
      };
      await check('3 shards');
      await b.rescale(2);
      await check('after rescale to 2');
      await b.rebalance();
      await check('after rebalance');
    } finally {
      await b.close();
    }
  }
});

test.run();
