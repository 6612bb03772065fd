// Proves that a crash at any storage operation of a checkpoint cycle loses no acknowledged
// checkpoint and never restores a mix of two checkpoints. How: for each seed, a random workload
// (ingest, watermarks, deletes, rescales; test/checkpoint/scenario.ts) runs once without faults over
// FaultyStorage, whose op log gives every storage operation of every checkpoint cycle (the writer
// check's lists and read, data file puts, the manifest put, retention's list and deletes). The workload then runs again with a crash
// at each of those operations (FaultyStorage.crashAt: that operation and every later one fail); the
// backend is dropped without close, and a fresh backend restores from the inner storage (the healed
// view) onto 2, 1 or 3 shards. It must land on the newest manifest in storage, which is the last
// acknowledged checkpoint (its promise resolved) or a later one, never older; the restored state
// must equal the reference models at that checkpoint's position, and replaying the remaining
// operations must give the models' outputs (checkReplay). A checkpoint taken after the restore must
// then leave no unreferenced data file. Torn writes (a put that leaves a prefix of its bytes and
// fails) at every put of a cycle must make restore skip the torn checkpoint as corrupt and land on
// the last acknowledged one. The same crash sweep runs through FsCheckpointStorage over SimulatedFs,
// where a crash also drops everything not yet fsynced, for fewer seeds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, FsCheckpointStorage, type CheckpointStorage } from '../../src/index.js';
import { FaultyStorage, SimulatedFs, type StorageOp } from '../../src/testing/index.js';
import { manifestIdOf } from '../../src/checkpoint/manifest.js';
import { checkReplay, type Op } from '../checkpoint/scenario.js';
import {
  tier, STRESS, keyTypeOf, workloadOf, runWorkload, recordFaultyCycles, recordCycles, assertNoGarbage, expectKind,
  positionOf, coverage, opName, manifestPutIndex, WORKLOAD, type Ack, type Cycle, type KeyType,
} from './harness.js';

const SEEDS = tier(20, 100);
const FS_SEEDS = tier(3, 12);
const FS_ROOT = '/cairn/checkpoints';
/** Restore onto the checkpoint's own shard count, or onto 1 or 3 shards, by crash point. */
const RESTORE_SHARDS: (number | undefined)[] = [undefined, 1, 3];

const figures = { crashPoints: 0, writes: 0, reads: 0, incrementalCycles: 0, fullCycles: 0, torn: 0, tornManifests: 0, fsPoints: 0, fsCycles: 0, noCheckpointYet: 0 };

/**
 * The cycles swept for a seed. Default tier: one cycle after the first acknowledged checkpoint,
 * alternating between the busiest cycle (most operations: a full base with retention deletes) and
 * the last incremental one, so both kinds are covered. Stress tier: every cycle, the first included.
 */
function targets(cycles: Cycle[], seed: number): Cycle[] {
  if (STRESS) return cycles;
  const later = cycles.slice(1);
  if (later.length === 0) return cycles.slice(0, 1);
  const busiest = later.reduce((a, c) => (c.end - c.start > a.end - a.start ? c : a));
  const incremental = later.filter((c) => c.incremental).at(-1);
  return [seed % 2 === 1 && incremental ? incremental : busiest];
}

async function manifestIds(storage: CheckpointStorage): Promise<number[]> {
  return (await storage.list('manifests/')).map(manifestIdOf).filter((x): x is number => x !== null).sort((a, b) => a - b);
}

/**
 * Restores the newest checkpoint from `storage` after a crash and checks it against the models:
 * it is the newest manifest, it is not older than the last acknowledged checkpoint, its position is
 * the one the fault-free run recorded for its id, the state and every later output match the models,
 * and a checkpoint taken afterwards leaves no garbage. Returns the restored id (null: none existed).
 */
async function restoreAndCheck(
  storage: CheckpointStorage,
  ops: Op[],
  keyType: KeyType,
  lastAck: Ack | undefined,
  cycles: Cycle[],
  shards: number | undefined,
  expectSkipped: number[],
  label: string,
): Promise<number | null> {
  const ids = await manifestIds(storage);
  const valid = ids.filter((id) => !expectSkipped.includes(id));
  if (valid.length === 0) {
    assert.is(lastAck, undefined, `${label}: acknowledged checkpoint ${lastAck?.id} lost: no manifest in storage`);
    await expectKind(() => StateBackend.restore({ storage }), ids.length ? ['corruption'] : ['unavailable'], `${label}: restore with nothing to restore`);
    return null;
  }
  const newest = valid.at(-1)!;
  const r = await StateBackend.restore({ storage, retain: WORKLOAD.retain, ...(shards !== undefined ? { shards } : {}) });
  const report = r.restoreReport!;
  if (shards !== undefined) assert.is(r.shardCount, shards, `${label}: restored onto ${shards} shards`);
  assert.is(report.checkpointId, newest, `${label}: restores the newest valid manifest`);
  assert.equal(report.skipped.map((s) => s.id), expectSkipped, `${label}: skipped checkpoints (${report.skipped.map((s) => s.reason).join('; ')})`);
  if (lastAck) assert.ok(newest >= lastAck.id, `${label}: acknowledged checkpoint ${lastAck.id} lost: restored ${newest}`);
  const at = positionOf(r.restoredMeta);
  const cycle = cycles.find((c) => c.id === newest);
  assert.ok(cycle, `${label}: restored id ${newest} is a checkpoint the fault-free run took`);
  assert.is(at, cycle!.at, `${label}: checkpoint ${newest} holds the position the fault-free run gave it`);
  await checkReplay(r, ops, at, keyType, `${label} (restored ${newest} at op ${at})`);
  // Leftovers of the crashed cycle are collected by the next checkpoint. A torn manifest stays until
  // it leaves the retention window (retention cannot tell what an unreadable manifest references).
  for (let i = 0; i < (expectSkipped.length ? WORKLOAD.retain : 1); i++) await r.checkpoint({ at: ops.length });
  await assertNoGarbage(storage, `${label}: after the next checkpoint`);
  await r.close();
  return newest;
}

function describe(op: Readonly<StorageOp> | { op: string; path: string }): string {
  return 'name' in op ? `${op.op} ${op.name}` : `${op.op} ${op.path}`;
}

test('a crash at every storage operation of a checkpoint cycle: restore lands on the last acknowledged checkpoint or later, exactly', async () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const ops = workloadOf(seed);
    const keyType = keyTypeOf(seed);
    const { cycles, log } = await recordFaultyCycles(seed, ops);
    for (const cycle of targets(cycles, seed)) {
      figures[cycle.incremental ? 'incrementalCycles' : 'fullCycles']++;
      for (let k = cycle.start; k < cycle.end; k++) {
        const label = `seed ${seed} cycle ${cycle.id} crash at op ${k} (${describe(log[k]!)})`;
        const inner = new MemoryCheckpointStorage();
        const faulty = new FaultyStorage(inner, { seed }).crashAt(k);
        const run = await runWorkload(faulty, ops, keyType);
        faulty.crash(); // the process is gone: no write of it lands later
        assert.is(faulty.log[k]?.op, log[k]!.op, `${label}: same operation sequence as the fault-free run`);
        assert.is(opName(faulty.log[k]?.name ?? ''), opName(log[k]!.name), `${label}: same operation sequence as the fault-free run`);
        // Up to the manifest put (the writer check's list and read, the data files, the manifest) a
        // crash fails the checkpoint; after it (retention) the checkpoint exists.
        if (k <= manifestPutIndex(log, cycle.start, cycle.end)) assert.is(run.failure?.index, cycle.index, `${label}: a crash before the manifest is written fails this checkpoint`);
        else assert.ok(run.acked.some((a) => a.id === cycle.id), `${label}: a crash in retention does not fail this checkpoint`);
        if (run.failure) await expectKind(() => Promise.reject(run.failure!.error), ['unavailable'], `${label}: the failed checkpoint`);
        const restored = await restoreAndCheck(inner, ops, keyType, run.acked.at(-1), cycles, RESTORE_SHARDS[k % 3], [], label);
        if (restored === null) figures.noCheckpointYet++;
        figures.crashPoints++;
        if (log[k]!.op === 'put' || log[k]!.op === 'delete') figures.writes++;
        else figures.reads++;
      }
    }
  }
});

test('a torn write at every put of a checkpoint cycle: the torn checkpoint is skipped, the last acknowledged one restores exactly', async () => {
  const fractions = [0, 0.5, 0.99];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const ops = workloadOf(seed);
    const keyType = keyTypeOf(seed);
    const { cycles, log } = await recordFaultyCycles(seed, ops);
    for (const cycle of targets(cycles, seed)) {
      for (let k = cycle.start; k < cycle.end; k++) {
        if (log[k]!.op !== 'put') continue;
        const fraction = fractions[k % fractions.length]!;
        const label = `seed ${seed} cycle ${cycle.id} torn at op ${k} (${describe(log[k]!)}, keeps ${fraction})`;
        const inner = new MemoryCheckpointStorage();
        const faulty = new FaultyStorage(inner, { seed }).tornWriteAt(k, fraction);
        const run = await runWorkload(faulty, ops, keyType);
        faulty.crash();
        assert.is(faulty.log[k]?.outcome, 'torn', `${label}: the put was torn`);
        assert.is(run.failure?.index, cycle.index, `${label}: the torn checkpoint rejected`);
        await expectKind(() => Promise.reject(run.failure!.error), ['unavailable'], `${label}: the failed checkpoint`);
        const tornManifest = manifestIdOf(log[k]!.name);
        if (tornManifest !== null) {
          assert.is(tornManifest, cycle.id, label);
          figures.tornManifests++;
        }
        const lastAck = run.acked.at(-1);
        const restored = await restoreAndCheck(inner, ops, keyType, lastAck, cycles, RESTORE_SHARDS[k % 3], tornManifest === null ? [] : [tornManifest], label);
        assert.is(restored, lastAck?.id ?? null, `${label}: lands on the last acknowledged checkpoint`);
        figures.torn++;
      }
    }
  }
});

test('FsCheckpointStorage on a simulated disk: a crash at every file-system call of a cycle (unsynced data lost) loses no acknowledged checkpoint', async () => {
  for (let seed = 1; seed <= FS_SEEDS; seed++) {
    const ops = workloadOf(seed);
    const keyType = keyTypeOf(seed);
    const sim0 = new SimulatedFs();
    const cycles = await recordCycles(new FsCheckpointStorage(FS_ROOT, { fs: sim0 }), () => sim0.opCount, ops, keyType);
    const log = sim0.log.map((o) => ({ ...o }));
    for (const cycle of targets(cycles, seed)) {
      figures.fsCycles++;
      for (let k = cycle.start; k < cycle.end; k++) {
        const label = `fs seed ${seed} cycle ${cycle.id} crash at fs op ${k} (${describe(log[k]!)})`;
        const sim = new SimulatedFs().crashAt(k);
        const run = await runWorkload(new FsCheckpointStorage(FS_ROOT, { fs: sim }), ops, keyType);
        assert.is(sim.log[k]?.op, log[k]!.op, `${label}: same call sequence as the fault-free run`);
        if (run.failure) await expectKind(() => Promise.reject(run.failure!.error), ['unavailable'], `${label}: the failed checkpoint`);
        sim.restart(); // the machine is back; what was not durable is gone
        const after = new FsCheckpointStorage(FS_ROOT, { fs: sim });
        await restoreAndCheck(after, ops, keyType, run.acked.at(-1), cycles, RESTORE_SHARDS[k % 3], [], label);
        figures.fsPoints++;
      }
    }
  }
});

// Retention keeps the newest `retain` manifests by name, readable or not. After a torn manifest write
// (a storage without atomic puts, or a damaged disk), the next successful checkpoint keeps the torn
// manifest as one of its `retain` and deletes an older valid checkpoint, so fewer than `retain`
// checkpoints can be restored, and data clean-up stops until the torn one leaves the window.
test('retention: after a torn manifest, the next checkpoint still leaves `retain` restorable checkpoints', async () => {
  const inner = new MemoryCheckpointStorage();
  const faulty = new FaultyStorage(inner, { seed: 1 });
  const b = await StateBackend.open({ checkpoints: { storage: faulty, retain: 2 } });
  const r = b.aggregate('r', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  let manifestAt = 0;
  for (let i = 1; i <= 4; i++) {
    await r.ingest({ k: BigInt64Array.of(BigInt(i)) });
    // One shard, one operator: checkpoint 3 has the same operations as checkpoint 2 up to its manifest put.
    if (i === 3) faulty.tornWriteAt(faulty.opCount + manifestAt, 0.5);
    const start = faulty.opCount;
    await b.checkpoint().catch(() => undefined);
    if (i === 2) manifestAt = manifestPutIndex(faulty.log, start, faulty.opCount) - start;
  }
  await b.close();
  assert.ok(faulty.log.some((o) => o.outcome === 'torn' && o.name === 'manifests/000000000003.cmf'), 'checkpoint 3 has a torn manifest');
  const restorable: number[] = [];
  for (const id of await manifestIds(inner)) {
    const ok = await StateBackend.restore({ storage: inner, checkpointId: id }).then(async (x) => { await x.close(); return true; }, () => false);
    if (ok) restorable.push(id);
  }
  assert.equal(restorable, [2, 4], 'the newest two completed checkpoints stay restorable');
});

test('coverage', () => {
  assert.ok(figures.crashPoints > 0 && figures.torn > 0 && figures.fsPoints > 0);
  coverage(
    'crash-sweep',
    `${SEEDS} seeds: crash points ${figures.crashPoints} (${figures.writes} writes, ${figures.reads} reads, ${figures.noCheckpointYet} before any checkpoint existed; ` +
      `${figures.fullCycles} full + ${figures.incrementalCycles} incremental cycles), torn writes ${figures.torn} ` +
      `(${figures.tornManifests} torn manifests); fs crash points ${figures.fsPoints} over ${figures.fsCycles} cycles ` +
      `(${FS_SEEDS} seeds); no acknowledged checkpoint lost, no mixed state`,
  );
});

test.run();
