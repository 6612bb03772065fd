/**
 * The asynchronous full capture (cut, then copy-on-write while ingest goes on) against the
 * synchronous one as oracle: two Wasm instances get the same operations; one captures at the cut
 * and completes in steps while the operations continue, the other captures whole at the same point.
 * The snapshots must be byte-identical, and so must the delta captured after more operations (the
 * change log restarted at the cut) and the exported state.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WasmCore } from '../../bindings/core.js';
import { MODE_DELTA, MODE_EXTRACT, MODE_FULL } from '../../bindings/exports.js';
import type { EncodedBatch, EncodedKey, StoreConfig } from '../../bindings/types.js';
import { mulberry32 as prng } from '../../src/testing/faulty-storage.js';

const KEY_GROUPS = 128;
const enc = new TextEncoder();

const AGGS = [{ fn: 0, field: -1 }, { fn: 1, field: 0 }, { fn: 2, field: 0 }, { fn: 3, field: 0 }, { fn: 6, field: 0 }];
/** count, sum, min, max of one field only: the single-pass ingest plan (assembly/ingest.ts, fusedBlock). */
const AGGS_PLAIN = [{ fn: 0, field: -1 }, { fn: 1, field: 0 }, { fn: 2, field: 0 }, { fn: 3, field: 0 }];
/** Two value fields, first/last by time and mean: more row columns and time columns. */
const AGGS2 = [{ fn: 0, field: -1 }, { fn: 1, field: 0 }, { fn: 5, field: 1 }, { fn: 6, field: 0 }, { fn: 4, field: 1 }, { fn: 2, field: 1 }];

interface Case {
  name: string;
  cfg: StoreConfig;
  keySpace: number;
}

const CASES: Case[] = [
  { name: 'int64 running', keySpace: 3000, cfg: { kind: 'aggregate', keyType: 'int64', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: false, aggs: AGGS, nFields: 1 } },
  { name: 'int64 running, count/sum/min/max', keySpace: 3000, cfg: { kind: 'aggregate', keyType: 'int64', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: false, aggs: AGGS_PLAIN, nFields: 1 } },
  { name: 'utf8 running, count/sum/min/max', keySpace: 2000, cfg: { kind: 'aggregate', keyType: 'utf8', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: false, aggs: AGGS_PLAIN, nFields: 1 } },
  { name: 'utf8 running', keySpace: 2000, cfg: { kind: 'aggregate', keyType: 'utf8', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: false, aggs: AGGS, nFields: 1 } },
  { name: 'int64 ttl', keySpace: 1500, cfg: { kind: 'aggregate', keyType: 'int64', window: { kind: 'none', ttl: 400 }, lateness: 0, eventTime: true, aggs: AGGS, nFields: 1 } },
  { name: 'int64 tumbling', keySpace: 800, cfg: { kind: 'aggregate', keyType: 'int64', window: { kind: 'panes', size: 100, slide: 100 }, lateness: 50, eventTime: true, aggs: AGGS, nFields: 1 } },
  { name: 'utf8 hopping', keySpace: 500, cfg: { kind: 'aggregate', keyType: 'utf8', window: { kind: 'panes', size: 100, slide: 25 }, lateness: 30, eventTime: true, aggs: AGGS, nFields: 1 } },
  { name: 'int64 session', keySpace: 600, cfg: { kind: 'aggregate', keyType: 'int64', window: { kind: 'session', gap: 30 }, lateness: 20, eventTime: true, aggs: AGGS, nFields: 1 } },
  { name: 'int64 hopping, two fields', keySpace: 700, cfg: { kind: 'aggregate', keyType: 'int64', window: { kind: 'panes', size: 120, slide: 40 }, lateness: 0, eventTime: true, aggs: AGGS2, nFields: 2 } },
  { name: 'utf8 tumbling', keySpace: 900, cfg: { kind: 'aggregate', keyType: 'utf8', window: { kind: 'panes', size: 100, slide: 100 }, lateness: 10, eventTime: true, aggs: AGGS, nFields: 1 } },
  { name: 'utf8 session, two fields', keySpace: 400, cfg: { kind: 'aggregate', keyType: 'utf8', window: { kind: 'session', gap: 25 }, lateness: 0, eventTime: true, aggs: AGGS2, nFields: 2 } },
  { name: 'utf8 ttl', keySpace: 1200, cfg: { kind: 'aggregate', keyType: 'utf8', window: { kind: 'none', ttl: 300 }, lateness: 0, eventTime: true, aggs: AGGS2, nFields: 2 } },
  { name: 'int64 values', keySpace: 3000, cfg: { kind: 'value', keyType: 'int64', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: false, aggs: [], nFields: 0 } },
  { name: 'utf8 values', keySpace: 2000, cfg: { kind: 'value', keyType: 'utf8', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: false, aggs: [], nFields: 0 } },
];

function keyOf(c: Case, k: number): EncodedKey {
  return c.cfg.keyType === 'int64' ? { type: 'int64', value: BigInt(k) * 7919n - 5000n } : { type: 'utf8', bytes: enc.encode(`κ-${k}`) };
}

type Op = (core: WasmCore, h: number) => void;

/** A random operation, drawn once and applied to both instances. */
function randomOp(c: Case, rnd: () => number, clock: { t: number }): Op {
  const r = rnd();
  const key = (): number => Math.floor(rnd() * rnd() * c.keySpace); // skewed
  if (c.cfg.kind === 'value') {
    const k = keyOf(c, key());
    if (r < 0.8) {
      const v = enc.encode('v'.repeat(Math.floor(rnd() * 40)));
      return (core, h) => core.valuePut(h, k, v);
    }
    return (core, h) => { core.deleteKey(h, k); };
  }
  if (r < 0.08) {
    const k = keyOf(c, key());
    return (core, h) => { core.deleteKey(h, k); };
  }
  if (r < 0.2 && c.cfg.eventTime) {
    clock.t += Math.floor(rnd() * 60);
    const w = BigInt(clock.t - 40);
    return (core, h) => { core.advance(h, w, c.cfg); };
  }
  const n = 1 + Math.floor(rnd() * 400);
  const b = batch(c, n, key, rnd, clock);
  return (core, h) => { core.ingest(h, b, 0n); };
}

function batch(c: Case, n: number, key: () => number, rnd: () => number, clock: { t: number }): EncodedBatch {
  const ks = Array.from({ length: n }, key);
  const times = c.cfg.eventTime ? BigInt64Array.from(ks, () => BigInt(clock.t + Math.floor(rnd() * 120) - 60)) : null;
  const values = Array.from({ length: c.cfg.nFields }, () => Float64Array.from(ks, () => (rnd() < 0.05 ? NaN : Math.floor(rnd() * 1000))));
  if (c.cfg.keyType === 'int64') {
    return { n, keys: { type: 'int64', values: BigInt64Array.from(ks, (k) => BigInt(k) * 7919n - 5000n) }, times, values };
  }
  const parts = ks.map((k) => enc.encode(`κ-${k}`));
  const offsets = new Uint32Array(n + 1);
  parts.forEach((p, i) => { offsets[i + 1] = offsets[i]! + p.length; });
  const bytes = new Uint8Array(offsets[n]!);
  parts.forEach((p, i) => bytes.set(p, offsets[i]!));
  return { n, keys: { type: 'utf8', offsets, bytes }, times, values };
}

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function exportState(core: WasmCore, h: number, c: Case): string {
  if (c.cfg.kind === 'value') return '';
  return JSON.stringify(core.exportRows(h, c.cfg), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array || ArrayBuffer.isView(v) ? Array.from(v as never) : v));
}

function runCase(c: Case, seed: number): void {
  const rnd = prng(seed);
  const clock = { t: 1000 };
  const a = new WasmCore(1 << 28);
  const b = new WasmCore(1 << 28);
  const ha = a.openStore(c.cfg);
  const hb = b.openStore(c.cfg);
  const both = (op: Op): void => { op(a, ha); op(b, hb); };
  // Before the cut: a history, with an earlier checkpoint half the time (so rows carry flags).
  const before = 20 + Math.floor(rnd() * 60);
  for (let i = 0; i < before; i++) {
    both(randomOp(c, rnd, clock));
    if (i === 10 && rnd() < 0.5) {
      a.releaseSnapshot(ha); a.capture(ha, MODE_FULL, KEY_GROUPS, null); a.releaseSnapshot(ha);
      b.releaseSnapshot(hb); b.capture(hb, MODE_FULL, KEY_GROUPS, null); b.releaseSnapshot(hb);
    }
  }
  // The cut: a starts an asynchronous capture, b captures whole.
  const lenA = a.captureBegin(ha, KEY_GROUPS);
  const lenB = b.capture(hb, MODE_FULL, KEY_GROUPS, null);
  assert.is(lenA, lenB, `${c.name} seed ${seed}: snapshot length at the cut`);
  const ref = b.readSnapshot(hb, 0, lenB);
  b.releaseSnapshot(hb);
  // The page counters that sized the asynchronous capture against a scan: an extract of every key
  // group writes the same rows in the same order, counted row by row (only the full flag differs).
  const ext = b.captureBytes(hb, MODE_EXTRACT, KEY_GROUPS, new Uint8Array(KEY_GROUPS).fill(1));
  assert.is(ext.length, ref.length, `${c.name} seed ${seed}: extract length`);
  assert.ok(sameBytes(ext.subarray(8), ref.subarray(8)) && sameBytes(ext.subarray(0, 6), ref.subarray(0, 6)), `${c.name} seed ${seed}: extract differs from the full capture`);
  const pagesAtCut = a.captureStep(ha, 0);
  // After the cut: operations interleaved with small steps of a's capture.
  const after = 10 + Math.floor(rnd() * 60);
  for (let i = 0; i < after; i++) {
    both(randomOp(c, rnd, clock));
    if (rnd() < 0.5) a.captureStep(ha, Math.floor(rnd() * 4));
  }
  const got = a.readSnapshot(ha, 0, lenA);
  assert.ok(sameBytes(got, ref), `${c.name} seed ${seed}: full snapshot differs from the synchronous capture (${pagesAtCut} pages at the cut)`);
  a.releaseSnapshot(ha);
  // The change log restarted at the cut in both: the next delta is the same.
  const da = a.captureBytes(ha, MODE_DELTA, KEY_GROUPS, null);
  const db = b.captureBytes(hb, MODE_DELTA, KEY_GROUPS, null);
  assert.ok(sameBytes(da, db), `${c.name} seed ${seed}: delta after the capture differs`);
  assert.is(exportState(a, ha, c), exportState(b, hb, c), `${c.name} seed ${seed}: state differs`);
  // The snapshot restores to the state at the cut: load it into a fresh store and capture again.
  const cLoad = new WasmCore(1 << 28);
  const hc = cLoad.openStore(c.cfg);
  cLoad.load(hc, got, KEY_GROUPS, null);
  const again = cLoad.captureBytes(hc, MODE_FULL, KEY_GROUPS, null);
  const cRef = new WasmCore(1 << 28);
  const hr = cRef.openStore(c.cfg);
  cRef.load(hr, ref, KEY_GROUPS, null);
  assert.ok(sameBytes(again, cRef.captureBytes(hr, MODE_FULL, KEY_GROUPS, null)), `${c.name} seed ${seed}: restored snapshot recaptures differently`);
}

for (const c of CASES) {
  test(`asynchronous full capture equals the synchronous one under concurrent changes: ${c.name}`, () => {
    const seeds = process.env['CAIRN_STRESS'] ? 60 : 12;
    for (let seed = 1; seed <= seeds; seed++) runCase(c, seed * 1009 + c.name.length);
  });
}

test('a capture released before it completes leaves the change log consistent', () => {
  const c = CASES[0]!;
  const rnd = prng(99);
  const clock = { t: 0 };
  const a = new WasmCore(1 << 28);
  const b = new WasmCore(1 << 28);
  const ha = a.openStore(c.cfg);
  const hb = b.openStore(c.cfg);
  for (let i = 0; i < 40; i++) { const op = randomOp(c, rnd, clock); op(a, ha); op(b, hb); }
  a.captureBegin(ha, KEY_GROUPS);
  b.releaseSnapshot(hb); b.capture(hb, MODE_FULL, KEY_GROUPS, null); b.releaseSnapshot(hb);
  a.captureStep(ha, 1);
  a.releaseSnapshot(ha);
  for (let i = 0; i < 20; i++) { const op = randomOp(c, rnd, clock); op(a, ha); op(b, hb); }
  const da = a.captureBytes(ha, MODE_DELTA, KEY_GROUPS, null);
  const db = b.captureBytes(hb, MODE_DELTA, KEY_GROUPS, null);
  assert.ok(sameBytes(da, db));
});

test.run();
