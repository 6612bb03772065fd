// Proves that `cairn run` holds its checkpoint directory alone: a directory locked by a live process
// (this one, or a run started alongside) is refused with one line naming the holder, and nothing is
// written to it; a lock whose process is gone (SIGKILL, power loss), or that stayed unreadable, is
// taken over; a lock from another host is never taken over; the lock goes when a run ends, whether
// it succeeded or failed; and FsCheckpointStorage neither lists nor removes the lock file. Also: a
// lock naming this process's pid that this process does not hold (a container restarted after
// kill -9 reuses pid 1) or an earlier boot's lock is stale; a live process's lock is not; and of
// two processes that find the same stale lock at once, exactly one takes the directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { main, type CliIo } from '../../src/cli/main.js';
import { FsCheckpointStorage } from '../../src/index.js';
import { acquireDirLock, BREAK_NAME, BREAK_STALE_MS, LOCK_NAME, PRIVATE_STALE_MS, UNREADABLE_STALE_MS } from '../../src/storage/dir-lock.js';

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
const dir = mkdtempSync(join(tmpdir(), 'cairn-lock-'));
const p = (name: string) => join(dir, name);

function fakeIo(): CliIo & { err: () => string } {
  let err = '';
  return { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s), isTTY: false }, env: {}, err: () => err };
}

const run = (ck: string, input = p('good.csv'), out = p(`out-${Math.random().toString(36).slice(2)}.csv`)) => [
  'run', '--input', input, '--key', 'user', '--time', 'ts', '--window', 'tumbling:1m', '--agg', 'n=count,s=sum(amount)',
  '--checkpoint-dir', ck, '--output', out, '--quiet',
];

/** Names in a checkpoint directory besides the lock. */
const files = (ck: string) => (existsSync(ck) ? readdirSync(ck).filter((n) => n !== LOCK_NAME) : []);

/** A pid that no process has now: one of a child that has exited. */
function deadPid(): number {
  const r = spawnSync(isDeno ? 'node' : process.execPath, ['-e', '']);
  assert.ok(r.pid && r.pid > 0, 'no child pid');
  return r.pid!;
}

/**
 * The pid of a zombie: a child that exited and that its parent (sleep, exec'd by sh) never waits
 * for. It stays a zombie until `stop` kills that parent. Linux only: the state comes from /proc.
 */
async function zombie(): Promise<{ pid: number; stop: () => void }> {
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((done, fail) => {
    parent.stdout!.once('data', (d: Buffer) => done(Number(String(d).trim())));
    parent.once('error', fail);
  });
  for (let i = 0; i < 100 && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1')); i++) await new Promise((r) => setTimeout(r, 20));
  return { pid, stop: () => void parent.kill('SIGKILL') };
}

/** Leaves in `dir` a lock of `owner` (this host, an old start unless given), as another process would. */
function plantLock(dir: string, owner: { pid: number; host?: string; boot?: string }): string {
  mkdirSync(dir, { recursive: true });
  const text = JSON.stringify({ host: hostname(), since: '2026-01-01T00:00:00.000Z', ...owner });
  writeFileSync(join(dir, LOCK_NAME), text);
  return text;
}

/** Sets a file's times to `ms` in the past. */
function age(path: string, ms: number): void {
  const t = (Date.now() - ms) / 1000;
  utimesSync(path, t, t);
}

test('setup', () => {
  writeFileSync(p('good.csv'), 'user,ts,amount\na,1000,5\nb,2000,3\na,61000,4\n');
  writeFileSync(p('bad.csv'), 'user,ts,amount\na,1000,5\nb,2000,x\n');
});

test('a directory locked by a live process is refused, untouched; free again once released', async () => {
  const ck = p('held');
  const lock = await acquireDirLock(ck);
  const io = fakeIo();
  assert.is(await main(run(ck), io), 1, io.err());
  assert.match(io.err(), new RegExp(`is in use by process ${process.pid} on `));
  assert.is(io.err().trimEnd().split('\n').length, 1, io.err());
  assert.equal(files(ck), [], 'the refused run wrote to the directory');
  assert.ok(existsSync(join(ck, LOCK_NAME)), 'the refused run removed the holder\'s lock');
  await lock.release();
  assert.not.ok(existsSync(join(ck, LOCK_NAME)));
  const io2 = fakeIo();
  assert.is(await main(run(ck), io2), 0, io2.err());
  assert.ok(files(ck).length > 0, 'no checkpoint written');
  assert.not.ok(existsSync(join(ck, LOCK_NAME)), 'the lock outlived the run');
});

test('two runs started together on one directory: exactly one runs', async () => {
  const ck = p('race');
  const a = fakeIo();
  const b = fakeIo();
  const codes = await Promise.all([main(run(ck), a), main(run(ck), b)]);
  assert.equal([...codes].sort(), [0, 1], `${a.err()} | ${b.err()}`);
  assert.match(codes[0] === 1 ? a.err() : b.err(), /is in use by /); // a process, or a lock just created and not yet written
  assert.not.ok(existsSync(join(ck, LOCK_NAME)));
});

test('a stale lock (its process is gone) is taken over; one from another host never is', async () => {
  const ck = p('stale');
  plantLock(ck, { pid: deadPid() });
  const io = fakeIo();
  assert.is(await main(run(ck), io), 0, io.err());
  assert.not.ok(existsSync(join(ck, LOCK_NAME)));

  const foreign = p('foreign');
  const theirs = plantLock(foreign, { pid: deadPid(), host: `not-${hostname()}` });
  const io2 = fakeIo();
  assert.is(await main(run(foreign), io2), 1, io2.err());
  assert.match(io2.err(), /in use by process \d+ on not-/);
  assert.is(readFileSync(join(foreign, LOCK_NAME), 'utf8'), theirs, 'a foreign lock was touched');
  assert.equal(files(foreign), []);
});

test('a lock whose process is a zombie (killed, not yet reaped) is stale', async () => {
  if (process.platform !== 'linux') return;
  const z = await zombie();
  try {
    assert.match(readFileSync(`/proc/${z.pid}/stat`, 'latin1'), /\) Z /, 'the planted pid is a zombie');
    const ck = p('zombie');
    plantLock(ck, { pid: z.pid });
    const io = fakeIo();
    assert.is(await main(run(ck), io), 0, io.err());
    assert.not.ok(existsSync(join(ck, LOCK_NAME)));
  } finally {
    z.stop();
  }
});

test('own pid not held here, or an earlier boot: stale; a live process on this boot: held', async () => {
  const mine = p('own-pid');
  plantLock(mine, { pid: process.pid });
  const io = fakeIo();
  assert.is(await main(run(mine), io), 0, io.err());
  assert.not.ok(existsSync(join(mine, LOCK_NAME)));

  let boot: string | null = null;
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    boot = null;
  }
  const parent = process.ppid; // alive: it started this test
  const earlier = p('earlier-boot');
  plantLock(earlier, { pid: parent, boot: 'an-earlier-boot' });
  const io2 = fakeIo();
  // Where the kernel has no boot id to compare, the live pid decides: held.
  assert.is(await main(run(earlier), io2), boot ? 0 : 1, io2.err());

  const live = p('live');
  const theirs = plantLock(live, { pid: parent, ...(boot ? { boot } : {}) });
  const io3 = fakeIo();
  assert.is(await main(run(live), io3), 1, io3.err());
  assert.match(io3.err(), new RegExp(`in use by process ${parent} on `));
  assert.is(readFileSync(join(live, LOCK_NAME), 'utf8'), theirs);
});

test('two processes finding one stale lock: exactly one takes the directory; a dead breaker\'s file goes', async () => {
  const ck = p('break-race');
  plantLock(ck, { pid: deadPid() });
  const mod = new URL('../../src/storage/dir-lock.js', import.meta.url).href;
  // Each child tries once; the winner holds the lock for 2 s, so the other tries while it is held
  // (and may find it still empty, just created: refused as an unreadable lock, which is right too).
  const script = `const { acquireDirLock } = await import(${JSON.stringify(mod)});
try { const l = await acquireDirLock(${JSON.stringify(ck)}); console.log('won'); await new Promise((r) => setTimeout(r, 2000)); await l.release(); }
catch (e) { console.log(e.kind === 'unavailable' && /is in use by /.test(e.message) ? 'refused' : 'error ' + e.message); }`;
  const child = () => new Promise<string>((resolve) => {
    const c = spawn(isDeno ? 'node' : process.execPath, ['--input-type=module', '-e', script]);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('close', () => resolve(out.trim()));
  });
  const got = (await Promise.all([child(), child()])).sort();
  assert.equal(got, ['refused', 'won']);
  assert.not.ok(existsSync(join(ck, LOCK_NAME)));
  assert.not.ok(existsSync(join(ck, BREAK_NAME)));

  // A fresh break file (another process breaking the stale lock, or one that died doing so a
  // moment ago): refused, saying so and naming the file.
  plantLock(ck, { pid: deadPid() });
  writeFileSync(join(ck, BREAK_NAME), '');
  const busy = fakeIo();
  assert.is(await main(run(ck), busy), 1);
  assert.match(busy.err(), /another process is taking over its stale lock \(.*\.cairn-lock\.break exists\)/);
  // A break file left by a process that died while breaking: removed once old, then the stale lock goes.
  plantLock(ck, { pid: deadPid() });
  writeFileSync(join(ck, BREAK_NAME), '');
  age(join(ck, BREAK_NAME), 2 * BREAK_STALE_MS);
  const io = fakeIo();
  assert.is(await main(run(ck), io), 0, io.err());
  assert.not.ok(existsSync(join(ck, BREAK_NAME)));
  // A fresh break file naming a process of this host that is gone (killed while breaking): removed
  // at once, not after BREAK_STALE_MS (a run resumed right after such a kill was refused).
  const ck2 = p('break-dead');
  plantLock(ck2, { pid: deadPid() });
  writeFileSync(join(ck2, BREAK_NAME), JSON.stringify({ pid: deadPid(), host: hostname(), since: '2026-01-01T00:00:00.000Z' }) + '\n');
  const io2 = fakeIo();
  assert.is(await main(run(ck2), io2), 0, io2.err());
  assert.not.ok(existsSync(join(ck2, BREAK_NAME)));
  // One naming this process's own pid that this process is not breaking with (a container restarted
  // after kill -9 runs as pid 1 again): removed at once too.
  const ck4 = p('break-own-pid');
  plantLock(ck4, { pid: deadPid() });
  writeFileSync(join(ck4, BREAK_NAME), JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }) + '\n');
  const io4 = fakeIo();
  assert.is(await main(run(ck4), io4), 0, io4.err());
  assert.not.ok(existsSync(join(ck4, BREAK_NAME)));
  // One naming a live process (the parent of this one stands in for it) is still respected while fresh.
  const ck3 = p('break-live');
  plantLock(ck3, { pid: deadPid() });
  writeFileSync(join(ck3, BREAK_NAME), JSON.stringify({ pid: process.ppid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }) + '\n');
  const io3 = fakeIo();
  assert.is(await main(run(ck3), io3), 1);
  assert.match(io3.err(), /another process is taking over its stale lock/);
  rmSync(join(ck3, BREAK_NAME));
});

test('an unreadable lock is held while fresh and stale once old', async () => {
  const ck = p('unreadable');
  mkdirSync(ck, { recursive: true });
  writeFileSync(join(ck, LOCK_NAME), '');
  const io = fakeIo();
  assert.is(await main(run(ck), io), 1, io.err());
  assert.match(io.err(), /unreadable lock file/);
  age(join(ck, LOCK_NAME), 2 * UNREADABLE_STALE_MS);
  const io2 = fakeIo();
  assert.is(await main(run(ck), io2), 0, io2.err());
  assert.not.ok(existsSync(join(ck, LOCK_NAME)));
});

test('private lock files left by a process killed while locking go once old; fresh ones stay', async () => {
  const d = join(dir, 'private-leftovers');
  mkdirSync(d, { recursive: true });
  const old = join(d, `${LOCK_NAME}-new-999999-abc`);
  const fresh = join(d, `${LOCK_NAME}-new-999998-def`);
  writeFileSync(old, '{}');
  writeFileSync(fresh, '{}');
  age(old, PRIVATE_STALE_MS + 60_000);
  const lock = await acquireDirLock(d);
  assert.not.ok(existsSync(old), 'an old leftover is removed');
  assert.ok(existsSync(fresh), 'a fresh one may be another process locking right now: kept');
  await lock.release();
});

test('a failed run releases the lock', async () => {
  const ck = p('failed');
  const io = fakeIo();
  assert.is(await main(run(ck, p('bad.csv')), io), 2, io.err());
  assert.match(io.err(), /bad\.csv:3:/);
  assert.not.ok(existsSync(join(ck, LOCK_NAME)), 'a failed run left its lock');
  await (await acquireDirLock(ck)).release();
});

test('FsCheckpointStorage neither lists nor removes the lock file', async () => {
  const ck = p('storage');
  const lock = await acquireDirLock(ck);
  const s = new FsCheckpointStorage(ck);
  await s.put('a/b', new Uint8Array([1, 2, 3]));
  assert.equal(await s.list(''), ['a/b']);
  await s.delete('a/b');
  assert.equal(await s.list(''), []);
  assert.ok(existsSync(join(ck, LOCK_NAME)), 'the storage removed the lock');
  await lock.release();
  assert.not.ok(existsSync(join(ck, LOCK_NAME)));
  await lock.release(); // idempotent
});

test('teardown', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
