// Issue 5 benchmark: checkpoints of a 1M-key store (running count+sum+min+max per int64 key).
//
// Setup (untimed): every key of the key space once, then as many uniform draws again (counts vary),
// in batches of BATCH_ROWS. Keys are dense ids (0..K-1 in shuffled order, as user or account ids
// usually are); a second data set with random 53-bit ids (incompressible keys) is checkpointed once
// for the compression figure only.
//
// Per round, on MemoryCheckpointStorage and on FsCheckpointStorage (a temp dir), interleaved:
// a full checkpoint; then 1% of the keys change (one event each) and an incremental checkpoint;
// then restore (StateBackend.restore, declare the operator again, wait until its state is loaded)
// and count the rows. Bytes, duration and stall come from the CheckpointResult.
//
// Ingest stall: a separate backend (in-process, then on a worker) keeps calling ingest with small
// batches while a full checkpoint of 1M keys runs. The checkpoint() call itself is synchronous up
// to its capture on an in-process shard, so the worst delay an ingest call sees is the largest gap
// between consecutive ingest completions while the checkpoint is in progress; it is reported with
// the time spent inside the checkpoint() call, the per-call latencies, and Cairn's own stallMs, next
// to the same loop with no checkpoint running.
//
// Compression: stored bytes of the full checkpoint against the raw column bytes (8-byte key and
// four 8-byte aggregates per key) and against the uncompressed snapshot (a capture of the same
// state). Codec throughput comes from bench/codec.ts.
import { prng } from './data.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  StateBackend, FsCheckpointStorage, MemoryCheckpointStorage, type AggregateOperator, type AggregateSpec, type CheckpointResult,
  type CheckpointStorage,
} from '../src/index.js';
import { MODE_FULL } from '../bindings/exports.js';
import type { CaptureInfo } from '../src/shard/protocol.js';
import { CairnError } from '../src/errors.js';
import { amounts, int64KeySpace, keyIndexes } from './data.js';
import { benchCodec, type CodecBenchResult } from './codec.js';
import {
  type BenchReport, type Contender, type Target, fmtBytes, fmtCount, fmtMs, machineInfo, maxOf, measure, median, round, target, timing,
  type Timing,
} from './report.js';

export const BATCH_ROWS = 65_536;
/** Rows of one ingest call in the stall test: small, so a stall is not hidden inside a long call. */
export const PROBE_ROWS = 4_096;
/** Ingest calls before the checkpoint starts, and the calls of the no-checkpoint reference loop. */
export const PROBE_CALLS_BEFORE = 5;
export const PROBE_CALLS_REFERENCE = 60;
/** Bytes per key of the raw columns: key + count + sum + min + max, 8 bytes each. */
export const RAW_BYTES_PER_KEY = 40;
export const KEY_GROUPS = 128;

const SPEC: AggregateSpec = {
  key: { field: 'k', type: 'int64' },
  aggregates: { n: { fn: 'count' }, total: { fn: 'sum', field: 'v' }, lo: { fn: 'min', field: 'v' }, hi: { fn: 'max', field: 'v' } },
};


/** 0..n-1 in a seeded random order. */
function denseKeySpace(n: number, seed: number): BigInt64Array {
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const next = prng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
  }
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) out[i] = BigInt(idx[i]!);
  return out;
}

interface DataSet {
  name: string;
  space: BigInt64Array;
  /** Setup events: the space once, then `space.length` uniform draws. */
  keys: BigInt64Array;
  values: Float64Array;
  /** 1% of the keys, distinct, with one new value each. */
  changedKeys: BigInt64Array;
  changedValues: Float64Array;
}

function dataSet(name: string, space: BigInt64Array, seed: number): DataSet {
  const k = space.length;
  const keys = new BigInt64Array(2 * k);
  keys.set(space, 0);
  const idx = keyIndexes(k, k, seed);
  for (let i = 0; i < k; i++) keys[k + i] = space[idx[i]!]!;
  // The space is already in random order, so its first 1% is a random 1% of the keys.
  const changed = Math.max(1, Math.floor(k / 100));
  return { name, space, keys, values: amounts(2 * k, seed + 1), changedKeys: space.slice(0, changed), changedValues: amounts(changed, seed + 2).map((v) => v + 1000) };
}

/**
 * Ingests in batches that own their buffers: a worker shard is sent a batch by structured clone,
 * which would copy the whole column behind a subarray view on every call.
 */
async function ingestAll(op: AggregateOperator, keys: BigInt64Array, values: Float64Array): Promise<void> {
  for (let at = 0; at < keys.length; at += BATCH_ROWS) {
    await op.ingest({ k: keys.slice(at, at + BATCH_ROWS), v: values.slice(at, at + BATCH_ROWS) });
  }
}

async function loaded(d: DataSet, storage: CheckpointStorage, workers = false): Promise<{ backend: StateBackend; op: AggregateOperator }> {
  const backend = await StateBackend.open({ shards: 1, workers, keyGroups: KEY_GROUPS, checkpoints: { storage } });
  const op = backend.aggregate('bench', SPEC);
  await ingestAll(op, d.keys, d.values);
  await backend.metrics();
  return { backend, op };
}

/** Bytes of an uncompressed full snapshot of the operator (a capture, as a checkpoint takes it). */
async function snapshotBytes(backend: StateBackend, op: AggregateOperator): Promise<number> {
  const info = await backend.manager.call<CaptureInfo>(0, { op: 'capture', id: op.id, mode: MODE_FULL, keyGroups: backend.keyGroups, mask: null });
  await backend.manager.call(0, { op: 'snapRelease', id: op.id, token: info.token });
  return info.length;
}

interface CycleInfo {
  full: CheckpointResult;
  incremental: CheckpointResult;
  restoredRows: number;
  snapshotBytes: number;
}

function storageOf(kind: 'memory' | 'fs'): { storage: CheckpointStorage; dispose: () => void } {
  if (kind === 'memory') return { storage: new MemoryCheckpointStorage(), dispose: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-'));
  return { storage: new FsCheckpointStorage(dir), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

function cycleContender(kind: 'memory' | 'fs', d: DataSet, infos: CycleInfo[]): Contender {
  let backend: StateBackend | null = null;
  let op: AggregateOperator | null = null;
  let st: ReturnType<typeof storageOf> | null = null;
  return {
    name: kind,
    prepare: async () => {
      st = storageOf(kind);
      ({ backend, op } = await loaded(d, st.storage));
    },
    run: async () => {
      const full = await backend!.checkpoint({ step: 'full' });
      await op!.ingest({ k: d.changedKeys, v: d.changedValues });
      const incremental = await backend!.checkpoint({ step: 'incremental' });
      const t0 = performance.now();
      const restored = await StateBackend.restore({ storage: st!.storage });
      restored.aggregate('bench', SPEC);
      const m = await restored.metrics();
      const restoreMs = performance.now() - t0;
      await restored.close();
      infos.push({ full, incremental, restoredRows: m.shards.reduce((a, s) => a + s.rows, 0), snapshotBytes: await snapshotBytes(backend!, op!) });
      return { full: full.durationMs, incremental: incremental.durationMs, restore: restoreMs };
    },
    cleanup: async () => {
      await backend?.close();
      backend = null;
      op = null;
      st?.dispose();
      st = null;
    },
  };
}

export interface StallResult {
  workers: boolean;
  stallMs: number;
  checkpointMs: number;
  /** Time spent inside the checkpoint() call (the main thread is busy for all of it). */
  callMs: number;
  /** Ingest calls completed while the checkpoint was in progress. */
  calls: number;
  maxLatencyMs: number;
  /** Largest gap between consecutive ingest completions while the checkpoint was in progress. */
  maxGapMs: number;
  reference: { medianGapMs: number; maxGapMs: number; maxLatencyMs: number };
}

async function stallTest(d: DataSet, workers: boolean): Promise<StallResult> {
  const { backend, op } = await loaded(d, new MemoryCheckpointStorage(), workers);
  try {
    const probeKeys = d.keys.slice(0, PROBE_ROWS);
    const probeValues = d.values.slice(0, PROBE_ROWS);
    const loop = async (calls: number, during: () => boolean, before?: () => void) => {
      const lat: number[] = [];
      const gaps: number[] = [];
      let prev = performance.now();
      for (let i = 0; i < calls || during(); i++) {
        if (i === PROBE_CALLS_BEFORE && before) before();
        const t = performance.now();
        await op.ingest({ k: probeKeys, v: probeValues });
        const end = performance.now();
        if (i >= PROBE_CALLS_BEFORE) {
          lat.push(end - t);
          gaps.push(end - prev);
        }
        prev = end;
      }
      return { lat, gaps };
    };
    const ref = await loop(PROBE_CALLS_REFERENCE, () => false);
    // Set inside the loop's callback, which the type checker cannot follow: hence a holder object.
    const started: { cp?: Promise<CheckpointResult>; done: boolean; callMs: number } = { done: false, callMs: 0 };
    const during = await loop(PROBE_CALLS_BEFORE + 1, () => !started.done, () => {
      const t = performance.now();
      const cp = backend.checkpoint();
      started.callMs = performance.now() - t;
      started.cp = cp;
      cp.then(() => (started.done = true), () => (started.done = true));
    });
    if (!started.cp) throw new CairnError('internal', 'stall test: expected the checkpoint to have started, found it never did');
    const result = await started.cp;
    const callMs = started.callMs;
    return {
      workers,
      stallMs: round(result.stallMs, 2),
      checkpointMs: round(result.durationMs, 1),
      callMs: round(callMs, 2),
      calls: during.lat.length,
      maxLatencyMs: round(maxOf(during.lat), 2),
      maxGapMs: round(maxOf(during.gaps), 2),
      reference: { medianGapMs: round(median(ref.gaps), 3), maxGapMs: round(maxOf(ref.gaps), 2), maxLatencyMs: round(maxOf(ref.lat), 2) },
    };
  } finally {
    await backend.close();
  }
}

export interface CheckpointBenchResult {
  keys: number;
  cycles: Record<string, {
    timings: Record<string, Timing>;
    fullBytes: number;
    incrementalBytes: number;
    incrementalOverFull: number;
    fullStallMs: number;
    incrementalStallMs: number;
    restoredRows: number[];
  }>;
  compression: { dataSet: string; keys: number; storedBytes: number; rawColumnBytes: number; snapshotBytes: number; storedOverRaw: number; storedOverSnapshot: number }[];
  stall: StallResult[];
  codec: CodecBenchResult;
}

export async function benchCheckpoint(o: { quick: boolean; log?: (line: string) => void }): Promise<BenchReport> {
  const log = o.log ?? (() => undefined);
  const started = performance.now();
  const machine = machineInfo();
  const K = o.quick ? 100_000 : 1_000_000;
  const dense = dataSet('dense ids', denseKeySpace(K, 41), 42);

  log(`checkpoint: full + 1% incremental + restore, ${fmtCount(K)} keys`);
  const infos: Record<string, CycleInfo[]> = { memory: [], fs: [] };
  const m = await measure([cycleContender('memory', dense, infos['memory']!), cycleContender('fs', dense, infos['fs']!)], {
    minRounds: o.quick ? 1 : 2,
    maxRounds: o.quick ? 1 : 4,
    budgetMs: o.quick ? 0 : 40_000,
    onRun: (name, p) => log(`  ${name}: ${Object.entries(p).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`),
  });
  const cycles: CheckpointBenchResult['cycles'] = {};
  for (const kind of ['memory', 'fs']) {
    const is = infos[kind]!;
    const fullBytes = median(is.map((i) => i.full.bytes));
    const incrementalBytes = median(is.map((i) => i.incremental.bytes));
    cycles[kind] = {
      timings: Object.fromEntries(Object.entries(m[kind]!).map(([p, ms]) => [p, timing(ms)])),
      fullBytes,
      incrementalBytes,
      incrementalOverFull: round(incrementalBytes / fullBytes, 4),
      fullStallMs: round(median(is.map((i) => i.full.stallMs)), 2),
      incrementalStallMs: round(median(is.map((i) => i.incremental.stallMs)), 2),
      restoredRows: is.map((i) => i.restoredRows),
    };
  }
  const first = infos['memory']![0]!;
  const compression: CheckpointBenchResult['compression'] = [{
    dataSet: dense.name, keys: K, storedBytes: first.full.bytes, rawColumnBytes: K * RAW_BYTES_PER_KEY, snapshotBytes: first.snapshotBytes,
    storedOverRaw: round(first.full.bytes / (K * RAW_BYTES_PER_KEY), 4), storedOverSnapshot: round(first.full.bytes / first.snapshotBytes, 4),
  }];

  log('checkpoint: compression with random 53-bit keys');
  {
    const sparse = dataSet('random 53-bit ids', int64KeySpace(K, 43), 44);
    const { backend, op } = await loaded(sparse, new MemoryCheckpointStorage());
    try {
      const r = await backend.checkpoint();
      const snap = await snapshotBytes(backend, op);
      compression.push({
        dataSet: sparse.name, keys: K, storedBytes: r.bytes, rawColumnBytes: K * RAW_BYTES_PER_KEY, snapshotBytes: snap,
        storedOverRaw: round(r.bytes / (K * RAW_BYTES_PER_KEY), 4), storedOverSnapshot: round(r.bytes / snap, 4),
      });
    } finally {
      await backend.close();
    }
  }

  log('checkpoint: ingest stall');
  const stall = [await stallTest(dense, false), await stallTest(dense, true)];

  log('checkpoint: codecs');
  const codec = await benchCodec();

  const result: CheckpointBenchResult = { keys: K, cycles, compression, stall, codec };
  return {
    name: 'checkpoint',
    title: 'Checkpoints',
    issue: 5,
    quick: o.quick,
    date: new Date().toISOString(),
    machine,
    wallMs: round(performance.now() - started, 0),
    params: {
      state: `${fmtCount(K)} int64 keys, running count+sum+min+max, one shard, ${KEY_GROUPS} key groups; built from ${fmtCount(2 * K)} events (every key once, then ${fmtCount(K)} uniform draws; values integers 1..1000)`,
      keys: 'dense ids 0..K-1 in shuffled order; the compression table adds random 53-bit ids',
      incremental: `${fmtCount(dense.changedKeys.length)} keys (1%) get one event each between the full and the incremental checkpoint`,
      restore: 'StateBackend.restore + aggregate() + metrics() (state loaded), from the same storage',
      stall: `ingest calls of ${PROBE_ROWS} events back to back; the checkpoint starts before call ${PROBE_CALLS_BEFORE + 1}; reference loop of ${PROBE_CALLS_REFERENCE} calls without a checkpoint`,
      codec: `default codec ${codec.defaultCodec}; codec table from bench/codec.ts (${(codec.dataBytes / 2 ** 20).toFixed(0)} MiB of column data)`,
      statistics: 'median over interleaved rounds (memory and fs storage alternate)',
    },
    results: result,
    tables: tables(result),
    targets: targetsOf(result),
    notes: notesOf(result),
  };
}

function tables(r: CheckpointBenchResult): BenchReport['tables'] {
  const cyc = {
    title: `Full and incremental (1% changed) checkpoints and restore, ${fmtCount(r.keys)} keys (median)`,
    columns: ['storage', 'full', 'full bytes', 'full stall', 'incremental', 'incremental bytes', 'incr/full bytes', 'incr stall', 'restore'],
    rows: Object.entries(r.cycles).map(([k, c]) => [
      k, fmtMs(c.timings['full']!.medianMs), fmtBytes(c.fullBytes), fmtMs(c.fullStallMs), fmtMs(c.timings['incremental']!.medianMs), fmtBytes(c.incrementalBytes),
      `${(c.incrementalOverFull * 100).toFixed(2)}%`, fmtMs(c.incrementalStallMs), fmtMs(c.timings['restore']!.medianMs),
    ]),
  };
  const comp = {
    title: 'Compression of a full checkpoint',
    columns: ['keys', 'stored', 'raw columns (40 B/key)', 'stored/raw', 'uncompressed snapshot', 'stored/snapshot'],
    rows: r.compression.map((c) => [c.dataSet, fmtBytes(c.storedBytes), fmtBytes(c.rawColumnBytes), `${c.storedOverRaw.toFixed(3)}x`, fmtBytes(c.snapshotBytes), `${c.storedOverSnapshot.toFixed(3)}x`]),
  };
  const stall = {
    title: `Ingest during a full checkpoint of ${fmtCount(r.keys)} keys`,
    columns: ['shard', 'stallMs (Cairn)', 'checkpoint() call', 'checkpoint total', 'ingest calls during', 'max ingest latency', 'max gap between ingests', 'reference max gap', 'reference median gap'],
    rows: r.stall.map((s) => [
      s.workers ? 'worker' : 'in-process', fmtMs(s.stallMs), fmtMs(s.callMs), fmtMs(s.checkpointMs), s.calls, fmtMs(s.maxLatencyMs), fmtMs(s.maxGapMs),
      fmtMs(s.reference.maxGapMs), fmtMs(s.reference.medianGapMs),
    ]),
  };
  const codec = {
    title: `Codecs (${r.codec.runtime} ${r.codec.runtimeVersion}, ${(r.codec.dataBytes / 2 ** 20).toFixed(0)} MiB of column data)`,
    columns: ['codec', 'compress MB/s', 'decompress MB/s', 'ratio (raw/stored)'],
    rows: [
      ...r.codec.codecs.filter((c) => c.name !== 'none').map((c) => [c.name, c.compressMBps, c.decompressMBps, c.ratio]),
      [`chunked container (${r.codec.chunked.codec}, with CRC-32C)`, r.codec.chunked.encodeMBps, r.codec.chunked.decodeMBps, r.codec.chunked.ratio],
      ['crc32c', r.codec.crc32cMBps, null, null],
    ] as (string | number | null)[][],
  };
  return [cyc, comp, stall, codec];
}

function targetsOf(r: CheckpointBenchResult): Target[] {
  const out: Target[] = [];
  for (const [k, c] of Object.entries(r.cycles)) {
    out.push(target(`incremental (1% changed) bytes <= 5% of full, ${k} storage`, c.incrementalOverFull * 100, '<=', 5, '%'));
  }
  for (const s of r.stall) {
    const where = s.workers ? 'worker shard' : 'in-process shard';
    out.push(target(`ingest stall (Cairn's stallMs) <= 20 ms, ${where}`, s.stallMs, '<=', 20, 'ms'));
    out.push(target(`worst extra delay of a concurrent ingest (max gap - reference median gap) <= 20 ms, ${where}`, s.maxGapMs - s.reference.medianGapMs, '<=', 20, 'ms'));
  }
  for (const c of r.compression) out.push(target(`stored bytes <= 0.35x raw column bytes, ${c.dataSet}`, c.storedOverRaw, '<=', 0.35));
  return out;
}

function notesOf(r: CheckpointBenchResult): string[] {
  const out: string[] = [];
  for (const [k, c] of Object.entries(r.cycles)) {
    if (c.restoredRows.some((n) => n !== r.keys)) out.push(`**Restore from ${k} storage gave ${JSON.stringify(c.restoredRows)} rows, expected ${r.keys}.**`);
  }
  if (out.length === 0) out.push(`Every restore held exactly ${r.keys.toLocaleString('en-US')} rows.`);
  for (const s of r.stall) {
    if (s.maxGapMs >= 0.8 * s.checkpointMs) {
      out.push(`${s.workers ? 'Worker' : 'In-process'} shard: an ingest call made while the checkpoint ran completed only about when the whole checkpoint did (${fmtMs(s.maxGapMs)} of ${fmtMs(s.checkpointMs)}).`);
    }
  }
  out.push('stallMs is Cairn\'s own figure (from the checkpoint call until every shard\'s capture is done). The "gap" columns are what an application sees: the longest time between two consecutive completed ingest calls while the checkpoint ran (compression and writes included), against the same loop with no checkpoint.');
  out.push('Raw column bytes count 40 bytes per key (key, count, sum, min, max); the uncompressed snapshot is Cairn\'s own capture of the same state before compression.');
  return out;
}
