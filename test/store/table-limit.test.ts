// A shard's tables are each one allocator block, and the AssemblyScript allocator traps on a block
// above 1 GiB: once that left a batch half-applied (about 22M rows of a 4-aggregate operator on one
// shard), reported as `internal`. The limit is lowered here (a test hook on each shard's Wasm
// instance) so small tables reach it: a batch that would pass it is refused whole, like one over
// the memory cap, and the state stays usable.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, CairnError, type AggregateOperator } from '../../src/index.js';

const BLOCK = 256 * 1024;

/** Lowers the block limit on every in-process shard of `b`. */
function lowerLimit(b: StateBackend): void {
  for (const shard of b.manager.shards) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (shard as any).host.core.setBlockMaxForTest(BLOCK);
  }
}

async function rowsOf(b: StateBackend): Promise<number> {
  return (await b.metrics()).shards.reduce((a, s) => a + s.rows, 0);
}

function expectRefusal(e: unknown, what: string): void {
  assert.instance(e, CairnError, `${what}: ${String(e)}`);
  assert.is((e as CairnError).kind, 'unavailable', `${what}: ${(e as Error).message}`);
  assert.match((e as Error).message, /would pass 1 GiB/, what);
}

for (const shards of [1, 3]) {
  for (const keyType of ['int64', 'utf8'] as const) {
    test(`${shards} shard(s), ${keyType} keys: a batch that would pass a table's limit is refused whole; the state stays usable`, async () => {
      const b = await StateBackend.open({ shards, keyGroups: 16 });
      try {
        lowerLimit(b);
        const op: AggregateOperator = b.aggregate('t', { key: { field: 'k', type: keyType }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' }, lo: { fn: 'min', field: 'v' }, hi: { fn: 'max', field: 'v' } } });
        const model = new Map<string, number>();
        // utf8 keys long enough that the key arena, not the rows, reaches the limit first.
        const keyOf = (i: number) => (keyType === 'int64' ? BigInt(i) : `key-${i}-${'z'.repeat(200)}`);
        let next = 0;
        let refused = 0;
        while (refused === 0 && next < 1_000_000) {
          const n = 700;
          const keys = Array.from({ length: n }, (_, i) => keyOf(next + i));
          const k = keyType === 'int64' ? BigInt64Array.from(keys as bigint[]) : (keys as string[]);
          const v = Float64Array.from(keys, (_, i) => (next + i) % 97);
          const before = await rowsOf(b);
          try {
            await op.ingest({ k, v });
            keys.forEach((key, i) => model.set(String(key), (next + i) % 97));
            next += n;
          } catch (e) {
            expectRefusal(e, `batch at ${next}`);
            assert.is(await rowsOf(b), before, 'a refused batch changed the rows');
            refused++;
          }
        }
        assert.is(refused, 1, 'the limit was never reached');
        assert.ok(model.size >= 700, `at least one batch applied (${model.size})`);
        // Exactly the applied batches are there.
        const table = await op.toArrow();
        assert.is(table.numRows, model.size);
        const ks = table.getChild('k')!.toArray() as ArrayLike<unknown>;
        const sums = table.getChild('s')!.toArray() as Float64Array;
        for (let i = 0; i < table.numRows; i++) assert.is(sums[i], model.get(String(ks[i])), `key ${String(ks[i])}`);
        // Still usable: existing keys update, a delete makes room for a new key.
        await op.ingest({ k: keyType === 'int64' ? BigInt64Array.from([0n]) : [keyOf(0) as string], v: Float64Array.from([5]) });
        assert.equal(await op.get(keyOf(0)), { n: 2, s: 5, lo: 0, hi: 5 });
        for (let i = 0; i < 700; i++) assert.ok(await op.delete(keyOf(i)));
        await op.ingest({ k: keyType === 'int64' ? BigInt64Array.from([-1n]) : ['new'], v: Float64Array.from([1]) });
        assert.equal(await op.get(keyType === 'int64' ? -1n : 'new'), { n: 1, s: 1, lo: 1, hi: 1 });
      } finally {
        await b.close();
      }
    });
  }
}

test('value state: a put that would pass the value arena\'s limit is refused; earlier values stay', async () => {
  const b = await StateBackend.open({ shards: 1 });
  try {
    lowerLimit(b);
    const kv = b.values('kv', { key: { type: 'int64' } });
    const value = (i: number) => new Uint8Array(10_000).fill(i % 251);
    let stored = 0;
    let refused = false;
    for (let i = 0; i < 200 && !refused; i++) {
      try {
        await kv.put(BigInt(i), value(i));
        stored++;
      } catch (e) {
        expectRefusal(e, `put ${i}`);
        refused = true;
      }
    }
    assert.ok(refused, 'the limit was never reached');
    assert.ok(stored > 5 && stored < 30, `stored ${stored} values of 10 KB under a 256 KiB arena`);
    for (let i = 0; i < stored; i++) assert.equal(await kv.get(BigInt(i)), value(i));
    assert.is(await kv.get(BigInt(stored)), undefined);
  } finally {
    await b.close();
  }
});

test.run();
