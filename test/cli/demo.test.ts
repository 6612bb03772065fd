// `cairn demo` (the README's main job): its query 5 tables against an oracle that counts the bids
// of bids.csv per auction and 10 s window (sliding by 2 s) in plain TypeScript, and only full
// windows (none that starts before the earliest bid's slide or is still open at the end).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type CliIo } from '../../src/cli/main.js';
import { LOCK_NAME, acquireDirLock } from '../../src/storage/dir-lock.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-demo-'));
const SIZE = 10_000;
const SLIDE = 2_000;

async function demo(events: number, sub: string): Promise<string> {
  let out = '';
  const io: CliIo = { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true, isTTY: false }, env: {} };
  assert.is(await main(['demo', '--events', String(events), '--dir', join(dir, sub), '--quiet', '--seed', '7'], io), 0, out);
  return out;
}

interface Oracle {
  /** Full window ends, ascending, and per end the auctions ranked by bids (ties: smaller id first). */
  fullEnds: number[];
  ranked: Map<number, { auction: number; bids: number }[]>;
}

function oracle(csv: string): Oracle {
  const lines = csv.trim().split('\n');
  const header = lines[0]!.split(',');
  const a = header.indexOf('auction');
  const t = header.indexOf('date_time');
  const counts = new Map<number, Map<number, number>>();
  let minT = Infinity;
  let maxT = -Infinity;
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    const auction = Number(cells[a]);
    const time = Number(cells[t]);
    minT = Math.min(minT, time);
    maxT = Math.max(maxT, time);
    // The windows holding `time`: starts at multiples of SLIDE in (time - SIZE, time].
    for (let start = Math.floor(time / SLIDE) * SLIDE; start > time - SIZE; start -= SLIDE) {
      const end = start + SIZE;
      let m = counts.get(end);
      if (!m) counts.set(end, (m = new Map()));
      m.set(auction, (m.get(auction) ?? 0) + 1);
    }
  }
  const firstStart = Math.floor(minT / SLIDE) * SLIDE;
  const lastEnd = Math.floor(maxT / SLIDE) * SLIDE; // windows ending later still held the last bid's slide open
  const fullEnds = [...counts.keys()].filter((e) => e - SIZE >= firstStart && e <= lastEnd).sort((x, y) => x - y);
  const ranked = new Map<number, { auction: number; bids: number }[]>();
  for (const e of fullEnds) {
    ranked.set(e, [...counts.get(e)!].map(([auction, bids]) => ({ auction, bids })).sort((x, y) => y.bids - x.bids || x.auction - y.auction));
  }
  return { fullEnds, ranked };
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

test('demo: the hottest auctions and the hot item per full window match an independent count of the bids', async () => {
  const out = await demo(150_000, 'a');
  const o = oracle(readFileSync(join(dir, 'a', 'bids.csv'), 'utf8'));
  assert.ok(o.fullEnds.length >= 2, `the stream should span several full windows (${o.fullEnds.length})`);
  const last = o.fullEnds[o.fullEnds.length - 1]!;
  assert.ok(out.includes(`Hottest auctions in the last full window [${clock(last - SIZE)}, ${clock(last)}):`), out);
  const top = o.ranked.get(last)!.slice(0, 5);
  const hottest = out.split('rank  auction  bids\n')[1]!.split('\n\n')[0]!.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
  assert.equal(hottest, top.map((r, i) => [i + 1, r.auction, r.bids]));
  const shown = o.fullEnds.slice(-5);
  assert.ok(out.includes(`(last ${shown.length} full windows of ${o.fullEnds.length}):`), out);
  const perWindow = out.split('window (UTC)       auction  bids\n')[1]!.split('\n\n')[0]!.trim().split('\n').map((l) => l.trim().split(/\s+/));
  assert.equal(perWindow, shown.map((e) => [`${clock(e - SIZE)}-${clock(e)}`, String(o.ranked.get(e)![0]!.auction), String(o.ranked.get(e)![0]!.bids)]));
});

test('demo: a stream shorter than one full window says so', async () => {
  const out = await demo(40_000, 'b');
  const o = oracle(readFileSync(join(dir, 'b', 'bids.csv'), 'utf8'));
  assert.is(o.fullEnds.length, 0);
  assert.ok(out.includes('The stream is shorter than one window: no full window to rank.'), out);
});

test('demo: a checkpoint directory locked by a live run stops the demo, and its files stay', async () => {
  const sub = join(dir, 'locked');
  const ckpt = join(sub, 'checkpoints');
  mkdirSync(join(ckpt, 'manifests'), { recursive: true });
  writeFileSync(join(ckpt, 'manifests', '000000000001.cmf'), 'a live run\'s checkpoint');
  const lock = await acquireDirLock(ckpt); // held by this process, as a live run would hold it
  try {
    let err = '';
    const io: CliIo = { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s), isTTY: false }, env: {} };
    assert.is.not(await main(['demo', '--events', '1000', '--dir', sub, '--quiet'], io), 0);
    assert.match(err, /in use|locked|holds/i);
    assert.is(readFileSync(join(ckpt, 'manifests', '000000000001.cmf'), 'utf8'), 'a live run\'s checkpoint');
    assert.ok(existsSync(join(ckpt, LOCK_NAME)), 'the live run\'s lock stays');
  } finally {
    await lock.release();
  }
});

test('cleanup', () => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
