// Two backends checkpointing to one storage at once (a failover whose old process still runs).
// Before, both took the same ids: the old one's checkpoint replaced the new one's manifest and data
// files of the same id, and its retention deleted the new one's checkpoints as off its history.
// Now whichever finds a manifest it did not write fails that checkpoint and every later one, and
// the other's checkpoints stay whole. The expected state comes from a plain Map of counts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, TieredCheckpointStorage, CairnError, type CheckpointStorage } from '../../src/index.js';

const SPEC = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const } } };

/** A writer and the counts it should hold (the oracle). */
class Writer {
  readonly counts = new Map<bigint, number>();
  constructor(readonly backend: StateBackend, seed: Map<bigint, number> = new Map()) {
    for (const [k, v] of seed) this.counts.set(k, v);
  }
  async ingest(keys: number[]): Promise<void> {
    const op = this.backend.aggregate('c', SPEC);
    await op.ingest({ k: BigInt64Array.from(keys, BigInt) });
    for (const k of keys) this.counts.set(BigInt(k), (this.counts.get(BigInt(k)) ?? 0) + 1);
  }
}

async function stateOf(storage: MemoryCheckpointStorage, checkpointId?: number): Promise<Map<bigint, number>> {
  const b = await StateBackend.restore({ storage, shards: 2, ...(checkpointId !== undefined ? { checkpointId } : {}) });
  try {
    const t = await b.aggregate('c', SPEC).toArrow();
    const out = new Map<bigint, number>();
    for (const row of t) out.set(row.k as bigint, Number(row.n));
    return out;
  } finally {
    await b.close();
  }
}

function sorted(m: Map<bigint, number>): [string, number][] {
  return [...m].map(([k, v]): [string, number] => [String(k), v]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

async function refused(p: Promise<unknown>, what: string): Promise<CairnError> {
  const e = await p.then(() => null, (x: unknown) => x);
  assert.instance(e, CairnError, `${what}: expected a CairnError`);
  assert.is((e as CairnError).kind, 'unavailable', what);
  assert.match((e as CairnError).message, /another writer/, what);
  return e as CairnError;
}

const keys = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => (from + i * 7) % 500);

for (const workers of [false, true]) {
  const mode = workers ? 'worker' : 'in-process';

  test(`the old writer of a failover stops once the new one checkpointed; the new one's checkpoints stay whole (${mode})`, async () => {
    const storage = new MemoryCheckpointStorage();
    const a = new Writer(await StateBackend.open({ shards: 2, workers, checkpoints: { storage, retain: 2 } }));
    try {
      await a.ingest(keys(0, 2000));
      await a.backend.checkpoint();
      await a.ingest(keys(1, 300));
      await a.backend.checkpoint();
      // The new process restores the newest checkpoint while the old one still runs.
      const b = new Writer(await StateBackend.restore({ storage, shards: 2, workers, retain: 2 }), a.counts);
      try {
        await b.ingest(keys(2, 400));
        const first = await b.backend.checkpoint();
        await a.ingest(keys(3, 500));
        await refused(a.backend.checkpoint(), 'old writer after the new one checkpointed');
        const dataBefore = await storage.list('data/');
        await refused(a.backend.checkpoint(), 'old writer, once more');
        assert.equal(await storage.list('data/'), dataBefore, 'a stopped writer writes no more data files');
        assert.equal(sorted(await stateOf(storage)), sorted(b.counts), 'storage holds the new writer\'s state');
        assert.equal(sorted(await stateOf(storage, first.id)), sorted(b.counts));
        // The new writer goes on, through retention rounds, and every checkpoint it keeps restores.
        const mine: { id: number; counts: Map<bigint, number> }[] = [];
        for (let i = 0; i < 4; i++) {
          await b.ingest(keys(10 + i, 100 + i));
          const r = await b.backend.checkpoint();
          mine.push({ id: r.id, counts: new Map(b.counts) });
        }
        for (const m of mine.slice(-2)) assert.equal(sorted(await stateOf(storage, m.id)), sorted(m.counts), `checkpoint ${m.id}`);
      } finally {
        await b.backend.close();
      }
    } finally {
      await a.backend.close();
    }
  });
}

test('a new writer that finds the old one\'s newer checkpoint stops, and leaves it whole', async () => {
  const storage = new MemoryCheckpointStorage();
  const a = new Writer(await StateBackend.open({ shards: 2, checkpoints: { storage, retain: 2 } }));
  try {
    await a.ingest(keys(0, 1000));
    await a.backend.checkpoint();
    const b = new Writer(await StateBackend.restore({ storage, shards: 1, retain: 2 }), a.counts);
    try {
      // The old writer checkpoints first after the new one opened: both took the same next id.
      await a.ingest(keys(5, 200));
      const r = await a.backend.checkpoint();
      await b.ingest(keys(6, 300));
      await refused(b.backend.checkpoint(), 'new writer after the old one checkpointed');
      assert.equal(sorted(await stateOf(storage, r.id)), sorted(a.counts));
      // The one writer left keeps checkpointing, and retention never finds the other's files in the way.
      for (let i = 0; i < 3; i++) {
        await a.ingest(keys(20 + i, 50));
        await a.backend.checkpoint();
      }
      assert.equal(sorted(await stateOf(storage)), sorted(a.counts));
    } finally {
      await b.backend.close();
    }
  } finally {
    await a.backend.close();
  }
});

test('the old writer whose manifest put failed does not take the new writer\'s manifest of that id for its own', async () => {
  const shared = new MemoryCheckpointStorage();
  let failManifest = false;
  // The old writer's view of the storage: its next manifest put fails and stores nothing.
  const viaA: CheckpointStorage = {
    put: async (n, b) => {
      if (failManifest && n.startsWith('manifests/')) {
        failManifest = false;
        throw new Error('EIO: manifest put failed');
      }
      await shared.put(n, b);
    },
    get: (n) => shared.get(n),
    list: (p) => shared.list(p),
    delete: (n) => shared.delete(n),
  };
  const a = new Writer(await StateBackend.open({ shards: 2, checkpoints: { storage: viaA, retain: 3 } }));
  try {
    await a.ingest(keys(0, 500));
    await a.backend.checkpoint();
    await a.backend.checkpoint();
    const b = new Writer(await StateBackend.restore({ storage: shared, shards: 2, retain: 3 }), a.counts);
    try {
      await a.ingest(keys(1, 100));
      failManifest = true;
      const e = await a.backend.checkpoint().then(() => null, (x: unknown) => x);
      assert.instance(e, CairnError);
      assert.not.match((e as CairnError).message, /another writer/);
      await b.ingest(keys(2, 100));
      const mine = await b.backend.checkpoint(); // the same id A failed to write
      await a.ingest(keys(3, 100));
      await refused(a.backend.checkpoint(), 'old writer after its failed put');
      assert.equal(sorted(await stateOf(shared, mine.id)), sorted(b.counts), 'the new writer\'s checkpoint is whole');
      await b.ingest(keys(4, 100));
      await b.backend.checkpoint();
      assert.equal(sorted(await stateOf(shared)), sorted(b.counts));
    } finally {
      await b.backend.close();
    }
  } finally {
    await a.backend.close();
  }
});

test('a manifest replaced by another valid one, or deleted, stops the writer; a damaged copy does not', async () => {
  const storage = new MemoryCheckpointStorage();
  const a = new Writer(await StateBackend.open({ shards: 1, checkpoints: { storage, retain: 3 } }));
  try {
    await a.ingest(keys(0, 100));
    const r1 = await a.backend.checkpoint();
    const name = `manifests/${String(r1.id).padStart(12, '0')}.cmf`;
    const own = await storage.get(name);
    // A damaged copy (one bit) is for restore to deal with, not another writer.
    const bad = own.slice();
    bad[bad.length - 3]! ^= 0x10;
    await storage.put(name, bad);
    await a.ingest(keys(1, 100));
    const r2 = await a.backend.checkpoint();
    // Another backend's valid manifest of the same id, written over ours (both put it at once).
    const other = new MemoryCheckpointStorage();
    const o = await StateBackend.open({ shards: 1, checkpoints: { storage: other } });
    try {
      await o.aggregate('c', SPEC).ingest({ k: BigInt64Array.from([1n]) });
      for (let id = 1; id <= r2.id; id++) await o.checkpoint();
    } finally {
      await o.close();
    }
    const r2name = `manifests/${String(r2.id).padStart(12, '0')}.cmf`;
    await storage.put(r2name, await other.get(r2name));
    await refused(a.backend.checkpoint(), 'own last manifest replaced');
  } finally {
    await a.backend.close();
  }
  const storage2 = new MemoryCheckpointStorage();
  const c = await StateBackend.open({ shards: 1, checkpoints: { storage: storage2 } });
  try {
    await c.aggregate('c', SPEC).ingest({ k: BigInt64Array.from([1n]) });
    const r = await c.checkpoint();
    await storage2.delete(`manifests/${String(r.id).padStart(12, '0')}.cmf`);
    await refused(c.checkpoint(), 'own last manifest deleted');
  } finally {
    await c.close();
  }
});

test('one writer over tiered storage: manifests the durable tier lists again after an outage are still its own', async () => {
  // While the durable tier cannot be listed, retention deletes from the local tier alone; the
  // durable tier keeps those manifests and lists them again once it is back. They must not pass
  // for another writer's (a false alarm would stop every checkpoint for good).
  const durableInner = new MemoryCheckpointStorage();
  let down = false;
  const durable: CheckpointStorage = {
    put: (n, b) => durableInner.put(n, b),
    get: (n) => durableInner.get(n),
    delete: (n) => durableInner.delete(n),
    list: async (p) => {
      if (down) throw new Error('EIO: durable tier unreachable');
      return durableInner.list(p);
    },
  };
  const storage = new TieredCheckpointStorage({ local: new MemoryCheckpointStorage(), durable, retryDelayMs: 0 });
  const a = new Writer(await StateBackend.open({ shards: 2, checkpoints: { storage, retain: 1 } }));
  try {
    for (let i = 0; i < 3; i++) {
      await a.ingest(keys(i, 200));
      await a.backend.checkpoint();
    }
    await storage.flush();
    down = true;
    for (let i = 3; i < 7; i++) {
      await a.ingest(keys(i, 200));
      await a.backend.checkpoint();
    }
    await storage.flush();
    down = false;
    for (let i = 7; i < 10; i++) {
      await a.ingest(keys(i, 200));
      await a.backend.checkpoint(); // rejects on a false alarm
    }
    await storage.flush();
    const b = await StateBackend.restore({ storage, shards: 2 });
    try {
      const t = await b.aggregate('c', SPEC).toArrow();
      const got = new Map<bigint, number>();
      for (const row of t) got.set(row.k as bigint, Number(row.n));
      assert.equal(sorted(got), sorted(a.counts));
    } finally {
      await b.close();
    }
  } finally {
    await a.backend.close();
  }
});

test('data files of two writers never share a name: the refused writer\'s files land beside the other\'s', async () => {
  const storage = new MemoryCheckpointStorage();
  const a = new Writer(await StateBackend.open({ shards: 1, checkpoints: { storage } }));
  const b = new Writer(await StateBackend.open({ shards: 1, checkpoints: { storage } }));
  try {
    await a.ingest([1, 2]);
    await b.ingest([3]);
    await a.backend.checkpoint();
    const before = await storage.list('data/');
    // B took the same first id: it writes its data file, then finds A's manifest and stops.
    await refused(b.backend.checkpoint(), 'second fresh writer');
    const after = await storage.list('data/');
    assert.is(before.length, 1);
    assert.is(after.length, 2, 'both writers wrote a data file for checkpoint 1 of shard 0');
    for (const name of after) assert.match(name, /^data\/c\/000000000001-000-[0-9a-f]{8}\.cks$/);
    assert.equal(sorted(await stateOf(storage)), sorted(a.counts), 'A\'s checkpoint reads A\'s file');
  } finally {
    await a.backend.close();
    await b.backend.close();
  }
});

test('one writer whose checkpoint fails at capture while the one before still writes: checkpoints settle in order, no false alarm', async () => {
  const inner = new MemoryCheckpointStorage();
  const storage: CheckpointStorage = {
    put: async (n, bytes) => {
      if (/^data\/c\/000000000001-/.test(n)) await new Promise((r) => setTimeout(r, 200)); // checkpoint 1 writes slowly
      await inner.put(n, bytes);
    },
    get: (n) => inner.get(n),
    list: (p) => inner.list(p),
    delete: (n) => inner.delete(n),
  };
  const a = new Writer(await StateBackend.open({ shards: 1, checkpoints: { storage } }));
  try {
    await a.ingest(keys(0, 100));
    const manager = (a.backend as unknown as { manager: { call: (s: number, m: { op: string }) => Promise<unknown> } }).manager;
    const call = manager.call.bind(manager);
    let captures = 0;
    manager.call = (s, m) => (m.op === 'capture' && ++captures === 2 ? Promise.reject(new Error('injected capture failure')) : call(s, m));
    const settled: number[] = [];
    const runs = [1, 2, 3].map((n) => a.backend.checkpoint().then(() => 'ok', (e: unknown) => (e as Error).message).finally(() => settled.push(n)));
    const outcomes = await Promise.all(runs);
    assert.is(outcomes[0], 'ok');
    assert.match(outcomes[1]!, /injected capture failure/);
    assert.is(outcomes[2], 'ok');
    assert.equal(settled, [1, 2, 3], 'checkpoints settle in id order');
    for (let i = 0; i < 3; i++) {
      await a.ingest(keys(i, 10));
      await a.backend.checkpoint(); // rejected ('another writer') before the fix
    }
    assert.equal(sorted(await stateOf(inner)), sorted(a.counts));
  } finally {
    await a.backend.close();
  }
});

test.run();
