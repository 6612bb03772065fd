// Proves FsCheckpointStorage is atomic and durable under faults and crashes. On the simulated file
// system (which drops every write, creation and rename not made durable by fsync when it "crashes"),
// it injects each fault (short write, ENOSPC, a lost rename, EIO) at every file-system call a put
// makes, then crashes, and also crashes at every call without a fault; a new store on the surviving
// state must always read the old object or the new one, whole, with no temp file left. A sanity test
// shows the simulator really loses unsynced data, so these tests would catch a missing fsync. On a
// real directory, faults injected through FsOps (ENOSPC mid-write, EIO on fsync, EACCES) leave the old
// object and no temp file, errno codes reach the error, stale temp files are removed, and emptied
// directories go away.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnError } from '../../src/errors.js';
import { type FsOps, FsCheckpointStorage, nodeFsOps, TEMP_PREFIX } from '../../src/storage/fs.js';
import { type SimulatedFault, SimulatedFs } from '../../src/testing/simulated-fs.js';
import { equalBytes, expectCairnError } from '../codec/fixtures.js';

const ROOT = '/data/store';
const OLD = new Uint8Array(3000).fill(1);
const NEW = new Uint8Array(10_000).map((_, i) => (i * 7) & 0xff);
const OTHER = new Uint8Array([9, 9]);
const FAULTS: SimulatedFault[] = ['short-write', 'enospc', 'rename-lost', 'eio'];

function codeError(code: string): Error {
  return Object.assign(new Error(`${code}: injected`), { code });
}

function tempFiles(sim: SimulatedFs): string[] {
  return sim.files().filter((p) => p.split('/').pop()!.startsWith(TEMP_PREFIX));
}

/** A store with 'chk/a' = OLD (if withOld) and 'other' = OTHER, both durable. */
async function setup(withOld: boolean): Promise<{ sim: SimulatedFs; storage: FsCheckpointStorage }> {
  const sim = new SimulatedFs();
  const storage = new FsCheckpointStorage(ROOT, { fs: sim });
  if (withOld) await storage.put('chk/a', OLD);
  await storage.put('other', OTHER);
  return { sim, storage };
}

/** Reads 'chk/a' and asserts it is one of the allowed values, whole; returns which. */
async function readState(storage: FsCheckpointStorage, allowed: ('old' | 'new' | 'missing')[], what: string): Promise<string> {
  let state: string;
  try {
    const bytes = await storage.get('chk/a');
    state = equalBytes(bytes, NEW) ? 'new' : equalBytes(bytes, OLD) ? 'old' : `partial (${bytes.length} bytes)`;
  } catch (e) {
    if (!(e instanceof CairnError && e.kind === 'unavailable')) throw e;
    state = 'missing';
  }
  assert.ok((allowed as string[]).includes(state), `${what}: expected ${allowed.join(' or ')}, found ${state}`);
  assert.ok(equalBytes(await storage.get('other'), OTHER), `${what}: unrelated object intact`);
  return state;
}

/** The op indexes of one fault-free put of 'chk/a' after setup. */
async function putOpRange(withOld: boolean): Promise<{ start: number; end: number; ops: string[] }> {
  const { sim, storage } = await setup(withOld);
  const start = sim.opCount;
  await storage.put('chk/a', NEW);
  return { start, end: sim.opCount, ops: sim.log.slice(start).map((o) => o.op) };
}

test('the simulator loses what was not made durable', async () => {
  const sim = new SimulatedFs();
  await sim.mkdir('/d');
  await sim.fsyncDir('/');
  const h2 = await sim.open('/d/unsynced-data');
  await sim.write(h2, new Uint8Array([1, 2]));
  await sim.fsyncDir('/d'); // the entry is durable, its data not yet
  await sim.write(h2, new Uint8Array([3]));
  await sim.fsync(h2); // now [1, 2, 3] is durable
  await sim.write(h2, new Uint8Array([4]));
  const h1 = await sim.open('/d/unsynced-entry');
  await sim.write(h1, new Uint8Array([1]));
  await sim.fsync(h1); // data durable, the entry not
  await sim.rename('/d/unsynced-data', '/d/renamed');
  await sim.mkdir('/d/new-dir');
  sim.crash();
  assert.equal(sim.files(), ['/d/unsynced-data']);
  assert.equal(Array.from(await sim.readFile('/d/unsynced-data')), [1, 2, 3]);
  await expectCairnError(async () => {
    try {
      await sim.write(h2, new Uint8Array([5]));
    } catch (e) {
      throw new CairnError('unavailable', String(e), { cause: e });
    }
  }, 'unavailable');
});

test('resolved puts and deletes survive a crash, nested directories included', async () => {
  const { sim, storage } = await setup(true);
  await storage.put('chk-1/data/deep/part-0', NEW);
  await storage.put('chk/a', NEW);
  await storage.delete('other');
  sim.crash();
  const after = new FsCheckpointStorage(ROOT, { fs: sim });
  assert.ok(equalBytes(await after.get('chk-1/data/deep/part-0'), NEW));
  assert.ok(equalBytes(await after.get('chk/a'), NEW));
  assert.equal(await after.list(''), ['chk-1/data/deep/part-0', 'chk/a']);
});

for (const withOld of [true, false]) {
  const label = withOld ? 'overwriting an object' : 'creating an object';

  test(`${label}: any single fault at any call of a put, then a crash, leaves old or new whole`, async () => {
    const range = await putOpRange(withOld);
    assert.ok(range.ops.includes('fsync') && range.ops.includes('rename') && range.ops.includes('fsyncDir'), range.ops.join(','));
    for (let index = range.start; index < range.end; index++) {
      for (const fault of FAULTS) {
        const what = `${fault} at op ${index} (${range.ops[index - range.start]})`;
        const { sim, storage } = await setup(withOld);
        sim.faultAt(index, fault);
        let resolved = true;
        try {
          await storage.put('chk/a', NEW);
        } catch (e) {
          assert.ok(e instanceof CairnError && e.kind === 'unavailable', `${what}: ${String(e)}`);
          resolved = false;
        }
        assert.is(sim.log[index].op, range.ops[index - range.start], `${what}: same call sequence as the dry run`);
        const before = withOld ? 'old' : 'missing';
        const lostRename = fault === 'rename-lost' && sim.log[index].op === 'rename';
        if (resolved && !lostRename) await readState(storage, ['new'], `${what}, resolved`);
        else await readState(storage, [before, 'new'], what);
        if (!resolved) assert.equal(tempFiles(sim), [], `${what}: no temp file after a failed put`);

        sim.crash();
        const after = new FsCheckpointStorage(ROOT, { fs: sim });
        const state = await readState(after, [before, 'new'], `${what}, after crash`);
        if (resolved && !lostRename) assert.is(state, 'new', `${what}: a resolved put is durable`);
        assert.equal(await after.list(''), state === 'missing' ? ['other'] : ['chk/a', 'other']);
        assert.equal(tempFiles(sim), [], `${what}: stale temp files removed`);
      }
    }
  });

  test(`${label}: a crash at any call of a put leaves old or new whole`, async () => {
    const range = await putOpRange(withOld);
    for (let index = range.start; index <= range.end; index++) {
      const what = `crash at op ${index}`;
      const { sim, storage } = await setup(withOld);
      sim.crashAt(index);
      const resolved = await storage.put('chk/a', NEW).then(
        () => true,
        (e: unknown) => {
          assert.ok(e instanceof CairnError && e.kind === 'unavailable', `${what}: ${String(e)}`);
          return false;
        },
      );
      assert.is(resolved, index === range.end, `${what}: only a crash after the last call lets the put resolve`);
      sim.restart();
      const after = new FsCheckpointStorage(ROOT, { fs: sim });
      const state = await readState(after, [withOld ? 'old' : 'missing', 'new'], what);
      if (resolved) assert.is(state, 'new');
      assert.equal(tempFiles(sim), [], `${what}: stale temp files removed`);
    }
  });
}

test('a short write is completed by further writes', async () => {
  const range = await putOpRange(true);
  const writeIndex = range.start + range.ops.indexOf('write');
  const { sim, storage } = await setup(true);
  sim.faultAt(writeIndex, 'short-write');
  await storage.put('chk/a', NEW);
  assert.is(sim.log.slice(range.start).filter((o) => o.op === 'write').length, 2, 'a second write finished the job');
  assert.ok(equalBytes(await storage.get('chk/a'), NEW));
});

// -------------------------------------------------------------------------------------------------
// Real directories

async function realDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-fs-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const REAL_FAULTS: [string, string, (ops: FsOps) => Partial<FsOps>][] = [
  [
    'ENOSPC mid-write',
    'ENOSPC',
    (ops) => ({
      async write(handle, bytes) {
        await ops.write(handle, bytes.subarray(0, bytes.length >>> 1)); // a real partial temp file
        throw codeError('ENOSPC');
      },
    }),
  ],
  ['EIO on fsync', 'EIO', () => ({ fsync: async () => Promise.reject(codeError('EIO')) })],
  ['EACCES on open', 'EACCES', () => ({ open: async () => Promise.reject(codeError('EACCES')) })],
  ['EIO on rename', 'EIO', () => ({ rename: async () => Promise.reject(codeError('EIO')) })],
];

for (const [what, code, patch] of REAL_FAULTS) {
  test(`real dir: ${what} leaves the old object intact and no temp file`, async () => {
    const { dir, cleanup } = await realDir();
    try {
      await new FsCheckpointStorage(dir).put('obj', OLD);
      const storage = new FsCheckpointStorage(dir, { fs: { ...nodeFsOps, ...patch(nodeFsOps) } });
      const e = await expectCairnError(() => storage.put('obj', NEW), 'unavailable');
      assert.match(e.message, code);
      assert.is((e.cause as { code?: string }).code, code);
      assert.ok(equalBytes(await storage.get('obj'), OLD));
      assert.equal(await readdir(dir), ['obj']);
    } finally {
      await cleanup();
    }
  });
}

test('real dir: a write that makes no progress is unavailable, not a hang', async () => {
  const { dir, cleanup } = await realDir();
  try {
    const storage = new FsCheckpointStorage(dir, { fs: { ...nodeFsOps, write: async () => 0 } });
    const e = await expectCairnError(() => storage.put('obj', NEW), 'unavailable');
    assert.match(e.message, 'EIO');
    assert.equal(await readdir(dir), []);
  } finally {
    await cleanup();
  }
});

test('real dir: an FsOps error without an errno code is internal', async () => {
  const { dir, cleanup } = await realDir();
  try {
    const storage = new FsCheckpointStorage(dir, { fs: { ...nodeFsOps, readFile: async () => Promise.reject(new TypeError('bug')) } });
    await expectCairnError(() => storage.get('obj'), 'internal');
  } finally {
    await cleanup();
  }
});

test('real dir: stale temp files are removed on first use, other files are not', async () => {
  const { dir, cleanup } = await realDir();
  try {
    await mkdir(join(dir, 'chk-1', 'data'), { recursive: true });
    await writeFile(join(dir, `${TEMP_PREFIX}dead`), 'x');
    await writeFile(join(dir, 'chk-1', 'data', `${TEMP_PREFIX}dead2`), 'x');
    await writeFile(join(dir, 'chk-1', 'data', 'part-0'), 'kept');
    await writeFile(join(dir, '.keep'), 'not ours');
    const storage = new FsCheckpointStorage(dir);
    assert.equal(await storage.list(''), ['chk-1/data/part-0']);
    assert.equal((await readdir(dir)).sort(), ['.keep', 'chk-1']);
    assert.equal(await readdir(join(dir, 'chk-1', 'data')), ['part-0']);
  } finally {
    await cleanup();
  }
});

test('real dir: puts leave no temp files and deletes remove emptied directories', async () => {
  const { dir, cleanup } = await realDir();
  try {
    const storage = new FsCheckpointStorage(join(dir, 'new', 'root'));
    await storage.put('a/b/c', NEW);
    await storage.put('a/d', OLD);
    assert.equal(await readdir(join(dir, 'new', 'root', 'a', 'b')), ['c']);
    await storage.delete('a/b/c');
    assert.equal(await readdir(join(dir, 'new', 'root', 'a')), ['d'], 'a/b removed, a kept');
    await storage.delete('a/d');
    assert.equal(await readdir(join(dir, 'new', 'root')), []);
    await storage.put('a', OLD); // 'a' was a directory; now it can name an object
    assert.ok(equalBytes(await storage.get('a'), OLD));
  } finally {
    await cleanup();
  }
});

test('concurrent puts into a directory that a delete empties all land', async () => {
  const sim = new SimulatedFs();
  const storage = new FsCheckpointStorage(ROOT, { fs: sim });
  for (let round = 0; round < 20; round++) {
    await storage.put('d/x', OLD);
    await Promise.all([storage.delete('d/x'), storage.put(`d/y${round}`, NEW), storage.put(`d/z${round}`, NEW)]);
    assert.equal(await storage.list('d/'), [`d/y${round}`, `d/z${round}`]);
    await storage.delete(`d/y${round}`);
    await storage.delete(`d/z${round}`);
  }
});

test.run();
