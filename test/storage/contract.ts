// The CheckpointStorage contract, as one suite that runs against every implementation (as Flink runs
// one StateBackendTestBase against every backend). `storageContract` registers and runs a uvu suite;
// contract.test.ts calls it once per implementation. Besides fixed cases it compares each
// implementation with a Map (the oracle) over generated sequences of operations.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { CheckpointStorage } from '../../src/storage/storage.js';
import { NAME_BYTES_MAX } from '../../src/storage/storage.js';
import { equalBytes, expectCairnError } from '../codec/fixtures.js';

export interface StorageFixture {
  storage: CheckpointStorage;
  /** Releases what the fixture made (temp directories). */
  cleanup?: () => Promise<void>;
}

export type StorageFactory = () => Promise<StorageFixture>;

const bytesOf = (...values: number[]) => Uint8Array.from(values);

export const INVALID_NAMES: readonly string[] = [
  '',
  '/abs',
  'trailing/',
  'a//b',
  '.',
  '..',
  'a/../b',
  'a/./b',
  '.hidden',
  'dir/.cairn-tmp-x',
  'sp ace',
  'back\\slash',
  'ü',
  'x'.repeat(NAME_BYTES_MAX + 1),
  'a/' + 'y'.repeat(201),
];

export function storageContract(label: string, make: StorageFactory): void {
  const s = suite(`storage contract: ${label}`);

  /** Runs `body` on a fresh storage and always cleans up. */
  const withStorage = (body: (storage: CheckpointStorage) => Promise<void>) => async () => {
    const fixture = await make();
    try {
      await body(fixture.storage);
    } finally {
      await fixture.cleanup?.();
    }
  };

  s('put then get returns the same bytes', withStorage(async (storage) => {
    const big = new Uint8Array(1024 * 1024 + 3).map((_, i) => (i * 31) & 0xff);
    await storage.put('a', bytesOf(1, 2, 3));
    await storage.put('empty', new Uint8Array(0));
    await storage.put('big', big);
    assert.equal(Array.from(await storage.get('a')), [1, 2, 3]);
    assert.is((await storage.get('empty')).length, 0);
    assert.ok(equalBytes(await storage.get('big'), big));
  }));

  s('put overwrites', withStorage(async (storage) => {
    await storage.put('chk/manifest', bytesOf(1));
    await storage.put('chk/manifest', bytesOf(2, 2));
    assert.equal(Array.from(await storage.get('chk/manifest')), [2, 2]);
    assert.equal(await storage.list(''), ['chk/manifest']);
  }));

  s('list returns names with the prefix, sorted, names only', withStorage(async (storage) => {
    const names = ['chk-2/z', 'chk-10/y', 'chk-1/x', 'chk-1/a/b', 'other', 'chk-1.tmp', 'A'];
    for (const name of names) await storage.put(name, bytesOf(names.indexOf(name)));
    assert.equal(await storage.list(''), [...names].sort());
    assert.equal(await storage.list('chk-1'), ['chk-1.tmp', 'chk-1/a/b', 'chk-1/x', 'chk-10/y']);
    assert.equal(await storage.list('chk-1/'), ['chk-1/a/b', 'chk-1/x']);
    assert.equal(await storage.list('chk-1/a'), ['chk-1/a/b']);
    assert.equal(await storage.list('chk-3'), []);
    assert.equal(await storage.list('nothing/here/'), []);
  }));

  s('nested names are independent objects', withStorage(async (storage) => {
    await storage.put('a/b/c/d', bytesOf(4));
    await storage.put('a/b/e', bytesOf(5));
    await storage.put('a/f', bytesOf(6));
    assert.equal(Array.from(await storage.get('a/b/c/d')), [4]);
    assert.equal(Array.from(await storage.get('a/b/e')), [5]);
    await expectCairnError(() => storage.get('a/b'), 'unavailable');
    await storage.delete('a/b/e');
    assert.equal(await storage.list('a/'), ['a/b/c/d', 'a/f']);
  }));

  s('delete removes, and deleting a missing name is not an error', withStorage(async (storage) => {
    await storage.put('x/y', bytesOf(1));
    await storage.delete('x/y');
    await storage.delete('x/y');
    await storage.delete('never/was');
    await expectCairnError(() => storage.get('x/y'), 'unavailable');
    assert.equal(await storage.list(''), []);
  }));

  s('get of a missing name is unavailable', withStorage(async (storage) => {
    const e = await expectCairnError(() => storage.get('missing/object'), 'unavailable');
    assert.match(e.message, 'missing/object');
    await storage.put('present', bytesOf(1));
    await expectCairnError(() => storage.get('present/child'), 'unavailable');
  }));

  s('invalid names are rejected with invalid by every method', withStorage(async (storage) => {
    for (const name of INVALID_NAMES) {
      await expectCairnError(() => storage.put(name, bytesOf(1)), 'invalid');
      await expectCairnError(() => storage.get(name), 'invalid');
      await expectCairnError(() => storage.delete(name), 'invalid');
    }
    for (const prefix of ['../', 'a/../', 'sp ace', '/abs/']) {
      await expectCairnError(() => storage.list(prefix), 'invalid');
    }
    assert.equal(await storage.list(''), [], 'nothing was written');
  }));

  s('bytes are copied in and out', withStorage(async (storage) => {
    const input = bytesOf(1, 2, 3);
    await storage.put('k', input);
    input[0] = 99;
    const first = await storage.get('k');
    first[1] = 99;
    assert.equal(Array.from(await storage.get('k')), [1, 2, 3]);
  }));

  s('matches a Map over generated operation sequences', withStorage(async (storage) => {
    // One storage across runs: each run starts by deleting what the previous one left.
    const names = ['a', 'a/b', 'a/c', 'b/c/d', 'c'];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), name: fc.constantFrom(...names), value: fc.uint8Array({ maxLength: 8 }) }),
      fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom(...names) }),
      fc.record({ kind: fc.constant('get' as const), name: fc.constantFrom(...names) }),
      fc.record({ kind: fc.constant('list' as const), prefix: fc.constantFrom('', 'a', 'a/', 'b/c/', 'c') }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
        for (const name of await storage.list('')) await storage.delete(name);
        const model = new Map<string, Uint8Array>();
        for (const o of ops) {
          if (o.kind === 'put') {
            // 'a' and 'a/b' cannot both exist on a file system; keep the model to names that can.
            if ([...model.keys()].some((k) => k.startsWith(o.name + '/') || o.name.startsWith(k + '/'))) continue;
            await storage.put(o.name, o.value);
            model.set(o.name, o.value);
          } else if (o.kind === 'delete') {
            await storage.delete(o.name);
            model.delete(o.name);
          } else if (o.kind === 'get') {
            const expected = model.get(o.name);
            if (expected === undefined) await expectCairnError(() => storage.get(o.name), 'unavailable');
            else assert.ok(equalBytes(await storage.get(o.name), expected), `get ${o.name}`);
          } else {
            const expected = [...model.keys()].filter((k) => k.startsWith(o.prefix)).sort();
            assert.equal(await storage.list(o.prefix), expected, `list ${JSON.stringify(o.prefix)}`);
          }
        }
      }),
      { numRuns: 40 },
    );
  }));

  s.run();
}
