// Proves the vote credit's bookkeeping (src/shard/credit.ts) against a plain model: a broadcast
// batch skips the vote only while the batches posted, and it, stay within the limits the shard
// last published, and only once the shard has published after the last request that takes memory
// outside the counts. Also proves, end to end, that batches sent on credit to worker shards apply
// on every shard (rows, and events per key group and per shard, match an in-process backend's),
// and that a shard applies a batch sent on credit even past its memory cap, and only that one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CreditReader, CreditWriter, CREDIT_KEY_BYTES, newCreditBoard } from '../../src/shard/credit.js';
import { StateBackend, CairnError } from '../../src/index.js';
import { ShardHost } from '../../src/shard/host.js';
import type { MemoryStats, StoreStats } from '../../src/shard/protocol.js';
import type { EncodedBatch, OutColumns } from '../../bindings/types.js';
import { normalizeAggregateSpec, storeConfigOf } from '../../src/store/spec.js';

test('a batch skips the vote only within the published credit, after the last memory-taking request', () => {
  const board = newCreditBoard(3);
  const w = new CreditWriter(board, 1);
  const r = new CreditReader(board, 1);
  // Nothing published yet.
  assert.not.ok(r.allows(1, 0), 'before any publication');
  let room = 1 << 16; // events the shard says it can take
  const fits = (events: number, keyBytes: number) => events <= room && keyBytes <= room * CREDIT_KEY_BYTES;
  r.posted(1, 'owns', false);
  w.publish(1, fits);
  assert.ok(r.allows(1 << 16, 0), 'a batch as large as the credit');
  assert.not.ok(r.allows((1 << 16) + 1, 0), 'a batch larger than the credit');
  assert.not.ok(r.allows(1, (1 << 16) * CREDIT_KEY_BYTES + 1), 'more key bytes than the credit');
  // Batches posted count against the credit until the shard publishes again.
  r.count(40_000, 0);
  r.posted(2, 'ingest', true);
  assert.ok(r.allows(25_536, 0));
  assert.not.ok(r.allows(25_537, 0), 'posted batches use up the credit');
  // The shard handles that batch and publishes: its counts catch up, the credit is renewed.
  w.count(40_000, 0);
  w.publish(2, fits);
  assert.ok(r.allows(1 << 16, 0), 'renewed after the shard handled the batch');
  // A value put (memory outside the counts) blocks the credit until the shard has handled it.
  r.posted(3, 'vput', false);
  assert.not.ok(r.allows(1, 0), 'blocked by a request that takes memory');
  r.posted(4, 'advance', false);
  w.publish(3, fits);
  assert.ok(r.allows(1, 0), 'free again once the shard published after the put');
  // A shard near its cap publishes less, down to nothing.
  room = 5000;
  w.publish(4, fits);
  assert.not.ok(r.allows(5000, 0), 'credit comes in steps: 4096 is the largest that fits 5000');
  assert.ok(r.allows(4096, 0));
  room = 100;
  w.publish(5, fits);
  assert.not.ok(r.allows(1, 0), 'no credit near the cap');
  // Another shard's slot is separate, and a new reader starts its slot from nothing.
  assert.not.ok(new CreditReader(board, 2).allows(1, 0));
  const again = new CreditReader(board, 1);
  assert.not.ok(again.allows(1, 0), 'a new shard in a reused slot waits for its own publication');
});

test('batches on credit to worker shards apply on every shard, as in process', async () => {
  for (const shards of [2, 3]) {
    const a = await StateBackend.open({ shards, workers: true, keyGroups: 64 });
    // In process, the caller's thread routes each batch (Router.split) and counts its key groups.
    const b = await StateBackend.open({ shards, keyGroups: 64 });
    try {
      const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const }, s: { fn: 'sum' as const, field: 'v' }, l: { fn: 'last' as const, field: 'v' } } };
      const oa = a.aggregate('t', spec);
      const ob = b.aggregate('t', spec);
      let x = 7;
      const rand = (m: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % m);
      const calls: Promise<unknown>[] = [];
      let total = 0;
      for (let i = 0; i < 40; i++) {
        const n = 1 + rand(3000);
        total += n;
        const k = BigInt64Array.from({ length: n }, () => BigInt(rand(5000) - 2500));
        const v = Float64Array.from({ length: n }, () => rand(1000) / 8);
        calls.push(oa.ingest({ k, v })); // pipelined: up to 40 calls in flight
        await ob.ingest({ k, v });
      }
      await Promise.all(calls);
      const [ta, tb] = [await oa.toArrow(), await ob.toArrow()];
      const rows = (t: Awaited<ReturnType<typeof oa.toArrow>>) => t.toArray().map((r) => JSON.stringify(r.toJSON(), (_, y) => (typeof y === 'bigint' ? String(y) : y))).sort();
      assert.equal(rows(ta), rows(tb), `rows with ${shards} worker shards`);
      const [ma, mb] = [await a.metrics(), await b.metrics()];
      assert.equal(ma.keyGroups.map((g) => g.events), mb.keyGroups.map((g) => g.events), 'events per key group');
      assert.equal(ma.shards.map((x) => x.events), mb.shards.map((x) => x.events), 'events per shard');
      assert.is(ma.keyGroups.reduce((t, g) => t + g.events, 0), total, 'every event counted once');
    } finally {
      await a.close();
      await b.close();
    }
  }
});

test('a batch on credit applies past the memory cap (every shard must apply it), and only that batch', () => {
  const cap = 4 * 1024 * 1024;
  const host = new ShardHost(cap);
  const cfg = storeConfigOf(normalizeAggregateSpec({ key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } }));
  host.handle({ op: 'open', id: 1, cfg });
  host.handle({ op: 'owns', keyGroups: 16, mask: new Uint8Array(16).fill(1) });
  const batch = (from: number, n: number): EncodedBatch => ({ n, keys: { type: 'int64', values: BigInt64Array.from({ length: n }, (_, i) => BigInt(from + i)) }, times: null, values: [] });
  const big = batch(0, 200_000); // about 12 MB of rows and index: three times the cap
  // Voted (or plain) ingest of it is refused for the cap, and changes nothing.
  assert.throws(() => host.handle({ op: 'ingest', id: 1, batch: big, seqBase: 0n, owned: true }), (e: unknown) => e instanceof CairnError && e.kind === 'unavailable');
  assert.is((host.handle({ op: 'stats', id: 1, keyGroups: 16 }) as StoreStats).rows, 0);
  // On credit it applies, past the cap.
  assert.is(host.handle({ op: 'ingest', id: 1, batch: big, seqBase: 0n, owned: true, credit: true }), 200_000);
  assert.is((host.handle({ op: 'stats', id: 1, keyGroups: 16 }) as StoreStats).rows, 200_000);
  const mem = host.handle({ op: 'memory' }) as MemoryStats;
  assert.ok(mem.usedBytes > cap, `state ${mem.usedBytes} bytes, past the cap`);
  // The cap is back: no credit is published, and the next batches are refused (the worst case
  // counts every event as a new key), changing nothing; reads still work.
  assert.not.ok(host.creditFits(1, CREDIT_KEY_BYTES), 'no credit past the cap');
  for (const from of [1_000_000, 0]) {
    assert.throws(() => host.handle({ op: 'ingest', id: 1, batch: batch(from, 10), seqBase: 0n, owned: true }), (e: unknown) => e instanceof CairnError && e.kind === 'unavailable');
  }
  assert.is((host.handle({ op: 'stats', id: 1, keyGroups: 16 }) as StoreStats).rows, 200_000);
  assert.equal((host.handle({ op: 'get', id: 1, key: { type: 'int64', value: 3n } }) as OutColumns).values[0], BigInt64Array.of(1n));
  assert.is((host.handle({ op: 'export', id: 1 }) as OutColumns).count, 200_000);
});

test.run();
