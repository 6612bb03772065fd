// Proves every `cairn` command answers a user's mistake with exactly one line on stderr, starting
// "cairn: error:", saying what was expected and what was found, with exit code 2 and no stack trace;
// that a failure that is not the user's (a checkpoint directory where nothing verifies) gets one line
// and exit code 1, with the stack only under CAIRN_DEBUG=1; that --help works on every command; and
// that --skip-bad counts and skips malformed rows.
//
// How: most cases call the CLI's `main` in-process with captured output (so they also run under
// Deno); a few go through `node bin/cairn.js` as child processes to check the launcher's exit codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { main, type CliIo } from '../../src/cli/main.js';
import { StateBackend, FsCheckpointStorage } from '../../src/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'cairn.js');
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
const NODE = isDeno ? 'node' : process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'cairn-errors-'));
const p = (name: string) => join(dir, name);

function fakeIo(env: Record<string, string> = {}): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s), isTTY: false },
    env,
    out: () => out,
    err: () => err,
  };
}

/** Runs `cairn ARGS` in-process and checks it failed with `code` and one line containing `parts`. */
async function fails(args: string[], code: number, ...parts: string[]): Promise<string> {
  const io = fakeIo();
  const got = await main(args, io);
  const where = `cairn ${args.join(' ')}`;
  assert.is(got, code, `${where}: exit code (stderr: ${io.err()})`);
  const lines = io.err().trimEnd().split('\n');
  assert.is(lines.length, 1, `${where}: expected one line, found:\n${io.err()}`);
  const line = lines[0]!;
  assert.ok(line.startsWith(code === 2 ? 'cairn: error: ' : 'cairn: '), `${where}: ${line}`);
  for (const part of parts) assert.ok(line.includes(part), `${where}: ${JSON.stringify(line)} lacks ${JSON.stringify(part)}`);
  assert.not.match(line, /\bat .*:\d+:\d+/, `${where}: looks like a stack trace`);
  return line;
}

const RUN = (input: string, extra: string[] = [], ckpt = p('ck-' + Math.random().toString(36).slice(2))) => [
  'run', '--input', input, '--key', 'user', '--time', 'ts', '--window', 'tumbling:1m', '--agg', 'n=count,s=sum(amount)',
  '--checkpoint-dir', ckpt, '--output', p('out.csv'), '--quiet', ...extra,
];

test('setup', () => {
  writeFileSync(p('small.csv'), 'user,ts,amount\na,1000,5\nb,2000,3\na,61000,x\na,62000,1\nb,2024-01-01T00:00:00Z,2\nc,yesterday,1\n');
  writeFileSync(p('good.csv'), 'user,ts,amount\na,1000,5\nb,2000,3\na,61000,4\n');
  writeFileSync(p('bad.ndjson'), '{"user":"a","ts":1,"amount":2}\n{"user":"b","ts":2,\n');
  writeFileSync(p('notes.txt'), 'hello\n');
});

test('run: missing file, unknown field, malformed rows with line numbers, bad durations and specs', async () => {
  const ck = p('never');
  await fails(RUN(p('nope.csv'), [], ck), 2, 'cannot open input', 'nope.csv', 'ENOENT');
  assert.not.ok(existsSync(ck), 'a failed run created the checkpoint directory');
  await fails(['run', ...RUN(p('good.csv')).slice(1).map((a) => (a === 'user' ? 'usr' : a))], 2, 'expected a field "usr" in the header', '"user"');
  await fails(RUN(p('good.csv')).map((a) => (a === 'n=count,s=sum(amount)' ? 'n=count,s=sum(amt)' : a)), 2, 'expected a field "amt"');
  await fails(RUN(p('small.csv')), 2, 'small.csv:4:', 'field "amount"', 'expected a number, found "x"');
  await fails(RUN(p('bad.ndjson')), 2, 'bad.ndjson:2:', 'expected a JSON object');
  await fails(RUN(p('good.csv'), ['--out-of-orderness', '5q']), 2, '--out-of-orderness', 'expected a duration', '"5q"');
  await fails(RUN(p('good.csv'), ['--lateness=-1s']), 2, '--lateness', 'expected a duration');
  await fails(RUN(p('good.csv')).map((a) => (a === 'tumbling:1m' ? 'tumbling:1x' : a)), 2, '--window', '"tumbling:1x"');
  await fails(RUN(p('good.csv')).map((a) => (a === 'tumbling:1m' ? 'hopping:1m,7s' : a)), 2, 'divides its size');
  await fails(RUN(p('good.csv')).map((a) => (a === 'n=count,s=sum(amount)' ? 'n=avg(amount)' : a)), 2, '"avg"', 'use mean');
  await fails(RUN(p('good.csv')).map((a) => (a === 'n=count,s=sum(amount)' ? 'user=count' : a)), 2, '--agg', '"user"');
  await fails(RUN(p('good.csv'), ['--bogus']), 2, "'--bogus'", 'cairn run --help');
  await fails(RUN(p('good.csv')).slice(0, -3).concat(['--quiet']), 2, 'expected --output FILE, found it missing');
  await fails(RUN(p('good.csv')).map((a) => (a === p('out.csv') ? p('out.txt') : a)), 2, 'expected an output file ending in .csv');
  await fails(RUN(p('good.csv')).map((a) => (a === p('out.csv') ? p('good.csv') : a)), 2, 'expected --output to differ from --input');
  await fails(RUN(p('notes.txt')), 2, 'expected a file ending in .csv', '--format');
  await fails(RUN(p('good.csv'), ['--checkpoint-every', '0']), 2, '--checkpoint-every between 1');
  await fails(RUN(p('good.csv'), ['--key', 'user:float']), 2, '--key at most once');
  await fails(RUN(p('good.csv')).map((a) => (a === 'user' ? 'user:float' : a)), 2, 'expected key type utf8 or int64');
});

test('run --skip-bad counts and skips malformed rows and keeps the rest', async () => {
  const io = fakeIo();
  const out = p('skipped.csv');
  const args = RUN(p('small.csv'), ['--skip-bad']).map((a) => (a === p('out.csv') ? out : a));
  assert.is(await main(args, io), 0, io.err());
  assert.match(io.out(), /skipped\s+2 malformed rows/);
  assert.match(io.out(), /events\s+4\b/);
  // Kept: a@1000 (5), b@2000 (3), a@62000 (1), b@2024-01-01 (2).
  assert.is(
    readFileSync(out, 'utf8'),
    'user,window_start,window_end,n,s\na,0,60000,1,5\nb,0,60000,1,3\na,60000,120000,1,1\nb,1704067200000,1704067260000,1,2\n',
  );
});

test('run: a directory of other checkpoints is refused (2); one where nothing verifies fails with 1', async () => {
  const foreign = p('foreign');
  const b = await StateBackend.open({ checkpoints: { storage: new FsCheckpointStorage(foreign) } });
  b.aggregate('other', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  await b.checkpoint({ mine: true });
  await b.close();
  await fails(RUN(p('good.csv'), [], foreign), 2, 'written by something else');

  const broken = p('broken');
  assert.is(await main(RUN(p('good.csv'), [], broken), fakeIo()), 0);
  for (const f of readdirSync(join(broken, 'manifests'))) writeFileSync(join(broken, 'manifests', f), 'garbage');
  await fails(RUN(p('good.csv'), [], broken), 1, 'cairn: corruption error:', 'no checkpoint verifies', 'CAIRN_DEBUG=1');
  const debug = fakeIo({ CAIRN_DEBUG: '1' });
  assert.is(await main(RUN(p('good.csv'), [], broken), debug), 1);
  assert.match(debug.err(), /\n\s+at /, 'CAIRN_DEBUG=1 should print the stack');
  // A usage error stays one line, CAIRN_DEBUG=1 or not.
  const usage = fakeIo({ CAIRN_DEBUG: '1' });
  assert.is(await main(RUN(p('good.csv'), [], foreign), usage), 2);
  assert.is(usage.err().trim().split('\n').length, 1, usage.err());
});

test('checkpoints: missing or empty directory, bad action, bad --id, misplaced or missing flags', async () => {
  await fails(['checkpoints', 'list', p('nodir')], 2, 'expected a checkpoint directory', 'nodir');
  mkdirSync(p('empty'));
  const io = fakeIo();
  assert.is(await main(['checkpoints', 'list', p('empty')], io), 0);
  assert.match(io.out(), /no checkpoints/);
  await fails(['checkpoints', 'verify', p('empty')], 2, 'expected checkpoints in', 'found none');
  await fails(['checkpoints', 'frob', p('empty')], 2, 'expected ACTION to be one of list, verify, inspect, dump', '"frob"');
  await fails(['checkpoints', 'list'], 2, 'ACTION DIR');
  const ck = p('ck-admin');
  assert.is(await main(RUN(p('good.csv'), [], ck), fakeIo()), 0);
  await fails(['checkpoints', 'inspect', ck, '--id', '99'], 2, 'expected --id to name a checkpoint', 'found 99');
  await fails(['checkpoints', 'inspect', ck, '--id', 'x'], 2, 'expected --id to be a whole number');
  await fails(['checkpoints', 'dump', ck], 2, 'expected --output FILE with dump');
  await fails(['checkpoints', 'dump', ck, '--output', p('s.txt')], 2, 'expected --output ending in .csv');
  await fails(['checkpoints', 'dump', ck, '--operator', 'nope', '--output', p('s.csv')], 2, 'expected --operator to be one of "run"', '"nope"');
  await fails(['checkpoints', 'list', ck, '--operator', 'run'], 2, 'expected --operator only with dump');
  await fails(['checkpoints', 'verify', ck, '--json'], 2, 'expected --json only with list or inspect');
});

test('generate and demo: bad numbers, generators, extensions and durations', async () => {
  await fails(['generate', 'nexmark', '--events', 'many', '--output', p('b.csv')], 2, 'expected --events to be a whole number', '"many"');
  await fails(['generate', 'tpch', '--events', '10', '--output', p('b.csv')], 2, 'expected GENERATOR to be one of nexmark', '"tpch"');
  await fails(['generate', 'nexmark', '--events', '10', '--output', p('b.txt')], 2, 'expected an output file ending in .csv');
  await fails(['generate', 'nexmark', '--events', '10', '--output', p('b.csv'), '--out-of-orderness', 'soon'], 2, 'expected a duration');
  await fails(['generate', 'nexmark', '--output', p('b.csv')], 2, 'expected --events N, found it missing');
  await fails(['demo', '--events', '0'], 2, 'expected --events between 1');
  await fails(['demo', '--bogus'], 2, "'--bogus'", 'cairn demo --help');
  await fails(['frobnicate'], 2, 'expected a command (run, checkpoints, generate, demo)', '"frobnicate"');
  const io = fakeIo();
  assert.is(await main([], io), 2);
  assert.match(io.err(), /^Usage: cairn <command>/);
});

test('--help on every command prints its usage and exits 0', async () => {
  const cases: [string[], string][] = [
    [['--help'], 'Usage: cairn <command>'],
    [['run', '--help'], 'Usage: cairn run'],
    [['checkpoints', '--help'], 'Usage: cairn checkpoints'],
    [['generate', '-h'], 'Usage: cairn generate'],
    [['demo', '--help'], 'Usage: cairn demo'],
  ];
  for (const [args, want] of cases) {
    const io = fakeIo();
    assert.is(await main(args, io), 0, args.join(' '));
    assert.ok(io.out().startsWith(want), io.out());
    assert.is(io.err(), '');
  }
});

test('through bin/cairn.js: exit codes 0, 2 and 1, one line on stderr', () => {
  const run = (args: string[]) => spawnSync(NODE, [bin, ...args], { cwd: dir, encoding: 'utf8' });
  const help = run(['run', '--help']);
  assert.is(help.status, 0, help.stderr);
  assert.ok(help.stdout.includes('--checkpoint-dir DIR'));
  const missing = run(RUN(p('nope.csv')));
  assert.is(missing.status, 2);
  assert.is(missing.stderr.trimEnd().split('\n').length, 1, missing.stderr);
  assert.ok(missing.stderr.startsWith('cairn: error: cannot open input'), missing.stderr);
  const broken = run(RUN(p('good.csv'), [], p('broken')));
  assert.is(broken.status, 1, broken.stderr);
  assert.is(broken.stderr.trimEnd().split('\n').length, 1, broken.stderr);
  const generated = run(['generate', 'nexmark', '--events', '1000', '--output', p('g.csv')]);
  assert.is(generated.status, 0, generated.stderr);
  assert.is(readFileSync(p('g.csv'), 'utf8').split('\n')[0], 'auction,bidder,price,date_time');
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
