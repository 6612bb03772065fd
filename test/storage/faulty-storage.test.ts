// Proves FaultyStorage injects exactly the faults it is told to, deterministically: the same seed and
// calls give the same random failures (and another seed different ones), scheduled faults hit the
// operation index they name, torn writes leave a visible prefix, crashes stop everything after them,
// and the operation log lets a test enumerate every write of a cycle and fail each one in turn.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryCheckpointStorage } from '../../src/storage/memory.js';
import { FaultyStorage } from '../../src/testing/faulty-storage.js';
import { equalBytes, expectCairnError } from '../codec/fixtures.js';

const bytes = (...v: number[]) => Uint8Array.from(v);

/** A small checkpoint-like cycle: write parts and a manifest, read the manifest back, list, delete. */
async function cycle(s: FaultyStorage, round: number): Promise<void> {
  await s.put(`chk-${round}/part-0`, bytes(round, 0));
  await s.put(`chk-${round}/part-1`, bytes(round, 1));
  await s.put(`chk-${round}/manifest`, bytes(round));
  await s.get(`chk-${round}/manifest`);
  await s.list(`chk-${round}/`);
  if (round > 0) await s.delete(`chk-${round - 1}/part-0`);
}

async function outcomes(seed: number, probability: number): Promise<string[]> {
  const s = new FaultyStorage(new MemoryCheckpointStorage(), { seed }).failRandomly(probability);
  for (let i = 0; i < 60; i++) await s.put(`n${i % 7}`, bytes(i)).catch(() => undefined);
  return s.log.map((o) => o.outcome);
}

test('same seed, same faults; another seed, other faults', async () => {
  const a = await outcomes(7, 0.3);
  const b = await outcomes(7, 0.3);
  const c = await outcomes(8, 0.3);
  assert.equal(a, b);
  assert.not.equal(a, c);
  const failed = a.filter((o) => o === 'failed').length;
  assert.ok(failed > 0 && failed < a.length, `some but not all fail (${failed})`);
});

test('a transient fault fails only its operation, with the errno code as cause', async () => {
  const s = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  s.failAt(1, { kind: 'transient', code: 'ENOSPC' });
  await s.put('a', bytes(1));
  const e = await expectCairnError(() => s.put('b', bytes(2)), 'unavailable');
  assert.is((e.cause as { code?: string }).code, 'ENOSPC');
  assert.match(e.message, 'op=1');
  await s.put('b', bytes(3));
  assert.ok(equalBytes(await s.get('b'), bytes(3)));
});

test('a persistent fault fails every later operation until heal', async () => {
  const s = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  s.failAt(0, { kind: 'persistent', code: 'EIO' });
  for (let i = 0; i < 3; i++) {
    const e = await expectCairnError(() => s.put('a', bytes(i)), 'unavailable');
    assert.is((e.cause as { code?: string }).code, 'EIO');
  }
  await expectCairnError(() => s.get('a'), 'unavailable');
  s.heal();
  await s.put('a', bytes(9));
  assert.ok(equalBytes(await s.get('a'), bytes(9)));
});

test('a torn write leaves a visible prefix and rejects', async () => {
  const s = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  s.tornWriteAt(1, 0.5);
  await s.get('x').catch(() => undefined); // op 0
  await s.list(''); // op 1 is not a put: the tear waits for the next put
  await expectCairnError(() => s.put('obj', bytes(1, 2, 3, 4, 5, 6)), 'unavailable');
  assert.equal(Array.from(await s.get('obj')), [1, 2, 3]);
  assert.is(s.log[2].outcome, 'torn');
  await s.put('obj', bytes(7));
  assert.equal(Array.from(await s.get('obj')), [7]);
});

test('crashAt and crash stop that operation and every later one', async () => {
  const s = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  s.crashAt(2);
  await s.put('a', bytes(1));
  await s.put('b', bytes(1));
  const e = await expectCairnError(() => s.put('c', bytes(1)), 'unavailable');
  assert.match(e.message, 'storage crashed');
  await expectCairnError(() => s.get('a'), 'unavailable');
  assert.is(s.crashed, true);
  s.heal();
  await expectCairnError(() => s.list(''), 'unavailable');
  assert.equal(await s.inner.list(''), ['a', 'b'], 'nothing after the crash reached the inner store');

  const t = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  await t.put('a', bytes(1));
  t.crash();
  await expectCairnError(() => t.get('a'), 'unavailable');
});

test('the log enumerates every write of a cycle, and each can be failed in turn', async () => {
  const clean = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 3 });
  await cycle(clean, 0);
  await cycle(clean, 1);
  const writes = clean.log.filter((o) => o.op === 'put' || o.op === 'delete');
  assert.equal(
    writes.map((o) => `${o.op} ${o.name}`),
    ['put chk-0/part-0', 'put chk-0/part-1', 'put chk-0/manifest', 'put chk-1/part-0', 'put chk-1/part-1', 'put chk-1/manifest', 'delete chk-0/part-0'],
  );
  for (const w of writes) {
    const s = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 3 });
    s.failAt(w.index, { kind: 'transient', code: 'EIO' });
    const failedAt = await cycle(s, 0)
      .then(() => cycle(s, 1))
      .then(() => -1, () => s.opCount - 1);
    assert.is(failedAt, w.index, `the cycle stops at the failed write ${w.op} ${w.name}`);
  }
});

test('arguments are checked', () => {
  const s = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
  assert.throws(() => s.failRandomly(1.5));
  assert.throws(() => s.tornWriteAt(0, 1));
});

test.run();
