// Proves that damaged checkpoint bytes are always detected and never become state. How: a small
// checkpoint (a delta on top of a full base; two operators, hopping windows and running aggregates)
// is damaged in every way one bit or one cut can damage it: every single-bit flip and every
// truncation point of every file the newest checkpoint references (its delta files, the base files it
// shares with the older checkpoint, and its manifest). After each damage, restoring that checkpoint
// by id must fail with a CairnError 'corruption' naming the file (never another error, a Wasm trap
// or success); restoring the newest checkpoint that verifies must skip exactly the checkpoints that
// reference the damaged file and land on the older one (or fail with 'corruption' when every
// checkpoint references it), checked on every damage, and on a sample with a full restore plus
// replay against the reference models (a denser sample under CAIRN_STRESS). A large
// checkpoint (200K keys, multi-chunk data files) gets random multi-byte damage: overwritten runs,
// zeroed blocks, cuts, appended, inserted and deleted bytes, swapped blocks; each must be detected
// the same way, and restore must fall back to the older checkpoint with exactly its state.
// test/checkpoint/checkpoint.test.ts samples flips on a larger scenario; this file is exhaustive.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, type CheckpointStorage } from '../../src/index.js';
import { mulberry32 } from '../../src/testing/index.js';
import { findCheckpoint } from '../../src/checkpoint/restore.js';
import { decodeManifest, referencedFiles } from '../../src/checkpoint/manifest.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { toColumns, type GenRow } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';
import { genScenario, applyToBackend, declare, checkReplay, type Op } from '../checkpoint/scenario.js';
import { tier, expectKind, positionOf, coverage } from './harness.js';

/** Full restore plus replay against the models on every n-th damage (the fallback is checked on all). */
const REPLAY_STRIDE = tier(127, 7);
const LARGE_KEYS = 200_000;
const LARGE_DAMAGES = tier(16, 300);

const figures = { flips: 0, cuts: 0, files: 0, bytes: 0, fallbacks: 0, replays: 0, noFallback: 0, large: 0, largeBytes: 0 };

interface Stored {
  storage: MemoryCheckpointStorage;
  /** Checkpoint id -> names of the files it needs (its manifest and every referenced data file). */
  needs: Map<number, Set<string>>;
  /** Checkpoint id -> position (ops[0..at) applied). */
  at: Map<number, number>;
}

async function indexCheckpoints(storage: MemoryCheckpointStorage): Promise<Pick<Stored, 'needs' | 'at'>> {
  const needs = new Map<number, Set<string>>();
  const at = new Map<number, number>();
  for (const name of await storage.list('manifests/')) {
    const m = decodeManifest(await storage.get(name), name);
    needs.set(m.id, new Set([name, ...referencedFiles(m).map((f) => f.name)]));
    at.set(m.id, positionOf(m.meta));
  }
  return { needs, at };
}

/** The newest checkpoint that does not need `file`, and the newer ones that do (skipped). */
function fallbackFor(s: Pick<Stored, 'needs'>, file: string): { id: number | null; skipped: number[] } {
  const ids = [...s.needs.keys()].sort((a, b) => b - a);
  const skipped: number[] = [];
  for (const id of ids) {
    if (!s.needs.get(id)!.has(file)) return { id, skipped };
    skipped.push(id);
  }
  return { id: null, skipped };
}

/** Restoring `id` must fail with 'corruption' naming `file`. */
async function expectDetected(storage: CheckpointStorage, id: number, file: string, label: string): Promise<void> {
  const e = await expectKind(() => StateBackend.restore({ storage, checkpointId: id }), ['corruption'], label);
  assert.ok(e.message.includes(`file=${file}`), `${label}: the error names the file: ${e.message}`);
}

/** findCheckpoint (what restore uses) must skip exactly the checkpoints needing `file`. */
async function expectFallback(s: Stored, file: string, label: string): Promise<void> {
  const want = fallbackFor(s, file);
  if (want.id === null) {
    await expectKind(() => findCheckpoint(s.storage), ['corruption'], `${label}: no checkpoint verifies`);
    figures.noFallback++;
    return;
  }
  const found = await findCheckpoint(s.storage);
  assert.is(found.manifest.id, want.id, `${label}: lands on the newest checkpoint not needing ${file}`);
  assert.equal(found.skipped.map((x) => x.id), want.skipped, `${label}: skips exactly the checkpoints needing ${file}`);
  figures.fallbacks++;
}

// -------------------------------------------------------------------------------------------------
// Small checkpoint: exhaustive

async function smallCheckpoints(): Promise<Stored & { ops: Op[]; newest: number }> {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ shards: 2, keyGroups: 4, checkpoints: { storage, retain: 5 } });
  const o = declare(b, 'utf8');
  const ops = genScenario(5, { steps: 12, keyType: 'utf8', keys: 8 }).filter((x) => x.kind !== 'checkpoint' && x.kind !== 'rescale');
  const half = ops.length >> 1;
  for (let i = 0; i < half; i++) await applyToBackend(b, o, ops[i]!, 'utf8');
  const c1 = await b.checkpoint({ at: half });
  for (let i = half; i < ops.length; i++) await applyToBackend(b, o, ops[i]!, 'utf8');
  const c2 = await b.checkpoint({ at: ops.length });
  await b.close();
  assert.is(c1.incremental, false);
  assert.is(c2.incremental, true, 'the newest checkpoint is a delta on a shared base');
  return { storage, ops, newest: c2.id, ...(await indexCheckpoints(storage)) };
}

test('every bit flip and every truncation of a small checkpoint is detected; restore falls back exactly', async () => {
  const s = await smallCheckpoints();
  const files = [...s.needs.get(s.newest)!].sort();
  assert.ok(files.some((f) => f.startsWith('manifests/')) && files.filter((f) => f.startsWith('data/')).length >= 4, files.join(', '));
  let n = 0;
  for (const file of files) {
    const good = await s.storage.get(file);
    figures.files++;
    figures.bytes += good.length;
    const damages: { what: string; bytes: Uint8Array; flip: boolean }[] = [];
    for (let cut = 0; cut < good.length; cut++) damages.push({ what: `truncated to ${cut} bytes`, bytes: good.slice(0, cut), flip: false });
    for (let bit = 0; bit < good.length * 8; bit++) {
      const bytes = good.slice();
      bytes[bit >> 3]! ^= 1 << (bit & 7);
      damages.push({ what: `bit ${bit} flipped`, bytes, flip: true });
    }
    for (const d of damages) {
      const label = `${file} ${d.what}`;
      await s.storage.put(file, d.bytes);
      await expectDetected(s.storage, s.newest, file, label);
      if (d.flip) figures.flips++;
      else figures.cuts++;
      await expectFallback(s, file, label);
      if (n % REPLAY_STRIDE === 0) {
        const want = fallbackFor(s, file);
        if (want.id !== null) {
          const r = await StateBackend.restore({ storage: s.storage });
          assert.is(r.restoreReport!.checkpointId, want.id, label);
          await checkReplay(r, s.ops, s.at.get(want.id)!, 'utf8', `${label}: restored ${want.id}`);
          await r.close();
          figures.replays++;
        }
      }
      n++;
    }
    await s.storage.put(file, good);
  }
  // Undamaged again: the newest restores and is exact (so every failure above was the damage).
  const r = await StateBackend.restore({ storage: s.storage });
  assert.is(r.restoreReport!.checkpointId, s.newest);
  await checkReplay(r, s.ops, s.at.get(s.newest)!, 'utf8', 'undamaged');
  await r.close();
});

// -------------------------------------------------------------------------------------------------
// Large checkpoint: random multi-byte damage

const LARGE_SPEC = {
  key: { field: 'user', type: 'int64' },
  time: 'ts',
  aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'amount' }, l: { fn: 'last', field: 'amount' } },
} as const;

/** Distinct int64 keys spread over the whole range, with times and values (some null). */
function largeRows(n: number, seed: number): GenRow[] {
  const random = mulberry32(seed);
  const rows: GenRow[] = [];
  for (let i = 0; i < n; i++) {
    const key = BigInt.asIntN(64, BigInt(i) * 0x9e3779b97f4a7c15n);
    rows.push({ key, time: i, values: { amount: random() < 0.05 ? null : Math.floor(random() * 2000) - 1000 } });
  }
  return rows;
}

type Damage = { what: string; apply: (x: Uint8Array, random: () => number) => Uint8Array };

const DAMAGES: Damage[] = [
  { what: 'overwrite 1..64 random bytes', apply: (x, random) => {
    const y = x.slice();
    const len = 1 + Math.floor(random() * 64);
    const at = Math.floor(random() * Math.max(1, y.length - len));
    for (let i = at; i < Math.min(y.length, at + len); i++) y[i] = Math.floor(random() * 256);
    return y;
  } },
  { what: 'zero a run of up to 4 KiB', apply: (x, random) => {
    const y = x.slice();
    const len = 1 + Math.floor(random() * 4096);
    const at = Math.floor(random() * y.length);
    y.fill(0, at, at + len);
    return y;
  } },
  { what: 'cut at a random point', apply: (x, random) => x.slice(0, Math.floor(random() * x.length)) },
  { what: 'append random bytes', apply: (x, random) => {
    const extra = Uint8Array.from({ length: 1 + Math.floor(random() * 100) }, () => Math.floor(random() * 256));
    const y = new Uint8Array(x.length + extra.length);
    y.set(x);
    y.set(extra, x.length);
    return y;
  } },
  { what: 'insert random bytes', apply: (x, random) => {
    const at = Math.floor(random() * x.length);
    const extra = Uint8Array.from({ length: 1 + Math.floor(random() * 32) }, () => Math.floor(random() * 256));
    const y = new Uint8Array(x.length + extra.length);
    y.set(x.subarray(0, at));
    y.set(extra, at);
    y.set(x.subarray(at), at + extra.length);
    return y;
  } },
  { what: 'delete a range', apply: (x, random) => {
    const at = Math.floor(random() * x.length);
    const len = 1 + Math.floor(random() * 256);
    const y = new Uint8Array(x.length - Math.min(len, x.length - at));
    y.set(x.subarray(0, at));
    y.set(x.subarray(at + len), at);
    return y;
  } },
  { what: 'swap two 512-byte blocks', apply: (x, random) => {
    const y = x.slice();
    const size = Math.min(512, x.length >> 1);
    const a = Math.floor(random() * (x.length - size));
    const b = Math.floor(random() * (x.length - size));
    y.set(x.subarray(b, b + size), a);
    y.set(x.subarray(a, a + size), b);
    return y;
  } },
];

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

test(`random multi-byte damage of a large checkpoint (${LARGE_KEYS} keys) is detected; restore falls back to the older state exactly`, async () => {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ shards: 2, checkpoints: { storage, retain: 5 } });
  const op = b.aggregate('big', LARGE_SPEC);
  const rows = largeRows(LARGE_KEYS, 7);
  const older = new AggregateModel({ keyType: 'int64', time: true, aggregates: LARGE_SPEC.aggregates as never });
  const head = rows.slice(0, 500);
  await op.ingest(toColumns(head, { keyType: 'int64' }));
  older.ingest(head as never);
  const c1 = await b.checkpoint({ at: 1 });
  await op.ingest(toColumns(rows.slice(500), { keyType: 'int64' }));
  const c2 = await b.checkpoint({ at: 2 });
  await b.close();
  const s: Stored = { storage, ...(await indexCheckpoints(storage)) };
  const files = [...s.needs.get(c2.id)!].sort();
  for (const f of files) figures.largeBytes = Math.max(figures.largeBytes, (await storage.get(f)).length);

  // Undamaged, the large checkpoint restores exactly: so each failure below is the damage's doing.
  const whole = new AggregateModel({ keyType: 'int64', time: true, aggregates: LARGE_SPEC.aggregates as never });
  whole.ingest(rows as never);
  const r2 = await StateBackend.restore({ storage });
  assert.is(r2.restoreReport!.checkpointId, c2.id);
  assert.equal(rowsOf(await r2.aggregate('big', LARGE_SPEC).toArrow(), 'user'), whole.rows(), 'the large checkpoint restores exactly');
  await r2.close();

  const random = mulberry32(2024);
  for (let i = 0; i < LARGE_DAMAGES; i++) {
    // Mostly the big delta files; sometimes the manifest or a shared base file.
    const file = files[Math.floor(random() * files.length)]!;
    const damage = DAMAGES[i % DAMAGES.length]!;
    const good = await storage.get(file);
    let bad = damage.apply(good, random);
    while (sameBytes(bad, good)) bad = damage.apply(good, random);
    const label = `large damage ${i}: ${damage.what} in ${file}`;
    await storage.put(file, bad);
    await expectDetected(storage, c2.id, file, label);
    const want = fallbackFor(s, file);
    if (want.id === null) {
      await expectKind(() => StateBackend.restore({ storage }), ['corruption'], `${label}: no checkpoint verifies`);
    } else {
      assert.is(want.id, c1.id, label);
      const r = await StateBackend.restore({ storage });
      assert.is(r.restoreReport!.checkpointId, c1.id, `${label}: falls back to the older checkpoint`);
      assert.equal(r.restoreReport!.skipped.map((x) => x.id), [c2.id], label);
      assert.equal(rowsOf(await r.aggregate('big', LARGE_SPEC).toArrow(), 'user'), older.rows(), `${label}: the older state, exactly`);
      await r.close();
    }
    await storage.put(file, good);
    figures.large++;
  }
});

test('coverage', () => {
  assert.ok(figures.flips > 0 && figures.cuts > 0 && figures.large > 0);
  coverage(
    'corruption',
    `small checkpoint (${figures.files} files, ${figures.bytes} bytes): ${figures.flips} bit flips + ${figures.cuts} truncations, every one ` +
      `a 'corruption' error naming the file; restore-latest fallback checked ${figures.fallbacks + figures.noFallback} times ` +
      `(${figures.noFallback} with no valid checkpoint left), ${figures.replays} full restores replayed against the models; ` +
      `large checkpoint (${LARGE_KEYS} keys, files up to ${figures.largeBytes} bytes): ${figures.large} random multi-byte damages detected, fallback exact`,
  );
});

test.run();
