// Proves the hopping index (assembly/hop.ts) changes nothing observable: the same random hopping
// streams run through two Wasm instances, one with the index and one with only the general
// emission, must fire the same rows bit for bit (float sums of fractional values included, whose
// bits depend on the order of additions), leave the same state (exports), and write the same
// checkpoint bytes, full and incremental (the dirty-row order and the reuse of freed row ids show there).
// Streams mix in-order stretches (where the index serves emissions) with events behind the
// watermark, watermark jumps, key deletes and restores (where the index must step aside and be
// rebuilt). A run that never used the index fails, so the comparison cannot pass vacuously. The
// reference model (test/oracle/window-model.ts) checks the same firings on integer values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WasmCore } from '../../bindings/core.js';
import { MODE_DELTA, MODE_FULL } from '../../bindings/exports.js';
import type { OutColumns, StoreConfig } from '../../bindings/types.js';
import { normalizeAggregateSpec, storeConfigOf } from '../../src/store/spec.js';
import { encodeBatch, encodeKey } from '../../src/store/batch.js';
import { toArrow } from '../../src/store/output.js';
import type { WindowSpec } from '../../src/index.js';
import { WindowModel } from '../oracle/window-model.js';
import { genEvents, toColumns, Rng, type GenRow } from '../oracle/gen.js';
import { rowsOf, WINDOW_AGGS as AGGS } from '../helpers.js';

const KEY_GROUPS = 64;

function bytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Every buffer of a firing, as bytes: equal lists mean equal rows, float bits included. */
function outBytes(o: OutColumns): Uint8Array[] {
  const keys = o.keys.type === 'int64' ? [bytes(o.keys.values)] : [bytes(o.keys.offsets), bytes(o.keys.bytes)];
  return [...keys, bytes(o.start), bytes(o.end), ...o.values.map(bytes), ...o.valid.map(bytes)];
}

function sameBytes(a: Uint8Array[], b: Uint8Array[], what: string): void {
  assert.is(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    assert.is(a[i]!.length, b[i]!.length, `${what}: buffer ${i} length`);
    const j = a[i]!.findIndex((x, k) => x !== b[i]![k]);
    assert.is(j, -1, `${what}: buffer ${i} differs at byte ${j}`);
  }
}

interface HopCase {
  seed: number;
  keyType: 'int64' | 'utf8';
  slide: number;
  panes: number;
  lateness: number;
  keys: number;
  n: number;
  steps: number;
  disorder: number;
  /** Event time spread per event (ms): small spreads give dense panes, where fold order shows. */
  spread: number;
  fractional: boolean;
  /** Aggregates: WINDOW_AGGS, or one of the plans the index folds without a loop (Hop.simple). */
  plan?: 'all' | 'simple' | 'simple-reordered';
  /**
   * utf8 keys: a prefix given to every key, so that keys tie on their first 8 or 16 bytes, which
   * the key sorts (sortByUtf8Key) then order by a merge sort.
   */
  prefix?: string;
}

/** Count, sum, min and max of one field: the plan of the benchmarks. */
const SIMPLE = { n: { fn: 'count' }, spend: { fn: 'sum', field: 'amount' }, lo: { fn: 'min', field: 'amount' }, hi: { fn: 'max', field: 'amount' } } as const;
/** The same kind of plan in another order, with mean and count(field). */
const SIMPLE_REORDERED = { hi: { fn: 'max', field: 'amount' }, avg: { fn: 'mean', field: 'amount' }, n: { fn: 'count' }, valued: { fn: 'count', field: 'amount' }, lo: { fn: 'min', field: 'amount' } } as const;

function aggsOf(p: HopCase): Record<string, { fn: string; field?: string }> {
  return p.plan === 'simple' ? SIMPLE : p.plan === 'simple-reordered' ? SIMPLE_REORDERED : AGGS;
}

/** One store in one Wasm instance, with the index on or off. */
class Side {
  readonly core: WasmCore;
  h: number;
  constructor(readonly cfg: StoreConfig, indexOn: boolean) {
    this.core = new WasmCore();
    this.core.ex.hopIndexEnable(indexOn ? 1 : 0);
    this.h = this.core.openStore(cfg);
  }
  served(): bigint {
    return this.core.ex.hopIndexServed();
  }
  /** Replaces the store by one restored from its full checkpoint; returns the checkpoint. */
  restore(): Uint8Array {
    const snap = this.core.captureBytes(this.h, MODE_FULL, KEY_GROUPS, null);
    const wm = this.core.ex.watermark(this.h);
    const late = this.core.ex.lateEvents(this.h);
    this.core.ex.storeClose(this.h);
    this.h = this.core.openStore(this.cfg);
    this.core.load(this.h, snap, KEY_GROUPS, null);
    this.core.ex.setWatermark(this.h, wm);
    this.core.ex.setLateEvents(this.h, late);
    return snap;
  }
}

async function runHopCase(p: HopCase): Promise<bigint> {
  const window: WindowSpec = { kind: 'hopping', size: p.slide * p.panes, slide: p.slide };
  const aggregates = aggsOf(p);
  const spec = normalizeAggregateSpec({ key: { field: 'user', type: p.keyType }, time: 'ts', window, aggregates: aggregates as never, allowedLateness: p.lateness });
  const cfg = storeConfigOf(spec);
  const rows = genEvents({
    seed: p.seed, n: p.n, keys: p.keys, keyType: p.keyType, disorderMs: p.disorder, timeSpread: Math.max(1, Math.round(p.n * p.spread)),
    nullRate: 0.1, multibyte: true, skew: 0.5, fractional: p.fractional,
  });
  if (p.keyType === 'utf8' && p.prefix) for (const r of rows) r.key = p.prefix + String(r.key);
  // genEvents' fractions are multiples of 2^-32, whose small sums are exact in any order: divide
  // by 7 so every value uses the whole mantissa and the order of additions shows in the bits.
  if (p.fractional) {
    for (const r of rows) {
      const v = r.values['amount'];
      if (typeof v === 'number') r.values['amount'] = v / 7;
    }
  }
  const on = new Side(cfg, true);
  const off = new Side(cfg, false);
  const model = p.fractional ? null : new WindowModel({ keyType: p.keyType, window, allowedLateness: p.lateness, aggregates: aggregates as never });
  const rng = new Rng(p.seed ^ 0x2545f491);
  const chunk = Math.max(1, Math.ceil(rows.length / p.steps));
  let tracking = false;
  let seq = 0n;
  const fire = (wm: number, what: string) => {
    const a = on.core.advance(on.h, BigInt(wm), cfg);
    const b = off.core.advance(off.h, BigInt(wm), cfg);
    sameBytes(outBytes(a), outBytes(b), `${what}: fired rows at ${wm}`);
    if (model) assert.equal(rowsOf(toArrow(spec, a, true), 'user'), model.advanceWatermark(wm), `${what}: model at ${wm}`);
  };
  for (let o = 0, step = 0; o < rows.length; o += chunk, step++) {
    const part: GenRow[] = rows.slice(o, o + chunk);
    const batch = encodeBatch(toColumns(part, { keyType: p.keyType }), spec);
    on.core.ingest(on.h, batch, seq);
    off.core.ingest(off.h, batch, seq);
    seq += BigInt(part.length);
    model?.ingest(part as never);
    const newest = part[part.length - 1]!.time;
    const pick = rng.int(0, 9);
    // Mostly a watermark trailing the newest event (the index's case); sometimes one on a slide
    // boundary, or far behind (events then land behind it), or a long jump.
    const wm = pick < 6 ? newest - p.disorder - rng.int(0, p.slide)
      : pick < 8 ? Math.floor(newest / p.slide) * p.slide + p.lateness - p.slide * rng.int(0, 2)
      : pick === 8 ? newest - p.disorder - p.slide * p.panes * 2
      : newest + p.slide * p.panes * rng.int(1, 4);
    fire(wm, `step ${step}`);
    const op = rng.int(0, 19);
    if (op === 0) {
      // Delete a key on both sides (the index is cleared and rebuilt; the key's panes leave their
      // chain from every position).
      const key = part[rng.int(0, part.length - 1)]!.key;
      const k = encodeKey(key, p.keyType);
      const removed = on.core.deleteKey(on.h, k);
      assert.is(off.core.deleteKey(off.h, k), removed, 'delete');
      if (model) assert.is(model.delete(key), removed, 'delete against the model');
    } else if (op === 1) {
      // Restore both sides from their own full checkpoints (the index is cleared and rebuilt).
      const snaps = [on, off].map((side) => side.restore());
      sameBytes([snaps[0]!], [snaps[1]!], `step ${step}: checkpoint before restore`);
      tracking = false;
    }
    if (step % 3 === 2) {
      const mode = tracking ? MODE_DELTA : MODE_FULL;
      const a = on.core.captureBytes(on.h, mode, KEY_GROUPS, null);
      const b = off.core.captureBytes(off.h, mode, KEY_GROUPS, null);
      sameBytes([a], [b], `step ${step}: ${mode === MODE_FULL ? 'full' : 'incremental'} checkpoint`);
      tracking = true;
    }
  }
  const end = rows.reduce((a, r) => Math.max(a, r.time), 0) + p.slide * p.panes * 3 + p.lateness + 1;
  fire(end, 'final');
  sameBytes(outBytes(on.core.exportRows(on.h, cfg)), outBytes(off.core.exportRows(off.h, cfg)), 'state');
  assert.is(off.served(), 0n, 'the general side never used the index');
  return on.served();
}

test('the hopping index fires the same rows and keeps the same state as the general emission', async () => {
  const rng = new Rng(0x6a09e667);
  let served = 0n;
  const runs = process.env.CAIRN_STRESS ? 400 : 60;
  for (let i = 0; i < runs; i++) {
    const p: HopCase = {
      seed: rng.int(1, 2 ** 30),
      keyType: rng.pick(['int64', 'utf8'] as const),
      slide: rng.pick([1, 3, 10, 1000]),
      panes: rng.pick([2, 3, 5, 8, 60]),
      lateness: rng.pick([0, 0, 7, 2500]),
      keys: rng.int(1, 80),
      n: rng.int(50, 3000),
      steps: rng.int(4, 30),
      disorder: rng.pick([0, 0, 5, 60]),
      spread: rng.pick([0.05, 0.3, 3]),
      fractional: rng.float() < 0.5,
      plan: rng.pick(['all', 'simple', 'simple-reordered'] as const),
      prefix: rng.pick(['', '', 'customer-0000000', 'device-#']),
    };
    try {
      served += await runHopCase(p);
    } catch (e) {
      throw new Error(`case ${JSON.stringify(p)}: ${(e as Error).message}`);
    }
  }
  assert.ok(served > BigInt(runs), `the index served ${served} emissions over ${runs} cases`);
});

test('under a tight memory cap the index gives way and every firing still matches the model', async () => {
  // The index's own memory counts against the cap. Caps a little above the store's needs make its
  // allocations fail at varied points (it is then dropped and the general path serves), while
  // some batches are refused whole; each accepted batch goes to the model.
  const window: WindowSpec = { kind: 'hopping', size: 800, slide: 8 };
  const spec = normalizeAggregateSpec({ key: { field: 'user', type: 'int64' }, time: 'ts', window, aggregates: AGGS, allowedLateness: 0 });
  const cfg = storeConfigOf(spec);
  let refused = 0;
  let served = 0n;
  for (const capKiB of [900, 1100, 1300, 1500, 1700, 2000]) {
    const rows = genEvents({ seed: capKiB, n: 40_000, keys: 3000, keyType: 'int64', disorderMs: 0, timeSpread: 4000 });
    const core = new WasmCore(capKiB * 1024);
    const usedBefore = core.ex.memUsed();
    const h = core.openStore(cfg);
    const model = new WindowModel({ keyType: 'int64', window, allowedLateness: 0, aggregates: AGGS as never });
    for (let o = 0; o < rows.length; o += 2000) {
      const part = rows.slice(o, o + 2000);
      try {
        core.ingest(h, encodeBatch(toColumns(part, { keyType: 'int64' }), spec), 0n);
        model.ingest(part as never);
      } catch (e) {
        assert.is((e as { kind?: string }).kind, 'unavailable', String(e));
        refused++;
      }
      const wm = part[part.length - 1]!.time - 1;
      let out: OutColumns;
      try {
        out = core.advance(h, BigInt(wm), cfg);
      } catch (e) {
        // The general path's own output buffers are transient (never refused); only the model
        // comparison matters here, so a refused advance must leave the watermark as it was.
        assert.unreachable(`advance refused at cap ${capKiB} KiB: ${String(e)}`);
        return;
      }
      assert.equal(rowsOf(toArrow(spec, out, true), 'user'), model.advanceWatermark(wm), `cap ${capKiB} KiB, watermark ${wm}`);
    }
    served += core.ex.hopIndexServed();
    // Every state byte the store and its index took (grown, dropped and rebuilt under the cap) is
    // given back when it closes: the accounting the cap relies on stays exact.
    core.ex.storeClose(h);
    assert.is(core.ex.memUsed(), usedBefore, `cap ${capKiB} KiB: state bytes after close`);
  }
  assert.ok(refused > 0, 'some batch hit the cap');
  assert.ok(served > 0n, 'the index served under some cap');
});

test.run();
