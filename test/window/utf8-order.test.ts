// utf8 keys come out in unsigned UTF-8 byte order (a prefix first) wherever Cairn sorts by key:
// fired tumbling, hopping and session windows (by window end, then key), and toArrow exports (by
// key, then window start). Those sorts radix-sort the keys' first 16 bytes as two big-endian words
// and merge sort only the runs that tie on them (assembly/sort.ts, sortByUtf8Key), so the keys here
// are built to tie: shared 8- and 16-byte prefixes, keys that are prefixes of others, trailing NUL
// characters, the empty key, lengths around 8 and 16, and bytes of 0x80 and above (the word's sign
// bit). One set has most keys tied (the whole-input merge sort), one only a few (the runs).
// The reference is the window model (test/oracle), which compares encoded bytes directly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, type WindowSpec } from '../../src/index.js';
import { WindowModel } from '../oracle/window-model.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { Rng, toColumns, type GenRow } from '../oracle/gen.js';
import { rowsOf, WINDOW_AGGS as AGGS } from '../helpers.js';

const P16 = 'customer-0000000'; // 16 bytes
const P8 = 'device-#'; // 8 bytes

/** Most keys share their first 16 bytes. */
const TIED: string[] = [
  P16, `${P16}\u0000`, `${P16}\u0000\u0000`, `${P16}0`, `${P16}00`, `${P16}1`, `${P16}10`, `${P16}2`, `${P16}é`, `${P16}\u007f`,
  `${P16}\u0080`, `${P16}日本`, `${P16}😀`, `${P16}zzzzzzzzzzzzzzzzzz`, `${P16}zzzzzzzzzzzzzzzzz`, 'customer-00000001', 'customer-0000000',
  'customer-000000', 'a',
];

/** A few ties among many keys that the two words tell apart. */
const MIXED: string[] = [
  '', '\u0000', '\u0000\u0000', 'a', 'a\u0000', 'ab', 'abc', 'abcdefg', 'abcdefgh', 'abcdefgh\u0000', 'abcdefghi', 'abcdefgi',
  'abcdefghijklmno', 'abcdefghijklmnop', 'abcdefghijklmnopq', 'abcdefghijklmnopr', 'abcdefghijklmnop\u0000', P8, `${P8}1`, `${P8}10`,
  `${P8}2`, `${P8}é`, 'é', 'ü', 'ÿ', '\u0100', '\u07ff', '\u0800', '日本', '日本語', '\uffff', '😀', '😀😀', '\u007f', '\u0080', 'Z', 'z',
  ...Array.from({ length: 60 }, (_, i) => `user-${String(i * 37).padStart(4, '0')}`),
];

function events(keys: string[], seed: number, n: number, span: number): GenRow[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => ({ key: keys[rng.int(0, keys.length - 1)]!, time: rng.int(0, span - 1), values: { amount: rng.int(0, 50), qty: 1 } }));
}

const WINDOWS: WindowSpec[] = [
  { kind: 'tumbling', size: 100 },
  { kind: 'hopping', size: 200, slide: 50 },
  { kind: 'session', gap: 30 },
];

for (const [name, keys] of [['mostly tied', TIED], ['mixed', MIXED]] as const) {
  for (const window of WINDOWS) {
    test(`${window.kind} windows fire utf8 keys in byte order (${name} keys)`, async () => {
      const backend = await StateBackend.open();
      try {
        const op = backend.aggregate('w', { key: { field: 'user', type: 'utf8' }, time: 'ts', window, aggregates: AGGS as never });
        const model = new WindowModel({ keyType: 'utf8', window, aggregates: AGGS as never });
        for (let step = 0; step < 6; step++) {
          // Each step draws from a different part of the key set: keys whose windows are all freed
          // leave the store (a hopping store's per-key records leave holes that later keys reuse).
          const part = [...keys.slice(step * 7), ...keys.slice(0, step * 7)].slice(0, Math.ceil(keys.length * 0.6));
          const rows = events(part, 11 + step, 600, 400).map((r) => ({ ...r, time: r.time + step * 300 }));
          await op.ingest(toColumns(rows, { keyType: 'utf8' }));
          model.ingest(rows as never);
          if (window.kind !== 'hopping') {
            // Live state, in (key, window start) order.
            assert.equal(rowsOf(await op.toArrow(), 'user'), model.state(), `state after step ${step}`);
          }
          const wm = step * 300 + 250;
          assert.equal(rowsOf(await op.advanceWatermark(wm), 'user'), model.advanceWatermark(wm), `fired at ${wm}`);
        }
        assert.equal(rowsOf(await op.advanceWatermark(1e6), 'user'), model.advanceWatermark(1e6), 'final firing');
      } finally {
        await backend.close();
      }
    });
  }

  test(`running aggregates export utf8 keys in byte order (${name} keys)`, async () => {
    const backend = await StateBackend.open();
    try {
      const aggs = { n: { fn: 'count' }, s: { fn: 'sum', field: 'amount' } } as const;
      const op = backend.aggregate('a', { key: { field: 'user', type: 'utf8' }, aggregates: aggs });
      const model = new AggregateModel({ keyType: 'utf8', aggregates: aggs as never });
      const rows = events(keys, 5, 3000, 1000);
      await op.ingest(toColumns(rows, { keyType: 'utf8', valueFields: ['amount'] }));
      model.ingest(rows as never);
      const got = rowsOf(await op.toArrow(), 'user');
      assert.is(got.length, new Set(rows.map((r) => r.key)).size);
      assert.equal(got, model.rows());
    } finally {
      await backend.close();
    }
  });
}

test.run();
