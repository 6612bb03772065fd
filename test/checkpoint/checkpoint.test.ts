// Proves checkpoints are consistent, incremental and exact: random workloads (ingest, watermarks
// that expire windows, deletes, rescales) take checkpoints; every retained checkpoint is restored
// onto 1, 4 and 2 shards and the remaining operations are replayed against the reference models.
// Also: retention deletes exactly the unreferenced files, deltas are small, damaged files are
// detected (skip to an older checkpoint, or a corruption error naming the file), a restored full
// checkpoint re-checkpoints to byte-identical data files, and a spec mismatch is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, TieredCheckpointStorage, CairnError, type CheckpointResult, type CheckpointStorage } from '../../src/index.js';
import { FaultyStorage, mulberry32 } from '../../src/testing/faulty-storage.js';
import { decodeManifest, referencedFiles, manifestName } from '../../src/checkpoint/manifest.js';
import { crc32c } from '../../src/codec/crc32c.js';
import { completeCaptures } from '../../src/checkpoint/coordinator.js';
import { genScenario, applyToBackend, declare, checkReplay, twoCheckpoints, type Op } from './scenario.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { Rng } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';

async function runScenario(seed: number, keyType: 'int64' | 'utf8', storage = new MemoryCheckpointStorage()) {
  const ops = genScenario(seed, { steps: 60, keyType, rescale: true });
  const b = await StateBackend.open({ shards: 2, keyGroups: 32, checkpoints: { storage, retain: 3, maxDeltaRatio: 0.5 } });
  const o = declare(b, keyType);
  const taken: { id: number; at: number; result: CheckpointResult }[] = [];
  for (let i = 0; i < ops.length; i++) {
    const r = await applyToBackend(b, o, ops[i]!, keyType);
    if (ops[i]!.kind === 'checkpoint') taken.push({ id: (r as CheckpointResult).id, at: i + 1, result: r as CheckpointResult });
  }
  await b.close();
  return { ops, taken, storage };
}

test('every retained checkpoint restores exactly, onto 1, 4 and 2 shards', async () => {
  for (const [seed, keyType] of [[11, 'int64'], [12, 'utf8'], [13, 'int64']] as const) {
    const { ops, taken, storage } = await runScenario(seed, keyType);
    assert.ok(taken.some((t) => t.result.incremental), 'no incremental checkpoint was taken');
    const retained = taken.slice(-3);
    for (const t of retained) {
      for (const shards of [1, 4, 2]) {
        const b = await StateBackend.restore({ storage, shards, checkpointId: t.id });
        assert.equal(b.restoredMeta, { step: 'x' });
        await checkReplay(b, ops, t.at, keyType, `seed ${seed} checkpoint ${t.id} on ${shards} shards`);
        await b.close();
      }
    }
  }
});

test('the single-pass plan (count, sum, min, max) marks every row it changes for the next delta', async () => {
  // Small stores of this plan take loops of their own, one for stores that track changes (after
  // their first checkpoint); every checkpoint here but the first is a delta, restored and compared
  // with the model. Most events update keys that exist (the changes only that loop marks), some
  // add keys, some keys are deleted.
  const USUAL = { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' }, lo: { fn: 'min', field: 'v' }, hi: { fn: 'max', field: 'v' } } as const;
  for (const keyType of ['int64', 'utf8'] as const) {
    const rng = new Rng(21);
    const keyOf = (i: number) => (keyType === 'int64' ? BigInt(i) * 7919n - 300n : `k-${i}-é`);
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ checkpoints: { storage, retain: 2, maxDeltaRatio: 10 } });
    const op = b.aggregate('u', { key: { field: 'k', type: keyType }, aggregates: USUAL });
    const model = new AggregateModel({ keyType, aggregates: USUAL as never });
    let keys = 200;
    for (let round = 0; round < 6; round++) {
      const rows = Array.from({ length: 500 }, () => ({ key: keyOf(rng.int(0, keys - 1)), values: { v: rng.int(0, 999) } }));
      await op.ingest({ k: rows.map((r) => r.key) as never, v: rows.map((r) => r.values.v) });
      model.ingest(rows as never);
      if (round > 0) for (let d = 0; d < 5; d++) { const k = keyOf(rng.int(0, keys - 1)); assert.is(await op.delete(k), model.delete(k)); }
      keys += 20;
      const c = await b.checkpoint();
      assert.is(c.incremental, round > 0, `round ${round}: incremental`);
      const r = await StateBackend.restore({ storage });
      const back = r.aggregate('u', { key: { field: 'k', type: keyType }, aggregates: USUAL });
      assert.equal(rowsOf(await back.toArrow(), 'k'), model.rows(), `${keyType} round ${round}: restored state`);
      await r.close();
    }
    await b.close();
  }
});

test('a capture step that leaves as many pages as before fails the checkpoint as internal, instead of spinning', async () => {
  // Stub shards answer 'captureStep' with the pages left. A broken invariant (a step that copies
  // nothing) must end the loop; the stub gives up after 1,000 calls so that a loop without the
  // check fails here instead of hanging.
  const stub = (answers: number[]) => {
    let calls = 0;
    return { call: async <T>(): Promise<T> => {
      if (++calls > 1000) throw new Error('completeCaptures kept calling captureStep');
      return (answers[Math.min(calls - 1, answers.length - 1)]!) as T;
    }, calls: () => calls };
  };
  const plan = [{ op: { id: 1, name: 'w' } }];
  const held = (pending: number) => [[{ token: 1, length: 0, pending, ms: 0 }]];
  const stuck = stub([5]);
  const err = await completeCaptures(stuck, plan, held(5)).then(() => null, (e: unknown) => e);
  assert.instance(err, CairnError);
  assert.is((err as CairnError).kind, 'internal');
  assert.match((err as CairnError).message, /operator 'w' on shard 0 made no progress: expected fewer than 5 pages left after a step, found 5/);
  assert.is(stuck.calls(), 1);
  const going = stub([3, 1, 0]);
  await completeCaptures(going, plan, held(5));
  assert.is(going.calls(), 3);
});

test('retention keeps N checkpoints and deletes exactly the files no kept manifest references', async () => {
  const { storage, taken } = await runScenario(21, 'int64');
  const manifests = await storage.list('manifests/');
  assert.is(manifests.length, 3);
  const referenced = new Set<string>();
  for (const name of manifests) for (const f of referencedFiles(decodeManifest(await storage.get(name), name))) referenced.add(f.name);
  const data = await storage.list('data/');
  assert.equal(data.sort(), [...referenced].sort());
  assert.ok(taken.length > 3);
});

test('a checkpoint that fails half-way leaves nothing behind once the next one succeeds', async () => {
  const inner = new MemoryCheckpointStorage();
  const faulty = new FaultyStorage(inner, { seed: 5 });
  const b = await StateBackend.open({ shards: 3, checkpoints: { storage: faulty, retain: 2 } });
  const o = declare(b, 'utf8');
  const ops = genScenario(3, { steps: 30, keyType: 'utf8' });
  for (const op of ops) if (op.kind === 'ingest') await applyToBackend(b, o, op, 'utf8');
  await b.checkpoint();
  // New changes, so the next checkpoint writes data files; its first storage operation fails.
  for (const op of genScenario(4, { steps: 30, keyType: 'utf8' })) if (op.kind === 'ingest') await applyToBackend(b, o, op, 'utf8');
  faulty.failAt(faulty.opCount, { kind: 'persistent', code: 'ENOSPC' });
  let err: unknown;
  try {
    await b.checkpoint();
  } catch (e) {
    err = e;
  }
  assert.instance(err, CairnError);
  assert.is((err as CairnError).kind, 'unavailable');
  assert.match((err as Error).message, /ENOSPC/);
  faulty.heal();
  const ok = await b.checkpoint();
  assert.is(ok.incremental, false, 'after a failure the next checkpoint is a full base');
  const m = decodeManifest(await inner.get((await inner.list('manifests/')).at(-1)!), 'latest');
  const referenced = new Set<string>();
  for (const name of await inner.list('manifests/')) for (const f of referencedFiles(decodeManifest(await inner.get(name), name))) referenced.add(f.name);
  assert.equal((await inner.list('data/')).sort(), [...referenced].sort());
  assert.is(m.id, ok.id);
  await b.close();
});

test('an incremental checkpoint with few changes writes a small fraction of a full one', async () => {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ checkpoints: { storage } });
  const r = b.aggregate('r', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } });
  const N = 50_000;
  // Irregular keys and values: an arithmetic sequence compresses to almost nothing, and then the
  // manifest and file headers, not the rows, would decide the ratio.
  const random = mulberry32(17);
  const k = new BigInt64Array(N).map(() => BigInt(Math.floor(random() * 2 ** 40)));
  const v = new Float64Array(N).map(() => Math.floor(random() * 1000));
  await r.ingest({ k, v });
  const full = await b.checkpoint();
  await r.ingest({ k: k.slice(0, N / 100), v: v.slice(0, N / 100) });
  const delta = await b.checkpoint();
  assert.is(full.incremental, false);
  assert.is(delta.incremental, true);
  assert.ok(delta.bytes < full.bytes * 0.05, `delta ${delta.bytes} bytes vs full ${full.bytes}`);
  await b.close();
});

async function damagedScenario() {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ shards: 2, checkpoints: { storage, retain: 5 } });
  const o = declare(b, 'int64');
  const ops: Op[] = genScenario(8, { steps: 40, keyType: 'int64' }).filter((x) => x.kind !== 'checkpoint');
  const half = Math.floor(ops.length / 2);
  for (let i = 0; i < half; i++) await applyToBackend(b, o, ops[i]!, 'int64');
  const c1 = await b.checkpoint();
  for (let i = half; i < ops.length; i++) await applyToBackend(b, o, ops[i]!, 'int64');
  const c2 = await b.checkpoint();
  await b.close();
  return { storage, ops, half, c1, c2 };
}

test('a damaged newest checkpoint is skipped (and reported); asking for it names the file', async () => {
  const { storage, ops, half, c1, c2 } = await damagedScenario();
  const m2 = decodeManifest(await storage.get(`manifests/${String(c2.id).padStart(12, '0')}.cmf`), 'm2');
  const victim = m2.operators[0]!.chain.at(-1)!.files[0]!.name;
  const bytes = await storage.get(victim);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
  await storage.put(victim, bytes);
  const b = await StateBackend.restore({ storage });
  assert.is(b.restoreReport!.checkpointId, c1.id);
  assert.is(b.restoreReport!.skipped[0]!.id, c2.id);
  assert.match(b.restoreReport!.skipped[0]!.reason, new RegExp(victim.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  await checkReplay(b, ops, half, 'int64', 'after skipping a damaged checkpoint');
  await b.close();
  try {
    await StateBackend.restore({ storage, checkpointId: c2.id });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, CairnError);
    assert.is((e as CairnError).kind, 'corruption');
    assert.match((e as Error).message, /file=data\//);
    assert.match((e as Error).message, /offset=\d+/);
  }
});

test('every truncation and sampled bit flips of a data file and the manifest are detected', async () => {
  const { storage, c2 } = await damagedScenario();
  const mname = `manifests/${String(c2.id).padStart(12, '0')}.cmf`;
  const m2 = decodeManifest(await storage.get(mname), 'm2');
  const victim = m2.operators[1]!.chain.at(-1)!.files[0]!.name;
  for (const name of [victim, mname]) {
    const good = await storage.get(name);
    const cuts = Array.from({ length: good.length }, (_, i) => i);
    const flips = Array.from({ length: Math.min(good.length * 8, 400) }, (_, i) => Math.floor((i * good.length * 8) / Math.min(good.length * 8, 400)));
    for (const [what, mutate] of [
      ...cuts.map((c) => [`truncate at ${c}`, (x: Uint8Array) => x.slice(0, c)] as const),
      ...flips.map((bit) => [`flip bit ${bit}`, (x: Uint8Array) => { const y = x.slice(); y[bit >> 3]! ^= 1 << (bit & 7); return y; }] as const),
    ]) {
      await storage.put(name, mutate(good));
      try {
        const b = await StateBackend.restore({ storage, checkpointId: c2.id });
        await b.close();
        assert.unreachable(`${name}: ${what} went undetected`);
      } catch (e) {
        if (!(e instanceof CairnError)) throw new Error(`${name}: ${what}: not a CairnError: ${String(e)}`);
        assert.is(e.kind, 'corruption', `${name}: ${what}: ${e.message}`);
      }
    }
    await storage.put(name, good);
  }
});

test('restore, then checkpoint with no new input: byte-identical data files', async () => {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ shards: 3, checkpoints: { storage } });
  const o = declare(b, 'utf8');
  for (const op of genScenario(31, { steps: 40, keyType: 'utf8' })) if (op.kind === 'ingest' || op.kind === 'advance' || op.kind === 'delete') await applyToBackend(b, o, op, 'utf8');
  const c1 = await b.checkpoint();
  await b.close();
  const r = await StateBackend.restore({ storage, shards: 3 });
  declare(r, 'utf8');
  const c2 = await r.checkpoint();
  await r.close();
  const files = (id: number) => storage.list('data/').then((all) => all.filter((n) => n.includes(`/${String(id).padStart(12, '0')}-`)).sort());
  const a = await files(c1.id);
  const bnames = await files(c2.id);
  assert.is(a.length, bnames.length);
  assert.ok(a.length > 0);
  for (let i = 0; i < a.length; i++) {
    assert.equal(await storage.get(bnames[i]!), await storage.get(a[i]!), `${a[i]} vs ${bnames[i]}`);
  }
});

test('a batch refused for the memory cap: the same state bytes with worker and in-process shards', async () => {
  // first/last without a time field store arrival sequence numbers: a refused batch must move the
  // sequence alike wherever the shards run (a worker's refusal comes back after later calls were
  // numbered), and a batch with bad event times, refused on the caller's thread, not at all.
  const spec = { key: { field: 'k', type: 'int64' }, aggregates: { f: { fn: 'first', field: 'v' }, l: { fn: 'last', field: 'v' } } } as const;
  const run = async (shards: number, workers: boolean) => {
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ shards, workers, keyGroups: 128, memoryCapBytes: 4 << 20, checkpoints: { storage } });
    try {
      const op = b.aggregate('a', spec);
      await op.ingest({ k: [1, 2, 3, 4], v: [1, 2, 3, 4] });
      const big = 300_000;
      const refused = await op.ingest({ k: Float64Array.from({ length: big }, (_, i) => i + 100), v: new Float64Array(big) }).then(() => null, (e: unknown) => e);
      assert.instance(refused, CairnError, `the big batch passes the cap (shards ${shards}, workers ${workers})`);
      assert.is((refused as CairnError).kind, 'unavailable');
      const t = await op.ingest({ k: [1, 2, 3, 4], v: [5, 6, 7, 8] });
      assert.is(t.accepted, 4);
      const c = await b.checkpoint();
      const m = JSON.parse(new TextDecoder().decode((await storage.get(manifestName(c.id))).subarray(12))) as { operators: { seq: string }[] };
      const names = (await storage.list('data/')).sort();
      const files = await Promise.all(names.map((n) => storage.get(n)));
      return { seq: m.operators[0]!.seq, files, rows: rowsOf(await op.toArrow(), 'k') };
    } finally {
      await b.close();
    }
  };
  const local = await run(2, false);
  const one = await run(1, false);
  const workers = await run(2, true);
  assert.is(local.seq, String(4 + 300_000 + 4), 'the refused batch keeps its sequence numbers');
  assert.is(workers.seq, local.seq);
  assert.is(one.seq, local.seq);
  assert.equal(workers.rows, local.rows);
  assert.equal(workers.files, local.files, 'worker and in-process shards write the same data files');
});

test('stallMs is the time shards spent capturing, not the time the caller took to come back for the answer', async () => {
  for (const [shards, workers] of [[1, false], [2, true]] as const) {
    const b = await StateBackend.open({ shards, workers, checkpoints: { storage: new MemoryCheckpointStorage() } });
    try {
      const op = b.aggregate('a', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
      await op.ingest({ k: Float64Array.from({ length: 200_000 }, (_, i) => i) });
      const p = b.checkpoint();
      // The caller's thread is busy for 300 ms before it looks at the answers.
      const until = performance.now() + 300;
      while (performance.now() < until);
      const c = await p;
      // A capture of 200K rows takes some time (its cut: tens of microseconds at least), not none.
      assert.ok(c.stallMs > 0 && c.stallMs < 100, `stallMs ${c.stallMs} (shards ${shards}, workers ${workers})`);
      assert.ok(c.durationMs >= 300, `durationMs ${c.durationMs} still counts from the call`);
    } finally {
      await b.close();
    }
  }
});

test('a failed checkpoint settles only after every put it started: no late write lands on a later checkpoint of the same id', async () => {
  // Shard 0's data file fails at once, shard 1's is slow: the checkpoint must not fail (nor close()
  // return) while that put still runs, or a backend restored meanwhile takes the same id, and the
  // late put overwrites its acknowledged data file.
  const inner = new MemoryCheckpointStorage();
  let inFlight = 0;
  let failing = false;
  const storage: CheckpointStorage = {
    put: async (name, bytes) => {
      if (failing && name.startsWith('data/') && /-000-[0-9a-f]{8}\.cks$/.test(name)) throw new Error('EIO: shard 0 file');
      inFlight++;
      try {
        if (failing && name.startsWith('data/')) await new Promise((r) => setTimeout(r, 300));
        await inner.put(name, bytes);
      } finally {
        inFlight--;
      }
    },
    get: (name) => inner.get(name),
    list: (prefix) => inner.list(prefix),
    delete: (name) => inner.delete(name),
  };
  const a = await StateBackend.open({ shards: 2, checkpoints: { storage } });
  const op = a.aggregate('a', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  await op.ingest({ k: Array.from({ length: 64 }, (_, i) => i) });
  const good = await a.checkpoint();
  await op.ingest({ k: [1, 2, 3] });
  failing = true;
  const err = await a.checkpoint().then(() => null, (e: unknown) => e);
  assert.instance(err, CairnError);
  assert.is((err as CairnError).kind, 'unavailable');
  assert.is(inFlight, 0, 'a put of the failed checkpoint was still running when it failed');
  await a.close();
  assert.is(inFlight, 0);
  failing = false;
  // A backend restored now takes an id past every file of the failed one, and keeps its checkpoint.
  const b = await StateBackend.restore({ storage });
  assert.is(b.restoreReport!.checkpointId, good.id);
  b.aggregate('a', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  const next = await b.checkpoint();
  assert.ok(next.id > good.id + 1, `id ${next.id} reuses the failed checkpoint's`);
  await b.close();
  const c = await StateBackend.restore({ storage });
  assert.is(c.restoreReport!.checkpointId, next.id);
  assert.equal(c.restoreReport!.skipped, []);
  await c.close();
});

test('retention keeps a manifest that read bad once (a flipped bit on the way), as it keeps one it cannot read', async () => {
  const inner = new MemoryCheckpointStorage();
  let flipOnce: string | null = null;
  const storage: CheckpointStorage = {
    put: (name, bytes) => inner.put(name, bytes),
    get: async (name) => {
      const bytes = await inner.get(name);
      if (name !== flipOnce) return bytes;
      flipOnce = null;
      const bad = bytes.slice();
      bad[bad.length >> 1]! ^= 0x10;
      return bad;
    },
    list: (prefix) => inner.list(prefix),
    delete: (name) => inner.delete(name),
  };
  const spec = { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } } as const;
  const a = await StateBackend.open({ checkpoints: { storage, retain: 3 } });
  const op = a.aggregate('a', spec);
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) {
    await op.ingest({ k: [i] });
    ids.push((await a.checkpoint()).id);
  }
  await a.close();
  // A restored backend has not read its ancestors' manifests: its first retention reads them.
  const b = await StateBackend.restore({ storage, retain: 3 });
  b.aggregate('a', spec);
  flipOnce = manifestName(ids[1]!);
  const next = await b.checkpoint();
  assert.is(flipOnce, null, 'the flipped read happened');
  await b.close();
  const kept = (await inner.list('manifests/')).sort();
  assert.equal(kept, [ids[1]!, ids[2]!, next.id].map((id) => manifestName(id)).sort());
  const r = await StateBackend.restore({ storage, checkpointId: ids[1]! });
  assert.is(r.restoreReport!.checkpointId, ids[1]!);
  await r.close();
});

test('declaring an operator with a spec that differs from the checkpoint is refused, naming the difference', async () => {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ checkpoints: { storage } });
  declare(b, 'int64');
  await b.checkpoint();
  await b.close();
  const r = await StateBackend.restore({ storage });
  try {
    r.aggregate('w', { key: { field: 'user', type: 'int64' }, time: 'ts', window: { kind: 'tumbling', size: 300 }, aggregates: { n: { fn: 'count' } } });
    assert.unreachable();
  } catch (e) {
    assert.is((e as CairnError).kind, 'invalid');
    assert.match((e as Error).message, /window: checkpoint has/);
  }
  await r.close();
});

test('tiered storage: acknowledged on the local tier, copied to durable, restored from durable when local is damaged', async () => {
  const local = new MemoryCheckpointStorage();
  const durable = new MemoryCheckpointStorage();
  const tiered = new TieredCheckpointStorage({ local, durable });
  const b = await StateBackend.open({ checkpoints: { storage: tiered } });
  const o = declare(b, 'int64');
  const ops = genScenario(41, { steps: 30, keyType: 'int64' }).filter((x) => x.kind !== 'checkpoint');
  for (const op of ops) await applyToBackend(b, o, op, 'int64');
  const c = await b.checkpoint();
  await tiered.flush();
  const mname = `manifests/${String(c.id).padStart(12, '0')}.cmf`;
  assert.ok(tiered.isDurable(mname));
  for (const name of await local.list('data/')) {
    const x = await local.get(name);
    x[x.length - 20]! ^= 0xff;
    await local.put(name, x);
  }
  await b.close();
  const r = await StateBackend.restore({ storage: tiered });
  assert.is(r.restoreReport!.checkpointId, c.id);
  await checkReplay(r, ops, ops.length, 'int64', 'restored from the durable tier');
  await r.close();
});

test('tiered storage: retention keeps the newest checkpoint the durable tier holds whole while newer copies fail', async () => {
  const inner = new MemoryCheckpointStorage();
  let down = false;
  // A durable tier that refuses puts while down (a quota, an outage) but still deletes.
  const durable = {
    put: (n: string, x: Uint8Array) => (down ? Promise.reject(new CairnError('unavailable', 'durable tier down')) : inner.put(n, x)),
    get: (n: string) => inner.get(n),
    list: (p: string) => inner.list(p),
    delete: (n: string) => inner.delete(n),
  };
  const local = new MemoryCheckpointStorage();
  const tiered = () => new TieredCheckpointStorage({ local, durable, copyAttempts: 1 });
  const restoredKeys = async (storage: MemoryCheckpointStorage) => {
    const r = await StateBackend.restore({ storage });
    const op = r.aggregate('a', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    const keys = rowsOf(await op.toArrow(), 'k').map((x) => x['key']);
    const id = r.restoreReport!.checkpointId;
    await r.close();
    return { id, keys };
  };
  let storage = tiered();
  let b = await StateBackend.open({ checkpoints: { storage, retain: 1 } });
  let op = b.aggregate('a', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  await op.ingest({ k: [1n] });
  const c1 = await b.checkpoint();
  await storage.flush();
  down = true;
  for (const k of [2n, 3n]) {
    await op.ingest({ k: [k] });
    await b.checkpoint();
    await storage.flush().then(() => assert.unreachable('copies to a tier that is down succeeded'), () => undefined);
    // The durable tier alone still restores checkpoint 1.
    assert.equal(await restoredKeys(inner), { id: c1.id, keys: [1n] }, `after checkpointing key ${k}`);
  }
  // A new instance (a restarted process) knows checkpoint 1 is durable from the tier's listing.
  await b.close();
  storage = tiered();
  b = await StateBackend.restore({ storage, retain: 1 });
  op = b.aggregate('a', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  await op.ingest({ k: [4n] });
  await b.checkpoint();
  await storage.flush().then(() => assert.unreachable(), () => undefined);
  assert.equal(await restoredKeys(inner), { id: c1.id, keys: [1n] }, 'after a restart');
  // Once the tier is back, the chain whose base never reached it is not extended: a new full base
  // is written and copied, becomes the durable checkpoint, and checkpoint 1 goes.
  down = false;
  await op.ingest({ k: [5n] });
  let last = 0;
  for (let i = 0; i < 3; i++) {
    last = (await b.checkpoint()).id;
    await storage.flush();
  }
  const after = await restoredKeys(inner);
  assert.is(after.id, last, 'the durable tier restores the newest checkpoint');
  assert.equal(after.keys, [1n, 2n, 3n, 4n, 5n]);
  assert.not.ok((await inner.list('manifests/')).includes(manifestName(c1.id)), 'checkpoint 1 was kept after a newer one was durable');
  assert.ok((await local.list('manifests/')).length <= 2, 'local holds at most retain + 1 checkpoints');
  await b.close();
});

test('tiered storage, durable tier wholly down (list too): local stays bounded, durable keeps its checkpoint, then catches up', async () => {
  const inner = new MemoryCheckpointStorage();
  let down = false;
  const refuse = () => Promise.reject(new CairnError('unavailable', 'durable tier down'));
  const durable = {
    put: (n: string, x: Uint8Array) => (down ? refuse() : inner.put(n, x)),
    get: (n: string) => (down ? refuse() : inner.get(n)),
    list: (p: string) => (down ? refuse() : inner.list(p)),
    delete: (n: string) => (down || noDeletes ? refuse() : inner.delete(n)),
  } as CheckpointStorage;
  let noDeletes = false;
  const local = new MemoryCheckpointStorage();
  const storage = new TieredCheckpointStorage({ local, durable, copyAttempts: 1 });
  const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const } } };
  const b = await StateBackend.open({ checkpoints: { storage, retain: 2 } });
  const op = b.aggregate('a', spec);
  const restoredKeys = async (from: CheckpointStorage) => {
    const r = await StateBackend.restore({ storage: from });
    const keys = rowsOf(await r.aggregate('a', spec).toArrow(), 'k').map((x) => x['key']);
    const id = r.restoreReport!.checkpointId;
    await r.close();
    return { id, keys };
  };
  await op.ingest({ k: [0n] });
  const before = await b.checkpoint();
  await storage.flush();
  down = true;
  const keys = [0n];
  for (let k = 1n; k <= 8n; k++) {
    await op.ingest({ k: [k] });
    keys.push(k);
    await b.checkpoint();
    await storage.flush().catch(() => undefined);
    const held = await local.list('manifests/');
    assert.ok(held.length <= 3, `local holds ${held.length} checkpoints after ${k} during the outage (retain 2, plus the durable one)`);
    assert.ok(held.includes(manifestName(before.id)), 'the checkpoint the durable tier holds was dropped locally');
  }
  down = false;
  assert.equal(await restoredKeys(inner), { id: before.id, keys: [0n] }, 'the durable tier lost its checkpoint during the outage');
  // Back up: the chains whose files never reached it are not extended; the next checkpoint is a
  // full base, and once copied the durable tier restores everything.
  const after = await b.checkpoint();
  assert.is(after.incremental, false, 'the first checkpoint after the outage extended a chain the durable tier lacks');
  await storage.flush();
  await b.checkpoint();
  await storage.flush();
  const back = await restoredKeys(inner);
  assert.equal(back.keys, keys);
  assert.ok((await inner.list('manifests/')).length <= 3, 'the durable tier kept the outage-era checkpoints');
  // A durable tier that refuses deletes does not hold up local retention either.
  noDeletes = true;
  for (let k = 9n; k <= 12n; k++) {
    await op.ingest({ k: [k] });
    await b.checkpoint();
    await storage.flush();
    const manifests = await local.list('manifests/');
    assert.ok(manifests.length <= 3, `local grew while durable deletes failed (after ${k})`);
    const referenced = new Set<string>();
    for (const name of manifests) for (const f of referencedFiles(decodeManifest(await local.get(name), name))) referenced.add(f.name);
    assert.equal((await local.list('data/')).filter((n) => !referenced.has(n)), [], `unreferenced local files while durable deletes failed (after ${k})`);
  }
  await b.close();
});

/** A storage as a user writes it from the SPI: a Map, its own 'unavailable' for a missing name. */
function mapStorage(): CheckpointStorage & { files: Map<string, Uint8Array>; failList: unknown; failGet: unknown } {
  const files = new Map<string, Uint8Array>();
  const st = {
    files,
    failList: null as unknown,
    failGet: null as unknown,
    async put(name: string, bytes: Uint8Array) { files.set(name, bytes.slice()); },
    async get(name: string) {
      if (st.failGet) throw st.failGet;
      const b = files.get(name);
      if (!b) throw new CairnError('unavailable', `no object ${name}`);
      return b.slice();
    },
    async list(prefix: string) {
      if (st.failList) throw st.failList;
      return [...files.keys()].filter((n) => n.startsWith(prefix)).sort();
    },
    async delete(name: string) { files.delete(name); },
  };
  return st;
}

test('a storage written from the SPI: its missing file skips to an older checkpoint; its plain errors come as CairnErrors', async () => {
  const storage = mapStorage();
  const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const } } };
  const b = await StateBackend.open({ checkpoints: { storage, retain: 5, maxDeltaRatio: 100 } });
  const op = b.aggregate('a', spec);
  const ids: number[] = [];
  for (const k of [1n, 2n, 3n]) {
    await op.ingest({ k: [k] });
    ids.push((await b.checkpoint()).id);
  }
  await b.close();
  // The newest checkpoint's own delta goes missing: restore falls back to the one before.
  const name = manifestName(ids[2]!);
  const own = referencedFiles(decodeManifest(storage.files.get(name)!, name)).filter((f) => f.name.includes(String(ids[2]).padStart(12, '0')));
  assert.ok(own.length > 0, 'the newest checkpoint wrote no file of its own');
  for (const f of own) storage.files.delete(f.name);
  const r = await StateBackend.restore({ storage });
  assert.is(r.restoreReport!.checkpointId, ids[1]);
  assert.is(r.restoreReport!.skipped.length, 1);
  assert.match(r.restoreReport!.skipped[0]!.reason, /missing a file/);
  assert.equal(rowsOf(await r.aggregate('a', spec).toArrow(), 'k').map((x) => x['key']), [1n, 2n]);
  await r.close();
  // A get that fails for a file that is listed is storage trouble, not a missing file: no fallback.
  storage.failGet = new CairnError('unavailable', 'disk busy');
  const busy = await StateBackend.restore({ storage }).then(() => null, (e: unknown) => e);
  assert.instance(busy, CairnError);
  assert.is((busy as CairnError).kind, 'unavailable');
  assert.match((busy as Error).message, /disk busy/);
  // Plain errors from a custom storage come out as 'unavailable' CairnErrors naming the call.
  for (const [what, set] of [['list', () => (storage.failList = new Error('socket hang up'))], ['get', () => (storage.failGet = new TypeError('socket hang up'))]] as const) {
    storage.failList = null;
    storage.failGet = null;
    set();
    for (const call of [() => StateBackend.restore({ storage }), () => StateBackend.resume({ checkpoints: { storage } })]) {
      const e = await call().then(() => null, (x: unknown) => x);
      assert.instance(e, CairnError, `${what}: ${String(e)}`);
      assert.is((e as CairnError).kind, 'unavailable');
      assert.match((e as Error).message, new RegExp(`storage ${what} .*failed: socket hang up`));
    }
  }
});

test('resume: opens when storage holds no checkpoint, restores when it does, and never starts over on an error', async () => {
  const storage = mapStorage();
  const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const } } };
  const first = await StateBackend.resume({ keyGroups: 64, checkpoints: { storage } });
  assert.is(first.restoreReport, null);
  assert.is(first.keyGroups, 64);
  await first.aggregate('a', spec).ingest({ k: [7n, 7n] });
  const c = await first.checkpoint({ at: 2 });
  await first.close();
  const again = await StateBackend.resume({ shards: 3, checkpoints: { storage } });
  assert.is(again.restoreReport!.checkpointId, c.id);
  assert.equal(again.restoredMeta, { at: 2 });
  assert.is(again.shardCount, 3);
  assert.equal(await again.aggregate('a', spec).get(7n), { n: 2 });
  // Later checkpoints keep numbering after the restored one.
  assert.is((await again.checkpoint()).id, c.id + 1);
  await again.close();
  const e1 = await StateBackend.resume({ keyGroups: 128, checkpoints: { storage } }).then(() => null, (x: unknown) => x);
  assert.instance(e1, CairnError);
  assert.is((e1 as CairnError).kind, 'invalid');
  assert.match((e1 as Error).message, /keyGroups: expected the checkpoint's 64/);
  storage.failList = new CairnError('unavailable', 'EIO');
  const e2 = await StateBackend.resume({ checkpoints: { storage } }).then(() => null, (x: unknown) => x);
  assert.is((e2 as CairnError).kind, 'unavailable', 'a failing listing started a fresh backend');
  storage.failList = null;
  for (const name of storage.files.keys()) if (name.startsWith('manifests/')) storage.files.set(name, new Uint8Array(10));
  const e3 = await StateBackend.resume({ checkpoints: { storage } }).then(() => null, (x: unknown) => x);
  assert.is((e3 as CairnError).kind, 'corruption', 'damaged checkpoints started a fresh backend');
});

test('restoring an older checkpoint by id abandons the newer ones: the next checkpoint removes them, and no fallback lands there', async () => {
  const storage = new MemoryCheckpointStorage();
  const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const } } };
  const b = await StateBackend.open({ checkpoints: { storage, retain: 3 } });
  const op = b.aggregate('a', spec);
  for (const k of [1n, 2n, 3n, 4n, 5n]) {
    await op.ingest({ k: [k] });
    await b.checkpoint();
  }
  await b.close();
  const ids = async () => (await storage.list('manifests/')).map((n) => Number(n.slice(10, 22)));
  assert.equal(await ids(), [3, 4, 5]);
  // Back to checkpoint 3 (keys 1 to 3), then another history: key 30.
  const r = await StateBackend.restore({ storage, checkpointId: 3 });
  await r.aggregate('a', spec).ingest({ k: [30n] });
  const c6 = await r.checkpoint();
  assert.is(c6.id, 6);
  await r.close();
  assert.equal(await ids(), [3, 6], 'checkpoints of the abandoned history were kept');
  // With checkpoint 6 damaged, restore falls back along its own history, to 3.
  const m6 = await storage.get(manifestName(6));
  m6[m6.length - 2]! ^= 1;
  await storage.put(manifestName(6), m6);
  const back = await StateBackend.restore({ storage });
  assert.is(back.restoreReport!.checkpointId, 3);
  assert.equal(rowsOf(await back.aggregate('a', spec).toArrow(), 'k').map((x) => x['key']), [1n, 2n, 3n]);
  await back.close();
});

test('checkpoint meta that is not JSON is refused as a rejection (invalid) and takes no id', async () => {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ checkpoints: { storage } });
  const r = b.aggregate('r', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  await r.ingest({ k: BigInt64Array.of(1n, 2n) });
  const circular: Record<string, unknown> = {};
  circular['self'] = circular;
  for (const meta of [{ x: 1n }, () => 1, Symbol('s'), circular]) {
    let p: Promise<unknown> | undefined;
    assert.not.throws(() => { p = b.checkpoint(meta); }, 'no synchronous throw');
    const e = await p!.then(() => null, (x: unknown) => x);
    assert.instance(e, CairnError, `meta ${String(typeof meta)}`);
    assert.is((e as CairnError).kind, 'invalid');
    assert.match((e as Error).message, /meta must be a JSON value/);
  }
  const ok = await b.checkpoint({ at: 7 });
  assert.is(ok.id, 1, 'refused calls took no id');
  await b.close();
  const closed = await b.checkpoint().then(() => null, (x: unknown) => x);
  assert.is((closed as CairnError).kind, 'closed', 'a closed backend rejects too');
  const back = await StateBackend.restore({ storage });
  assert.equal(back.restoredMeta, { at: 7 });
  await back.close();
});

test('restore by id: a malformed id is invalid; a data file the manifest names but storage lacks is corruption', async () => {
  const { storage, c1, c2 } = await twoCheckpoints(2);
  for (const id of [-1, 0, 1.5, 'x', NaN]) {
    const e = await StateBackend.restore({ storage, checkpointId: id as number }).then(() => null, (x: unknown) => x);
    assert.is((e as CairnError).kind, 'invalid', `checkpointId ${String(id)}`);
  }
  const gone = await StateBackend.restore({ storage, checkpointId: 99 }).then(() => null, (x: unknown) => x);
  assert.is((gone as CairnError).kind, 'unavailable', 'an id with no manifest is not found');
  const filesOf = async (id: number) => referencedFiles(decodeManifest(await storage.get(manifestName(id)), manifestName(id))).map((f) => f.name);
  const older = await filesOf(c1);
  const own = (await filesOf(c2)).filter((n) => !older.includes(n));
  assert.ok(own.length > 0, 'checkpoint 2 wrote files of its own');
  await storage.delete(own[0]!);
  const e = await StateBackend.restore({ storage, checkpointId: c2 }).then(() => null, (x: unknown) => x);
  assert.is((e as CairnError).kind, 'corruption', (e as Error).message);
  assert.match((e as Error).message, new RegExp(`file=${own[0]!.replace(/[.]/g, '[.]')}`));
  // Without an id, restore skips it for the older checkpoint, which is whole.
  const back = await StateBackend.restore({ storage });
  assert.is(back.restoreReport!.checkpointId, c1);
  await back.close();
  // The same through tiered storage, the file in neither tier.
  const tiered = new TieredCheckpointStorage({ local: storage, durable: new MemoryCheckpointStorage() });
  const e2 = await StateBackend.restore({ storage: tiered, checkpointId: c2 }).then(() => null, (x: unknown) => x);
  assert.is((e2 as CairnError).kind, 'corruption', (e2 as Error).message);
  const back2 = await StateBackend.restore({ storage: tiered });
  assert.is(back2.restoreReport!.checkpointId, c1);
  await back2.close();
});

test('a manifest that verifies but names a data file storage cannot hold is corruption, and restore falls back', async () => {
  const { storage, c1, c2 } = await twoCheckpoints(2);
  const name = manifestName(c2);
  const good = await storage.get(name);
  for (const bad of ['data/a/../a/x.cks', 'data/.x/000000000002-000.cks', 'data//x.cks', 'data/a/b c.cks']) {
    const m = decodeManifest(good, name);
    m.operators[0]!.chain.at(-1)!.files[0]!.name = bad;
    // Written as the coordinator writes a manifest (magic, CRC-32C of the JSON, the JSON), so its
    // checksum verifies: only the name is wrong. (encodeManifest itself refuses to write it.)
    const json = new TextEncoder().encode(JSON.stringify(m));
    const bytes = new Uint8Array(12 + json.length);
    bytes.set(good.subarray(0, 8));
    new DataView(bytes.buffer).setUint32(8, crc32c(json), true);
    bytes.set(json, 12);
    await storage.put(name, bytes);
    const e = await StateBackend.restore({ storage, checkpointId: c2 }).then(() => null, (x: unknown) => x);
    assert.instance(e, CairnError, bad);
    assert.is((e as CairnError).kind, 'corruption', `${bad}: ${(e as Error).message}`);
    const back = await StateBackend.restore({ storage });
    assert.is(back.restoreReport!.checkpointId, c1, bad);
    assert.is(back.restoreReport!.skipped[0]!.id, c2, bad);
    await back.close();
  }
});

test('a restore whose state does not load fails every call made after the declare; nothing is written', async () => {
  // 4 shards' rows restored onto 1 shard under the same per-shard memory cap do not fit.
  const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const }, s: { fn: 'sum' as const, field: 'v' } } };
  const cap = 4 * 1024 * 1024;
  const KEYS = 150_000;
  for (const workers of [false, true]) {
    const storage = new MemoryCheckpointStorage();
    const b = await StateBackend.open({ shards: 4, workers, memoryCapBytes: cap, checkpoints: { storage } });
    const op = b.aggregate('A', spec);
    await op.ingest({ k: BigInt64Array.from({ length: KEYS }, (_, i) => BigInt(i)), v: Float64Array.from({ length: KEYS }, (_, i) => i % 7) });
    const good = await b.checkpoint({ at: KEYS });
    await b.close();
    const names = (await storage.list('')).join();

    const r = await StateBackend.restore({ storage, shards: 1, workers, memoryCapBytes: cap });
    const again = r.aggregate('A', spec);
    // All made in the tick of the declare, before its loading can have failed.
    const calls: [string, Promise<unknown>][] = [
      ['checkpoint', r.checkpoint({ at: KEYS })],
      ['ingest', again.ingest({ k: BigInt64Array.of(1n), v: Float64Array.of(1) })],
      ['get', again.get(5)],
      ['toArrow', again.toArrow()],
      ['lateEvents', again.lateEvents()],
      ['metrics', r.metrics()],
    ];
    const outcomes = calls.map(([what, call]) => [what, call.then(() => null, (x: unknown) => x)] as const);
    for (const [what, outcome] of outcomes) {
      const e = await outcome;
      assert.instance(e, CairnError, `workers ${workers}: ${what} succeeded on a partly restored operator`);
      assert.is((e as CairnError).kind, 'unavailable', `${what}: ${(e as Error).message}`);
      assert.match((e as Error).message, /failed to open or restore: .*memory cap/, what);
    }
    await r.close().catch(() => undefined);
    assert.is((await storage.list('')).join(), names, `workers ${workers}: the failed restore wrote to storage`);
    // The checkpoint is whole: a restore that fits brings back every key with its sum.
    const whole = await StateBackend.restore({ storage, shards: 2, workers });
    assert.is(whole.restoreReport!.checkpointId, good.id);
    const t = await whole.aggregate('A', spec).toArrow();
    assert.is(t.numRows, KEYS);
    let sum = 0;
    for (const x of t.getChild('s')!) sum += x as number;
    let want = 0;
    for (let i = 0; i < KEYS; i++) want += i % 7;
    assert.is(sum, want);
    await whole.close();
  }
});

test('a chain of tiny deltas compacts once its manifests cost more than its base, not thousands of layers later', async () => {
  // Every manifest lists every layer of the chain, so one-row deltas on a large base once grew the
  // manifest past the base itself (counted: data files only) before the first compaction.
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ shards: 2, keyGroups: 32, checkpoints: { storage, retain: 2 } });
  try {
    const op = b.aggregate('u', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    await op.ingest({ k: BigInt64Array.from({ length: 20_000 }, (_, i) => BigInt(i)) });
    const first = await b.checkpoint();
    assert.is(first.incremental, false);
    const baseBytes = first.bytes;
    let fullAt = -1;
    let writtenSinceBase = 0;
    for (let c = 1; c <= 400 && fullAt < 0; c++) {
      await op.ingest({ k: BigInt64Array.from([BigInt(c)]) });
      const r = await b.checkpoint();
      const manifestBytes = (await storage.get(manifestName(r.id))).length;
      writtenSinceBase += r.bytes; // data files and manifest
      if (!r.incremental) fullAt = c;
      else assert.ok(manifestBytes < baseBytes / 4, `checkpoint ${c}: a manifest of ${manifestBytes} bytes against a base of ${baseBytes}`);
    }
    assert.ok(fullAt > 1, `the chain compacted within 400 checkpoints (at ${fullAt})`);
    // What the chain wrote before it compacted stays within a few bases (the rule's bound is 1x plus one step).
    assert.ok(writtenSinceBase < 3 * baseBytes, `${writtenSinceBase} bytes written over the chain, base ${baseBytes}`);
    // And it restores to the state.
    const r = await StateBackend.restore({ storage, shards: 1 });
    const back = r.aggregate('u', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    assert.equal(await back.get(3n), { n: 2 });
    assert.equal(await back.get(19_999n), { n: 1 });
    await r.close();
  } finally {
    await b.close();
  }
});

test('retention keeps up under steady storage errors: one failed delete does not end its round', async () => {
  // At 20% failed operations, a round that stopped at its first failed delete left leftovers faster
  // than later rounds removed them (193 objects after 300 checkpoints, growing; about 30 now).
  const inner = new MemoryCheckpointStorage();
  const faulty = new FaultyStorage(inner, { seed: 3 });
  const b = await StateBackend.open({ shards: 2, keyGroups: 32, checkpoints: { storage: faulty, retain: 2 } });
  try {
    const op = b.aggregate('u', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    const model = new Map<bigint, number>();
    faulty.failRandomly(0.2);
    let most = 0;
    let succeeded = 0;
    for (let c = 0; c < 300; c++) {
      const k = BigInt64Array.from({ length: 50 }, (_, i) => BigInt((c * 50 + i) % 3000));
      await op.ingest({ k });
      for (const key of k) model.set(key, (model.get(key) ?? 0) + 1);
      if (await b.checkpoint().then(() => true, () => false)) succeeded++;
      most = Math.max(most, (await inner.list('')).length);
    }
    assert.ok(succeeded > 100 && succeeded < 300, `${succeeded} of 300 checkpoints succeeded at 20% failed operations`);
    assert.ok(most < 80, `storage held up to ${most} objects with retain 2`);
    faulty.heal();
    await b.checkpoint();
    const r = await StateBackend.restore({ storage: inner, shards: 3 });
    const back = r.aggregate('u', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
    const t = await back.toArrow();
    assert.is(t.numRows, model.size);
    const ks = t.getChild('k')!.toArray() as BigInt64Array;
    const ns = t.getChild('n')!.toArray() as ArrayLike<number | bigint>;
    for (let i = 0; i < t.numRows; i++) assert.is(Number(ns[i]), model.get(ks[i]!), `key ${ks[i]}`);
    await r.close();
  } finally {
    await b.close();
  }
});

test('a restored backend starts new chains: its first checkpoint is full, the next incremental again (as documented)', async () => {
  const storage = new MemoryCheckpointStorage();
  const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const } } };
  const a = await StateBackend.open({ shards: 2, checkpoints: { storage } });
  await a.aggregate('c', spec).ingest({ k: BigInt64Array.from({ length: 5000 }, (_, i) => BigInt(i)) });
  assert.is((await a.checkpoint()).incremental, false);
  await a.aggregate('c', spec).ingest({ k: BigInt64Array.of(1n) });
  assert.is((await a.checkpoint()).incremental, true);
  await a.close();
  const b = await StateBackend.restore({ storage });
  try {
    const op = b.aggregate('c', spec);
    await op.ingest({ k: BigInt64Array.of(2n) });
    assert.is((await b.checkpoint()).incremental, false, 'first after a restore');
    await op.ingest({ k: BigInt64Array.of(3n) });
    assert.is((await b.checkpoint()).incremental, true, 'second after a restore');
    assert.equal(await op.get(2n), { n: 2 });
  } finally {
    await b.close();
  }
});

test.run();
