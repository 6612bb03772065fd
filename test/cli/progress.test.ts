// Proves the progress reporter (src/cli/progress.ts) writes what each mode promises: a single redrawn
// line on a terminal, a plain line at most every 2 s otherwise, a final summary in both, and nothing
// when quiet. How: a fake stream records every write and a hand-driven clock replaces the real one, so
// throttling is checked by exact counts at chosen instants, never by waiting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PLAIN_LINE_MS, Progress, TTY_REDRAW_MS, formatCount, formatSeconds } from '../../src/cli/progress.js';

function harness(isTTY: boolean, mode: 'auto' | 'quiet', total?: number, columns?: number) {
  const writes: string[] = [];
  let clock = 1_000; // any origin
  const stream = { isTTY, columns, write: (s: string) => writes.push(s) };
  const progress = new Progress({ stream, mode, now: () => clock, ...(total === undefined ? {} : { total }) });
  return { progress, writes, advance: (ms: number) => (clock += ms) };
}

test('quiet writes nothing at all', () => {
  for (const isTTY of [true, false]) {
    const h = harness(isTTY, 'quiet', 1000);
    for (let i = 1; i <= 100; i++) {
      h.advance(1000);
      h.progress.update(i * 10, i * 100);
    }
    h.progress.note('checkpoint written');
    h.progress.finish();
    assert.equal(h.writes, []);
  }
});

test('not a terminal: plain lines at most every 2 s, then a summary', () => {
  const h = harness(false, 'auto', 1_000_000);
  // Updates every 500 ms for 10 s: one line per 2 s (at 2, 4, 6, 8, 10 s).
  for (let i = 1; i <= 20; i++) {
    h.advance(500);
    h.progress.update(i * 50_000, i * 5_000);
  }
  assert.is(h.writes.length, 10_000 / PLAIN_LINE_MS);
  for (const line of h.writes) {
    assert.ok(line.startsWith('progress: ') && line.endsWith('\n'), JSON.stringify(line));
    assert.not.ok(line.includes('\r') || line.includes('\x1b'), 'no terminal control in plain output');
  }
  // At 2 s: 4 updates in, 200000 of 1000000 bytes, 20000 events, 10000 events/s, 8 s left.
  assert.is(h.writes[0], 'progress: 20.0%  20.0k events  10.0k events/s  ETA 8.0s\n');
  h.progress.finish();
  assert.is(h.writes.length, 6);
  assert.is(h.writes[5], 'done: 100k events in 10s, 10.0k events/s\n');
  h.progress.update(1, 1);
  h.progress.finish();
  assert.is(h.writes.length, 6, 'nothing after finish');
});

test('terminal: one line redrawn in place at most every 100 ms, with a bar', () => {
  const h = harness(true, 'auto', 1000, 80);
  h.advance(50);
  h.progress.update(100, 10); // too soon: no draw
  assert.is(h.writes.length, 0);
  h.advance(TTY_REDRAW_MS);
  h.progress.update(250, 25);
  h.advance(10);
  h.progress.update(260, 26); // too soon again
  assert.is(h.writes.length, 1);
  const line = h.writes[0]!;
  assert.ok(line.startsWith('\r[######------------------]  25.0%  25 events'), JSON.stringify(line));
  assert.ok(line.endsWith('\x1b[K'), 'clears the rest of the line');
  assert.not.ok(line.includes('\n'), 'a redraw never starts a new line');
  assert.ok(line.length - 4 <= 79, 'fits the terminal');
  h.progress.note('checkpoint 3 written');
  assert.is(h.writes[1], '\r\x1b[Kcheckpoint 3 written\n');
  h.advance(1000);
  h.progress.finish();
  assert.is(h.writes[2], '\rdone: 26 events in 1.2s, 22 events/s\x1b[K\n');
});

test('without a total there is no bar, percentage or ETA', () => {
  const h = harness(true, 'auto');
  h.advance(5_000);
  h.progress.update(123, 4_567_890);
  assert.is(h.writes[0], '\r4.57M events  914k events/s  elapsed 5.0s\x1b[K');
});

test('narrow terminals get cut lines', () => {
  const h = harness(true, 'auto', 1000, 20);
  h.advance(1000);
  h.progress.update(500, 5);
  assert.is(h.writes[0], '\r[############------\x1b[K'); // 19 characters: one less than the width
});

test('formatCount and formatSeconds', () => {
  const counts: [number, string][] = [
    [0, '0'],
    [999, '999'],
    [1000, '1.00k'],
    [1234, '1.23k'],
    [45_678, '45.7k'],
    [999_499, '999k'],
    [999_500, '1.00M'],
    [1_234_567_890, '1.23G'],
    [Infinity, '?'],
  ];
  for (const [n, text] of counts) assert.is(formatCount(n), text, String(n));
  const times: [number, string][] = [
    [0, '0.0s'],
    [9.94, '9.9s'],
    [12.4, '12s'],
    [65, '1m05s'],
    [3599.4, '59m59s'],
    [7380, '2h03m'],
  ];
  for (const [s, text] of times) assert.is(formatSeconds(s), text, String(s));
});

test.run();
