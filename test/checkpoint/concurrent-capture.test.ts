/**
 * End to end, through StateBackend: a full checkpoint of a store large enough that its capture is
 * copied in many steps after the cut, with ingest calls issued right after checkpoint() and running
 * while the capture copies. Restoring that checkpoint must give exactly the state of the operations
 * called before it (a Map of the same events is the oracle), and the next checkpoint everything.
 * In-process shards and worker shards, windowed and not.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, type AggregateSpec } from '../../src/index.js';
import { mulberry32 } from '../../src/testing/faulty-storage.js';

const KEYS = 120_000; // 15,000 capture pages: several 4096-page steps
const BATCH = 20_000;

interface Row { n: number; s: number }

function model(batches: { k: BigInt64Array; v: Float64Array }[]): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const b of batches) {
    for (let i = 0; i < b.k.length; i++) {
      const key = String(b.k[i]);
      const r = m.get(key) ?? { n: 0, s: 0 };
      r.n++;
      r.s += b.v[i]!;
      m.set(key, r);
    }
  }
  return m;
}

async function stateOf(b: StateBackend, spec: AggregateSpec): Promise<Map<string, Row>> {
  const t = await b.aggregate('op', spec).toArrow();
  const out = new Map<string, Row>();
  const k = t.getChild('k')!;
  const n = t.getChild('n')!;
  const s = t.getChild('s')!;
  for (let i = 0; i < t.numRows; i++) out.set(String(k.get(i)), { n: Number(n.get(i)), s: Number(s.get(i)) });
  return out;
}

function same(got: Map<string, Row>, want: Map<string, Row>, what: string): void {
  assert.is(got.size, want.size, `${what}: key count`);
  for (const [k, r] of want) {
    const g = got.get(k);
    assert.ok(g !== undefined && g.n === r.n && g.s === r.s, `${what}: key ${k}: expected ${JSON.stringify(r)}, found ${JSON.stringify(g)}`);
  }
}

for (const workers of [false, true]) {
  test(`a full checkpoint holds exactly the operations before it while ingest continues during its capture (${workers ? 'workers' : 'in-process'})`, async () => {
    const rnd = mulberry32(workers ? 11 : 7);
    const spec: AggregateSpec = { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } };
    const batch = (every: boolean) => {
      const k = new BigInt64Array(BATCH);
      const v = new Float64Array(BATCH);
      for (let i = 0; i < BATCH; i++) {
        k[i] = BigInt(every ? Math.floor(rnd() * KEYS) : Math.floor(rnd() * KEYS * 1.2)) * 7n;
        v[i] = Math.floor(rnd() * 100);
      }
      return { k, v };
    };
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ shards: 2, workers, checkpoints: { storage } });
    const op = b.aggregate('op', spec);
    const before: { k: BigInt64Array; v: Float64Array }[] = [];
    // Every key present (so the capture is large), then the cut.
    const all = new BigInt64Array(KEYS).map((_, i) => BigInt(i) * 7n);
    before.push({ k: all, v: new Float64Array(KEYS).fill(1) });
    for (let i = 0; i < 3; i++) before.push(batch(true));
    for (const x of before) await op.ingest(x);
    const cp = b.checkpoint({ at: 'cut' });
    // Issued after the cut, not awaited one by one: they run while the capture copies pages
    // (copy-on-write for every page they touch first), and some create new keys.
    const after = Array.from({ length: 6 }, () => batch(false));
    const pending = after.map((x) => op.ingest(x));
    const first = await cp;
    await Promise.all(pending);
    assert.is(first.incremental, false);
    const second = await b.checkpoint({ at: 'end' });
    await b.close();

    const atCut = await StateBackend.restore({ storage, checkpointId: first.id, shards: 3 });
    assert.equal(atCut.restoredMeta, { at: 'cut' });
    same(await stateOf(atCut, spec), model(before), 'checkpoint at the cut');
    await atCut.close();
    const atEnd = await StateBackend.restore({ storage, checkpointId: second.id, workers });
    same(await stateOf(atEnd, spec), model([...before, ...after]), 'checkpoint after everything');
    await atEnd.close();
  });
}

test('two checkpoints issued back to back, the second while the first still copies, each restore to their own cut', async () => {
  for (const workers of [false, true]) {
    const rnd = mulberry32(workers ? 5 : 3);
    const spec: AggregateSpec = { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } };
    const batch = () => {
      const k = new BigInt64Array(BATCH).map(() => BigInt(Math.floor(rnd() * KEYS * 1.1)) * 7n);
      const v = new Float64Array(BATCH).map(() => Math.floor(rnd() * 100));
      return { k, v };
    };
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ shards: 2, workers, checkpoints: { storage } });
    const op = b.aggregate('op', spec);
    const first = [{ k: new BigInt64Array(KEYS).map((_, i) => BigInt(i) * 7n), v: new Float64Array(KEYS).fill(1) }, batch()];
    for (const x of first) await op.ingest(x);
    const c1 = b.checkpoint({ at: 1 });
    const mid = [batch(), batch()];
    const p1 = mid.map((x) => op.ingest(x));
    // Captured while the first capture is still being copied out: the shard copies the first out
    // whole before it captures again (the second is a delta on top of the first).
    const c2 = b.checkpoint({ at: 2 });
    const last = [batch()];
    const p2 = last.map((x) => op.ingest(x));
    const [r1, r2] = await Promise.all([c1, c2]);
    await Promise.all([...p1, ...p2]);
    const r3 = await b.checkpoint({ at: 3 });
    await b.close();
    const cuts: [number, { k: BigInt64Array; v: Float64Array }[]][] = [[r1.id, first], [r2.id, [...first, ...mid]], [r3.id, [...first, ...mid, ...last]]];
    for (const [id, events] of cuts) {
      const r = await StateBackend.restore({ storage, checkpointId: id, shards: 1 });
      same(await stateOf(r, spec), model(events), `${workers ? 'workers' : 'in-process'}: checkpoint ${id}`);
      await r.close();
    }
  }
});

test.run();
