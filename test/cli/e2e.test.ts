// Proves `cairn run` is exactly once across crashes: a run killed with SIGKILL at any moment and then
// re-run with the same command writes an output byte-identical to an uninterrupted run, for CSV,
// NDJSON and Arrow input and for CSV and NDJSON output, also when the resumed run uses other shard
// and worker settings. Also: re-running a completed run changes nothing, and a run with other output
// options on the same checkpoint directory is refused with one line and exit code 2.
//
// How: real child processes of `node bin/cairn.js run` on a Nexmark bid stream, with out-of-orderness
// below the stream's disorder and a lateness, so late events and late re-fires happen. Crashes come
// two ways: (1) the CAIRN_TEST_CRASH hook makes the child SIGKILL itself at an exact point (while a
// checkpoint's files are being stored, right after they are, between syncing the output and cutting
// the checkpoint, during retention, after an output write); (2) the test sends SIGKILL after a
// seeded random delay, possibly several times in a row. Every crashed run is re-run to completion
// and the output compared byte for byte with the reference run. Children are Node processes (also
// when this file runs under Deno), except in one test where a run crashed under one runtime is
// resumed under the other. A run stopped by SIGTERM, SIGINT or SIGHUP ends by that signal after
// one line, leaves no lock behind, and its re-run writes the same bytes too.
import { mulberry32 as prng } from '../oracle/gen.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { Table, tableFromArrays, tableToIPC } from 'apache-arrow';
import { generateNexmark, nexmarkBids } from '../../src/cli/nexmark.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'cairn.js');
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
const NODE = isDeno ? 'node' : process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'cairn-e2e-'));
const EVENTS = 100_000;
/** Most crashes in a row before the final uninterrupted re-run. */
const KILLS_MAX = 3;

interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The Deno binary the package installs (a dev dependency; the test runner uses it too). */
const DENO = join(root, 'node_modules', '@deno', 'linux-x64-glibc', 'deno');

function cairn(args: string[], options: { env?: Record<string, string>; killAfterMs?: number; deno?: boolean; cwd?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const [cmd, pre] = options.deno === true ? [DENO, ['run', '-A']] : [NODE, []];
    const child = spawn(cmd, [...pre, bin, ...args], { cwd: options.cwd ?? dir, env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}


const bidsCsv = join(dir, 'bids.csv');
const bidsNdjson = join(dir, 'bids.ndjson');
const bidsArrow = join(dir, 'bids.arrow');

function runArgs(input: string, ckpt: string, output: string, extra: string[] = []): string[] {
  return [
    'run', '--input', input, '--key', 'auction:int64', '--time', 'date_time',
    '--window', 'hopping:1s,500ms', '--agg', 'bids=count,top=max(price),avg=mean(price)',
    '--out-of-orderness', '300ms', '--lateness', '200ms',
    '--checkpoint-dir', ckpt, '--checkpoint-every', '20000', '--batch-rows', '4096',
    '--output', output, '--quiet', ...extra,
  ];
}

let counter = 0;
function fresh(ext: string): { ckpt: string; out: string } {
  const n = counter++;
  return { ckpt: join(dir, `ckpt-${n}`), out: join(dir, `out-${n}.${ext}`) };
}

/** Completes a run (after crashes) and checks the result against `reference`. */
async function finishAndCompare(args: string[], out: string, reference: Uint8Array, where: string): Promise<void> {
  const r = await cairn(args);
  assert.is(r.code, 0, `${where}: final run exited ${r.code}: ${r.stderr}`);
  assert.ok(r.stdout.includes('cairn run: done') || r.stdout.includes('already complete'), `${where}: ${r.stdout}`);
  const got = readFileSync(out);
  assert.is(got.length, reference.length, `${where}: output length`);
  assert.ok(Buffer.from(reference).equals(got), `${where}: output differs from the uninterrupted run`);
}

const references = new Map<string, { bytes: Uint8Array; ms: number }>();

/** The uninterrupted output of `input` written as `ext`. */
async function reference(input: string, ext: string): Promise<{ bytes: Uint8Array; ms: number }> {
  const key = `${input}->${ext}`;
  const cached = references.get(key);
  if (cached) return cached;
  const { ckpt, out } = fresh(ext);
  const r = await cairn(runArgs(input, ckpt, out));
  assert.is(r.code, 0, r.stderr);
  const late = /late events\s+(\d+)/.exec(r.stdout);
  assert.ok(late && Number(late[1]) > 0, `the reference run should see late events: ${r.stdout}`);
  const ref = { bytes: readFileSync(out), ms: r.ms };
  references.set(key, ref);
  return ref;
}

test('setup: bid streams as CSV, NDJSON and Arrow', async () => {
  await generateNexmark({ events: EVENTS, seed: 5, output: bidsCsv });
  await generateNexmark({ events: EVENTS, seed: 5, output: bidsNdjson });
  // Arrow record batches of 6 x 4096 rows, so the reader's batches (which end at record batch ends)
  // match the CSV reader's batches of 4096 rows, and so do the watermark advances.
  const batches = [];
  const recordRows = 6 * 4096;
  for (let first = 0; first < EVENTS; first += recordRows) {
    const b = nexmarkBids(Math.min(recordRows, EVENTS - first), 5, { firstBid: first });
    const t = tableFromArrays({ auction: b.auction, bidder: b.bidder, price: b.price, date_time: BigInt64Array.from(b.date_time, (x) => BigInt(x)) });
    batches.push(...t.batches);
  }
  writeFileSync(bidsArrow, tableToIPC(new Table(batches), 'file'));
  const csv = await reference(bidsCsv, 'csv');
  // The same events in another input format give the same bytes.
  assert.ok(Buffer.from((await reference(bidsNdjson, 'csv')).bytes).equals(csv.bytes), 'NDJSON input differs from CSV input');
  assert.ok(Buffer.from((await reference(bidsArrow, 'csv')).bytes).equals(csv.bytes), 'Arrow input differs from CSV input');
});

test('SIGKILL at exact points (during and around checkpoints, retention, writes), then re-run: same bytes', async () => {
  const ref = (await reference(bidsCsv, 'csv')).bytes;
  const points = ['put:1', 'put:4', 'after-put:2', 'after-put:7', 'meta:1', 'meta:4', 'delete:2', 'write:9', 'checkpoint:3', 'checkpoint:5'];
  for (const point of points) {
    const { ckpt, out } = fresh('csv');
    const args = runArgs(bidsCsv, ckpt, out);
    const r = await cairn(args, { env: { CAIRN_TEST_CRASH: point } });
    assert.is(r.signal, 'SIGKILL', `${point}: the run was expected to crash, exited ${r.code}: ${r.stderr}`);
    await finishAndCompare(args, out, ref, point);
  }
});

test('SIGKILL at exact points with NDJSON and Arrow input and NDJSON output', async () => {
  const cases: [string, string, string][] = [
    [bidsNdjson, 'csv', 'put:5'],
    [bidsArrow, 'csv', 'meta:3'],
    [bidsCsv, 'ndjson', 'after-put:3'],
    [bidsArrow, 'jsonl', 'write:12'],
  ];
  for (const [input, ext, point] of cases) {
    const ref = (await reference(input, ext)).bytes;
    const { ckpt, out } = fresh(ext);
    const args = runArgs(input, ckpt, out);
    const r = await cairn(args, { env: { CAIRN_TEST_CRASH: point } });
    assert.is(r.signal, 'SIGKILL', `${input} ${point}: expected a crash, exited ${r.code}: ${r.stderr}`);
    await finishAndCompare(args, out, ref, `${input} -> ${ext} at ${point}`);
  }
});

test('SIGKILL after random delays, several times in a row, then re-run: same bytes', async () => {
  const { bytes: ref, ms } = await reference(bidsCsv, 'csv');
  for (let seed = 1; seed <= 4; seed++) {
    const r = prng(seed);
    const { ckpt, out } = fresh('csv');
    const args = runArgs(bidsCsv, ckpt, out);
    const kills = 1 + Math.floor(r() * KILLS_MAX);
    for (let k = 0; k < kills; k++) {
      // Anywhere from process start-up to a little past the end of a whole run.
      await cairn(args, { killAfterMs: Math.floor(r() * ms * 1.1) });
    }
    await finishAndCompare(args, out, ref, `seed ${seed} (${kills} kills)`);
  }
});

test('a resumed run may use other shards and workers and still writes the same bytes', async () => {
  const ref = (await reference(bidsCsv, 'csv')).bytes;
  const { ckpt, out } = fresh('csv');
  const r = await cairn(runArgs(bidsCsv, ckpt, out), { env: { CAIRN_TEST_CRASH: 'meta:3' } });
  assert.is(r.signal, 'SIGKILL', `first run: code ${r.code}, stderr: ${r.stderr}`);
  const r2 = await cairn(runArgs(bidsCsv, ckpt, out, ['--shards', '3', '--workers']), { env: { CAIRN_TEST_CRASH: 'meta:2' } });
  assert.is(r2.signal, 'SIGKILL', `second run: code ${r2.code}, stderr: ${r2.stderr}`);
  await finishAndCompare(runArgs(bidsCsv, ckpt, out, ['--shards', '2']), out, ref, 'rescaled resume');
});

test('a run crashed under Deno resumes under Node, and the other way round: same bytes', async () => {
  assert.ok(existsSync(DENO), `expected the Deno binary at ${DENO}`);
  const ref = (await reference(bidsCsv, 'csv')).bytes;
  for (const [first, second] of [[true, false], [false, true]] as const) {
    const { ckpt, out } = fresh('csv');
    const args = runArgs(bidsCsv, ckpt, out);
    const r = await cairn(args, { env: { CAIRN_TEST_CRASH: 'meta:4' }, deno: first });
    assert.is(r.signal, 'SIGKILL', `crash under ${first ? 'Deno' : 'Node'}: exited ${r.code}: ${r.stderr}`);
    const r2 = await cairn(args, { deno: second });
    assert.is(r2.code, 0, r2.stderr);
    assert.ok(Buffer.from(ref).equals(readFileSync(out)), `resumed under ${second ? 'Deno' : 'Node'}: output differs`);
  }
});

test('SIGTERM, SIGINT or SIGHUP: the lock removed, one line, ended by the signal; the re-run writes the same bytes', async () => {
  const ref = (await reference(bidsCsv, 'csv')).bytes;
  const cases: [string, boolean][] = [
    ['put:3:SIGTERM', false],
    ['write:7:SIGINT', false],
    ['checkpoint:2:SIGHUP', false],
    ['after-put:4:SIGTERM', true],
    ['write:5:SIGINT', true],
  ];
  for (const [point, deno] of cases) {
    const where = `${point}${deno ? ' under Deno' : ''}`;
    const { ckpt, out } = fresh('csv');
    const args = runArgs(bidsCsv, ckpt, out);
    const r = await cairn(args, { env: { CAIRN_TEST_CRASH: point }, deno });
    const signal = point.split(':')[2]!;
    // Ended by the signal itself (a shell shows 128 + its number), as a supervisor expects.
    assert.is(r.signal, signal, `${where}: code ${r.code}, signal ${r.signal}: ${r.stderr}`);
    assert.is(r.stderr, `cairn: stopped by ${signal}; run the same command again to resume from the last checkpoint\n`, where);
    assert.not.ok(existsSync(join(ckpt, '.cairn-lock')), `${where}: the lock outlived the run`);
    await finishAndCompare(args, out, ref, where);
  }
});

test('re-running a completed run is a no-op; other output options are refused with one line, exit 2', async () => {
  const ref = (await reference(bidsCsv, 'csv')).bytes;
  const { ckpt, out } = fresh('csv');
  const args = runArgs(bidsCsv, ckpt, out);
  const first = await cairn(args);
  assert.is(first.code, 0, first.stderr);
  const before = statSync(out).mtimeMs;
  const again = await cairn(args);
  assert.is(again.code, 0, again.stderr);
  assert.ok(again.stdout.includes('already complete'), again.stdout);
  assert.is(statSync(out).mtimeMs, before, 'the output was touched');
  assert.ok(Buffer.from(ref).equals(readFileSync(out)));
  const changes: [string, string, string][] = [
    ['--window', 'tumbling:10s', 'hopping:1s,500ms'],
    ['--agg', 'bids=count', 'bids=count,top=max(price),avg=mean(price)'],
    ['--out-of-orderness', '2s', '300ms'],
    ['--key', 'bidder:int64', 'auction:int64'],
    ['--batch-rows', '1000', '4096'],
  ];
  for (const [flag, value, was] of changes) {
    const changed = [...args];
    changed[changed.indexOf(flag) + 1] = value;
    const r = await cairn(changed);
    assert.is(r.code, 2, `${flag}: code ${r.code}, signal ${r.signal}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.is(lines.length, 1, r.stderr);
    assert.ok(lines[0]!.startsWith('cairn: error: '), lines[0]);
    assert.ok(lines[0]!.includes(`${flag} ${was}`) && lines[0]!.includes(`${flag} ${value}`), lines[0]);
  }
  assert.ok(Buffer.from(ref).equals(readFileSync(out)), 'a refused run changed the output');
  assert.ok(existsSync(join(ckpt, 'manifests')));
  // Relative paths that read the same but resolve elsewhere (the directory copied): the message
  // names the files, not the same text twice.
  const a = join(dir, 'copied-a');
  const b = join(dir, 'copied-b');
  mkdirSync(a);
  copyFileSync(bidsCsv, join(a, 'bids.csv'));
  const rel = runArgs('bids.csv', 'ck', 'out.csv');
  const done = await cairn(rel, { cwd: a });
  assert.is(done.code, 0, done.stderr);
  cpSync(a, b, { recursive: true });
  const moved = await cairn(rel, { cwd: b });
  assert.is(moved.code, 2, moved.stderr);
  assert.ok(moved.stderr.includes(`--input bids.csv (${JSON.stringify(join(a, 'bids.csv'))})`) && moved.stderr.includes(`--input bids.csv (${JSON.stringify(join(b, 'bids.csv'))})`), moved.stderr);
  // A completed run whose output is gone or changed is not "nothing to do": one line, exit 2.
  for (const [what, damage] of [['missing', () => rmSync(out)], ['shorter', () => writeFileSync(out, ref.subarray(0, 100))]] as const) {
    damage();
    const r = await cairn(args);
    assert.is(r.code, 2, `${what}: code ${r.code}: ${r.stdout} ${r.stderr}`);
    assert.not.ok(r.stdout.includes('already complete'), r.stdout);
    const lines = r.stderr.trimEnd().split('\n');
    assert.is(lines.length, 1, r.stderr);
    assert.ok(lines[0]!.startsWith('cairn: error: this run is already complete'), lines[0]);
    assert.ok(lines[0]!.includes(what === 'missing' ? 'is missing' : 'has 100 bytes'), lines[0]);
  }
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
