// Proves `cairn run` makes a misspelt NDJSON field visible without refusing sparse fields: an aggregated
// field that no event of the input has gets exactly one warning line on stderr (also with --quiet), the
// exit code stays 0 and stdout and the output file are what they would be without the warning; a
// field present in only some records, or present with null in every record, gets no warning; a run
// resumed after a crash judges every event of the run, not only the ones it read itself; CSV input is
// unchanged (a misspelt field is still refused before any row is read, exit 2).
//
// How: small hand-written files whose windows are easy to check by eye. Most cases call the CLI's
// `main` in-process with captured output (so they also run under Deno); the resume case runs
// `node bin/cairn.js` as child processes, crashing the first one with the CAIRN_TEST_CRASH hook.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { main, type CliIo } from '../../src/cli/main.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'cairn.js');
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
const NODE = isDeno ? 'node' : process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'cairn-run-warnings-'));
const p = (name: string) => join(dir, name);

function fakeIo(): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s), isTTY: false },
    env: {},
    out: () => out,
    err: () => err,
  };
}

let counter = 0;
/** `cairn run` arguments over `input` with a fresh checkpoint directory and output file. */
function runArgs(input: string, agg: string, extra: string[] = []): { args: string[]; output: string } {
  const n = counter++;
  const output = p(`out-${n}.csv`);
  const args = [
    'run', '--input', input, '--key', 'user', '--time', 'ts', '--window', 'tumbling:1m', '--agg', agg,
    '--checkpoint-dir', p(`ck-${n}`), '--output', output, ...extra,
  ];
  return { args, output };
}

/** Runs in-process and returns the exit code, stdout, stderr and the output file. */
async function run(input: string, agg: string, extra: string[] = ['--quiet']): Promise<{ code: number; out: string; err: string; output: string }> {
  const { args, output } = runArgs(input, agg, extra);
  const io = fakeIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err(), output: code === 0 ? readFileSync(output, 'utf8') : '' };
}

// The same three events spelled four ways: with price, with a misspelt key, with price in some
// records only, and with price null in every record.
const EVENTS = [
  { user: 'a', ts: 1000, price: 5 },
  { user: 'b', ts: 2000, price: 3 },
  { user: 'a', ts: 61000, price: 1 },
];
const ndjson = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

test('setup', () => {
  writeFileSync(p('good.ndjson'), ndjson(EVENTS));
  writeFileSync(p('typo.ndjson'), ndjson(EVENTS.map(({ price, ...rest }) => ({ ...rest, prcie: price }))));
  writeFileSync(p('sparse.ndjson'), ndjson(EVENTS.map((e, i) => (i === 1 ? e : { user: e.user, ts: e.ts }))));
  writeFileSync(p('nulls.ndjson'), ndjson(EVENTS.map((e) => ({ ...e, price: null }))));
  writeFileSync(p('good.csv'), 'user,ts,price\na,1000,5\nb,2000,3\na,61000,1\n');
  writeFileSync(p('empty-column.csv'), 'user,ts,price\na,1000,\nb,2000,\na,61000,\n');
  writeFileSync(p('all-bad.ndjson'), '{"user":"a","ts":"soon"}\n{"ts":1}\n');
});

test('NDJSON: a field in no record gets one warning on stderr; exit 0, stdout and output unchanged', async () => {
  const r = await run(p('typo.ndjson'), 'n=count,s=sum(price)');
  assert.is(r.code, 0, r.err);
  assert.is(
    r.err,
    `cairn: warning: --agg field "price" is missing from all 3 events read from ${p('typo.ndjson')}, so "s" is null in every output row (a misspelt name?)\n`,
  );
  assert.is(r.output, 'user,window_start,window_end,n,s\na,0,60000,1,\nb,0,60000,1,\na,60000,120000,1,\n');
  // stdout is the summary alone, as for a run without the warning.
  const lines = r.out.trimEnd().split('\n');
  assert.equal(lines.slice(0, 4), ['cairn run: done', '  events       3', '  skipped      0 malformed rows', '  late events  0']);
  assert.equal(lines.slice(4).map((l) => l.split(/\s+/)[1]), ['windows', 'throughput', 'checkpoints']);
});

test('NDJSON: one line per absent field, naming each aggregate over it (count is 0, the rest null)', async () => {
  const r = await run(p('typo.ndjson'), 'n=count(price),s=sum(price),m=max(price),c=count,t=sum(tax),ok=sum(prcie)');
  assert.is(r.code, 0, r.err);
  const from = `read from ${p('typo.ndjson')}`;
  assert.equal(r.err.split('\n'), [
    `cairn: warning: --agg field "price" is missing from all 3 events ${from}, so "s" and "m" are null and "n" is 0 in every output row (a misspelt name?)`,
    `cairn: warning: --agg field "tax" is missing from all 3 events ${from}, so "t" is null in every output row (a misspelt name?)`,
    '',
  ]);
  assert.is(r.output.split('\n')[1], 'a,0,60000,0,,,1,,5');
});

test('NDJSON: the warning prints without --quiet too, after the progress line', async () => {
  const r = await run(p('typo.ndjson'), 's=sum(price)', []);
  assert.is(r.code, 0, r.err);
  const lines = r.err.trimEnd().split('\n');
  assert.match(lines[0]!, /^done: 3 events/);
  assert.is(lines.length, 2, r.err);
  assert.ok(lines[1]!.startsWith('cairn: warning: --agg field "price" is missing from all 3 events'), lines[1]);
});

test('NDJSON: a sparse field, or one null in every record, or a run with no events gets no warning', async () => {
  const sparse = await run(p('sparse.ndjson'), 'n=count,s=sum(price)');
  assert.is(sparse.code, 0, sparse.err);
  assert.is(sparse.err, '');
  assert.is(sparse.output, 'user,window_start,window_end,n,s\na,0,60000,1,\nb,0,60000,1,3\na,60000,120000,1,\n');
  // Present with null is not absent: the name is right, the data holds no value.
  const nulls = await run(p('nulls.ndjson'), 'n=count,s=sum(price)');
  assert.is(nulls.code, 0, nulls.err);
  assert.is(nulls.err, '');
  assert.is(nulls.output, 'user,window_start,window_end,n,s\na,0,60000,1,\nb,0,60000,1,\na,60000,120000,1,\n');
  // Every row malformed and skipped: no event, nothing to judge.
  const none = await run(p('all-bad.ndjson'), 's=sum(price)', ['--quiet', '--skip-bad']);
  assert.is(none.code, 0, none.err);
  assert.is(none.err, '');
  assert.match(none.out, /skipped\s+2 malformed rows/);
});

test('CSV: a misspelt field is still refused before any row (exit 2); an empty column gets no warning', async () => {
  const typo = await run(p('good.csv'), 'n=count,s=sum(prcie)');
  assert.is(typo.code, 2);
  assert.is(typo.err.trimEnd().split('\n').length, 1, typo.err);
  assert.ok(typo.err.startsWith('cairn: error: ') && typo.err.includes('expected a field "prcie"'), typo.err);
  const empty = await run(p('empty-column.csv'), 'n=count,s=sum(price)');
  assert.is(empty.code, 0, empty.err);
  assert.is(empty.err, '');
  assert.is(empty.output, 'user,window_start,window_end,n,s\na,0,60000,1,\nb,0,60000,1,\na,60000,120000,1,\n');
});

test('a resumed run judges every event of the run, not only the rest of the file it read', () => {
  // price only in the first two of eight records; a checkpoint after every batch of two rows.
  const rows = Array.from({ length: 8 }, (_, i) => ({ user: 'u', ts: i * 1000, ...(i < 2 ? { price: i + 1 } : {}) }));
  writeFileSync(p('early.ndjson'), ndjson(rows));
  const cairn = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(NODE, [bin, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
  for (const [agg, warned] of [['s=sum(price)', false], ['s=sum(prcie)', true]] as const) {
    const { args } = runArgs(p('early.ndjson'), agg, ['--batch-rows', '2', '--checkpoint-every', '2', '--quiet']);
    // Killed after the second checkpoint: the resumed run reads only records 5 to 8, none with price.
    const crashed = cairn(args, { CAIRN_TEST_CRASH: 'checkpoint:2' });
    assert.is(crashed.signal, 'SIGKILL', `${agg}: expected a crash, exited ${crashed.status}: ${crashed.stderr}`);
    const resumed = cairn(args);
    assert.is(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stdout, /events\s+8 \(4 in this run, resumed from checkpoint 2\)/);
    const expected = warned
      ? `cairn: warning: --agg field "prcie" is missing from all 8 events read from ${p('early.ndjson')}, so "s" is null in every output row (a misspelt name?)\n`
      : '';
    assert.is(resumed.stderr, expected, agg);
  }
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
