// Proves the reference WindowModel on small hand-computed cases taken from the semantics: tumbling
// firing, late updates re-firing, purge and late drops; hopping window membership, ordering and
// partial acceptance; session merging through a bridging event; TTL eviction for 'none'; first/last
// ties and null skipping inside windows; and rejection of invalid input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WindowModel } from '../oracle/window-model.js';
import { isCairnError } from '../../src/errors.js';

const CS = { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } as const;
const ev = (key: string, time: number, v: number | null = 1) => ({ key, time, values: { v } });

test('tumbling: fire at end, late update re-fires, purge at end + L, then drop', () => {
  const m = new WindowModel({ keyType: 'utf8', window: { kind: 'tumbling', size: 10 }, allowedLateness: 5, aggregates: CS });
  m.ingest([ev('a', 1, 1), ev('a', 4, 2), ev('a', 12, 3)]);
  assert.equal(m.advanceWatermark(9), []);
  assert.equal(m.advanceWatermark(10), [{ key: 'a', window_start: 0, window_end: 10, n: 2, s: 3 }]);
  assert.equal(m.advanceWatermark(10), [], 'unchanged windows do not fire again');
  m.ingest([ev('a', 8, 10)]); // W=10 < 10 + 5: accepted, late update of a fired window
  assert.is(m.lateEvents, 0);
  assert.equal(m.advanceWatermark(7), [{ key: 'a', window_start: 0, window_end: 10, n: 3, s: 13 }], 'an older watermark still flushes re-fires');
  assert.is(m.watermark, 10);
  assert.equal(m.advanceWatermark(14), []);
  m.ingest([ev('a', 9, 100)]); // W=14 = end + L - 1: the last watermark at which [0,10) accepts
  assert.is(m.lateEvents, 0);
  assert.equal(m.state(), [
    { key: 'a', window_start: 0, window_end: 10, n: 4, s: 113 },
    { key: 'a', window_start: 10, window_end: 20, n: 1, s: 3 },
  ]);
  // W=15 reaches 10 + 5: the window fires with its update, then is purged.
  assert.equal(m.advanceWatermark(15), [{ key: 'a', window_start: 0, window_end: 10, n: 4, s: 113 }]);
  assert.equal(m.state(), [{ key: 'a', window_start: 10, window_end: 20, n: 1, s: 3 }]);
  m.ingest([ev('a', 2, 1000), ev('b', 9, 1)]); // [0,10) is past end + L: both dropped
  assert.is(m.lateEvents, 2);
  m.ingest([ev('b', 10, 7)]); // [10,20) is live and not yet fired
  assert.equal(m.advanceWatermark(20), [
    { key: 'a', window_start: 10, window_end: 20, n: 1, s: 3 },
    { key: 'b', window_start: 10, window_end: 20, n: 1, s: 7 },
  ]);
});

test('tumbling with L=0 fires and purges at once; a late event is dropped', () => {
  const m = new WindowModel({ keyType: 'int64', window: { kind: 'tumbling', size: 10 }, aggregates: CS });
  m.ingest([{ key: 3n, time: -1, values: { v: 1 } }, { key: -3n, time: 0, values: { v: 2 } }, { key: 3n, time: -10, values: { v: 4 } }]);
  assert.equal(m.advanceWatermark(10), [
    { key: 3n, window_start: -10, window_end: 0, n: 2, s: 5 },
    { key: -3n, window_start: 0, window_end: 10, n: 1, s: 2 },
  ]);
  assert.equal(m.state(), []);
  m.ingest([{ key: 3n, time: 9, values: { v: 1 } }]);
  assert.is(m.lateEvents, 1);
  assert.equal(m.advanceWatermark(11), []);
});

test('hopping size 10 slide 5: each event in two windows, rows ordered by (end, key, start)', () => {
  const m = new WindowModel({ keyType: 'utf8', window: { kind: 'hopping', size: 10, slide: 5 }, aggregates: CS });
  m.ingest([ev('b', 7, 1), ev('a', 12, 2), ev('b', -3, 4), ev('a', 5, 8)]);
  // b@7 -> [0,10),[5,15); a@12 -> [5,15),[10,20); b@-3 -> [-10,0),[-5,5); a@5 -> [0,10),[5,15)
  assert.equal(m.advanceWatermark(100), [
    { key: 'b', window_start: -10, window_end: 0, n: 1, s: 4 },
    { key: 'b', window_start: -5, window_end: 5, n: 1, s: 4 },
    { key: 'a', window_start: 0, window_end: 10, n: 1, s: 8 },
    { key: 'b', window_start: 0, window_end: 10, n: 1, s: 1 },
    { key: 'a', window_start: 5, window_end: 15, n: 2, s: 10 },
    { key: 'b', window_start: 5, window_end: 15, n: 1, s: 1 },
    { key: 'a', window_start: 10, window_end: 20, n: 1, s: 2 },
  ]);
});

test('hopping: an event is late only when it fits no live window', () => {
  const m = new WindowModel({ keyType: 'utf8', window: { kind: 'hopping', size: 10, slide: 5 }, aggregates: CS });
  m.advanceWatermark(10);
  m.ingest([ev('a', 9, 1)]); // [0,10) is past end + 0, [5,15) is live: accepted, not late
  m.ingest([ev('a', 4, 1)]); // [-5,5) and [0,10) both past: dropped once
  assert.is(m.lateEvents, 1);
  assert.equal(m.advanceWatermark(15), [{ key: 'a', window_start: 5, window_end: 15, n: 1, s: 1 }]);
});

test('hopping with non-dividing slide is invalid', () => {
  assert.throws(
    () => new WindowModel({ keyType: 'utf8', window: { kind: 'hopping', size: 10, slide: 4 }, aggregates: CS }),
    (e: unknown) => isCairnError(e, 'invalid'),
  );
});

test('session: a bridging event merges two sessions and supersedes the fired one', () => {
  const m = new WindowModel({ keyType: 'utf8', window: { kind: 'session', gap: 10 }, allowedLateness: 20, aggregates: CS });
  m.ingest([ev('a', 0, 1), ev('a', 18, 2), ev('b', 5, 5)]);
  assert.equal(m.advanceWatermark(12), [{ key: 'a', window_start: 0, window_end: 10, n: 1, s: 1 }]);
  m.ingest([ev('a', 9, 4)]); // [9,19) overlaps [0,10) and [18,28): one session [0,28)
  assert.equal(m.state(), [
    { key: 'a', window_start: 0, window_end: 28, n: 3, s: 7 },
    { key: 'b', window_start: 5, window_end: 15, n: 1, s: 5 },
  ]);
  assert.equal(m.advanceWatermark(12), [], 'merged session ends at 28, not reached yet');
  m.ingest([ev('a', 28, 8)]); // [28,38) only touches [0,28): half-open intervals do not overlap
  assert.equal(m.advanceWatermark(28), [
    { key: 'b', window_start: 5, window_end: 15, n: 1, s: 5 },
    { key: 'a', window_start: 0, window_end: 28, n: 3, s: 7 },
  ]);
  assert.equal(m.advanceWatermark(38), [{ key: 'a', window_start: 28, window_end: 38, n: 1, s: 8 }]);
});

test('session: late drop uses the event interval; purged sessions are gone', () => {
  const m = new WindowModel({ keyType: 'utf8', window: { kind: 'session', gap: 10 }, aggregates: CS });
  m.ingest([ev('a', 0, 1)]);
  assert.equal(m.advanceWatermark(30), [{ key: 'a', window_start: 0, window_end: 10, n: 1, s: 1 }]);
  m.ingest([ev('a', 20, 1)]); // 20 + 10 + 0 <= 30: dropped
  assert.is(m.lateEvents, 1);
  m.ingest([ev('a', 21, 2), ev('a', 5, 4)]); // 5 + 10 <= 30: dropped; 21 accepted as [21,31)
  assert.is(m.lateEvents, 2);
  assert.equal(m.state(), [{ key: 'a', window_start: 21, window_end: 31, n: 1, s: 2 }]);
  // With L > 0 an accepted event can overlap a session that was already purged: it starts afresh.
  const l = new WindowModel({ keyType: 'utf8', window: { kind: 'session', gap: 10 }, allowedLateness: 3, aggregates: CS });
  l.ingest([ev('a', 0, 1)]);
  l.advanceWatermark(13); // purges [0,10) at 10 + 3
  l.ingest([ev('a', 5, 2)]); // 5 + 10 + 3 > 13: accepted; [0,10) is gone
  assert.equal(l.advanceWatermark(15), [{ key: 'a', window_start: 5, window_end: 15, n: 1, s: 2 }]);
});

test('first/last ties and null skipping inside a window', () => {
  const m = new WindowModel({
    keyType: 'utf8',
    window: { kind: 'tumbling', size: 100 },
    aggregates: { n: { fn: 'count' }, nv: { fn: 'count', field: 'v' }, f: { fn: 'first', field: 'v' }, l: { fn: 'last', field: 'v' }, lo: { fn: 'min', field: 'v' }, mean: { fn: 'mean', field: 'v' } },
  });
  m.ingest([ev('a', 50, 1), ev('a', 10, 2), ev('a', 10, 3), ev('a', 5, null), ev('a', 90, 4), ev('a', 90, 5), ev('a', 95, null)]);
  m.ingest([ev('z', 1, null)]);
  assert.equal(m.advanceWatermark(100), [
    { key: 'a', window_start: 0, window_end: 100, n: 7, nv: 5, f: 2, l: 5, lo: 1, mean: 3 },
    { key: 'z', window_start: 0, window_end: 100, n: 1, nv: 0, f: null, l: null, lo: null, mean: null },
  ]);
});

test('none: running aggregates with TTL eviction at advanceWatermark', () => {
  const m = new WindowModel({ keyType: 'utf8', window: { kind: 'none', ttl: 100 }, aggregates: CS });
  m.ingest([ev('a', 0, 1), ev('b', 50, 2), ev('a', 30, 4)]);
  assert.equal(m.get('a'), { n: 2, s: 5 });
  assert.equal(m.advanceWatermark(129), []);
  assert.equal(m.keys(), ['a', 'b']);
  assert.equal(m.advanceWatermark(130), []); // a: 30 + 100 <= 130 evicted; b: 150 > 130 kept
  assert.is(m.get('a'), undefined);
  assert.equal(m.get('b'), { n: 1, s: 2 });
  m.ingest([ev('a', 10, 8)]); // a is gone and 10 + 100 <= 130: expired already, so late (never visible)
  assert.is(m.lateEvents, 1);
  assert.equal(m.state(), [{ key: 'b', n: 1, s: 2 }]);
  m.ingest([ev('b', 20, 16)]); // 20 + 100 <= 130, but b is live (newest 50): applied
  assert.is(m.lateEvents, 1);
  assert.equal(m.get('b'), { n: 2, s: 18 });
  m.ingest([ev('a', 40, 8)]); // 40 + 100 > 130: accepted, fresh state
  assert.is(m.lateEvents, 1);
  assert.equal(m.state(), [{ key: 'a', n: 1, s: 8 }, { key: 'b', n: 2, s: 18 }]);
  assert.equal(m.advanceWatermark(150), []);
  assert.equal(m.keys(), []);
  const forever = new WindowModel({ keyType: 'utf8', window: { kind: 'none' }, aggregates: CS });
  forever.ingest([ev('a', 0, 1)]);
  forever.advanceWatermark(1e15);
  assert.equal(forever.get('a'), { n: 1, s: 1 });
});

test('invalid batches change nothing; get() needs kind none', () => {
  const m = new WindowModel({ keyType: 'utf8', window: { kind: 'tumbling', size: 10 }, aggregates: CS });
  m.ingest([ev('a', 1, 1)]);
  for (const bad of [[ev('a', 2, 1), { key: 'b', values: { v: 1 } }], [ev('a', 2, 1), ev('b', 2.5, 1)], [ev('a', 2, 1), { key: undefined, time: 3, values: {} }]]) {
    assert.throws(() => m.ingest(bad as never), (e: unknown) => isCairnError(e, 'invalid'));
  }
  assert.equal(m.state(), [{ key: 'a', window_start: 0, window_end: 10, n: 1, s: 1 }]);
  assert.throws(() => m.get('a'), (e: unknown) => isCairnError(e, 'invalid'));
  assert.throws(() => m.advanceWatermark(NaN), (e: unknown) => isCairnError(e, 'invalid'));
});

test.run();
