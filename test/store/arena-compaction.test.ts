// The utf8 key arena (and the value arena) is rewritten once more than half of it, and at least
// 1 MiB, is garbage: keys of deleted or purged rows. Compaction moves every live key, so every
// reference to key bytes must follow (the rows' key references; a probe compares the key bytes a
// row refers to). These workloads cross the threshold several times and check every result against
// the models after it, through lookups of surviving, deleted and new keys. Each of the three
// compacts the key arena while rows are live (checked with a trap in the compaction).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend } from '../../src/index.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { WindowModel } from '../oracle/window-model.js';
import { Rng } from '../oracle/gen.js';
import { rowsOf } from '../helpers.js';

const AGGS = { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } as const;
/** Long keys, so a few thousand of them make a megabyte of key bytes. */
const keyOf = (i: number) => `compaction-key-${String(i).padStart(8, '0')}-${'é'.repeat(i % 5)}-${'x'.repeat(40)}`;

test('running aggregates: deletes past the compaction threshold, then lookups and ingest of kept, deleted and new keys', async () => {
  const rng = new Rng(21);
  const b = await StateBackend.open();
  try {
    const op = b.aggregate('c', { key: { field: 'k', type: 'utf8' }, aggregates: AGGS });
    const model = new AggregateModel({ keyType: 'utf8', aggregates: AGGS as never });
    const ingest = async (keys: string[]) => {
      const rows = keys.map((key) => ({ key, values: { v: rng.int(0, 99) } }));
      await op.ingest({ k: rows.map((r) => r.key), v: rows.map((r) => r.values.v) });
      model.ingest(rows);
    };
    let next = 0;
    for (let round = 0; round < 3; round++) {
      // 24K new keys of ~70 bytes (1.7 MB), then three quarters of all live keys deleted.
      const fresh = Array.from({ length: 24_000 }, () => keyOf(next++));
      await ingest(fresh);
      const live = model.rows().map((r) => r.key as string);
      for (const k of live) {
        if (rng.int(0, 3) !== 0) assert.is(await op.delete(k), model.delete(k), `delete ${k}`);
      }
      // Kept, deleted and unseen keys, in one batch.
      await ingest(Array.from({ length: 6000 }, () => keyOf(rng.int(0, next + 1000))));
      const want = model.rows();
      assert.equal(rowsOf(await op.toArrow(), 'k'), want, `round ${round}`);
      const byKey = new Map(want.map((r) => [r.key, r]));
      for (let j = 0; j < 300; j++) {
        const k = keyOf(rng.int(0, next + 1000));
        assert.is((await op.get(k))?.['n'], byKey.get(k)?.['n'], `get ${k}`);
      }
    }
  } finally {
    await b.close();
  }
});

test('tumbling windows: purged panes past the compaction threshold, fired windows match the model', async () => {
  const rng = new Rng(22);
  const window = { kind: 'tumbling', size: 100 } as const;
  const b = await StateBackend.open();
  try {
    const op = b.aggregate('w', { key: { field: 'k', type: 'utf8' }, time: 't', window, aggregates: AGGS });
    const model = new WindowModel({ keyType: 'utf8', window, aggregates: AGGS as never });
    let t = 0;
    // 5000 keys of ~70 bytes per pane: each purged pane leaves ~350 KB of garbage key bytes. Each
    // round's events span two panes and the watermark closes only the first, so the newer pane's
    // rows are live when the arena is compacted, and the next round's events find them again.
    for (let round = 0; round < 12; round++) {
      const rows = Array.from({ length: 8000 }, () => ({ key: keyOf(rng.int(0, 4999)), time: t + rng.int(0, 199), values: { v: rng.int(0, 99) } }));
      await op.ingest({ k: rows.map((r) => r.key), t: rows.map((r) => r.time), v: rows.map((r) => r.values.v) });
      model.ingest(rows);
      t += 100;
      assert.equal(rowsOf(await op.advanceWatermark(t), 'k'), model.advanceWatermark(t), `fired at ${t}`);
    }
  } finally {
    await b.close();
  }
});

test('value state: overwrites and deletes past the compaction threshold keep every value', async () => {
  const rng = new Rng(23);
  const b = await StateBackend.open();
  try {
    const kv = b.values('v', { key: { type: 'utf8' } });
    const model = new Map<string, Uint8Array>();
    for (let round = 0; round < 4; round++) {
      // A third deletes (about 17K of them remove a key, ~70 bytes each), so the key arena compacts too.
      for (let j = 0; j < 20_000; j++) {
        const k = keyOf(rng.int(0, 7999));
        if (rng.int(0, 2) === 0) {
          assert.is(await kv.delete(k), model.delete(k), `delete ${k}`);
        } else {
          const v = new Uint8Array(rng.int(0, 300)).fill(rng.int(0, 255));
          await kv.put(k, v);
          model.set(k, v);
        }
      }
      for (let i = 0; i < 8000; i += 7) {
        const k = keyOf(i);
        const got = await kv.get(k);
        assert.equal(got === undefined ? undefined : [...got], model.has(k) ? [...model.get(k)!] : undefined, `get ${k} (round ${round})`);
      }
    }
  } finally {
    await b.close();
  }
});

test.run();
