/**
 * Shared machinery for the reliability tests: the two test tiers (default and CAIRN_STRESS), a
 * workload driver that records which checkpoints were acknowledged (their promise resolved) and at
 * which operation, a recording run that finds every storage operation of every checkpoint cycle, and
 * checks that hold after any crash (retention left no garbage behind once a later checkpoint ran).
 *
 * Positions: a checkpoint taken by ops[i] holds ops[0..i], so its position `at` is i + 1; it is
 * stored as the checkpoint's meta ({ at }) so a restored backend says which position it holds.
 */
import * as assert from 'uvu/assert';
import { StateBackend, CairnError, MemoryCheckpointStorage, type CheckpointStorage, type CheckpointResult } from '../../src/index.js';
import { FaultyStorage, type StorageOp } from '../../src/testing/index.js';
import { decodeManifest, referencedFiles } from '../../src/checkpoint/manifest.js';
import { genScenario, applyToBackend, declare, type Op, type Operators } from '../checkpoint/scenario.js';

/** True under `npm run test:stress`: every file runs many more seeds and cases. */
export const STRESS = Boolean(process.env['CAIRN_STRESS']);

/** `normal` in the default tier, `stress` under CAIRN_STRESS. */
export function tier<T>(normal: T, stress: T): T {
  return STRESS ? stress : normal;
}

export type KeyType = 'int64' | 'utf8';

/** The checkpoint settings every workload uses: small retention so cycles delete, small deltas. */
export const WORKLOAD = { shards: 2, keyGroups: 32, retain: 2, maxDeltaRatio: 0.5 } as const;
/** Operations per generated workload. */
export const WORKLOAD_STEPS = 30;

export function keyTypeOf(seed: number): KeyType {
  return seed % 2 === 0 ? 'int64' : 'utf8';
}

export function workloadOf(seed: number, steps = WORKLOAD_STEPS): Op[] {
  return genScenario(seed, { steps, keyType: keyTypeOf(seed), rescale: true });
}

export interface Ack {
  id: number;
  /** Position: the checkpoint holds ops[0..at). */
  at: number;
}

export interface RunResult {
  backend: StateBackend;
  operators: Operators;
  acked: Ack[];
  /** The first checkpoint that rejected (the run stops there), or null. */
  failure: { index: number; error: unknown } | null;
}

export async function openWorkloadBackend(storage: CheckpointStorage, keyType: KeyType): Promise<{ backend: StateBackend; operators: Operators }> {
  const backend = await StateBackend.open({
    shards: WORKLOAD.shards,
    keyGroups: WORKLOAD.keyGroups,
    checkpoints: { storage, retain: WORKLOAD.retain, maxDeltaRatio: WORKLOAD.maxDeltaRatio },
  });
  return { backend, operators: declare(backend, keyType) };
}

/**
 * Applies `ops` to a new backend over `storage`, awaiting each checkpoint; stops at the first
 * checkpoint that rejects (the process "dies" there). `before(i)` and `after(i, result)` run around
 * each op (`result` for checkpoints).
 */
export async function runWorkload(
  storage: CheckpointStorage,
  ops: Op[],
  keyType: KeyType,
  hooks: { before?: (index: number) => void; after?: (index: number, result: CheckpointResult | undefined) => void } = {},
): Promise<RunResult> {
  const { backend, operators } = await openWorkloadBackend(storage, keyType);
  const acked: Ack[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    hooks.before?.(i);
    let result: CheckpointResult | undefined;
    if (op.kind === 'checkpoint') {
      try {
        result = await backend.checkpoint({ at: i + 1 });
        acked.push({ id: result.id, at: i + 1 });
      } catch (error) {
        return { backend, operators, acked, failure: { index: i, error } };
      }
    } else {
      await applyToBackend(backend, operators, op, keyType);
    }
    hooks.after?.(i, result);
  }
  return { backend, operators, acked, failure: null };
}

/** One checkpoint cycle of a fault-free run: its op, id, position and storage operations. */
export interface Cycle {
  /** Index in ops of the checkpoint op. */
  index: number;
  id: number;
  at: number;
  incremental: boolean;
  /** Storage op indexes [start, end) of this cycle (FaultyStorage indexes, or SimulatedFs ones). */
  start: number;
  end: number;
}

/**
 * Runs `ops` without faults over `storage` and returns every checkpoint cycle with the range of
 * storage operations it made, counted by `opCount` (a FaultyStorage's or a SimulatedFs's).
 */
export async function recordCycles(storage: CheckpointStorage, opCount: () => number, ops: Op[], keyType: KeyType): Promise<Cycle[]> {
  const cycles: Cycle[] = [];
  let start = 0;
  const run = await runWorkload(storage, ops, keyType, {
    before: () => { start = opCount(); },
    after: (i, r) => {
      if (r) cycles.push({ index: i, id: r.id, at: i + 1, incremental: r.incremental, start, end: opCount() });
    },
  });
  await run.backend.close();
  assert.is(run.failure, null, 'the recording run has no faults');
  return cycles;
}

/** Records a fault-free run over FaultyStorage(memory): its cycles and a copy of its op log. */
export async function recordFaultyCycles(seed: number, ops: Op[]): Promise<{ cycles: Cycle[]; log: StorageOp[] }> {
  const faulty = new FaultyStorage(new MemoryCheckpointStorage(), { seed });
  const cycles = await recordCycles(faulty, () => faulty.opCount, ops, keyTypeOf(seed));
  return { cycles, log: faulty.log.map((o) => ({ ...o })) };
}

/**
 * A storage operation's name without the data file's writer token (random per backend), so the
 * operation sequences of two runs compare.
 */
export function opName(name: string): string {
  return name.replace(/-[0-9a-f]{8}\.cks$/, '.cks');
}

/** The index in `log` of the manifest put of the cycle [start, end), or end when it has none. */
export function manifestPutIndex(log: readonly { op: string; name: string }[], start: number, end: number): number {
  for (let k = start; k < end; k++) if (log[k]!.op === 'put' && log[k]!.name.startsWith('manifests/')) return k;
  return end;
}

/** Every data file in storage is referenced by a manifest in storage, and vice versa. */
export async function assertNoGarbage(storage: CheckpointStorage, label: string): Promise<void> {
  const referenced = new Set<string>();
  const names = await storage.list('manifests/');
  for (const name of names) {
    let files;
    try {
      files = referencedFiles(decodeManifest(await storage.get(name), name));
    } catch (e) {
      throw new Error(`${label}: manifest ${name} of ${names.join(', ')} does not decode`, { cause: e });
    }
    for (const f of files) referenced.add(f.name);
  }
  const data = await storage.list('data/');
  assert.equal(data, [...referenced].sort(), `${label}: data files equal the files the kept manifests reference`);
}

/** Awaits `run`, expecting a CairnError of one of `kinds`; returns it. */
export async function expectKind(run: () => Promise<unknown>, kinds: readonly string[], label: string): Promise<CairnError> {
  try {
    await run();
  } catch (e) {
    if (!(e instanceof CairnError)) throw new Error(`${label}: expected a CairnError (${kinds.join(' or ')}), found ${String(e)}`, { cause: e });
    if (!kinds.includes(e.kind)) throw new Error(`${label}: expected a CairnError of kind ${kinds.join(' or ')}, found '${e.kind}': ${e.message}`, { cause: e });
    return e;
  }
  throw new Error(`${label}: expected a CairnError (${kinds.join(' or ')}), found success`);
}

/** The position stored as a checkpoint's meta by runWorkload. */
export function positionOf(meta: unknown): number {
  const at = (meta as { at?: unknown } | undefined)?.at;
  if (typeof at !== 'number') throw new Error(`expected checkpoint meta { at: number }, found ${JSON.stringify(meta)}`);
  return at;
}

/** Prints the one-line coverage figure a file ends with (quoted in the README). */
export function coverage(file: string, line: string): void {
  console.log(`\n[coverage${STRESS ? ' stress' : ''}] ${file}: ${line}`);
}
