// Proves TieredCheckpointStorage's promises beyond the shared contract: put acknowledges before the
// durable copy exists (a gated durable store holds copies until the test opens it), durability is
// reported per name and flush waits for it, get falls back to the durable copy, transient failures
// are retried and permanent ones reported once by flush, copies are ordered and bounded with the
// latest version winning, delete reaches both tiers, and pendingBytesMax applies backpressure.
// Nothing here depends on time: retries use a zero delay and waiting is on explicit gates.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CairnError } from '../../src/errors.js';
import { MemoryCheckpointStorage } from '../../src/storage/memory.js';
import { isNotFound, type CheckpointStorage } from '../../src/storage/storage.js';
import { TieredCheckpointStorage } from '../../src/storage/tiered.js';
import { FaultyStorage } from '../../src/testing/faulty-storage.js';
import { equalBytes, expectCairnError } from '../codec/fixtures.js';

const bytes = (...v: number[]) => Uint8Array.from(v);

/** A memory store whose puts and deletes wait until the gate is opened; records what ran. */
class GatedStorage implements CheckpointStorage {
  readonly inner = new MemoryCheckpointStorage();
  readonly started: string[] = [];
  running = 0;
  maxRunning = 0;
  #closed = false;
  #waiting: (() => void)[] = [];

  close(): void {
    this.#closed = true;
  }

  /** Lets every held and later call through. */
  open(): void {
    this.#closed = false;
    for (const release of this.#waiting.splice(0)) release();
  }

  /** Lets the oldest held call through. */
  releaseOne(): void {
    this.#waiting.shift()?.();
  }

  async #gated<T>(label: string, body: () => Promise<T>): Promise<T> {
    this.started.push(label);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (this.#closed) await new Promise<void>((resolve) => this.#waiting.push(resolve));
      return await body();
    } finally {
      this.running--;
    }
  }

  put(name: string, b: Uint8Array): Promise<void> {
    return this.#gated(`put ${name}=${b[0]}`, () => this.inner.put(name, b));
  }
  get(name: string): Promise<Uint8Array> {
    return this.inner.get(name);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  delete(name: string): Promise<void> {
    return this.#gated(`delete ${name}`, () => this.inner.delete(name));
  }
}

/** Lets pending callbacks run; a promise still unsettled after this is waiting on something real. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

function tiered(durable: CheckpointStorage, options: Partial<ConstructorParameters<typeof TieredCheckpointStorage>[0]> = {}) {
  const local = new MemoryCheckpointStorage();
  return { local, t: new TieredCheckpointStorage({ local, durable, retryDelayMs: 0, ...options }) };
}

test('put acknowledges after the local put; durability is reported once copied; flush waits', async () => {
  const durable = new GatedStorage();
  durable.close();
  const { local, t } = tiered(durable);
  await t.put('chk/a', bytes(1, 2));
  assert.ok(equalBytes(await local.get('chk/a'), bytes(1, 2)));
  assert.is(t.isDurable('chk/a'), false);
  assert.equal(t.durableNames(), []);
  let flushed = false;
  const flush = t.flush().then(() => (flushed = true));
  await settle();
  assert.is(flushed, false, 'flush waits for the held copy');
  durable.open();
  await flush;
  assert.is(t.isDurable('chk/a'), true);
  assert.equal(t.durableNames(), ['chk/a']);
  assert.ok(equalBytes(await durable.get('chk/a'), bytes(1, 2)));
  await t.put('chk/a', bytes(3));
  assert.is(t.isDurable('chk/a'), false, 'a newer put is not durable until copied');
  await t.flush();
  assert.is(t.isDurable('chk/a'), true);
});

test('a copy overtaken by a newer put of the same name does not count as durable', async () => {
  const durable = new GatedStorage();
  durable.close();
  const { t } = tiered(durable);
  await t.put('a', bytes(1)); // copy starts and is held
  await t.put('a', bytes(2)); // queued behind it
  await settle();
  durable.releaseOne(); // a=1 lands; a=2 starts and is held
  await settle();
  assert.equal(durable.started, ['put a=1', 'put a=2']);
  assert.ok(equalBytes(await durable.get('a'), bytes(1)));
  assert.is(t.isDurable('a'), false, 'the durable copy is an old version');
  durable.open();
  await t.flush();
  assert.is(t.isDurable('a'), true);
});

test('get falls back to durable; getFrom and listFrom read one tier', async () => {
  const durable = new MemoryCheckpointStorage();
  const { local, t } = tiered(durable);
  await t.put('a', bytes(7));
  await t.flush();
  await local.delete('a');
  assert.ok(equalBytes(await t.get('a'), bytes(7)));
  await expectCairnError(() => t.getFrom('local', 'a'), 'unavailable');
  assert.ok(equalBytes(await t.getFrom('durable', 'a'), bytes(7)));
  assert.equal(await t.listFrom('local', ''), []);
  assert.equal(await t.listFrom('durable', ''), ['a']);
  // Missing from both tiers: the not-found error of every storage (restore tells a missing file
  // from a failing storage by it). A tier that fails otherwise keeps the failure in the message.
  const e = await expectCairnError(() => t.get('nowhere'), 'unavailable');
  assert.ok(isNotFound(e), e.message);
  assert.match(e.message, 'neither tier has it');
  const failing = new MemoryCheckpointStorage();
  failing.get = async () => Promise.reject(new CairnError('unavailable', 'disk gone'));
  const t2 = new TieredCheckpointStorage({ local: failing, durable: new MemoryCheckpointStorage() });
  const e2 = await expectCairnError(() => t2.get('nowhere'), 'unavailable');
  assert.not.ok(isNotFound(e2), e2.message);
  assert.match(e2.message, /found neither .*disk gone/);
  await expectCairnError(() => t.getFrom('elsewhere' as 'local', 'a'), 'invalid');
});

test('get does not hide a local error that is not unavailable', async () => {
  const local = new MemoryCheckpointStorage();
  local.get = async () => Promise.reject(new CairnError('internal', 'local bug'));
  const t = new TieredCheckpointStorage({ local, durable: new MemoryCheckpointStorage() });
  await expectCairnError(() => t.get('a'), 'internal');
});

test('transient durable failures are retried until the copy lands', async () => {
  const durable = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  durable.failAt(0, { kind: 'transient', code: 'EIO' }).failAt(1, { kind: 'transient', code: 'EIO' });
  const { t } = tiered(durable, { copyAttempts: 3 });
  await t.put('a', bytes(1));
  await t.flush();
  assert.is(t.isDurable('a'), true);
  assert.equal(durable.log.map((o) => `${o.op} ${o.outcome}`), ['put failed', 'put failed', 'put ok']);
});

test('a copy that fails for good is reported by the next flush, once', async () => {
  const durable = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  durable.failAt(0, { kind: 'persistent', code: 'ENOSPC' });
  const { local, t } = tiered(durable, { copyAttempts: 3 });
  await t.put('chk/a', bytes(1));
  const e = await expectCairnError(() => t.flush(), 'unavailable');
  assert.match(e.message, 'chk/a');
  assert.match(e.message, 'ENOSPC');
  assert.is(durable.log.length, 3, 'three attempts');
  assert.is(t.isDurable('chk/a'), false);
  assert.ok(equalBytes(await local.get('chk/a'), bytes(1)), 'the local copy stays');
  await t.flush(); // reported already
});

test('errors other than unavailable are not retried', async () => {
  const durable = new MemoryCheckpointStorage();
  let calls = 0;
  durable.put = async () => {
    calls++;
    throw new CairnError('internal', 'broken durable store');
  };
  const { t } = tiered(durable, { copyAttempts: 5 });
  await t.put('a', bytes(1));
  await expectCairnError(() => t.flush(), 'unavailable');
  assert.is(calls, 1);
});

test('copies run in queue order, bounded, one per name at a time, latest version wins', async () => {
  const durable = new GatedStorage();
  durable.close();
  const { t } = tiered(durable, { copyConcurrency: 2 });
  await t.put('a', bytes(1));
  await t.put('b', bytes(1));
  await t.put('c', bytes(1));
  await t.put('a', bytes(2));
  await t.put('a', bytes(3)); // replaces the queued a=2
  await t.put('d', bytes(1));
  await settle();
  assert.equal(durable.started, ['put a=1', 'put b=1']);
  durable.open();
  await t.flush();
  assert.is(durable.maxRunning, 2);
  assert.equal(durable.started, ['put a=1', 'put b=1', 'put c=1', 'put a=3', 'put d=1']);
  assert.ok(equalBytes(await durable.get('a'), bytes(3)));
  assert.equal(t.durableNames(), ['a', 'b', 'c', 'd']);
});

test('delete reaches both tiers and cancels a queued copy', async () => {
  const durable = new GatedStorage();
  durable.close();
  const { local, t } = tiered(durable, { copyConcurrency: 1 });
  await t.put('x', bytes(1)); // running, held
  await t.put('y', bytes(1)); // queued
  const deleted = t.delete('y');
  await settle();
  await expectCairnError(() => local.get('y'), 'unavailable');
  durable.open();
  await deleted;
  await t.flush();
  assert.equal(durable.started, ['put x=1', 'delete y'], 'y was never copied');
  assert.equal(await t.list(''), ['x']);
  assert.is(t.isDurable('y'), false);
  await t.delete('x');
  assert.equal(await durable.list(''), []);
  assert.equal(await t.list(''), []);
});

test('pendingBytesMax makes put wait until copies drain', async () => {
  const durable = new GatedStorage();
  durable.close();
  const { t } = tiered(durable, { pendingBytesMax: 10 });
  await t.put('a', new Uint8Array(8));
  let second = false;
  const p = t.put('b', new Uint8Array(8)).then(() => (second = true));
  await settle();
  assert.is(second, false, 'the second put waits for room');
  durable.open();
  await p;
  await t.flush();
  assert.equal(t.durableNames(), ['a', 'b']);
});

test('list is the union of both tiers', async () => {
  const durable = new MemoryCheckpointStorage();
  const { local, t } = tiered(durable);
  await local.put('only-local', bytes(1));
  await durable.put('only-durable', bytes(1));
  await t.put('both', bytes(1));
  await t.flush();
  assert.equal(await t.list(''), ['both', 'only-durable', 'only-local']);
  assert.equal(await t.list('only-'), ['only-durable', 'only-local']);
});

test('options are checked', () => {
  const m = () => new MemoryCheckpointStorage();
  for (const bad of [{ copyConcurrency: 0 }, { copyAttempts: 0 }, { retryDelayMs: -1 }, { pendingBytesMax: 0 }, { copyConcurrency: 1.5 }]) {
    assert.throws(
      () => new TieredCheckpointStorage({ local: m(), durable: m(), ...bad }),
      (e: unknown) => e instanceof CairnError && e.kind === 'invalid',
      JSON.stringify(bad),
    );
  }
});

test('failed copies are kept for flush up to a bound, and counted past it', async () => {
  // Cairn never flushes: through an outage every failed copy was kept, name and error, without end.
  const durable = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 5 });
  durable.failRandomly(1);
  const { local, t } = tiered(durable, { copyAttempts: 1 });
  for (let i = 0; i < 250; i++) await t.put(`data/${String(i).padStart(4, '0')}`, new Uint8Array([i & 255]));
  const e = await t.flush().then(() => null, (err: unknown) => err);
  assert.instance(e, CairnError);
  const message = (e as Error).message;
  assert.ok(message.includes('found 250 failed ('), message.slice(0, 200));
  assert.ok(message.endsWith('; and 150 more)'), message.slice(-80));
  assert.is(message.match(/data\/\d{4}: /g)!.length, 100, 'failed copies listed');
  // Every file is still on the local tier, and a later flush has nothing left to report.
  assert.is((await local.list('data/')).length, 250);
  durable.heal();
  await t.flush();
});

test.run();
