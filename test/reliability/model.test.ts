// Proves, model-based, that no sequence of operations, checkpoints, crashes, restores and rescales
// makes Cairn's state differ from the reference models. How: fast-check generates command sequences
// (fc.commands) run by fc.asyncModelRun against a backend with two operators (hopping windows with
// lateness, running aggregates; test/checkpoint/scenario.ts) and against the reference models:
// ingest, advance watermark (the fired rows must equal the models'), delete, checkpoint (awaited, or
// left running while later commands proceed), a transient storage fault a few operations ahead,
// crash (the storage stops mid-flight, the backend is dropped without close, and a new one restores
// from storage onto 1 to 4 shards), graceful close and restore onto another shard count, restore of
// an older retained checkpoint by id, and rescale. The model keeps, for every acknowledged checkpoint
// (its promise resolved), the operations it holds; after a restore the backend must be at exactly the
// newest acknowledged checkpoint (or the one asked for) and match the models from there on. Running
// state and late-event counts are compared after every command, and every window fires the same
// rows at the end. fast-check prints the seed and the shrunk command list of a failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { StateBackend, MemoryCheckpointStorage, CairnError } from '../../src/index.js';
import { FaultyStorage } from '../../src/testing/index.js';
import { manifestIdOf } from '../../src/checkpoint/manifest.js';
import { Reference, applyToBackend, declare, type Op, type Operators } from '../checkpoint/scenario.js';
import type { GenRow } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';
import { tier, coverage, type KeyType } from './harness.js';

// Failures print the seed, the shrunk counterexample and the error itself.
fc.configureGlobal({ includeErrorInReport: true });

const RUNS = tier(250, 3000);
const COMMANDS_MAX = tier(40, 80);
const RETAIN = 2;
const KEY_GROUPS = 16;
const KEYS = 12;
const END_OF_TIME = 10_000_000;

interface Model {
  keyType: KeyType;
  ref: Reference;
  /** Operations applied since the state began (replayed into `ref`). */
  log: Op[];
  /** Acknowledged checkpoint id -> the operations it holds. */
  acked: Map<number, Op[]>;
  /** Event-time base for generated rows; grows with every ingest. */
  clock: number;
}

interface Real {
  inner: MemoryCheckpointStorage;
  /** This backend's view of the storage; crash() stops it, a restored backend gets a new one. */
  faulty: FaultyStorage;
  backend: StateBackend;
  o: Operators;
  /** Checkpoints started and not awaited; they never reject (see Checkpoint). */
  pending: Promise<void>[];
  /** Errors of checkpoints other than a storage fault's 'unavailable': each one fails the run. */
  unexpected: unknown[];
}

type Cmd = fc.AsyncCommand<Model, Real>;

const figures = { runs: 0, commands: 0, crashes: 0, restores: 0, older: 0, rescales: 0, checkpoints: 0, failedCheckpoints: 0, emptyRestores: 0 };

function keyOf(keyType: KeyType, k: number): string | bigint {
  return keyType === 'int64' ? BigInt(k) * 1_000_003n - 5n : k % 4 === 3 ? `ключ${k}` : `k${k}`;
}

function show(x: unknown): string {
  return JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

async function compareNow(m: Model, r: Real, label: string): Promise<void> {
  assert.equal(rowsOf(await r.o.r.toArrow(), 'user'), m.ref.r.rows(), `${label}: running state`);
  assert.is(await r.o.w.lateEvents(), m.ref.w.lateEvents, `${label}: late events`);
}

function replay(keyType: KeyType, log: Op[]): Reference {
  const ref = new Reference(keyType);
  for (const op of log) ref.apply(op);
  return ref;
}

function newFaulty(r: Real): FaultyStorage {
  return new FaultyStorage(r.inner, { seed: 1 });
}

/** Settles every checkpoint still running (each records itself in `acked` if it resolved). */
async function settle(r: Real): Promise<void> {
  await Promise.all(r.pending);
  r.pending = [];
  if (r.unexpected.length) throw new Error(`a checkpoint failed with other than a storage fault: ${String(r.unexpected[0])}`, { cause: r.unexpected[0] });
}

/**
 * Restores from storage onto `shards` (or the checkpoint's own count): the newest acknowledged
 * checkpoint, or `checkpointId`. With none acknowledged, restore must fail and a new backend starts
 * from nothing. Then the backend must equal the models at that checkpoint.
 */
async function restoreInto(m: Model, r: Real, shards: number | undefined, checkpointId: number | undefined, label: string): Promise<void> {
  r.faulty = newFaulty(r);
  const ids = [...m.acked.keys()];
  if (ids.length === 0) {
    try {
      await StateBackend.restore({ storage: r.faulty });
      assert.unreachable(`${label}: restore succeeded with no acknowledged checkpoint`);
    } catch (e) {
      if (!(e instanceof CairnError) || e.kind !== 'unavailable') throw e;
    }
    r.backend = await StateBackend.open({ shards: shards ?? 1, keyGroups: KEY_GROUPS, checkpoints: { storage: r.faulty, retain: RETAIN } });
    m.log = [];
    figures.emptyRestores++;
  } else {
    const want = checkpointId ?? Math.max(...ids);
    r.backend = await StateBackend.restore({
      storage: r.faulty, retain: RETAIN,
      ...(shards !== undefined ? { shards } : {}),
      ...(checkpointId !== undefined ? { checkpointId } : {}),
    });
    assert.is(r.backend.restoreReport!.checkpointId, want, `${label}: restored checkpoint (acknowledged: ${ids.join(', ')})`);
    assert.equal(r.backend.restoreReport!.skipped, [], `${label}: nothing skipped`);
    if (shards !== undefined) assert.is(r.backend.shardCount, shards, label);
    m.log = m.acked.get(want)!.slice();
  }
  m.ref = replay(m.keyType, m.log);
  r.o = declare(r.backend, m.keyType);
  await compareNow(m, r, label);
}

class Ingest implements Cmd {
  constructor(readonly rows: { k: number; dt: number; v: number | null }[]) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    const rows: GenRow[] = this.rows.map((x) => ({ key: keyOf(m.keyType, x.k), time: m.clock + x.dt, values: { amount: x.v } }));
    m.clock += 40;
    const op: Op = { kind: 'ingest', rows };
    await applyToBackend(r.backend, r.o, op, m.keyType);
    m.ref.apply(op);
    m.log.push(op);
    await compareNow(m, r, this.toString());
  }
  toString(): string { return `Ingest(${show(this.rows)})`; }
}

class Advance implements Cmd {
  constructor(readonly behind: number) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    const op: Op = { kind: 'advance', t: m.clock - this.behind };
    const got = await applyToBackend(r.backend, r.o, op, m.keyType);
    assert.equal(got, m.ref.apply(op), `${this}: fired rows`);
    m.log.push(op);
    await compareNow(m, r, this.toString());
  }
  toString(): string { return `Advance(clock - ${this.behind})`; }
}

class Delete implements Cmd {
  constructor(readonly k: number) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    const key = keyOf(m.keyType, this.k);
    const existed = m.ref.r.get(key) !== undefined;
    assert.is(await r.o.r.delete(key), existed, `${this}: delete reports whether the key existed`);
    const op: Op = { kind: 'delete', key };
    m.ref.apply(op);
    m.log.push(op);
    await compareNow(m, r, this.toString());
  }
  toString(): string { return `Delete(${this.k})`; }
}

class Checkpoint implements Cmd {
  constructor(readonly wait: boolean) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    const holds = m.log.slice();
    const acked = m.acked;
    figures.checkpoints++;
    const p = r.backend.checkpoint().then(
      (res) => { acked.set(res.id, holds); },
      (e: unknown) => {
        // Only a storage fault may fail a checkpoint, and that is retryable.
        if (!(e instanceof CairnError) || e.kind !== 'unavailable') r.unexpected.push(e);
        figures.failedCheckpoints++;
      },
    );
    r.pending.push(p);
    if (this.wait) await settle(r);
  }
  toString(): string { return `Checkpoint(${this.wait ? 'await' : 'in background'})`; }
}

class Hiccup implements Cmd {
  constructor(readonly ahead: number, readonly code: 'EIO' | 'ENOSPC') {}
  check(): boolean { return true; }
  async run(_m: Model, r: Real): Promise<void> {
    r.faulty.failAt(r.faulty.opCount + this.ahead, { kind: 'transient', code: this.code });
  }
  toString(): string { return `Hiccup(${this.code} at storage op +${this.ahead})`; }
}

class Crash implements Cmd {
  constructor(readonly shards: number | undefined) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    // The process dies: its storage stops now, checkpoints in flight fail or finish (a finished one
    // was acknowledged), and the backend is dropped without close.
    r.faulty.crash();
    await settle(r);
    figures.crashes++;
    await restoreInto(m, r, this.shards, undefined, this.toString());
  }
  toString(): string { return `Crash(restore onto ${this.shards ?? 'the same'} shards)`; }
}

class Restore implements Cmd {
  constructor(readonly shards: number) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    await new Checkpoint(true).run(m, r);
    await settle(r);
    await r.backend.close();
    figures.restores++;
    await restoreInto(m, r, this.shards, undefined, this.toString());
  }
  toString(): string { return `Restore(checkpoint, close, restore onto ${this.shards} shards)`; }
}

class RestoreOlder implements Cmd {
  constructor(readonly pick: number) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    await settle(r);
    const ids = (await r.inner.list('manifests/')).map(manifestIdOf).filter((x): x is number => x !== null);
    if (ids.length === 0) return;
    const id = ids[this.pick % ids.length]!;
    assert.ok(m.acked.has(id), `${this}: checkpoint ${id} in storage was acknowledged`);
    await r.backend.close();
    figures.older++;
    await restoreInto(m, r, undefined, id, `${this} = ${id}`);
  }
  toString(): string { return `RestoreOlder(retained #${this.pick})`; }
}

class Rescale implements Cmd {
  constructor(readonly shards: number) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    await r.backend.rescale(this.shards);
    figures.rescales++;
    await compareNow(m, r, this.toString());
  }
  toString(): string { return `Rescale(${this.shards})`; }
}

const rowArb = fc.record({
  k: fc.integer({ min: 0, max: KEYS - 1 }),
  dt: fc.integer({ min: -250, max: 100 }),
  v: fc.option(fc.integer({ min: -1000, max: 1000 }), { freq: 10 }),
});

const commandArbs: fc.Arbitrary<Cmd>[] = [
  fc.array(rowArb, { minLength: 1, maxLength: 25 }).map((rows) => new Ingest(rows)),
  fc.array(rowArb, { minLength: 1, maxLength: 25 }).map((rows) => new Ingest(rows)),
  fc.integer({ min: -50, max: 500 }).map((behind) => new Advance(behind)),
  fc.integer({ min: 0, max: KEYS - 1 }).map((k) => new Delete(k)),
  fc.boolean().map((wait) => new Checkpoint(wait)),
  fc.boolean().map((wait) => new Checkpoint(wait)),
  fc.tuple(fc.integer({ min: 0, max: 12 }), fc.constantFrom('EIO' as const, 'ENOSPC' as const)).map(([a, c]) => new Hiccup(a, c)),
  fc.option(fc.integer({ min: 1, max: 4 }), { freq: 3 }).map((s) => new Crash(s ?? undefined)),
  fc.integer({ min: 1, max: 4 }).map((s) => new Restore(s)),
  fc.nat(5).map((p) => new RestoreOlder(p)),
  fc.integer({ min: 1, max: 4 }).map((s) => new Rescale(s)),
];

test('model-based: ingest, watermarks, deletes, checkpoints, crashes, restores, rescales agree with the reference models', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<KeyType>('int64', 'utf8'),
      fc.integer({ min: 1, max: 3 }),
      fc.commands(commandArbs, { maxCommands: COMMANDS_MAX, size: 'max' }),
      async (keyType, shards, cmds) => {
        const inner = new MemoryCheckpointStorage();
        const faulty = new FaultyStorage(inner, { seed: 1 });
        const backend = await StateBackend.open({ shards, keyGroups: KEY_GROUPS, checkpoints: { storage: faulty, retain: RETAIN } });
        const model: Model = { keyType, ref: new Reference(keyType), log: [], acked: new Map(), clock: 1000 };
        const real: Real = { inner, faulty, backend, o: declare(backend, keyType), pending: [], unexpected: [] };
        let n = 0;
        for (const _ of cmds) n++;
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await settle(real);
        // Every window fires the same rows at the end of time; running state and late counts agree.
        const end: Op = { kind: 'advance', t: END_OF_TIME };
        assert.equal(await applyToBackend(real.backend, real.o, end, keyType), model.ref.apply(end), 'final firing');
        await compareNow(model, real, 'at the end');
        await real.backend.close();
        figures.runs++;
        figures.commands += n;
      },
    ),
    { numRuns: RUNS },
  );
});

test('coverage', () => {
  assert.ok(figures.runs > 0 && figures.crashes > 0 && figures.restores > 0);
  coverage(
    'model',
    `${figures.runs} runs, ${figures.commands} commands: ${figures.checkpoints} checkpoints (${figures.failedCheckpoints} failed by injected faults), ` +
      `${figures.crashes} crashes, ${figures.restores} restores onto another shard count, ${figures.older} restores of an older checkpoint, ` +
      `${figures.rescales} rescales, ${figures.emptyRestores} restarts before any checkpoint; state always equal to the reference models`,
  );
});

test.run();
