/**
 * Snapshot format 1 (key-group hash per row and tombstone, no padding) is still read. The test
 * rewrites format-2 captures into the format-1 layout as ARCHITECTURE.md documents it, loads both
 * into fresh stores and requires the same state (a full capture of each must be byte-identical).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WasmCore } from '../../bindings/core.js';
import { MODE_DELTA, MODE_FULL } from '../../bindings/exports.js';
import type { EncodedBatch, StoreConfig } from '../../bindings/types.js';
import { murmur3Bytes, murmur3Int64 } from '../../src/shard/hash.js';
import { mulberry32 } from '../../src/testing/faulty-storage.js';

const KG = 128;
const enc = new TextEncoder();
const AGGS = [{ fn: 0, field: -1 }, { fn: 1, field: 0 }, { fn: 5, field: 1 }, { fn: 3, field: 1 }];

const pad8 = (x: number) => (x + 7) & ~7;

/** Rewrites a format-2 snapshot of a store with `cfg` into format 1. */
function toV1(v2: Uint8Array, cfg: StoreConfig): Uint8Array {
  const dv = new DataView(v2.buffer, v2.byteOffset, v2.byteLength);
  const n = dv.getUint32(16, true);
  const t = dv.getUint32(20, true);
  const keyBytes = dv.getUint32(28, true);
  const valBytes = dv.getUint32(32, true);
  const tombKeyBytes = dv.getUint32(36, true);
  const int64 = cfg.keyType === 'int64';
  const windowed = cfg.window.kind !== 'none';
  const session = cfg.window.kind === 'session';
  let wide = cfg.nFields;
  for (const a of cfg.aggs) { if (a.fn !== 0) wide++; if (a.fn === 5 || a.fn === 6) wide++; }
  if (session || (cfg.window.kind === 'none' && cfg.window.ttl > 0)) wide++;
  if (session) wide++;
  const out: Uint8Array[] = [];
  let p = 64;
  const take = (len: number, padded: number) => { const b = v2.subarray(p, p + len); p += padded; return b; };
  const header = v2.slice(0, 64);
  new DataView(header.buffer).setUint16(4, 1, true);
  out.push(header);
  // Row keys, and their hashes first.
  const hashesOf = (count: number, keys: Uint8Array, lens: Uint32Array | null): Uint8Array => {
    const h = new Uint32Array(count);
    let o = 0;
    for (let i = 0; i < count; i++) {
      if (lens === null) h[i] = murmur3Int64(new DataView(keys.buffer, keys.byteOffset + i * 8, 8).getBigInt64(0, true));
      else { h[i] = murmur3Bytes(keys, o, o + lens[i]!); o += lens[i]!; }
    }
    return new Uint8Array(h.buffer);
  };
  const keysPart = (count: number, bytes: number): Uint8Array[] => {
    if (int64) {
      const k = take(count * 8, count * 8);
      return [hashesOf(count, k, null), k];
    }
    const lens = take(count * 4, pad8(count * 4));
    const data = take(bytes, pad8(bytes));
    return [hashesOf(count, data, new Uint32Array(lens.slice().buffer)), lens, data];
  };
  out.push(...keysPart(n, keyBytes));
  if (windowed) out.push(take(n * 8, n * 8));
  out.push(take(n, pad8(n)));
  out.push(take(n * 8 * (1 + wide), n * 8 * (1 + wide)));
  if (cfg.kind === 'value') { out.push(take(n * 4, pad8(n * 4))); out.push(take(valBytes, pad8(valBytes))); }
  out.push(...keysPart(t, tombKeyBytes));
  if (windowed) out.push(take(t * 8, t * 8));
  assert.is(p, v2.length, 'the format-2 layout as documented covers every byte');
  const total = out.reduce((a, b) => a + b.length, 0);
  const v1 = new Uint8Array(total);
  let o = 0;
  for (const b of out) { v1.set(b, o); o += b.length; }
  return v1;
}

function batch(cfg: StoreConfig, rnd: () => number, n: number, keySpace: number, t0: number): EncodedBatch {
  const ks = Array.from({ length: n }, () => Math.floor(rnd() * keySpace));
  const times = cfg.eventTime ? BigInt64Array.from(ks, () => BigInt(t0 + Math.floor(rnd() * 200))) : null;
  const values = Array.from({ length: cfg.nFields }, () => Float64Array.from(ks, () => Math.floor(rnd() * 1000)));
  if (cfg.keyType === 'int64') return { n, keys: { type: 'int64', values: BigInt64Array.from(ks, (k) => BigInt(k) * 104729n - 77n) }, times, values };
  const parts = ks.map((k) => enc.encode(`ключ-${k}`));
  const offsets = new Uint32Array(n + 1);
  parts.forEach((q, i) => { offsets[i + 1] = offsets[i]! + q.length; });
  const bytes = new Uint8Array(offsets[n]!);
  parts.forEach((q, i) => bytes.set(q, offsets[i]!));
  return { n, keys: { type: 'utf8', offsets, bytes }, times, values };
}

const CASES: [string, StoreConfig][] = [
  ['int64 running', { kind: 'aggregate', keyType: 'int64', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: true, aggs: AGGS, nFields: 2 }],
  ['utf8 ttl', { kind: 'aggregate', keyType: 'utf8', window: { kind: 'none', ttl: 500 }, lateness: 0, eventTime: true, aggs: AGGS, nFields: 2 }],
  ['int64 hopping', { kind: 'aggregate', keyType: 'int64', window: { kind: 'panes', size: 100, slide: 50 }, lateness: 20, eventTime: true, aggs: AGGS, nFields: 2 }],
  ['utf8 session', { kind: 'aggregate', keyType: 'utf8', window: { kind: 'session', gap: 40 }, lateness: 0, eventTime: true, aggs: AGGS, nFields: 2 }],
  ['utf8 values', { kind: 'value', keyType: 'utf8', window: { kind: 'none', ttl: 0 }, lateness: 0, eventTime: false, aggs: [], nFields: 0 }],
];

for (const [name, cfg] of CASES) {
  test(`format-1 snapshots load to the same state as format 2: ${name}`, () => {
    const rnd = mulberry32(name.length * 31);
    const src = new WasmCore(1 << 27);
    const h = src.openStore(cfg);
    const apply = (i: number) => {
      if (cfg.kind === 'value') {
        for (let j = 0; j < 200; j++) src.valuePut(h, { type: 'utf8', bytes: enc.encode(`ключ-${Math.floor(rnd() * 300)}`) }, enc.encode('x'.repeat(Math.floor(rnd() * 30))));
      } else {
        src.ingest(h, batch(cfg, rnd, 500, 300, 1000 + i * 100), 0n);
        if (cfg.eventTime && cfg.window.kind !== 'none') src.advance(h, BigInt(1000 + i * 100 - 50), cfg);
      }
      for (let j = 0; j < 20; j++) {
        const k = Math.floor(rnd() * 300);
        src.deleteKey(h, cfg.keyType === 'int64' ? { type: 'int64', value: BigInt(k) * 104729n - 77n } : { type: 'utf8', bytes: enc.encode(`ключ-${k}`) });
      }
    };
    for (let i = 0; i < 5; i++) apply(i);
    const base = src.captureBytes(h, MODE_FULL, KG, null);
    for (let i = 5; i < 8; i++) apply(i);
    if (cfg.window.kind === 'none' && cfg.window.ttl > 0) src.advance(h, 1600n, cfg); // TTL evictions: tombstones
    const delta = src.captureBytes(h, MODE_DELTA, KG, null);
    assert.ok(new DataView(delta.buffer, delta.byteOffset).getUint32(20, true) > 0, 'the delta holds tombstones');
    const restore = (layers: Uint8Array[]) => {
      const c = new WasmCore(1 << 27);
      const r = c.openStore(cfg);
      for (const l of layers) c.load(r, l, KG, null);
      return c.captureBytes(r, MODE_FULL, KG, null);
    };
    const want = restore([base, delta]);
    const got = restore([toV1(base, cfg), toV1(delta, cfg)]);
    assert.ok(want.length === got.length && want.every((b, i) => b === got[i]), 'same state from format 1 and format 2');
    // A format-1 file with a wrong stored hash is refused (format 1 checked hashes against keys).
    const bad = toV1(base, cfg);
    if (new DataView(bad.buffer).getUint32(16, true) > 0) {
      bad[64] = bad[64]! ^ 1;
      const c = new WasmCore(1 << 27);
      const r = c.openStore(cfg);
      assert.throws(() => c.load(r, bad, KG, null), /do not match/);
    }
  });
}

test.run();
