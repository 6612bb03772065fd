// Proves that the buffers of shard outputs given back after a merge (ShardManager.recycle) never
// belong to a table a caller still holds: every table of fired windows and every export is kept
// until the end and only then compared with a Map model of the events, after many later advances
// and exports have reused buffers. Covers worker and in-process shards, int64 and utf8 keys, and
// advances where only one shard fires (its output is returned as it is, so must not be reused),
// and outputs large enough for the shards' buffer pools (64 KiB and more per column).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Table } from 'apache-arrow';
import { StateBackend } from '../../src/index.js';
import { rowsOf, show } from '../helpers.js';

const WINDOW = 1000;

interface Row { n: number; s: number }

for (const [label, shards, workers] of [['2 worker shards', 2, true], ['3 worker shards', 3, true], ['2 in-process shards', 2, false]] as const) {
  for (const keyType of ['int64', 'utf8'] as const) {
    test(`tables of fired windows and exports stay intact after later outputs (${label}, ${keyType})`, async () => {
      const backend = await StateBackend.open({ shards, workers, keyGroups: 32 });
      try {
        const op = backend.aggregate('w', {
          key: { field: 'k', type: keyType }, time: 'ts', window: { kind: 'tumbling', size: WINDOW },
          aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } },
        });
        const keyOf = (i: number) => (keyType === 'int64' ? BigInt(i * 7919 - 40_000) : `key-${i}-é`);
        const model = new Map<string, Row>(); // `${key}@${window start}`
        const fired: { table: Table; upTo: number; from: number }[] = [];
        const exports: { table: Table; want: Map<string, Row> }[] = [];
        let x = 3;
        const rand = (m: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % m);
        let watermark = 0;
        for (let w = 0; w < 30; w++) {
          // Most windows get many keys (every shard fires); some get one key only (one shard
          // fires); some get so many that each shard's columns are large enough to be pooled.
          const distinct = w % 5 === 4 ? 1 : w % 6 === 0 ? 27_000 : 300;
          const n = distinct === 27_000 ? 30_000 : 200 + rand(3000);
          const keys = Array.from({ length: n }, () => keyOf(rand(distinct) + (distinct === 1 ? w : 0)));
          const ts = Float64Array.from({ length: n }, () => w * WINDOW + rand(WINDOW));
          const v = Float64Array.from({ length: n }, () => rand(1000) / 4);
          const k = keyType === 'int64' ? BigInt64Array.from(keys as bigint[]) : (keys as string[]);
          await op.ingest({ k, ts, v });
          keys.forEach((key, i) => {
            const id = `${String(key)}@${Math.floor(ts[i]! / WINDOW) * WINDOW}`;
            const m = model.get(id) ?? { n: 0, s: 0 };
            m.n++;
            m.s += v[i]!;
            model.set(id, m);
          });
          if (w % 7 === 3) {
            const want = new Map([...model].filter(([id]) => Number(id.slice(id.lastIndexOf('@') + 1)) + WINDOW > watermark));
            exports.push({ table: await op.toArrow(), want });
          }
          const from = watermark;
          watermark = (w + 1) * WINDOW;
          const table = await op.advanceWatermark(watermark);
          fired.push({ table, upTo: watermark, from });
          // A small output never pins a large pooled buffer (one shard's part is returned as it is).
          if (distinct === 1) {
            for (const f of table.schema.fields) {
              for (const d of table.getChild(f.name)!.data) {
                const v = d.values as ArrayBufferView;
                assert.ok(v.buffer.byteLength <= Math.max(64 * 1024, 2 * v.byteLength), `${f.name}: ${v.byteLength} bytes in a buffer of ${v.buffer.byteLength}`);
              }
            }
          }
        }
        // Only now read every table kept along the way.
        const byId = (t: Table) => {
          const got = new Map<string, Row>();
          for (const r of rowsOf(t, 'k')) got.set(`${String(r['key'])}@${r['window_start']}`, { n: r['n'] as number, s: r['s'] as number });
          return got;
        };
        for (const f of fired) {
          const want = new Map([...model].filter(([id]) => {
            const start = Number(id.slice(id.lastIndexOf('@') + 1));
            return start + WINDOW > f.from && start + WINDOW <= f.upTo;
          }));
          assert.ok(want.size > 0, 'every advance fires a window');
          assert.equal(byId(f.table), want, `windows fired up to ${f.upTo}: ${show([...byId(f.table)].slice(0, 3))}`);
        }
        for (const e of exports) assert.equal(byId(e.table), e.want, 'an export kept from earlier');
      } finally {
        await backend.close();
      }
    });
  }
}

test('a utf8 operator that fires nothing after an int64 operator fired key -1: an empty table, no huge buffer', async () => {
  // The output memory is shared by a shard's operators; an empty output must not read the key
  // offsets left there by another operator's int64 keys (-1 reads as an end offset of 2^32 - 1).
  for (const [shards, workers] of [[1, true], [2, true], [1, false], [2, false]] as const) {
    const b = await StateBackend.open({ shards, workers, keyGroups: 8 });
    try {
      const win = { time: 't', window: { kind: 'tumbling', size: 10 } } as const;
      const B = b.aggregate('B', { key: { field: 'k', type: 'int64' }, ...win, aggregates: { n: { fn: 'count' } } });
      const A = b.aggregate('A', { key: { field: 'k', type: 'utf8' }, ...win, aggregates: { n: { fn: 'count' } } });
      await B.ingest({ k: [-1n, -9n, 4294967295n], t: [1, 1, 1] });
      await A.ingest({ k: ['x'], t: [100] });
      assert.is((await A.advanceWatermark(20)).numRows, 0);
      assert.is((await B.advanceWatermark(20)).numRows, 3);
      const before = process.memoryUsage().arrayBuffers;
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('advance did not settle in 10 s')), 10_000).unref());
      const fired = await Promise.race([A.advanceWatermark(30), timeout]);
      assert.is(fired.numRows, 0, `shards ${shards}, workers ${workers}`);
      assert.is(fired.schema.fields[0]!.name, 'k');
      const exported = await Promise.race([A.toArrow(), timeout]);
      assert.equal(rowsOf(exported, 'k').map((r) => r['key']), ['x']);
      assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, `array buffers grew by ${process.memoryUsage().arrayBuffers - before} bytes`);
    } finally {
      await b.close();
    }
  }
});

test('an advance that fires nothing returns an empty table with the fired tables\' schema', async () => {
  for (const [shards, workers] of [[1, false], [2, true]] as const) {
    const backend = await StateBackend.open({ shards, workers });
    try {
      for (const keyType of ['int64', 'utf8'] as const) {
        const op = backend.aggregate(`w-${keyType}`, {
          key: { field: 'k', type: keyType }, time: 'ts', window: { kind: 'tumbling', size: WINDOW },
          aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' }, hi: { fn: 'max', field: 'v' } },
        });
        const k = keyType === 'int64' ? BigInt64Array.of(1n, 2n) : ['a', 'b'];
        await op.ingest({ k, ts: Float64Array.of(10, 20), v: Float64Array.of(1, 2) });
        const none1 = await op.advanceWatermark(500);
        const fired = await op.advanceWatermark(WINDOW);
        const none2 = await op.advanceWatermark(WINDOW + 1);
        assert.is(fired.numRows, 2);
        const shape = (t: Table) => t.schema.fields.map((f) => `${f.name}:${String(f.type)}:${f.nullable}`);
        for (const t of [none1, none2]) {
          assert.is(t.numRows, 0);
          assert.equal(shape(t), shape(fired), `schema of an empty advance (${keyType}, ${shards} shards)`);
        }
      }
    } finally {
      await backend.close();
    }
  }
});

test.run();
