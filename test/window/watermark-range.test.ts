// Watermarks at the ends of int64. Engines built like Flink start a stream at Long.MIN_VALUE and end
// it at Long.MAX_VALUE; event times stay within ±2^53 and windows within a century, so a watermark
// below -2^53 fires nothing and one above 2^53 fires (and purges) everything. The window arithmetic
// on such a watermark once wrapped: an advance to the int64 minimum fired every window, which then
// fired again at the next advance. The oracle is the window model, fed the same watermark clamped to
// ±2^53 (which, for these events and windows, means the same). A bigint outside int64 is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, CairnError, type WindowSpec } from '../../src/index.js';
import { WindowModel } from '../oracle/window-model.js';
import { rowsOf } from '../helpers.js';

const AGGS = { n: { fn: 'count' }, total: { fn: 'sum', field: 'v' }, hi: { fn: 'max', field: 'v' } } as const;
const MIN = -(2n ** 63n);
const MAX = 2n ** 63n - 1n;
const T53 = 2n ** 53n;
const forModel = (w: bigint) => (w < -T53 ? -T53 : w > T53 ? T53 : w);

type Step = { ingest: [bigint, number, number][] } | { advance: bigint };

const STEPS: Step[] = [
  { ingest: [[1n, 1, 10], [2n, 2, 20], [1n, 8, 5]] },
  { advance: MIN },
  { advance: MIN + 1n },
  { advance: -(2n ** 62n) },
  { advance: -T53 - 1n },
  { advance: MIN },
  { ingest: [[1n, 3, 7], [3n, 12, 1]] },
  { advance: 11n },
  { ingest: [[1n, 9, 2]] }, // late for tumbling and hopping unless the lateness covers it
  { advance: 25n },
  { ingest: [[2n, 200, 4], [4n, 205, 6]] },
  { advance: MAX },
  { advance: MAX - 1n },
  { ingest: [[2n, 300, 9]] }, // behind the watermark: late
  { advance: 2n ** 62n },
  { advance: MAX },
];

const WINDOWS: WindowSpec[] = [
  { kind: 'tumbling', size: 10 },
  { kind: 'hopping', size: 20, slide: 10 },
  { kind: 'session', gap: 5 },
];

for (const window of WINDOWS) {
  for (const lateness of [0, 15]) {
    test(`${window.kind} windows, lateness ${lateness}: watermarks at the ends of int64 fire each window once, as the model does`, async () => {
      for (const [shards, workers] of [[1, false], [3, false], [2, true]] as const) {
        const backend = await StateBackend.open({ shards, workers });
        try {
          const op = backend.aggregate('w', { key: { field: 'k', type: 'int64' }, time: 'ts', window, allowedLateness: lateness, aggregates: AGGS });
          const model = new WindowModel({ keyType: 'int64', window, allowedLateness: lateness, aggregates: AGGS as never });
          for (const [i, s] of STEPS.entries()) {
            if ('ingest' in s) {
              await op.ingest({ k: BigInt64Array.from(s.ingest, (e) => e[0]), ts: s.ingest.map((e) => e[1]), v: s.ingest.map((e) => e[2]) });
              model.ingest(s.ingest.map(([k, t, v]) => ({ key: k, time: t, values: { v } })) as never);
            } else {
              const got = rowsOf(await op.advanceWatermark(s.advance), 'k');
              assert.equal(got, model.advanceWatermark(forModel(s.advance)), `step ${i}: advance to ${s.advance} (${shards} shards, workers ${workers})`);
            }
          }
        } finally {
          await backend.close();
        }
      }
    });
  }
}

test('a bigint watermark outside int64 is refused (invalid) and changes nothing', async () => {
  const window: WindowSpec = { kind: 'tumbling', size: 10 };
  for (const [shards, workers] of [[1, false], [2, true]] as const) {
    const backend = await StateBackend.open({ shards, workers });
    try {
      const op = backend.aggregate('w', { key: { field: 'k', type: 'int64' }, time: 'ts', window, aggregates: AGGS });
      const model = new WindowModel({ keyType: 'int64', window, allowedLateness: 0, aggregates: AGGS as never });
      const events: [bigint, number, number][] = [[1n, 1, 10], [2n, 15, 20]];
      await op.ingest({ k: BigInt64Array.from(events, (e) => e[0]), ts: events.map((e) => e[1]), v: events.map((e) => e[2]) });
      model.ingest(events.map(([k, t, v]) => ({ key: k, time: t, values: { v } })) as never);
      for (const bad of [MAX + 1n, 2n ** 64n + 5n, MIN - 1n, -(2n ** 70n)]) {
        try {
          await op.advanceWatermark(bad);
          assert.unreachable(`advance to ${bad} was accepted`);
        } catch (e) {
          assert.instance(e, CairnError);
          assert.is((e as CairnError).kind, 'invalid', `advance to ${bad}`);
        }
      }
      assert.is(op.watermark, -Infinity, 'the watermark did not move');
      await op.advanceWatermark(-(2n ** 62n));
      assert.is(op.watermark, -Infinity, 'a watermark below every window is none, as in Wasm');
      assert.equal(rowsOf(await op.advanceWatermark(12n), 'k'), model.advanceWatermark(12n));
      assert.equal(rowsOf(await op.advanceWatermark(MAX), 'k'), model.advanceWatermark(T53));
    } finally {
      await backend.close();
    }
  }
});

test.run();
