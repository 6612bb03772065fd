// Issue 3 benchmark: event-time windowed count+sum+min+max per int64 key (tumbling, hopping with
// size/slide = 60, session), one shard, against the JS Map windowing baseline and DuckDB (one
// thread) over the same in-memory columns, in the same run.
//
// The stream: event times advance at EVENTS_PER_MS events per ms of event time with up to
// DISORDER_MS of disorder; keys are drawn uniformly from K values. Events arrive in batches of
// BATCH_ROWS; after each batch the watermark advances to (largest time in the batch - DISORDER_MS),
// so no event is ever late, and fired windows are taken (Cairn: an Arrow table per call; Map: an
// array of rows). At the end the watermark passes every window, so every (key, window) fires exactly
// once, and the three contenders produce the same rows: DuckDB computes them with one GROUP BY
// (ordered by window_end, key, window_start like Cairn's output) after loading the columns, and its
// time is load + query (both are reported). Row counts are compared as a cross-check.
//
// Contenders per scenario: cairn (public API: ingest + advanceWatermark, Arrow out), cairn-core
// (WasmCore on pre-encoded batches, output copied out of Wasm but not built into Arrow), map,
// duckdb. Hopping at 1M keys emits at least 60 rows per key (every key that has an event is in 60
// windows), about 60 rows per event here; the Map baseline would hold 60 window cells per event
// and DuckDB would explode the input 60 times, which does not fit this machine, so that scenario
// runs Cairn alone on few events, as a measure of output rate, and says so.
import { StateBackend, type AggregateOperator, type AggregateSpec, type WindowSpec } from '../src/index.js';
import { WasmCore } from '../bindings/core.js';
import type { EncodedBatch } from '../bindings/types.js';
import { encodeBatch } from '../src/store/batch.js';
import { normalizeAggregateSpec, storeConfigOf } from '../src/store/spec.js';
import { benchColumns, type BenchColumns } from './data.js';
import { MapWindows, type MapWindowSpec } from './baselines/map-windows.js';
import { DuckBaseline, type DuckQuery } from './baselines/duckdb.js';
import {
  type BenchReport, type Contender, type Measured, type Table, type Target, bestSpeedup, fmtCount, fmtMs, fmtRate, fmtRatio, fmtRatios, machineInfo, measure, median,
  minOf, pairedSpeedup, rate, round, sumPhases, target, timing, type Timing,
} from './report.js';

export const BATCH_ROWS = 65_536;
export const EVENTS_PER_MS = 100;
export const DISORDER_MS = 100;
export const TUMBLING_MS = 1_000;
export const HOPPING_SIZE_MS = 60_000;
export const HOPPING_SLIDE_MS = 1_000;
export const SESSION_GAP_MS = 300;

type Kind = 'tumbling' | 'hopping' | 'session';

export interface WindowScenario {
  kind: Kind;
  distinct: number;
  events: number;
  /** Contenders other than Cairn (none where they cannot run on this machine). */
  baselines: boolean;
  /** Rounds that always run (more while the scenario's time budget lasts). */
  minRounds: number;
  /** Key type (default int64): utf8 keys come as JS strings, one per event, as a decoder hands them out. */
  keyType?: 'int64' | 'utf8';
}

export function windowScenarios(quick: boolean): WindowScenario[] {
  // Event counts keep the full run within a few minutes on two cores: the hopping Map baseline does
  // 60 window updates per event, and hopping at 1M keys emits ~60 rows per event. Throughput per
  // event barely depends on the count once the stream spans several windows.
  const scale = quick ? 0.05 : 1;
  const n = (x: number) => Math.round(x * scale);
  return [
    { kind: 'tumbling', distinct: 10_000, events: n(2_000_000), baselines: true, minRounds: 3 },
    { kind: 'tumbling', distinct: 10_000, events: n(2_000_000), baselines: true, minRounds: 3, keyType: 'utf8' },
    { kind: 'hopping', distinct: 10_000, events: n(250_000), baselines: true, minRounds: 2 },
    { kind: 'session', distinct: 10_000, events: n(2_000_000), baselines: true, minRounds: 3 },
    { kind: 'tumbling', distinct: 1_000_000, events: n(2_000_000), baselines: true, minRounds: 2 },
    { kind: 'hopping', distinct: 1_000_000, events: n(30_000), baselines: false, minRounds: 1 },
    { kind: 'session', distinct: 1_000_000, events: n(1_000_000), baselines: true, minRounds: 2 },
  ];
}

/** A window both Cairn's spec and the Map baseline accept. */
type Win = WindowSpec & MapWindowSpec;

function windowOf(kind: Kind): Win {
  switch (kind) {
    case 'tumbling': return { kind, size: TUMBLING_MS };
    case 'hopping': return { kind, size: HOPPING_SIZE_MS, slide: HOPPING_SLIDE_MS };
    case 'session': return { kind, gap: SESSION_GAP_MS };
  }
}

function duckQueryOf(kind: Kind): DuckQuery {
  switch (kind) {
    case 'tumbling': return { kind, size: TUMBLING_MS };
    case 'hopping': return { kind, size: HOPPING_SIZE_MS, slide: HOPPING_SLIDE_MS };
    case 'session': return { kind, gap: SESSION_GAP_MS };
  }
}

function specOf(kind: Kind, keyType: 'int64' | 'utf8' = 'int64'): AggregateSpec {
  return {
    key: { field: 'k', type: keyType },
    time: 'ts',
    window: windowOf(kind),
    aggregates: { n: { fn: 'count' }, total: { fn: 'sum', field: 'v' }, lo: { fn: 'min', field: 'v' }, hi: { fn: 'max', field: 'v' } },
  };
}

interface Stream {
  cols: BenchColumns;
  keys: (BigInt64Array | string[])[];
  ts: Float64Array[];
  values: Float64Array[];
  /** Watermark after each batch. */
  watermarks: number[];
  /** Watermark that fires every remaining window. */
  final: number;
}

function stream(events: number, distinct: number, seed: number, keyType: 'int64' | 'utf8' = 'int64'): Stream {
  const cols = benchColumns({ n: events, distinct, keyType, eventsPerMs: EVENTS_PER_MS, disorderMs: DISORDER_MS, seed });
  const s: Stream = { cols, keys: [], ts: [], values: [], watermarks: [], final: 0 };
  let maxT = -Infinity;
  for (let at = 0; at < events; at += BATCH_ROWS) {
    const end = Math.min(events, at + BATCH_ROWS);
    s.keys.push(cols.keys instanceof BigInt64Array ? cols.keys.subarray(at, end) : (cols.keys as string[]).slice(at, end));
    const ts = cols.ts.subarray(at, end);
    s.ts.push(ts);
    s.values.push(cols.amount.subarray(at, end));
    for (let i = 0; i < ts.length; i++) if (ts[i]! > maxT) maxT = ts[i]!;
    s.watermarks.push(maxT - DISORDER_MS);
  }
  s.final = maxT + HOPPING_SIZE_MS + TUMBLING_MS + SESSION_GAP_MS;
  return s;
}

/** Output rows per contender, from the last run (a cross-check that all computed the same windows). */
type RowCounts = Record<string, number>;

function cairnContender(kind: Kind, s: Stream, rows: RowCounts, keyType: 'int64' | 'utf8' = 'int64'): Contender {
  let backend: StateBackend | null = null;
  let op: AggregateOperator | null = null;
  return {
    name: 'cairn',
    prepare: async () => {
      backend = await StateBackend.open({ shards: 1 });
      op = backend.aggregate('bench', specOf(kind, keyType));
    },
    run: async () => {
      let out = 0;
      const t0 = performance.now();
      for (let i = 0; i < s.keys.length; i++) {
        await op!.ingest({ k: s.keys[i]!, ts: s.ts[i]!, v: s.values[i]! });
        out += (await op!.advanceWatermark(s.watermarks[i]!)).numRows;
      }
      const t1 = performance.now();
      out += (await op!.advanceWatermark(s.final)).numRows;
      const t2 = performance.now();
      rows['cairn'] = out;
      return { stream: t1 - t0, drain: t2 - t1 };
    },
    cleanup: async () => {
      await backend?.close();
      backend = null;
      op = null;
    },
  };
}

function coreContender(kind: Kind, s: Stream, rows: RowCounts, keyType: 'int64' | 'utf8' = 'int64'): Contender {
  const spec = normalizeAggregateSpec(specOf(kind, keyType));
  const cfg = storeConfigOf(spec);
  let core: WasmCore | null = null;
  let h = -1;
  let encoded: EncodedBatch[] = [];
  return {
    name: 'cairn-core',
    prepare: () => {
      core = new WasmCore();
      h = core.openStore(cfg);
      encoded = s.keys.map((k, i) => encodeBatch({ k, ts: s.ts[i]!, v: s.values[i]! }, spec));
    },
    run: () => {
      let out = 0;
      let seq = 0n;
      let ingest = 0;
      let fire = 0;
      for (let i = 0; i < encoded.length; i++) {
        const e = encoded[i]!;
        const t0 = performance.now();
        core!.ingest(h, e, seq);
        const t1 = performance.now();
        out += core!.advance(h, BigInt(s.watermarks[i]!), cfg).count;
        fire += performance.now() - t1;
        ingest += t1 - t0;
        seq += BigInt(e.n);
      }
      const t1 = performance.now();
      out += core!.advance(h, BigInt(s.final), cfg).count;
      const drain = performance.now() - t1;
      rows['cairn-core'] = out;
      return { ingest, fire, drain };
    },
    cleanup: () => {
      core = null;
      encoded = [];
    },
  };
}

function mapContender(kind: Kind, s: Stream, rows: RowCounts): Contender {
  let m: MapWindows | null = null;
  return {
    name: 'map',
    prepare: () => {
      m = new MapWindows({ window: windowOf(kind) });
    },
    run: () => {
      let out = 0;
      const t0 = performance.now();
      for (let i = 0; i < s.keys.length; i++) {
        const k = s.keys[i]!;
        if (k instanceof BigInt64Array) m!.ingestInt64(k, s.ts[i]!, s.values[i]!);
        else m!.ingestUtf8(k, s.ts[i]!, s.values[i]!);
        out += m!.advanceWatermark(s.watermarks[i]!).length;
      }
      const t1 = performance.now();
      out += m!.advanceWatermark(s.final).length;
      const t2 = performance.now();
      rows['map'] = out;
      return { stream: t1 - t0, drain: t2 - t1 };
    },
    cleanup: () => {
      m = null;
    },
  };
}

function duckContender(kind: Kind, s: Stream, rows: RowCounts): Contender {
  let db: DuckBaseline | null = null;
  return {
    name: 'duckdb',
    prepare: async () => {
      db = await DuckBaseline.create();
    },
    run: async () => {
      const load = await db!.load({ keys: s.cols.keys, ts: s.cols.ts, amount: s.cols.amount });
      const q = await db!.time(duckQueryOf(kind));
      rows['duckdb'] = q.rows;
      return { load, query: q.queryMs };
    },
    cleanup: () => {
      db?.close();
      db = null;
    },
  };
}

export interface WindowScenarioResult extends WindowScenario {
  /** Event-time span of the stream (ms). */
  spanMs: number;
  rows: RowCounts;
  rowsAgree: boolean;
  timings: Record<string, Record<string, Timing>>;
  /**
   * Events per second at the median round. "cairn stream" counts only the streaming phase (ingest
   * and the watermark advances after each batch: the steady state of an endless stream); the others
   * include the final drain, which fires every window still open at the end (equal work for all).
   */
  eventsPerSec: Record<string, number>;
  /** Speed-ups of Cairn's public API (stream + drain) over each baseline: median of per-round ratios, and best run against best run. */
  cairnOver: { map?: Speedup; duckdb?: Speedup; duckdbQueryOnly?: Speedup };
  /** Share of Cairn's public-API time (stream + drain) spent outside WasmCore (encode, Arrow output, promises), from best runs. */
  jsShare: number;
}

interface Speedup {
  median: number;
  best: number;
}

function speedup(fast: number[], slow: number[]): Speedup {
  return { median: round(pairedSpeedup(fast, slow), 3), best: round(bestSpeedup(fast, slow), 3) };
}

function label(s: WindowScenario): string {
  return `${s.kind} ${fmtCount(s.distinct)}${s.keyType === 'utf8' ? ' utf8' : ''} keys`;
}

export async function benchWindows(o: { quick: boolean; log?: (line: string) => void }): Promise<BenchReport> {
  const log = o.log ?? (() => undefined);
  const started = performance.now();
  const machine = machineInfo();
  const results: WindowScenarioResult[] = [];
  // JIT warm-up before each scenario: one batch through every contender (more would cost seconds of
  // the hopping Map baseline for nothing).
  const warm = stream(o.quick ? 10_000 : BATCH_ROWS, 10_000, 99);
  for (const sc of windowScenarios(o.quick)) {
    log(`windows: ${label(sc)}, ${fmtCount(sc.events)} events`);
    const kt = sc.keyType ?? 'int64';
    const s = stream(sc.events, sc.distinct, 11, kt);
    const scWarm = kt === 'int64' ? warm : stream(o.quick ? 10_000 : BATCH_ROWS, 10_000, 99, kt);
    const rows: RowCounts = {};
    const make = (st: Stream, r: RowCounts) => {
      const cs = [cairnContender(sc.kind, st, r, kt), coreContender(sc.kind, st, r, kt)];
      if (sc.baselines) cs.push(mapContender(sc.kind, st, r), duckContender(sc.kind, st, r));
      return cs;
    };
    await measure(make(scWarm, {}), { minRounds: 1, maxRounds: 1, budgetMs: 0 });
    const m = await measure(make(s, rows), {
      minRounds: o.quick ? 1 : sc.minRounds,
      maxRounds: o.quick ? 1 : Math.max(sc.minRounds, 9),
      budgetMs: o.quick ? 0 : 25_000,
      onRun: (name, p) => log(`  ${name}: ${Object.entries(p).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`),
    });
    results.push(summarize(sc, s, m, rows));
  }
  const steady = await steadyHopping(o.quick, log);
  const report = {
    name: 'windows',
    title: 'Windowed aggregation, one shard',
    issue: 3,
    quick: o.quick,
    date: new Date().toISOString(),
    machine,
    wallMs: round(performance.now() - started, 0),
    params: {
      aggregates: 'count, sum(v), min(v), max(v) per int64 key and window (utf8 keys where the scenario says so: JS strings, one per event, such as "user-6270")',
      'event-time rate': `${EVENTS_PER_MS} events per ms of event time (${EVENTS_PER_MS * 1000} events/s), times out of order by up to ${DISORDER_MS} ms`,
      'per key': `10K keys: ${(EVENTS_PER_MS * 1000) / 10_000} events per key per second (${(EVENTS_PER_MS * TUMBLING_MS) / 10_000} per tumbling window or hopping slide, ~${(10_000 / EVENTS_PER_MS).toFixed(0)} ms between a key's events); 1M keys: one event per key per ${1_000_000 / EVENTS_PER_MS / 1000} s`,
      windows: `tumbling ${TUMBLING_MS} ms; hopping ${HOPPING_SIZE_MS} ms every ${HOPPING_SLIDE_MS} ms (size/slide = ${HOPPING_SIZE_MS / HOPPING_SLIDE_MS}); session gap ${SESSION_GAP_MS} ms`,
      flow: `batches of ${BATCH_ROWS} events; after each batch the watermark moves to the batch's largest time - ${DISORDER_MS} ms (no late events); at the end it passes every window`,
      duckdb: 'one thread; time = load of the same columns (appender) + one GROUP BY query materialized in DuckDB; ordered like Cairn',
      'cairn-core': 'WasmCore.ingest + advance on pre-encoded batches (no encode, no Arrow building)',
      statistics: 'median over interleaved rounds; speed-ups are medians of per-round ratios',
    },
    results: { scenarios: results, steady },
    tables: [...tables(results), steadyTable(steady)],
    targets: [...targets(results), steadyTarget(steady)],
    notes: [...notes(results), ...[shortStreamNote(results)].filter((n): n is string => n !== null), steadyNote(steady)],
  };
  return report;
}

/** Hopping against tumbling on a stream long enough for the windows to cycle (see steadyNote). */
export interface SteadyResult {
  events: number;
  distinct: number;
  spanMs: number;
  rows: RowCounts;
  /** Events per second at the median round, stream and final drain included. */
  eventsPerSec: { tumbling: number; hopping: number };
  /** Median of per-round ratios hopping / tumbling throughput. */
  ratio: number;
  drainShare: { tumbling: number; hopping: number };
}

const STEADY_EVENTS = 12_000_000;

async function steadyHopping(quick: boolean, log: (line: string) => void): Promise<SteadyResult> {
  // 12M events at 100 per ms span 120 s of event time: two hopping window sizes, so for half of the
  // stream every fired window folds all of its 60 panes, and the final drain (60 open windows per
  // key) is a small part of the work, as in a long-running job.
  const events = quick ? 600_000 : STEADY_EVENTS;
  const distinct = 10_000;
  log(`windows: hopping against tumbling, ${fmtCount(distinct)} keys, ${fmtCount(events)} events (Cairn only)`);
  const s = stream(events, distinct, 23);
  const rows: RowCounts = {};
  const named = (kind: Kind): Contender => {
    const r: RowCounts = {};
    const c = cairnContender(kind, s, r);
    return { ...c, name: kind, run: async () => { const p = await c.run(); rows[kind] = r['cairn']!; return p; } };
  };
  const m = await measure([named('tumbling'), named('hopping')], {
    minRounds: quick ? 1 : 3,
    maxRounds: quick ? 1 : 5,
    budgetMs: quick ? 0 : 20_000,
  });
  const total = (k: Kind) => sumPhases(m, k, ['stream', 'drain']);
  const t = total('tumbling');
  const h = total('hopping');
  const share = (k: Kind) => median(m[k]!['drain']!) / median(total(k));
  return {
    events,
    distinct,
    spanMs: s.cols.ts[s.cols.ts.length - 1]! - s.cols.ts[0]!,
    rows,
    eventsPerSec: { tumbling: rate(events, median(t)), hopping: rate(events, median(h)) },
    ratio: round(pairedSpeedup(h, t), 3),
    drainShare: { tumbling: round(share('tumbling'), 3), hopping: round(share('hopping'), 3) },
  };
}

function steadyTable(r: SteadyResult): Table {
  return {
    title: `Hopping (size/slide 60) against tumbling on a long stream: ${fmtCount(r.events)} events, ${fmtCount(r.distinct)} keys, ${(r.spanMs / 1000).toFixed(0)} s of event time, Cairn public API, stream and final drain`,
    columns: ['window', 'events/s (median round)', 'rows out', 'drain share of time'],
    rows: [
      ['tumbling', fmtRate(r.eventsPerSec.tumbling), String(r.rows['tumbling']), `${(r.drainShare.tumbling * 100).toFixed(1)}%`],
      ['hopping', fmtRate(r.eventsPerSec.hopping), String(r.rows['hopping']), `${(r.drainShare.hopping * 100).toFixed(1)}%`],
    ],
  };
}

function steadyTarget(r: SteadyResult): Target {
  return target(`hopping (size/slide 60) >= 0.5x tumbling throughput, 10K keys, ${(r.spanMs / 1000).toFixed(0)} s of event time, final drain included`, r.ratio, '>=', 0.5);
}

function steadyNote(r: SteadyResult): string {
  return `Hopping against tumbling, the target: the 10K-key scenarios above are short for hopping because its Map baseline updates 60 windows per event and cannot run longer here. The long-stream table runs Cairn alone for ${(r.spanMs / 1000).toFixed(0)} s of event time, where both kinds emit one row per key per second while the stream runs; its ratio (median of per-round ratios, drain included) is the steady-state throughput comparison (${(r.ratio * 100).toFixed(0)}% here). Firing goes through the hopping index (two-stack aggregation per key: one combine per fired window, each pane folded twice in its life), and hopping stores index keys (one slot per key, pointing at its newest pane), so neither firing nor lookups grow with size/slide. What remains is the larger state: 60 live panes per key (600K rows at 10K keys) against two or three for tumbling, each pane created, folded and purged once, and a final drain of 60 windows per key.`;
}

function summarize(sc: WindowScenario, s: Stream, m: Measured, rows: RowCounts): WindowScenarioResult {
  const timings: WindowScenarioResult['timings'] = {};
  for (const [name, phases] of Object.entries(m)) {
    timings[name] = {};
    for (const [phase, ms] of Object.entries(phases)) timings[name]![phase] = timing(ms);
  }
  const cairn = sumPhases(m, 'cairn', ['stream', 'drain']);
  timings['cairn']!['total'] = timing(cairn);
  const core = sumPhases(m, 'cairn-core', ['ingest', 'fire', 'drain']);
  timings['cairn-core']!['total'] = timing(core);
  const eventsPerSec: Record<string, number> = {
    'cairn stream': round(rate(sc.events, median(m['cairn']!['stream']!)), 0),
    cairn: round(rate(sc.events, median(cairn)), 0),
    'cairn-core': round(rate(sc.events, median(core)), 0),
  };
  const cairnOver: WindowScenarioResult['cairnOver'] = {};
  if (sc.baselines) {
    const map = sumPhases(m, 'map', ['stream', 'drain']);
    timings['map']!['total'] = timing(map);
    const duck = sumPhases(m, 'duckdb', ['load', 'query']);
    timings['duckdb']!['total'] = timing(duck);
    eventsPerSec['map'] = round(rate(sc.events, median(map)), 0);
    eventsPerSec['duckdb'] = round(rate(sc.events, median(duck)), 0);
    eventsPerSec['duckdb query only'] = round(rate(sc.events, median(m['duckdb']!['query']!)), 0);
    cairnOver.map = speedup(cairn, map);
    cairnOver.duckdb = speedup(cairn, duck);
    cairnOver.duckdbQueryOnly = speedup(cairn, m['duckdb']!['query']!);
  }
  const counts = Object.values(rows);
  const times = s.cols.ts;
  return {
    ...sc,
    spanMs: times.length ? times[times.length - 1]! - times[0]! : 0,
    rows,
    rowsAgree: counts.every((c) => c === counts[0]),
    timings,
    eventsPerSec,
    cairnOver,
    jsShare: round(Math.max(0, minOf(cairn) - minOf(core)) / minOf(cairn), 3),
  };
}

function ratios(x: Speedup | undefined): string {
  return x === undefined ? '-' : fmtRatios(x.median, x.best);
}

function tables(rs: WindowScenarioResult[]): BenchReport['tables'] {
  const throughput = {
    title: 'Throughput (events/s, median round) and Cairn speed-up (stream + drain; median of per-round ratios, and best run against best run)',
    columns: ['scenario', 'events', 'rows out', 'cairn stream', 'cairn', 'cairn-core', 'map', 'duckdb (load+query)', 'cairn/map', 'cairn/duckdb', 'cairn/duckdb query only'],
    rows: rs.map((r) => [
      label(r), fmtCount(r.events), r.rows['cairn'] ?? null,
      fmtRate(r.eventsPerSec['cairn stream']!), fmtRate(r.eventsPerSec['cairn']!), fmtRate(r.eventsPerSec['cairn-core']!),
      r.baselines ? fmtRate(r.eventsPerSec['map']!) : 'not run', r.baselines ? fmtRate(r.eventsPerSec['duckdb']!) : 'not run',
      ratios(r.cairnOver.map), ratios(r.cairnOver.duckdb), ratios(r.cairnOver.duckdbQueryOnly),
    ]),
  };
  const t = (r: WindowScenarioResult, c: string, p: string) => (r.timings[c]?.[p] ? fmtMs(r.timings[c]![p]!.medianMs) : '-');
  const split = {
    title: 'Where the time goes (median ms)',
    columns: ['scenario', 'cairn stream', 'cairn drain', 'core ingest', 'core fire', 'core drain', 'JS share of cairn (best runs)', 'map stream', 'map drain', 'duckdb load', 'duckdb query'],
    rows: rs.map((r) => [
      label(r), t(r, 'cairn', 'stream'), t(r, 'cairn', 'drain'), t(r, 'cairn-core', 'ingest'), t(r, 'cairn-core', 'fire'), t(r, 'cairn-core', 'drain'),
      `${(r.jsShare * 100).toFixed(0)}%`, t(r, 'map', 'stream'), t(r, 'map', 'drain'), t(r, 'duckdb', 'load'), t(r, 'duckdb', 'query'),
    ]),
  };
  return [throughput, split];
}

function find(rs: WindowScenarioResult[], kind: Kind, distinct: number, keyType: 'int64' | 'utf8' = 'int64'): WindowScenarioResult | undefined {
  return rs.find((r) => r.kind === kind && r.distinct === distinct && (r.keyType ?? 'int64') === keyType);
}

function targets(rs: WindowScenarioResult[]): Target[] {
  const out: Target[] = [];
  const t10 = find(rs, 'tumbling', 10_000);
  if (t10?.cairnOver.map !== undefined) out.push(target('tumbling 10K keys: cairn >= 5x map', t10.cairnOver.map.median, '>=', 5));
  if (t10?.cairnOver.duckdb !== undefined) out.push(target('tumbling 10K keys: cairn >= 3x duckdb (load + query, 1 thread)', t10.cairnOver.duckdb.median, '>=', 3));
  // The hopping target is measured on the long stream (steadyTarget): the scenarios here are too
  // short for it (see shortStreamNote).
  return out;
}

/**
 * The hopping/tumbling ratios of the 10K-key scenarios, reported but not held to the target: the
 * hopping stream there (250K events, 2.5 s of event time) is 8 times shorter than the tumbling
 * one and shorter than one 60 s window, so its figures weigh a fresh shard's fixed costs and the
 * flush of every open window rather than throughput.
 */
function shortStreamNote(rs: WindowScenarioResult[]): string | null {
  const t = find(rs, 'tumbling', 10_000);
  const h = find(rs, 'hopping', 10_000);
  if (!t || !h) return null;
  const stream = h.eventsPerSec['cairn stream']! / t.eventsPerSec['cairn stream']!;
  const whole = h.eventsPerSec['cairn']! / t.eventsPerSec['cairn']!;
  return `Hopping against tumbling on the 10K-key scenarios above, not a target: ${fmtRatio(stream)} in the streaming phase and ${fmtRatio(whole)} with the final drain. The hopping stream there is ${fmtCount(h.events)} events (${(h.spanMs / 1000).toFixed(1)} s of event time) against ${fmtCount(t.events)} for tumbling, shorter than one 60 s window: its streaming phase fires almost nothing and weighs a fresh shard's fixed costs over 8 times fewer events, and its drain flushes 60 open windows per key (2.5 rows out per event). The target is measured on the long stream below, the same length for both kinds.`;
}

function notes(rs: WindowScenarioResult[]): string[] {
  const out: string[] = [];
  for (const r of rs) {
    if (!r.rowsAgree) out.push(`**Row counts differ** for ${label(r)}: ${JSON.stringify(r.rows)}.`);
  }
  const h1m = find(rs, 'hopping', 1_000_000);
  if (h1m) {
    const rowsOut = h1m.rows['cairn'] ?? 0;
    const drain = h1m.timings['cairn']?.['drain']?.medianMs ?? NaN;
    out.push(`hopping 1M keys: ${rowsOut.toLocaleString('en-US')} rows out for ${h1m.events.toLocaleString('en-US')} events (${(rowsOut / h1m.events).toFixed(1)} per event), because a key with one event in a pane is in 60 windows. The stream spans ${(h1m.spanMs / 1000).toFixed(1)} s of event time, so no window closes while it runs ("cairn stream" is ingest only) and the drain emits nearly everything: ${fmtRate((rowsOut / drain) * 1000).replace('/s', ' rows/s')} of output. The Map and DuckDB baselines were not run (60 window cells per event would not fit in memory here), and no hopping/tumbling ratio is claimed at 1M keys.`);
  }
  out.push('The hopping Map baseline updates all 60 windows of each event (the naive idiomatic approach); Cairn aggregates slide-sized panes and combines 60 panes when a window fires.');
  out.push('"stream" is ingest plus the watermark advance after each batch, which fires windows as they close: the steady state of an endless stream. "drain" is the final advance past every window; in a stream this short it fires most of the hopping windows (each key ends with 60 open windows). Stream + drain is the basis against DuckDB, which computes every window. For hopping against tumbling neither short-stream figure is the steady state: see the long-stream table.');
  out.push('Rows out: every (key, window) fires once, so each contender emits the same rows; counts were compared' + (rs.every((r) => r.rowsAgree) ? ' and agree.' : '.'));
  return out;
}
