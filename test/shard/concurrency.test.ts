// Calls that overlap a rescale or rebalance: every public call takes effect in call order, whether
// it was made before a rescale, while one runs, or right after one resolved, and rescales called
// back to back (not awaited) queue instead of overlapping. Random interleavings of ingest,
// watermark advances (tumbling and session windows), value puts, rescales and rebalances, none of
// them awaited before the next call, must give exactly the reference models' output (the models
// apply the calls in call order).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, CairnError, MemoryCheckpointStorage, hashKey } from '../../src/index.js';
import { WindowModel } from '../oracle/window-model.js';
import { Rng } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';
import { TXN_SLOTS } from '../../src/shard/votes.js';

const AGGS = { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' }, l: { fn: 'last', field: 'v' } } as const;
const WINDOW = { kind: 'tumbling', size: 50 } as const;
const SESSION = { kind: 'session', gap: 30 } as const;
const LATENESS = 20;

async function interleaved(seed: number, workers: boolean): Promise<void> {
  const rng = new Rng(seed);
  const b = await StateBackend.open({ shards: 2, workers, keyGroups: 32 });
  const op = b.aggregate('w', { key: { field: 'k', type: 'utf8' }, time: 't', window: WINDOW, aggregates: AGGS, allowedLateness: LATENESS });
  const so = b.aggregate('s', { key: { field: 'k', type: 'utf8' }, time: 't', window: SESSION, aggregates: AGGS, allowedLateness: LATENESS });
  const smodel = new WindowModel({ keyType: 'utf8', window: SESSION, allowedLateness: LATENESS, aggregates: AGGS as never });
  const kv = b.values('kv', { key: { type: 'int64' } });
  const model = new WindowModel({ keyType: 'utf8', window: WINDOW, allowedLateness: LATENESS, aggregates: AGGS as never });
  const values = new Map<bigint, number>();
  // Fired tables in call order, and what the model fired for each call.
  const fired: Promise<unknown>[] = [];
  const expected: unknown[] = [];
  const pending: Promise<unknown>[] = [];
  let t = 0;
  let rescales = 0;
  try {
    for (let step = 0; step < 70; step++) {
      const c = rng.int(0, 9);
      if (c < 5) {
        const n = 1 + rng.int(0, 199);
        const rows = [];
        for (let i = 0; i < n; i++) rows.push({ key: `u${rng.int(0, 299)}`, time: t + rng.int(0, 29) - 15, v: rng.int(0, 999) });
        t += n;
        const cols = { k: rows.map((r) => r.key), t: rows.map((r) => r.time), v: rows.map((r) => r.v) };
        pending.push(op.ingest(cols), so.ingest(cols));
        model.ingest(rows.map((r) => ({ key: r.key, time: r.time, values: { v: r.v } })));
        smodel.ingest(rows.map((r) => ({ key: r.key, time: r.time, values: { v: r.v } })));
        const k = BigInt(rng.int(0, 99));
        pending.push(kv.put(k, new Uint8Array([step])));
        values.set(k, step);
      } else if (c < 8) {
        const w = t - 25;
        fired.push(op.advanceWatermark(w).then((table) => rowsOf(table, 'k')));
        expected.push(model.advanceWatermark(w));
        fired.push(so.advanceWatermark(w).then((table) => rowsOf(table, 'k')));
        expected.push(smodel.advanceWatermark(w));
      } else if (c < 9) {
        // Two rescales called back to back, calls made while they run, then a call made only
        // once the second resolved: it must still come after the calls made before it.
        const a = b.rescale(1 + rng.int(0, 4));
        const batch = [{ key: `mid${step}`, time: t, v: step }];
        pending.push(op.ingest({ k: [batch[0]!.key], t: [batch[0]!.time], v: [step] }));
        model.ingest(batch.map((r) => ({ key: r.key, time: r.time, values: { v: r.v } })));
        const z = b.rescale(1 + rng.int(0, 4));
        rescales += 2;
        pending.push(a);
        await z;
        const w = t - 25;
        fired.push(op.advanceWatermark(w).then((table) => rowsOf(table, 'k')));
        expected.push(model.advanceWatermark(w));
        // The open windows and sessions, as of this call (it is applied in call order).
        fired.push(op.toArrow().then((table) => rowsOf(table, 'k')));
        expected.push(model.state());
        fired.push(so.toArrow().then((table) => rowsOf(table, 'k')));
        expected.push(smodel.state());
      } else {
        pending.push(b.rebalance());
      }
    }
    await Promise.all(pending);
    assert.ok(rescales > 0, 'the seed drew at least one rescale');
    assert.equal(await Promise.all(fired), expected, 'fired windows, call by call');
    const final = t + 1000;
    assert.equal(rowsOf(await op.advanceWatermark(final), 'k'), model.advanceWatermark(final), 'final flush');
    assert.equal(rowsOf(await so.advanceWatermark(final), 'k'), smodel.advanceWatermark(final), 'final flush of sessions');
    assert.is(await so.lateEvents(), smodel.lateEvents, 'late events of sessions');
    assert.is(await op.lateEvents(), model.lateEvents, 'late events');
    for (let k = 0n; k < 100n; k++) {
      const got = await kv.get(k);
      const want = values.get(k);
      assert.equal(got === undefined ? undefined : got[0], want, `value of ${k}`);
    }
  } finally {
    await b.close();
  }
}

for (const workers of [false, true]) {
  test(`calls overlapping rescales and rebalances apply in call order${workers ? ' (workers)' : ''}`, async () => {
    for (const seed of workers ? [11, 12] : [1, 2, 3, 4, 5]) await interleaved(seed, workers);
  });
}

test('a call made right after an awaited rescale comes after the calls made during it', async () => {
  for (const workers of [false, true]) {
    const b = await StateBackend.open({ shards: 2, workers });
    try {
      const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, time: 't', window: { kind: 'tumbling', size: 10 }, aggregates: { n: { fn: 'count' } } });
      const p = b.rescale(3);
      const ingested = op.ingest({ k: [1], t: [5] });
      await p;
      const fired = await op.advanceWatermark(1000);
      assert.is(fired.numRows, 1, `the window of the ingest made during the rescale fired (workers: ${workers})`);
      assert.is((await ingested).accepted, 1);
      assert.is(await op.lateEvents(), 0);
    } finally {
      await b.close();
    }
  }
});

test('plain arrays are read at the call, even when the call waits behind a rescale', async () => {
  for (const workers of [false, true]) {
    const b = await StateBackend.open({ shards: 2, workers });
    try {
      const op = b.aggregate('t', { key: { field: 'k', type: 'utf8' }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } });
      const p = b.rescale(3);
      // A producer that refills its arrays as soon as the call returns.
      const keys: (string | null)[] = ['x', 'y', 'x'];
      const vals = [1, 2, 3];
      const ingested = op.ingest({ k: keys, v: vals });
      keys[0] = 'MUT';
      vals[2] = 1000;
      keys.push('extra');
      vals.push(5);
      // A null key replaced after the call: the batch is checked as it was at the call.
      const bad = ['n1', null];
      const refused = op.ingest({ k: bad, v: [1, 2] }).then(() => null, (e: unknown) => e);
      bad[1] = 'n2';
      await p;
      assert.equal(await ingested, { events: 3, accepted: 3 }, `workers: ${workers}`);
      const e = await refused;
      assert.instance(e, CairnError, 'a batch with a null key at the call is refused');
      assert.is((e as CairnError).kind, 'invalid');
      const rows = rowsOf(await op.toArrow(), 'k').map((r) => [r['key'], r['n'], r['s']]);
      assert.equal(rows, [['x', 2, 4], ['y', 1, 2]], `workers: ${workers}`);
    } finally {
      await b.close();
    }
  }
});

test('rebalance takes its place in call order: its loads and shard count are those of the calls before it', async () => {
  for (const workers of [false, true]) {
    const b = await StateBackend.open({ shards: 2, keyGroups: 16, workers });
    try {
      const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
      await op.ingest({ k: Array.from({ length: 1000 }, (_, i) => BigInt(i)) });
      const moved = b.rebalance();
      const seen = b.metrics(); // called after the rebalance: sees its assignment
      const assignment = await moved;
      assert.equal((await seen).keyGroups.map((k) => k.shard), Array.from(assignment), `metrics after rebalance (workers: ${workers})`);
      const first = b.rebalance();
      const second = b.rescale(4); // called after: the rebalance must not read 4 shards, nor undo them
      await Promise.all([first, second]);
      assert.is((await b.metrics()).shards.length, 4);
      assert.is(rowsOf(await op.toArrow(), 'k').length, 1000);
    } finally {
      await b.close();
    }
  }
});

test('checkpoints, close and operator declarations queued behind rescales: no deadlock, nothing lost', async () => {
  const spec = { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } } as const;
  const keys = Array.from({ length: 3000 }, (_, i) => BigInt(i));
  for (const workers of [false, true]) {
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ shards: 2, workers, keyGroups: 32, checkpoints: { storage } });
    const x = b.aggregate('x', spec);
    await x.ingest({ k: keys });
    await b.checkpoint();
    // A checkpoint called behind two rescales it did not wait for: it must neither deadlock (the
    // second rescale waiting for it, it waiting for the rescale) nor fail as a delta of the old
    // assignment; the call after it sees its state.
    const r1 = b.rescale(3);
    const r2 = b.rescale(2);
    const ckpt = b.checkpoint();
    const got = x.get(7n);
    await Promise.all([r1, r2]);
    const result = await ckpt;
    assert.ok(!result.incremental, 'the checkpoint after a rescale is a full one');
    assert.equal(await got, { n: 1 });
    // close() behind a queued rescale and ingest: both run first, and then nothing starts again.
    const r3 = b.rescale(4);
    const late = x.ingest({ k: [0n] });
    await b.close();
    await r3;
    assert.equal(await late, { events: 1, accepted: 1 });
    assert.is(b.manager.shardCount, 0);
    let closedErr: unknown = null;
    await x.ingest({ k: [1n] }).catch((e: unknown) => { closedErr = e; });
    assert.ok(closedErr instanceof CairnError && closedErr.kind === 'closed', `after close: ${String(closedErr)}`);

    // A restored operator declared while a rescale runs loads into the shards of the new assignment.
    const r = await StateBackend.restore({ storage, workers });
    try {
      const moving = r.rescale(3);
      const y = r.aggregate('x', spec); // declared after the rescale was called
      await moving;
      assert.is((await y.toArrow()).numRows, keys.length);
      for (const k of keys.slice(0, 300)) assert.equal(await y.get(k), { n: 1 }, `get ${k} after restore and rescale (workers: ${workers})`);
    } finally {
      await r.close();
    }
  }
});

test('a checkpoint holds the operators declared before it in call order, not those declared after it', async () => {
  const spec = { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } } as const;
  for (const workers of [false, true]) {
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ shards: 2, workers, keyGroups: 32, checkpoints: { storage } });
    const x = b.aggregate('x', spec);
    await x.ingest({ k: [1n, 2n, 3n] });
    const moving = b.rescale(3);
    const ckpt = b.checkpoint(); // queued behind the rescale
    const y = b.aggregate('y', spec); // declared after it: queued behind it
    const yIngest = y.ingest({ k: [9n] });
    await moving;
    await ckpt;
    await yIngest;
    await b.close();
    const r = await StateBackend.restore({ storage, workers });
    try {
      assert.is((await r.aggregate('x', spec).toArrow()).numRows, 3, `x in the checkpoint (workers: ${workers})`);
      assert.is((await r.aggregate('y', spec).toArrow()).numRows, 0, 'y was declared after the checkpoint');
    } finally {
      await r.close();
    }
  }
});

test('more split batches in flight than the vote board has slots: held back, then applied in order', async () => {
  const b = await StateBackend.open({ shards: 2, workers: true, keyGroups: 16 });
  try {
    const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' }, l: { fn: 'last', field: 'v' } } });
    // Keys on both shards (key groups 4, 4, 3 of shard 0 and 8+ of shard 1), so every batch is split.
    const keys = [1n, 2n, 3n, 8n, 10n, 13n];
    const shardOf = (k: bigint) => Math.floor(((hashKey(k) % 16) * 2) / 16);
    assert.equal(keys.map(shardOf), [0, 0, 0, 1, 1, 1]);
    const calls: Promise<unknown>[] = [];
    const n = TXN_SLOTS + 100;
    for (let i = 0; i < n; i++) calls.push(op.ingest({ k: keys, v: keys.map(() => i) }));
    // Called after all of them, while some still wait for a slot: must see every one applied.
    const rows = op.toArrow();
    await Promise.all(calls);
    const got = rowsOf(await rows, 'k').map((r) => [r['key'], r['n'], r['l']]);
    assert.equal(got, [...keys].sort((x, y) => (x < y ? -1 : 1)).map((k) => [k, n, n - 1]));
  } finally {
    await b.close();
  }
});

test.run();
