// The buffer pool: reuse of buffers in rotation, the byte and count bounds, and that buffers of a
// burst of large batches are dropped once no take has chosen them for POOL_IDLE_TAKES takes
// (before, they stayed pinned, up to 256 MiB per pool, until close). The random test's model is the set of
// buffers handed out and not given back (none may be handed out twice).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BufferPool, POOL_BUFFER_BYTES_MIN, POOL_IDLE_TAKES } from '../../src/shard/pool.js';
import { CairnError } from '../../src/errors.js';

const MiB = 1024 * 1024;

test('a burst of large buffers is dropped after POOL_IDLE_TAKES takes of small ones; buffers in rotation stay', () => {
  const pool = new BufferPool();
  const large = Array.from({ length: 4 }, () => pool.take(16 * MiB));
  for (const b of large) pool.give(b);
  assert.ok(pool.bytes >= 4 * 16 * MiB, 'the large buffers are pooled');
  // Small batches now: one buffer in rotation, taken and given back each time (maxRatio keeps the
  // large ones from serving a small request).
  let small = pool.take(POOL_BUFFER_BYTES_MIN * 2, 4);
  const first = small;
  pool.give(small);
  for (let i = 0; i < POOL_IDLE_TAKES + 1; i++) {
    small = pool.take(POOL_BUFFER_BYTES_MIN * 2, 4);
    assert.is(small, first, `take ${i}: the buffer in rotation is reused`);
    pool.give(small);
  }
  assert.is(pool.size, 1, 'only the buffer in rotation is left');
  assert.is(pool.bytes, first.byteLength);
});

test('an idle buffer is kept until then, and taken when it fits', () => {
  const pool = new BufferPool();
  const big = pool.take(8 * MiB);
  pool.give(big);
  for (let i = 0; i < POOL_IDLE_TAKES - 1; i++) pool.give(pool.take(POOL_BUFFER_BYTES_MIN, 2));
  assert.is(pool.take(8 * MiB), big, 'still pooled just before the limit');
});

test('random takes and gives: the count and byte bounds hold, nothing is handed out twice', () => {
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const pool = new BufferPool();
  const out = new Set<ArrayBuffer>();
  for (let step = 0; step < 5000; step++) {
    if (out.size > 0 && rand() < 0.5) {
      const b = [...out][Math.floor(rand() * out.size)]!;
      out.delete(b);
      pool.give(b);
    } else {
      const size = Math.floor(rand() * 4 * MiB) + 1;
      const b = pool.take(size, rand() < 0.5 ? 4 : Infinity);
      assert.ok(b.byteLength >= size);
      assert.not.ok(out.has(b), 'a buffer handed out twice');
      out.add(b);
    }
    assert.ok(pool.size <= 32 && pool.bytes <= 256 * MiB);
  }
});

test('a buffer given back twice is refused loudly', () => {
  const pool = new BufferPool();
  const b = pool.take(POOL_BUFFER_BYTES_MIN);
  pool.give(b);
  assert.throws(() => pool.give(b), (e: unknown) => e instanceof CairnError && e.kind === 'internal' && /given back twice/.test(e.message));
});

test.run();
