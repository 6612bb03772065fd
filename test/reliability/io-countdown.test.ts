// Proves that an I/O error at any storage operation of a checkpoint cycle is contained. How: a
// fault-free run over FaultyStorage logs every operation of a checkpoint cycle; the workload is then
// re-run, for every n in that cycle, with the n-th operation failing with EIO or ENOSPC, transient
// (that operation only) or persistent (every later one until heal()). Documented behaviour
// (src/checkpoint/coordinator.ts): a failed data file or manifest put rejects checkpoint() with kind
// 'unavailable' naming the errno code; a failure during retention (its list and deletes), or a
// transient one in the writer check before the data files and manifest (a list and a read), does
// not fail the checkpoint, which resolves. Then: restore from the storage lands on the previous
// acknowledged checkpoint (or on the new one when it resolved) and equals the reference models
// there, and the failed checkpoint's id cannot be restored (nothing partial is visible). After
// heal(), the next checkpoint succeeds (as a full base when the previous one failed), leaves no
// unreferenced data file, and restores exactly; the live backend's own state was never disturbed.
// The same countdown runs through FsCheckpointStorage over SimulatedFs ('eio' and 'enospc' at every
// file-system call of a cycle).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, FsCheckpointStorage, type CheckpointStorage, type CheckpointResult } from '../../src/index.js';
import { FaultyStorage, SimulatedFs, type FaultCode, type FaultSpec, type SimulatedFault, type StorageOp } from '../../src/testing/index.js';
import { manifestIdOf } from '../../src/checkpoint/manifest.js';
import { checkReplay, applyToBackend, type Op } from '../checkpoint/scenario.js';
import {
  tier, keyTypeOf, workloadOf, recordFaultyCycles, recordCycles, openWorkloadBackend, assertNoGarbage, expectKind,
  positionOf, coverage, opName, manifestPutIndex, WORKLOAD, type Ack, type Cycle, type KeyType,
} from './harness.js';

const SEEDS = tier(3, 40);
const FS_SEEDS = tier(1, 10);
const FS_ROOT = '/cairn/checkpoints';
const FAULTS: FaultSpec[] = (['EIO', 'ENOSPC'] as FaultCode[]).flatMap((code) => (['transient', 'persistent'] as const).map((kind) => ({ kind, code })));

const figures = { runs: 0, points: 0, fullCycles: 0, incrementalCycles: 0, rejected: 0, resolved: 0, fsRuns: 0, fsRejected: 0, fsResolved: 0 };

/**
 * The cycles swept for a workload, each with the workload cut right after it so the cycle is the last
 * thing that happens: the last incremental cycle and the last cycle with retention deletes (often a
 * full base), or the only cycle there is.
 */
function sweptCycles(cycles: Cycle[], log: readonly { op: string }[]): Cycle[] {
  const later = cycles.slice(1);
  const incremental = later.filter((c) => c.incremental).at(-1);
  const deleting = later.filter((c) => log.slice(c.start, c.end).some((o) => o.op === 'delete')).at(-1);
  const picked = [incremental, deleting].filter((c): c is Cycle => c !== undefined);
  if (picked.length === 0) picked.push(later.at(-1) ?? cycles[0]!);
  return picked.filter((c, i) => picked.indexOf(c) === i);
}

/** Applies ops[0..last) with every checkpoint awaited; returns the backend and the acknowledged checkpoints. */
async function runUpTo(storage: CheckpointStorage, ops: Op[], last: number, keyType: KeyType) {
  const { backend, operators } = await openWorkloadBackend(storage, keyType);
  const acked: Ack[] = [];
  for (let i = 0; i < last; i++) {
    const op = ops[i]!;
    if (op.kind === 'checkpoint') acked.push({ id: (await backend.checkpoint({ at: i + 1 })).id, at: i + 1 });
    else await applyToBackend(backend, operators, op, keyType);
  }
  return { backend, acked };
}

/** Restores the newest checkpoint (expected: `id` at position `at`) and checks it against the models. */
async function restoreExpecting(storage: CheckpointStorage, ops: Op[], keyType: KeyType, id: number, at: number, label: string): Promise<void> {
  const r = await StateBackend.restore({ storage, retain: WORKLOAD.retain });
  assert.is(r.restoreReport!.checkpointId, id, `${label}: restored checkpoint`);
  assert.equal(r.restoreReport!.skipped, [], `${label}: nothing skipped`);
  assert.is(positionOf(r.restoredMeta), at, `${label}: position`);
  await checkReplay(r, ops, at, keyType, label);
  await r.close();
}

/**
 * The common tail of one countdown run, after the faulted checkpoint settled: what restore sees
 * now, then heal, the next checkpoint, what restore sees then, and the live backend's own state.
 */
async function afterFault(
  o: {
    inner: CheckpointStorage; backend: StateBackend; ops: Op[]; keyType: KeyType; cycle: Cycle; acked: Ack[];
    outcome: { result: CheckpointResult } | { error: unknown }; heal: () => void; label: string;
  },
): Promise<void> {
  const { inner, backend, ops, keyType, cycle, label } = o;
  const previous = o.acked.at(-1);
  if ('result' in o.outcome) {
    assert.is(o.outcome.result.id, cycle.id, `${label}: the resolved checkpoint's id`);
    await restoreExpecting(inner, ops, keyType, cycle.id, cycle.at, `${label}: restore after the resolved checkpoint`);
  } else {
    const visible = (await inner.list('manifests/')).map(manifestIdOf).includes(cycle.id);
    if (visible) {
      // Only the file system can get here: the manifest was renamed into place but the put failed
      // after (its directory fsync). The checkpoint is complete; restore may use it.
      await restoreExpecting(inner, ops, keyType, cycle.id, cycle.at, `${label}: restore of a complete but unacknowledged checkpoint`);
    } else {
      if (previous) await restoreExpecting(inner, ops, keyType, previous.id, previous.at, `${label}: restore after the failed checkpoint`);
      else await expectKind(() => StateBackend.restore({ storage: inner }), ['unavailable'], `${label}: nothing to restore before the first checkpoint`);
      await expectKind(() => StateBackend.restore({ storage: inner, checkpointId: cycle.id }), ['unavailable'], `${label}: the failed checkpoint is not restorable`);
    }
  }
  o.heal();
  const next = await backend.checkpoint({ at: cycle.at });
  if ('error' in o.outcome) assert.is(next.incremental, false, `${label}: after a failed checkpoint the next one is a full base`);
  await assertNoGarbage(inner, `${label}: after the healed checkpoint`);
  await restoreExpecting(inner, ops, keyType, next.id, cycle.at, `${label}: restore of the healed checkpoint`);
  await checkReplay(backend, ops, cycle.at, keyType, `${label}: the live backend`);
  await backend.close();
}

/** Every fault at every storage operation of one cycle, over FaultyStorage(memory). */
async function countdownCycle(seed: number, full: Op[], cycle: Cycle, log: readonly Readonly<StorageOp>[]): Promise<void> {
  const keyType = keyTypeOf(seed);
  const ops = full.slice(0, cycle.index + 1);
  figures[cycle.incremental ? 'incrementalCycles' : 'fullCycles']++;
  for (let n = cycle.start; n < cycle.end; n++) {
    const what = log[n]!;
    // After the manifest put: retention. Before it, a list or read is the writer check, which
    // skips itself when storage fails (a transient fault then fails nothing; a persistent one
    // fails the puts that follow).
    const inRetention = n > manifestPutIndex(log, cycle.start, cycle.end);
    const inCheck = !inRetention && what.op !== 'put';
    figures.points++;
    for (const fault of FAULTS) {
      const label = `seed ${seed} cycle ${cycle.id} ${fault.kind} ${fault.code} at op ${n} (${what.op} ${what.name})`;
      const inner = new MemoryCheckpointStorage();
      const faulty = new FaultyStorage(inner, { seed });
      const { backend, acked } = await runUpTo(faulty, ops, cycle.index, keyType);
      assert.is(faulty.opCount, cycle.start, `${label}: same operation sequence as the fault-free run`);
      faulty.failAt(n, fault);
      const outcome = await backend.checkpoint({ at: cycle.at }).then((result) => ({ result }), (error: unknown) => ({ error }));
      assert.is(opName(faulty.log[n]?.name ?? ''), opName(what.name), `${label}: the fault hit the operation the fault-free run made`);
      assert.is(faulty.log[n]?.outcome, 'failed', label);
      if (inRetention || (inCheck && fault.kind === 'transient')) {
        assert.ok('result' in outcome, `${label}: a retention or writer-check failure must not fail the checkpoint: ${'error' in outcome ? String(outcome.error) : ''}`);
        figures.resolved++;
      } else {
        const e = await expectKind(() => Promise.reject('error' in outcome ? outcome.error : new Error('resolved')), ['unavailable'], `${label}: checkpoint()`);
        assert.match(e.message, fault.code, `${label}: the errno code reaches the message`);
        assert.ok(e.retryable, `${label}: retryable`);
        figures.rejected++;
      }
      await afterFault({ inner, backend, ops, keyType, cycle, acked, outcome, heal: () => faulty.heal(), label });
      figures.runs++;
    }
  }
}

/** 'eio' at every file-system call of one cycle and 'enospc' at every write, over SimulatedFs. */
async function countdownFsCycle(seed: number, full: Op[], cycle: Cycle, log: readonly { op: string; path: string }[]): Promise<void> {
  const keyType = keyTypeOf(seed);
  const ops = full.slice(0, cycle.index + 1);
  for (let n = cycle.start; n < cycle.end; n++) {
    // 'enospc' only fits a write; elsewhere it acts as 'eio', which the first pass covers.
    const faults: SimulatedFault[] = log[n]!.op === 'write' ? ['eio', 'enospc'] : ['eio'];
    for (const fault of faults) {
      const label = `fs seed ${seed} cycle ${cycle.id} ${fault} at fs op ${n} (${log[n]!.op} ${log[n]!.path})`;
      const sim = new SimulatedFs();
      const storage = new FsCheckpointStorage(FS_ROOT, { fs: sim });
      const { backend, acked } = await runUpTo(storage, ops, cycle.index, keyType);
      assert.is(sim.opCount, cycle.start, `${label}: same call sequence as the fault-free run`);
      sim.faultAt(n, fault);
      const outcome = await backend.checkpoint({ at: cycle.at }).then((result) => ({ result }), (error: unknown) => ({ error }));
      if ('error' in outcome) {
        const e = await expectKind(() => Promise.reject(outcome.error), ['unavailable'], `${label}: checkpoint()`);
        assert.match(e.message, fault === 'enospc' ? 'ENOSPC' : 'EIO', `${label}: the errno code reaches the message`);
        figures.fsRejected++;
      } else {
        figures.fsResolved++;
      }
      // A new storage object over the same disk plays the restoring process (no crash here).
      const reader = new FsCheckpointStorage(FS_ROOT, { fs: sim });
      await afterFault({ inner: reader, backend, ops, keyType, cycle, acked, outcome, heal: () => sim.restart(), label });
      figures.fsRuns++;
    }
  }
}

test('EIO / ENOSPC, transient / persistent, at every storage operation of a cycle: reject (or resolve in retention), nothing partial, exact after heal', async () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const full = workloadOf(seed);
    const { cycles, log } = await recordFaultyCycles(seed, full);
    for (const cycle of sweptCycles(cycles, log)) await countdownCycle(seed, full, cycle, log);
  }
});

test('FsCheckpointStorage on a simulated disk: EIO or ENOSPC at every file-system call of a cycle', async () => {
  // From seed 2: seed 1's workload takes a single checkpoint.
  for (let seed = 2; seed < 2 + FS_SEEDS; seed++) {
    const full = workloadOf(seed);
    const sim0 = new SimulatedFs();
    const cycles = await recordCycles(new FsCheckpointStorage(FS_ROOT, { fs: sim0 }), () => sim0.opCount, full, keyTypeOf(seed));
    const log = sim0.log.map((o) => ({ op: o.op === 'unlink' ? 'delete' : o.op, path: o.path }));
    for (const cycle of sweptCycles(cycles, log)) await countdownFsCycle(seed, full, cycle, log);
  }
});

test('coverage', () => {
  assert.ok(figures.runs > 0 && figures.rejected > 0 && figures.resolved > 0 && figures.fsRuns > 0);
  coverage(
    'io-countdown',
    `${SEEDS} seeds (${figures.fullCycles} full + ${figures.incrementalCycles} incremental cycles): ${figures.points} storage ops x 4 faults (EIO/ENOSPC, transient/persistent) = ${figures.runs} runs ` +
      `(${figures.rejected} rejected 'unavailable', ${figures.resolved} resolved in retention); fs: ${figures.fsRuns} runs over ${FS_SEEDS} seeds ` +
      `(${figures.fsRejected} rejected, ${figures.fsResolved} resolved); nothing partial restored, every healed checkpoint exact`,
  );
});

test.run();
