// Issue 2 benchmark: ingest throughput of a keyed count+sum+min+max store, one shard, against the
// JS Map baseline and the typed-array open-addressing baseline, measured in the same run.
//
// Per scenario (key type and key cardinality) each round runs, in an order shuffled per round (report.ts roundOrder):
// - cairn: the public API, `op.ingest({ k, v })` per batch of BATCH_ROWS rows, awaited one by one;
// - cairn-core: the same batches already encoded (encodeBatch, timed as its own phase) straight into
//   WasmCore.ingest, i.e. one copy into Wasm memory plus the Wasm work, without the SDK around it;
// - typed and map: the baselines over the same batches.
// - for utf8 keys, the same batches as Arrow Utf8 columns (built beforehand, untimed), the input
//   a columnar store is meant for: cairn-arrow (the public API on them), typed-bytes (a JS
//   typed-array table hashing and comparing the keys' UTF-8 bytes in place) and map-arrow (the Map
//   on a string decoded per row with Vector.get).
// Every contender runs "cold" (a fresh store: every key is inserted, tables grow and rehash) and then
// "warm" (the same events again on the same store: every key is already present). Throughput is
// events per second of the median round; ratios are medians of per-round ratios.
// Memory per key comes from bench/memory.ts.
import { Utf8, vectorFromArray, type Vector } from 'apache-arrow';
import { StateBackend, type AggregateOperator } from '../src/index.js';
import { WasmCore } from '../bindings/core.js';
import type { EncodedBatch, StoreConfig } from '../bindings/types.js';
import { encodeBatch } from '../src/store/batch.js';
import { normalizeAggregateSpec, storeConfigOf, type AggregateSpec } from '../src/store/spec.js';
import { benchColumns, type BenchColumns } from './data.js';
import { MapStore } from './baselines/map-store.js';
import { TypedTableBytes, TypedTableInt64, TypedTableUtf8 } from './baselines/typed-table.js';
import { measureMemory, type MemoryResult } from './memory.js';
import {
  type BenchReport, type Contender, type Measured, type Target, bestSpeedup, fmtBytes, fmtCount, fmtRate, fmtRatio, fmtRatios, machineInfo, measure,
  median, minOf, pairedSpeedup, rate, round, target, timing, type Timing,
} from './report.js';

export const BATCH_ROWS = 65_536;

export const STORE_SPEC: AggregateSpec = {
  key: { field: 'k', type: 'int64' },
  aggregates: { n: { fn: 'count' }, total: { fn: 'sum', field: 'v' }, lo: { fn: 'min', field: 'v' }, hi: { fn: 'max', field: 'v' } },
};

export interface StoreScenario {
  keyType: 'int64' | 'utf8';
  distinct: number;
  events: number;
}

export function storeScenarios(quick: boolean): StoreScenario[] {
  // Enough events that even the 1M key space is mostly present (2M uniform draws: 86% of keys).
  return quick
    ? [
        { keyType: 'int64', distinct: 1_000, events: 200_000 },
        { keyType: 'int64', distinct: 100_000, events: 200_000 },
        { keyType: 'int64', distinct: 1_000_000, events: 400_000 },
        { keyType: 'utf8', distinct: 10_000, events: 200_000 },
      ]
    : [
        { keyType: 'int64', distinct: 1_000, events: 1_000_000 },
        { keyType: 'int64', distinct: 100_000, events: 1_000_000 },
        { keyType: 'int64', distinct: 1_000_000, events: 2_000_000 },
        { keyType: 'utf8', distinct: 10_000, events: 1_000_000 },
      ];
}

export function specFor(keyType: 'int64' | 'utf8'): AggregateSpec {
  return { ...STORE_SPEC, key: { field: 'k', type: keyType } };
}

/** The input cut into batches of BATCH_ROWS rows (views, no copies, except utf8 key arrays). */
export interface Batches {
  keys: (BigInt64Array | string[])[];
  values: Float64Array[];
}

/** String key batches as Arrow Utf8 columns. */
export function arrowKeys(b: Batches): Vector<Utf8>[] {
  return b.keys.map((k) => vectorFromArray(k as string[], new Utf8()));
}

export function cut(cols: BenchColumns): Batches {
  const n = cols.amount.length;
  const out: Batches = { keys: [], values: [] };
  for (let at = 0; at < n; at += BATCH_ROWS) {
    const end = Math.min(n, at + BATCH_ROWS);
    out.keys.push(cols.keys instanceof BigInt64Array ? cols.keys.subarray(at, end) : cols.keys.slice(at, end));
    out.values.push(cols.amount.subarray(at, end));
  }
  return out;
}

function cairnContender(s: StoreScenario, b: Batches, arrow?: Vector<Utf8>[]): Contender {
  let backend: StateBackend | null = null;
  let op: AggregateOperator | null = null;
  const keys = arrow ?? b.keys;
  const pass = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < keys.length; i++) await op!.ingest({ k: keys[i]!, v: b.values[i]! });
    return performance.now() - t0;
  };
  return {
    name: arrow ? 'cairn-arrow' : 'cairn',
    prepare: async () => {
      backend = await StateBackend.open({ shards: 1 });
      op = backend.aggregate('bench', specFor(s.keyType));
    },
    run: async () => ({ cold: await pass(), warm: await pass() }),
    cleanup: async () => {
      await backend?.close();
      backend = null;
      op = null;
    },
  };
}

function coreContender(s: StoreScenario, b: Batches): Contender {
  const spec = normalizeAggregateSpec(specFor(s.keyType));
  const cfg: StoreConfig = storeConfigOf(spec);
  let core: WasmCore | null = null;
  let h = -1;
  return {
    name: 'cairn-core',
    prepare: () => {
      core = new WasmCore();
      h = core.openStore(cfg);
    },
    run: () => {
      let t0 = performance.now();
      const encoded: EncodedBatch[] = b.keys.map((k, i) => encodeBatch({ k, v: b.values[i]! }, spec));
      const encode = performance.now() - t0;
      let seq = 0n;
      const pass = () => {
        t0 = performance.now();
        for (const e of encoded) {
          core!.ingest(h, e, seq);
          seq += BigInt(e.n);
        }
        return performance.now() - t0;
      };
      return { encode, cold: pass(), warm: pass() };
    },
    cleanup: () => {
      core = null;
    },
  };
}

function typedContender(s: StoreScenario, b: Batches): Contender {
  let t: TypedTableInt64 | TypedTableUtf8 | null = null;
  const pass = () => {
    const t0 = performance.now();
    if (t instanceof TypedTableInt64) for (let i = 0; i < b.keys.length; i++) t.ingest(b.keys[i] as BigInt64Array, b.values[i]!);
    else for (let i = 0; i < b.keys.length; i++) t!.ingest(b.keys[i] as string[], b.values[i]!);
    return performance.now() - t0;
  };
  return {
    name: 'typed',
    prepare: () => {
      t = s.keyType === 'int64' ? new TypedTableInt64() : new TypedTableUtf8();
    },
    run: () => ({ cold: pass(), warm: pass() }),
    cleanup: () => {
      t = null;
    },
  };
}

function typedBytesContender(b: Batches, arrow: Vector<Utf8>[]): Contender {
  let t: TypedTableBytes | null = null;
  const pass = () => {
    const t0 = performance.now();
    for (let i = 0; i < arrow.length; i++) {
      const d = arrow[i]!.data[0]!;
      t!.ingest(d.valueOffsets, d.values, b.values[i]!);
    }
    return performance.now() - t0;
  };
  return {
    name: 'typed-bytes',
    prepare: () => {
      t = new TypedTableBytes();
    },
    run: () => ({ cold: pass(), warm: pass() }),
    cleanup: () => {
      t = null;
    },
  };
}

function mapArrowContender(b: Batches, arrow: Vector<Utf8>[]): Contender {
  let m: MapStore | null = null;
  const pass = () => {
    const t0 = performance.now();
    for (let i = 0; i < arrow.length; i++) m!.ingestUtf8Vector(arrow[i]!, b.values[i]!);
    return performance.now() - t0;
  };
  return {
    name: 'map-arrow',
    prepare: () => {
      m = new MapStore();
    },
    run: () => ({ cold: pass(), warm: pass() }),
    cleanup: () => {
      m = null;
    },
  };
}

/** Every contender of a scenario: the four above, and for utf8 keys the three on Arrow input. */
function contendersOf(s: StoreScenario, b: Batches): Contender[] {
  const out = [cairnContender(s, b), coreContender(s, b), typedContender(s, b), mapContender(s, b)];
  if (s.keyType === 'utf8') {
    const arrow = arrowKeys(b);
    out.push(cairnContender(s, b, arrow), typedBytesContender(b, arrow), mapArrowContender(b, arrow));
  }
  return out;
}

function mapContender(s: StoreScenario, b: Batches): Contender {
  let m: MapStore | null = null;
  const pass = () => {
    const t0 = performance.now();
    if (s.keyType === 'int64') for (let i = 0; i < b.keys.length; i++) m!.ingestInt64(b.keys[i] as BigInt64Array, b.values[i]!);
    else for (let i = 0; i < b.keys.length; i++) m!.ingestUtf8(b.keys[i] as string[], b.values[i]!);
    return performance.now() - t0;
  };
  return {
    name: 'map',
    prepare: () => {
      m = new MapStore();
    },
    run: () => ({ cold: pass(), warm: pass() }),
    cleanup: () => {
      m = null;
    },
  };
}

export interface StoreScenarioResult extends StoreScenario {
  /** contender -> phase -> timing */
  timings: Record<string, Record<string, Timing>>;
  /** contender -> phase -> events/s at the median round */
  eventsPerSec: Record<string, Record<string, number>>;
  /** Medians of per-round speed-ups, and speed-ups of the best runs ("best"). */
  ratios: Record<'cold' | 'warm', Record<'cairnOverTyped' | 'cairnOverMap' | 'coreOverTyped' | 'coreOverMap', { median: number; best: number }>>;
  /** utf8 keys on Arrow input: cairn-arrow over typed-bytes and over map-arrow. */
  arrowRatios?: Record<'cold' | 'warm', Record<'cairnOverTyped' | 'cairnOverMap', { median: number; best: number }>>;
  /**
   * Share of the public-API cold ingest time not spent in WasmCore.ingest (encode, validation,
   * promises), from the best runs of each (the least disturbed by other processes).
   */
  jsOverheadShareCold: number;
  memory: MemoryResult;
}

function scenarioLabel(s: StoreScenario): string {
  return `${s.keyType} ${fmtCount(s.distinct)} keys`;
}

export interface BenchOptions {
  quick: boolean;
  log?: (line: string) => void;
}

export async function benchStore(o: BenchOptions): Promise<BenchReport> {
  const log = o.log ?? (() => undefined);
  const started = performance.now();
  const machine = machineInfo();
  const results: StoreScenarioResult[] = [];
  for (const s of storeScenarios(o.quick)) {
    log(`store: ${scenarioLabel(s)}, ${fmtCount(s.events)} events`);
    const cols = benchColumns({ n: s.events, distinct: s.distinct, keyType: s.keyType, seed: 7 });
    const b = cut(cols);
    const contenders = contendersOf(s, b);
    // A short warm-up of every contender first, so no round pays for JIT compilation.
    const warmup = cut(benchColumns({ n: Math.min(s.events, 4 * BATCH_ROWS), distinct: s.distinct, keyType: s.keyType, seed: 8 }));
    await measure(contendersOf(s, warmup), { minRounds: 1, maxRounds: 1, budgetMs: 0 });
    const m = await measure(contenders, {
      minRounds: o.quick ? 1 : 3,
      maxRounds: o.quick ? 1 : 15,
      budgetMs: o.quick ? 0 : 25_000,
      onRun: (name, p) => log(`  ${name}: ${Object.entries(p).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`),
    });
    const memory = await measureMemory(s.keyType, cols, specFor(s.keyType), BATCH_ROWS);
    results.push(summarize(s, m, memory));
  }
  return {
    name: 'store',
    title: 'Keyed store ingest, one shard',
    issue: 2,
    quick: o.quick,
    date: new Date().toISOString(),
    machine,
    wallMs: round(performance.now() - started, 0),
    params: {
      aggregates: 'count, sum(v), min(v), max(v) per key',
      input: 'keys drawn uniformly from N distinct values (int64: random values below 2^53; utf8: "user-<i>", one string object per event); v = integers 1..1000 as doubles',
      batches: `${BATCH_ROWS} rows per ingest call, awaited one by one`,
      cold: 'a fresh store (inserts, growth and rehash included)',
      warm: 'the same events again on the same store (every key present)',
      'cairn-core': 'WasmCore.ingest on pre-encoded batches (copy into Wasm memory + Wasm), no SDK',
      statistics: 'median over interleaved rounds; ratios are medians of per-round ratios',
    },
    results,
    tables: tables(results),
    targets: targets(results),
    notes: notes(results),
  };
}

function summarize(s: StoreScenario, m: Measured, memory: MemoryResult): StoreScenarioResult {
  const timings: StoreScenarioResult['timings'] = {};
  const eventsPerSec: StoreScenarioResult['eventsPerSec'] = {};
  for (const [name, phases] of Object.entries(m)) {
    timings[name] = {};
    eventsPerSec[name] = {};
    for (const [phase, ms] of Object.entries(phases)) {
      timings[name]![phase] = timing(ms);
      eventsPerSec[name]![phase] = round(rate(s.events, median(ms)), 0);
    }
  }
  const ratio = (a: string, b: string, phase: string) => ({
    median: round(pairedSpeedup(m[a]![phase]!, m[b]![phase]!), 3),
    best: round(bestSpeedup(m[a]![phase]!, m[b]![phase]!), 3),
  });
  const ratios = (phase: string) => ({
    cairnOverTyped: ratio('cairn', 'typed', phase),
    cairnOverMap: ratio('cairn', 'map', phase),
    coreOverTyped: ratio('cairn-core', 'typed', phase),
    coreOverMap: ratio('cairn-core', 'map', phase),
  });
  const arrowRatios = m['cairn-arrow'] ? (phase: string) => ({
    cairnOverTyped: ratio('cairn-arrow', 'typed-bytes', phase),
    cairnOverMap: ratio('cairn-arrow', 'map-arrow', phase),
  }) : null;
  const api = minOf(m['cairn']!['cold']!);
  const core = minOf(m['cairn-core']!['cold']!);
  return {
    ...s,
    timings,
    eventsPerSec,
    ratios: { cold: ratios('cold'), warm: ratios('warm') },
    ...(arrowRatios ? { arrowRatios: { cold: arrowRatios('cold'), warm: arrowRatios('warm') } } : {}),
    jsOverheadShareCold: round(Math.max(0, api - core) / api, 3),
    memory,
  };
}

function tables(rs: StoreScenarioResult[]): BenchReport['tables'] {
  const throughput = {
    title: 'Ingest throughput (events/s, median round) and Cairn speed-up (median of per-round ratios; best run against best run)',
    columns: ['scenario', 'mode', 'cairn', 'cairn-core', 'typed', 'map', 'cairn/typed', 'cairn/map', 'core/typed'],
    rows: rs.flatMap((r) => (['cold', 'warm'] as const).map((phase) => [
      scenarioLabel(r), phase,
      fmtRate(r.eventsPerSec['cairn']![phase]!), fmtRate(r.eventsPerSec['cairn-core']![phase]!),
      fmtRate(r.eventsPerSec['typed']![phase]!), fmtRate(r.eventsPerSec['map']![phase]!),
      fmtRatios(r.ratios[phase].cairnOverTyped.median, r.ratios[phase].cairnOverTyped.best),
      fmtRatios(r.ratios[phase].cairnOverMap.median, r.ratios[phase].cairnOverMap.best),
      fmtRatios(r.ratios[phase].coreOverTyped.median, r.ratios[phase].coreOverTyped.best),
    ])),
  };
  const arrowRows = rs.filter((r) => r.arrowRatios);
  const arrow = {
    title: 'utf8 keys on Arrow Utf8 input (events/s, median round): cairn-arrow is the public API, typed-bytes a JS typed-array table over the keys\' bytes, map-arrow the Map on Vector.get(i)',
    columns: ['scenario', 'mode', 'cairn-arrow', 'typed-bytes', 'map-arrow', 'cairn/typed-bytes', 'cairn/map-arrow'],
    rows: arrowRows.flatMap((r) => (['cold', 'warm'] as const).map((phase) => [
      scenarioLabel(r), phase,
      fmtRate(r.eventsPerSec['cairn-arrow']![phase]!), fmtRate(r.eventsPerSec['typed-bytes']![phase]!), fmtRate(r.eventsPerSec['map-arrow']![phase]!),
      fmtRatios(r.arrowRatios![phase].cairnOverTyped.median, r.arrowRatios![phase].cairnOverTyped.best),
      fmtRatios(r.arrowRatios![phase].cairnOverMap.median, r.arrowRatios![phase].cairnOverMap.best),
    ])),
  };
  const split = {
    title: 'Where Cairn\'s cold ingest time goes (best run, ms)',
    columns: ['scenario', 'public API total', 'encodeBatch', 'WasmCore.ingest', 'JS share of API time'],
    rows: rs.map((r) => [
      scenarioLabel(r), r.timings['cairn']!['cold']!.minMs, r.timings['cairn-core']!['encode']!.minMs, r.timings['cairn-core']!['cold']!.minMs,
      `${(r.jsOverheadShareCold * 100).toFixed(0)}%`,
    ]),
  };
  const memory = {
    title: 'Memory per key',
    columns: ['scenario', 'keys', 'cairn B/key', 'cairn with 1 key', 'cairn growth B/key', 'cairn Wasm memory B/key', 'map heap B/key', 'typed B/key', 'cairn/map'],
    rows: rs.map((r) => [
      scenarioLabel(r), r.memory.keys, round(r.memory.cairnBytesPerKey, 1), fmtBytes(r.memory.cairnOneKeyBytes), round(r.memory.cairnGrowthBytesPerKey, 1),
      round(r.memory.cairnMemoryBytesPerKey, 1), round(r.memory.mapHeapBytesPerKey, 1), round(r.memory.typedBytesPerKey, 1),
      fmtRatio(r.memory.cairnBytesPerKey / r.memory.mapHeapBytesPerKey),
    ]),
  };
  return arrowRows.length > 0 ? [throughput, arrow, split, memory] : [throughput, split, memory];
}

function targets(rs: StoreScenarioResult[]): Target[] {
  const out: Target[] = [];
  for (const r of rs) {
    for (const phase of ['cold', 'warm'] as const) {
      out.push(target(`${scenarioLabel(r)}, ${phase}: cairn >= 1.5x typed`, r.ratios[phase].cairnOverTyped.median, '>=', 1.5));
      out.push(target(`${scenarioLabel(r)}, ${phase}: cairn >= 5x map`, r.ratios[phase].cairnOverMap.median, '>=', 5));
    }
    if (r.arrowRatios) {
      for (const phase of ['cold', 'warm'] as const) {
        out.push(target(`${scenarioLabel(r)}, Arrow input, ${phase}: cairn >= 1.5x typed-bytes`, r.arrowRatios[phase].cairnOverTyped.median, '>=', 1.5));
        out.push(target(`${scenarioLabel(r)}, Arrow input, ${phase}: cairn >= 5x map-arrow`, r.arrowRatios[phase].cairnOverMap.median, '>=', 5));
      }
    }
  }
  for (const r of rs) {
    out.push(target(`${scenarioLabel(r)}: state bytes/key <= 0.5x map heap bytes/key`, r.memory.cairnBytesPerKey / r.memory.mapHeapBytesPerKey, '<=', 0.5));
  }
  return out;
}

function notes(rs: StoreScenarioResult[]): string[] {
  const out = [
    'cairn/typed and cairn/map are medians of per-round ratios; "core" is WasmCore.ingest alone on batches encoded beforehand.',
    'Memory: "cairn B/key" is the operator\'s used Wasm bytes (state bytes of the shard after ingest minus before the operator was declared, so the shared scratch arena is excluded) over its keys; "with 1 key" is the same operator\'s footprint holding a single key (its initial tables), which dominates at small key counts; "growth" is the bytes per key added after that. Wasm memory is the linear memory the process reserves (it only grows). Map heap bytes exclude the input key strings (the Map retains them, but they already exist); typed bytes are its typed arrays.',
  ];
  const precise = rs.every((r) => r.memory.mapHeapPrecise);
  if (!precise) out.push('The Map heap figures were measured without --expose-gc and include garbage: treat them as rough.');
  return out;
}
