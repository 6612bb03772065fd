// Proves `cairn checkpoints list|verify|inspect|dump` report what a checkpoint directory holds:
// list shows each retained checkpoint with its parent, kind, chain, sizes (checked against the files
// on disk) and the run's progress; verify passes a sound directory and, for a flipped byte, a
// truncated file, a missing file or a damaged manifest, exits 1 naming the bad file and failing
// exactly the checkpoints that reference it; inspect shows the operator's spec and meta (and, with
// --json, the manifest itself); dump writes an operator's state as CSV, NDJSON and Arrow equal to an
// oracle computed from the input rows the checkpoint covers. Finally, `cairn run` on a directory whose
// newest checkpoint is damaged resumes from the one before and still writes the same output.
//
// How: `cairn run` is called in-process (main with captured output) on a generated CSV of in-order
// events, with small batches and frequent checkpoints; oracles are plain per-key (and per-window)
// sums over the first N input rows, N taken from each checkpoint's meta.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { main, type CliIo } from '../../src/cli/main.js';
import { decodeManifest, manifestName, referencedFiles, type Manifest } from '../../src/checkpoint/manifest.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-ckcli-'));
const p = (name: string) => join(dir, name);
const ROWS = 2000;
const KEYS = ['alpha', 'b', 'é', 'u,1', 'z9', 'Zed', 'm'];

interface Row {
  user: string;
  ts: number;
  amount: number;
}
const rows: Row[] = Array.from({ length: ROWS }, (_, i) => ({ user: KEYS[(i * 5 + (i >> 3)) % KEYS.length]!, ts: 1000 + i * 10, amount: ((i * 37) % 101) - 50 }));

function fakeIo(): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false }, env: {}, out: () => out, err: () => err };
}

async function cairn(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = fakeIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

const runArgs = (window: string, ckpt: string, output: string) => [
  'run', '--input', p('in.csv'), '--key', 'user', '--time', 'ts', '--window', window, '--agg', 'n=count,s=sum(amount)',
  '--checkpoint-dir', ckpt, '--checkpoint-every', '300', '--batch-rows', '100', '--output', output, '--quiet',
];

function manifestOf(ckpt: string, id: number): Manifest {
  return decodeManifest(new Uint8Array(readFileSync(join(ckpt, manifestName(id)))), manifestName(id));
}

function idsOf(ckpt: string): number[] {
  return readdirSync(join(ckpt, 'manifests')).map((f) => Number(f.slice(0, 12))).sort((a, b) => a - b);
}

/** Rows the checkpoint covers: its meta says how many input rows were read. */
function coveredRows(m: Manifest): number {
  return (m.meta as { source: { rows: number } }).source.rows;
}

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const csvKey = (k: string) => (/[",\n\r]/.test(k) ? `"${k.replaceAll('"', '""')}"` : k);

/** Oracle: per-key count and sum of the first n rows, in key (UTF-8) order. */
function totals(n: number): { user: string; n: number; s: number }[] {
  const by = new Map<string, { n: number; s: number }>();
  for (const r of rows.slice(0, n)) {
    const t = by.get(r.user) ?? { n: 0, s: 0 };
    t.n++;
    t.s += r.amount;
    by.set(r.user, t);
  }
  return [...by.entries()].sort(([a], [b]) => utf8Order(a, b)).map(([user, t]) => ({ user, ...t }));
}

function copyDir(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    if (e.isDirectory()) copyDir(join(from, e.name), join(to, e.name));
    else writeFileSync(join(to, e.name), readFileSync(join(from, e.name)));
  }
}

const CK = p('ck-none');
const OUT = p('out-none.csv');
const CKW = p('ck-tumbling');

test('setup: two runs (running totals, tumbling windows) with checkpoints every 300 rows', async () => {
  writeFileSync(p('in.csv'), 'user,ts,amount\n' + rows.map((r) => `${csvKey(r.user)},${r.ts},${r.amount}`).join('\n') + '\n');
  const a = await cairn(runArgs('none', CK, OUT));
  assert.is(a.code, 0, a.err);
  const b = await cairn(runArgs('tumbling:500ms', CKW, p('out-tumbling.csv')));
  assert.is(b.code, 0, b.err);
  // 2000 rows, a checkpoint after rows 300, 600, ..., 1800, and the final one; 3 retained.
  assert.equal(idsOf(CK), [5, 6, 7]);
  // The run's output is the oracle's final totals.
  assert.is(readFileSync(OUT, 'utf8'), 'user,n,s\n' + totals(ROWS).map((t) => `${csvKey(t.user)},${t.n},${t.s}`).join('\n') + '\n');
});

test('list: ids, parents, kinds, chains, sizes on disk, progress', async () => {
  const r = await cairn(['checkpoints', 'list', CK, '--json']);
  assert.is(r.code, 0, r.err);
  const listed = JSON.parse(r.out) as Record<string, unknown>[];
  assert.equal(listed.map((x) => x['id']), [5, 6, 7]);
  for (const row of listed) {
    const id = row['id'] as number;
    const m = manifestOf(CK, id);
    const manifestBytes = statSync(join(CK, manifestName(id))).size;
    const files = [...new Set(referencedFiles(m).map((f) => f.name))];
    const onDisk = files.reduce((a, f) => a + statSync(join(CK, f)).size, 0);
    const own = m.operators.flatMap((o) => o.chain.filter((l) => l.checkpointId === id).flatMap((l) => l.files));
    assert.is(row['parent'], id - 1);
    assert.is(row['kind'], m.incremental ? 'incremental' : 'full');
    assert.is(row['totalBytes'], onDisk + manifestBytes, `checkpoint ${id}: total bytes`);
    assert.is(row['ownBytes'], own.reduce((a, f) => a + statSync(join(CK, f.name)).size, 0) + manifestBytes, `checkpoint ${id}: own bytes`);
    assert.is(row['files'], own.length + 1);
    assert.is(row['durable'], 'local');
    assert.is(row['events'], id === 7 ? ROWS : coveredRows(m));
    assert.is(row['state'], id === 7 ? 'complete' : 'in progress');
    const chain = m.operators[0]!.chain.map((l) => l.checkpointId);
    assert.ok(String(row['chain']).startsWith(`base ${chain[0]}`), String(row['chain']));
  }
  const text = await cairn(['checkpoints', 'list', CK]);
  assert.is(text.code, 0);
  const lines = text.out.trimEnd().split('\n');
  assert.ok(lines[0]!.startsWith('ID  PARENT  KIND'), lines[0]);
  assert.is(lines.length, 4);
  assert.match(lines[3]!, /^7\s+6\s+\S+.*local.*complete$/);
});

test('verify: a sound directory passes', async () => {
  const r = await cairn(['checkpoints', 'verify', CK]);
  assert.is(r.code, 0, r.out + r.err);
  assert.equal(r.out.trimEnd().split('\n').map((l) => l.split(':')[0]), ['checkpoint 5', 'checkpoint 6', 'checkpoint 7']);
  assert.ok(r.out.split('\n').slice(0, 3).every((l) => l.includes(': ok (')), r.out);
});

test('verify: flipped byte, truncation, missing file, damaged manifest: exit 1 naming the file', async () => {
  const m6 = manifestOf(CK, 6);
  // A data file checkpoint 6 references; every checkpoint referencing it must fail, the rest pass.
  const target = referencedFiles(m6)[0]!.name;
  const users = [5, 6, 7].filter((id) => referencedFiles(manifestOf(CK, id)).some((f) => f.name === target));
  const damages: [string, (path: string) => void, string][] = [
    ['flipped byte', (f) => {
      const b = readFileSync(f);
      b[Math.floor(b.length / 2)]! ^= 0x10;
      writeFileSync(f, b);
    }, 'mismatch'],
    ['truncated', (f) => writeFileSync(f, readFileSync(f).subarray(0, 20)), 'expected'],
    ['missing', (f) => unlinkSync(f), 'not found'],
  ];
  for (const [label, damage, word] of damages) {
    const copy = p(`ck-${label.replace(' ', '-')}`);
    copyDir(CK, copy);
    damage(join(copy, target));
    const r = await cairn(['checkpoints', 'verify', copy]);
    assert.is(r.code, 1, `${label}: ${r.out}`);
    assert.ok(r.err.includes(`${users.length} of 3 checkpoints do not verify`), r.err);
    for (const id of [5, 6, 7]) {
      const line = r.out.split('\n').find((l) => l.startsWith(`checkpoint ${id}:`))!;
      assert.ok(line.includes(users.includes(id) ? 'FAILED' : ': ok'), `${label}: ${line}`);
    }
    const named = r.out.split('\n').filter((l) => l.trim().startsWith(target));
    assert.is(named.length, users.length, `${label}: ${r.out}`);
    assert.ok(named.every((l) => l.includes(word)), `${label}: ${named.join(' | ')}`);
    // Checkpoints that do not use the file still verify one by one.
    for (const id of [5, 6, 7].filter((x) => !users.includes(x))) assert.is((await cairn(['checkpoints', 'verify', copy, '--id', String(id)])).code, 0);
  }
  const copy = p('ck-bad-manifest');
  copyDir(CK, copy);
  const mf = join(copy, manifestName(7));
  const b = readFileSync(mf);
  b[b.length - 3]! ^= 0x01;
  writeFileSync(mf, b);
  const r = await cairn(['checkpoints', 'verify', copy]);
  assert.is(r.code, 1);
  assert.match(r.out, /checkpoint 7: FAILED: manifests\/000000000007\.cmf: .*checksum mismatch/);
  const listed = await cairn(['checkpoints', 'list', copy]);
  assert.is(listed.code, 0);
  assert.match(listed.out, /\n7\s+-\s+unreadable/);
});

test('inspect: spec, watermark, chain and meta; --json is the manifest', async () => {
  const r = await cairn(['checkpoints', 'inspect', CK, '--id', '6']);
  assert.is(r.code, 0, r.err);
  for (const part of ['checkpoint 6:', 'key groups   128 over 1 shard: 0-127 on shard 0', 'operator run (aggregate)', 'key          user (utf8)',
    'time         ts', 'window       none (running aggregates)', 'aggregates   n=count, s=sum(amount)', `events       ${coveredRows(manifestOf(CK, 6))}`, '"tool":"cairn run"']) {
    assert.ok(r.out.includes(part), `inspect lacks ${JSON.stringify(part)}:\n${r.out}`);
  }
  const j = await cairn(['checkpoints', 'inspect', CK, '--json']);
  assert.equal(JSON.parse(j.out), JSON.parse(JSON.stringify(manifestOf(CK, 7))));
});

test('dump: running totals as CSV, NDJSON and Arrow equal the oracle over the rows checkpoint 6 covers', async () => {
  const want = totals(coveredRows(manifestOf(CK, 6)));
  assert.ok(want.length === KEYS.length);
  const csv = await cairn(['checkpoints', 'dump', CK, '--id', '6', '--output', p('state.csv')]);
  assert.is(csv.code, 0, csv.err);
  assert.ok(csv.out.includes(`${want.length} rows`), csv.out);
  assert.is(readFileSync(p('state.csv'), 'utf8'), 'user,n,s\n' + want.map((t) => `${csvKey(t.user)},${t.n},${t.s}`).join('\n') + '\n');
  assert.is((await cairn(['checkpoints', 'dump', CK, '--id', '6', '--operator', 'run', '--output', p('state.ndjson')])).code, 0);
  assert.is(readFileSync(p('state.ndjson'), 'utf8'), want.map((t) => JSON.stringify(t) + '\n').join(''));
  assert.is((await cairn(['checkpoints', 'dump', CK, '--id', '6', '--output', p('state.arrow')])).code, 0);
  const table = tableFromIPC(readFileSync(p('state.arrow')));
  assert.equal(table.toArray().map((r) => { const o = r.toJSON(); return { user: o['user'], n: Number(o['n']), s: o['s'] }; }), want);
});

test('dump: open tumbling windows equal the oracle (windows not yet fired at the checkpoint)', async () => {
  const ids = idsOf(CKW);
  const id = ids[1]!;
  const covered = coveredRows(manifestOf(CKW, id));
  const watermark = rows[covered - 1]!.ts; // in-order input, no out-of-orderness: the largest time so far
  const by = new Map<string, { user: string; start: number; n: number; s: number }>();
  for (const r of rows.slice(0, covered)) {
    const start = Math.floor(r.ts / 500) * 500;
    if (start + 500 <= watermark) continue; // fired and purged
    const k = `${r.user}\u0000${start}`;
    const t = by.get(k) ?? { user: r.user, start, n: 0, s: 0 };
    t.n++;
    t.s += r.amount;
    by.set(k, t);
  }
  const want = [...by.values()].sort((a, b) => utf8Order(a.user, b.user) || a.start - b.start);
  assert.ok(want.length > 0);
  const r = await cairn(['checkpoints', 'dump', CKW, '--id', String(id), '--output', p('windows.csv')]);
  assert.is(r.code, 0, r.err);
  assert.is(
    readFileSync(p('windows.csv'), 'utf8'),
    'user,window_start,window_end,n,s\n' + want.map((t) => `${csvKey(t.user)},${t.start},${t.start + 500},${t.n},${t.s}`).join('\n') + '\n',
  );
});

test('run on a directory whose newest checkpoint is damaged resumes from the previous one: same output', async () => {
  const original = readFileSync(OUT);
  const mf = join(CK, manifestName(7));
  const b = readFileSync(mf);
  b[20]! ^= 0x04;
  writeFileSync(mf, b);
  const r = await cairn(runArgs('none', CK, OUT));
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /resumed from checkpoint 6/);
  assert.ok(original.equals(readFileSync(OUT)), 'the resumed output differs');
  // A new final checkpoint follows. Retention counts only manifests that verify and deletes the
  // damaged one (it can never be restored), so what is left all verifies.
  const listed = JSON.parse((await cairn(['checkpoints', 'list', CK, '--json'])).out) as Record<string, unknown>[];
  assert.equal(listed.at(-1)!['id'], 8);
  assert.equal(listed.at(-1)!['state'], 'complete');
  assert.equal(listed.at(-1)!['parent'], 6);
  assert.ok(!listed.some((c) => c['id'] === 7), 'the damaged manifest was not removed');
  const v = await cairn(['checkpoints', 'verify', CK]);
  assert.is(v.code, 0, v.out);
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
