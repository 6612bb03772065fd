// Proves `cairn checkpoints list|verify|inspect|dump` stay right while a run writing the same
// directory adds checkpoints and its retention removes old ones mid-read: a checkpoint removed
// while it is read is reported as removed (verify) or left out (list), never as damage; verify
// lists the directory again when everything it was reading went; inspect and dump without --id move
// on to the newest checkpoint, and with --id say the checkpoint was removed (exit 1). (A data file
// missing while its manifest stays is still damage: checkpoints.test.ts.)
//
// How: the SDK writes 8 checkpoints of a utf8-keyed running total (retain 100, small delta ratio so
// full bases recur) into FULL. Each case starts from a copy holding checkpoints 1 to 4 only, and
// reads it through a storage whose get runs a hook first. The hook plays the writer: it copies
// checkpoints 5 to 8 in from FULL (data files, then manifests) and then applies retention 3 exactly
// as the coordinator does (manifests of 1 to 5 first, then every data file no kept manifest
// references). Oracles: the manifests on disk decide which checkpoints survive; dumped state is
// checked against per-key sums of the rows ingested before checkpoint 8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { StateBackend, FsCheckpointStorage } from '../../src/index.js';
import { checkpointsCommand, ReadOnlyDirStorage } from '../../src/cli/checkpoints.js';
import type { CliIo } from '../../src/cli/main.js';
import { decodeManifest, manifestName, referencedFiles } from '../../src/checkpoint/manifest.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-ckrace-'));
const FULL = join(dir, 'full');
const CHECKPOINTS = 8;
const KEYS = 40;
/** Rows ingested before checkpoint c (1-based): c batches of BATCH rows. */
const BATCH = 500;

function rowsOf(batch: number): { user: string[]; amount: Float64Array } {
  const user: string[] = [];
  const amount = new Float64Array(BATCH);
  for (let i = 0; i < BATCH; i++) {
    // Early batches touch few keys, later ones many, so deltas grow and new full bases follow.
    user.push(`u${(i * 7 + batch * 13) % Math.min(KEYS, 4 + batch * 5)}`);
    amount[i] = ((i * 31 + batch * 17) % 97) - 40;
  }
  return { user, amount };
}

function refs(root: string, id: number): string[] {
  const name = manifestName(id);
  return [...new Set(referencedFiles(decodeManifest(new Uint8Array(readFileSync(join(root, name))), name)).map((f) => f.name))];
}

function ids(root: string): number[] {
  const m = join(root, 'manifests');
  return existsSync(m) ? readdirSync(m).map((f) => Number(f.slice(0, 12))).sort((a, b) => a - b) : [];
}

function copyFile(from: string, to: string, name: string): void {
  mkdirSync(dirname(join(to, name)), { recursive: true });
  writeFileSync(join(to, name), readFileSync(join(from, name)));
}

/** A copy of FULL holding checkpoints 1 to 4 and their files only. */
function early(name: string): string {
  const d = join(dir, name);
  for (const id of [1, 2, 3, 4]) {
    for (const f of refs(FULL, id)) copyFile(FULL, d, f);
    copyFile(FULL, d, manifestName(id));
  }
  return d;
}

/** The writer: checkpoints 5 to 8 arrive, then retention 3 runs as the coordinator's does. */
function writerCatchesUp(d: string): void {
  for (const id of [5, 6, 7, 8]) {
    for (const f of refs(FULL, id)) if (!existsSync(join(d, f))) copyFile(FULL, d, f);
    copyFile(FULL, d, manifestName(id));
  }
  const kept = ids(d).slice(-3);
  for (const id of ids(d)) if (!kept.includes(id)) unlinkSync(join(d, manifestName(id)));
  const referenced = new Set(kept.flatMap((id) => refs(d, id)));
  for (const rel of readdirSync(join(d, 'data'), { recursive: true, encoding: 'utf8' })) {
    const name = `data/${rel}`;
    if (statSync(join(d, name)).isFile() && !referenced.has(name)) unlinkSync(join(d, name));
  }
}

/** Storage over `d` that calls `hook` (once, at the first get it matches) before reading. */
function racing(match: (name: string) => boolean): (d: string) => ReadOnlyDirStorage {
  return (d) => {
    let fired = false;
    return new (class extends ReadOnlyDirStorage {
      override get(name: string): Promise<Uint8Array> {
        if (!fired && match(name)) {
          fired = true;
          writerCatchesUp(d);
        }
        return super.get(name);
      }
    })(d);
  };
}

async function cairn(args: string[], open?: (d: string) => ReadOnlyDirStorage): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false }, env: {} };
  let code: number;
  try {
    code = await checkpointsCommand(args, io, open);
  } catch (e) {
    err += `${(e as Error).message}\n`;
    code = -1; // thrown: main would print it and exit 1
  }
  return { code, out, err };
}

test('setup: 8 checkpoints, every one kept, bases recurring', async () => {
  const backend = await StateBackend.open({ checkpoints: { storage: new FsCheckpointStorage(FULL), retain: 100, maxDeltaRatio: 0.2 } });
  const totals = backend.aggregate('totals', { key: { field: 'user', type: 'utf8' }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'amount' } } });
  for (let c = 0; c < CHECKPOINTS; c++) {
    await totals.ingest(rowsOf(c));
    await backend.checkpoint();
  }
  await backend.close();
  assert.equal(ids(FULL), [1, 2, 3, 4, 5, 6, 7, 8]);
  // The race below must remove files, not only manifests: checkpoint 1 holds a file 6 to 8 do not.
  const late = new Set([6, 7, 8].flatMap((id) => refs(FULL, id)));
  assert.ok(refs(FULL, 1).some((f) => !late.has(f)), 'checkpoint 1 shares every file with 6 to 8');
});

test('verify: checkpoints removed mid-read are skipped, the directory listed again, the rest verified', async () => {
  const d = early('verify');
  const r = await cairn(['verify', d], racing((n) => n.startsWith('data/')));
  assert.is(r.code, 0, r.out + r.err);
  const lines = r.out.trimEnd().split('\n');
  // 1 lost files while being read; 2 to 4 lost their manifests; then 6 to 8 (5 is gone too).
  for (const id of [1, 2, 3, 4]) assert.is(lines[id - 1], `checkpoint ${id}: removed while it was being verified (retention of a run writing to this directory); skipped`);
  assert.is(lines.length, 7, r.out);
  for (const [i, id] of [6, 7, 8].entries()) assert.ok(lines[4 + i]!.startsWith(`checkpoint ${id}: ok (`), lines[4 + i]);
  assert.is(r.err, '');
});

test('verify --id of a checkpoint removed mid-read: exit 1, saying so', async () => {
  const d = early('verify-id');
  const r = await cairn(['verify', d, '--id', '1'], racing((n) => n.startsWith('data/')));
  assert.is(r.code, 1, r.out + r.err);
  assert.is(r.out, 'checkpoint 1: FAILED: removed while it was being verified\n');
  assert.match(r.err, /^cairn: checkpoint 1 was removed while it was being read \(a run writing to .* keeps only its newest checkpoints\)/);
});

test('list: a checkpoint removed mid-read is left out, not shown unreadable', async () => {
  const d = early('list');
  const r = await cairn(['list', d, '--json'], racing((n) => n === manifestName(2)));
  assert.is(r.code, 0, r.err);
  const rows = JSON.parse(r.out) as { id: number; error?: string }[];
  // Listed 1 to 4; 1 was read before the writer ran; 2 to 4 were removed by then.
  assert.equal(rows.map((x) => x.id), [1]);
  assert.ok(rows.every((x) => x.error === undefined), r.out);
});

test('inspect: without --id the newest checkpoint then; with --id, removed is an error', async () => {
  const d = early('inspect');
  const r = await cairn(['inspect', d], racing((n) => n === manifestName(4)));
  assert.is(r.code, 0, r.err);
  assert.ok(r.out.startsWith('checkpoint 8: '), r.out);
  const d2 = early('inspect-id');
  const r2 = await cairn(['inspect', d2, '--id', '3'], racing((n) => n === manifestName(3)));
  assert.is(r2.code, -1);
  assert.match(r2.err, /^checkpoint 3 was removed while it was being read/);
});

test('dump: without --id the newest checkpoint then, its state equal to the oracle; with --id an error', async () => {
  const d = early('dump');
  const out = join(dir, 'state.ndjson');
  const r = await cairn(['dump', d, '--output', out], racing((n) => n.startsWith('data/')));
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /operator totals of checkpoint 8: \d+ rows/);
  const want = new Map<string, { n: number; s: number }>();
  for (let c = 0; c < CHECKPOINTS; c++) {
    const b = rowsOf(c);
    b.user.forEach((u, i) => {
      const t = want.get(u) ?? { n: 0, s: 0 };
      t.n++;
      t.s += b.amount[i]!;
      want.set(u, t);
    });
  }
  const order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const expected = [...want.entries()].sort(([a], [b]) => order(a, b)).map(([user, t]) => JSON.stringify({ user, ...t }) + '\n').join('');
  assert.is(readFileSync(out, 'utf8'), expected);
  const d2 = early('dump-id');
  const r2 = await cairn(['dump', d2, '--id', '2', '--output', join(dir, 'x.csv')], racing((n) => n.startsWith('data/')));
  assert.is(r2.code, -1);
  assert.match(r2.err, /^checkpoint 2 was removed while it was being read/);
  assert.not.ok(existsSync(join(dir, 'x.csv')), 'a dump of a removed checkpoint wrote its output');
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
