// Benchmark results and how they are measured, summarized and shown.
//
// - The result shape every benchmark returns (BenchReport): machine, parameters, tables, targets.
// - `measure`: runs contenders in interleaved rounds through tinybench, so that a burst of load from
//   another process hits every contender of a round rather than one of them, and returns each
//   contender's per-round phase timings in round order (so ratios can be paired by round).
// - Statistics (median, min) and paired ratios.
// - Markdown: one section per benchmark, and bench/results/README.md from every stored result
//   (`node dist/bench/report.js` regenerates it from the JSON files without running anything).
import { readdirSync, readFileSync, writeFileSync, mkdirSync, realpathSync } from 'node:fs';
import { cpus, totalmem, loadavg, platform, arch } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { CairnError } from '../src/errors.js';

/** Rounds are capped so one scenario cannot take the whole run, however fast its round. */
export const ROUNDS_MAX = 15;

export interface Machine {
  runtime: string;
  runtimeVersion: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  /** 1-minute load average when the benchmark started (other work on the machine skews timings). */
  loadAverage: number;
}

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number | null)[][];
}

export interface Target {
  /** What the issue asks, in words. */
  text: string;
  measured: number;
  op: '>=' | '<=';
  threshold: number;
  unit: string;
  met: boolean;
}

export interface BenchReport {
  name: string;
  title: string;
  issue: number;
  quick: boolean;
  date: string;
  machine: Machine;
  wallMs: number;
  /** Workload parameters, stated so the numbers can be reproduced and judged. */
  params: Record<string, unknown>;
  /** Every number measured, in a shape particular to the benchmark. */
  results: unknown;
  tables: Table[];
  targets: Target[];
  notes: string[];
}

export function machineInfo(): Machine {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  const cpu = cpus();
  return {
    runtime: deno ? 'deno' : 'node',
    runtimeVersion: deno ? deno.version.deno : process.versions.node,
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${platform()}-${arch()}`,
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
  };
}

export function target(text: string, measured: number, op: '>=' | '<=', threshold: number, unit = 'x'): Target {
  const met = op === '>=' ? measured >= threshold : measured <= threshold;
  return { text, measured: round(measured, 3), op, threshold, unit, met };
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** Milliseconds per named phase of one run (for example { cold, warm } or { load, query }). */
export type Phases = Record<string, number>;

export interface Contender {
  name: string;
  /** Untimed, before each run (fresh state, inputs). */
  prepare?: () => void | Promise<void>;
  /** The timed work; returns its own phase timings (the harness adds nothing to them). */
  run: () => Phases | Promise<Phases>;
  /** Untimed, after each run (close, release memory). */
  cleanup?: () => void | Promise<void>;
}

export interface MeasureOptions {
  /** Rounds always run, however long they take (at least 1). */
  minRounds: number;
  /** More rounds run while the budget lasts, up to this many. */
  maxRounds: number;
  /** Wall-time budget for all rounds of this scenario (ms), estimated from the first round. */
  budgetMs: number;
  /** Called after each contender's run (progress output). */
  onRun?: (name: string, phases: Phases, round: number) => void;
}

/** contender -> phase -> ms per round, in round order. */
export type Measured = Record<string, Record<string, number[]>>;

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * The order of the contenders in round r: a shuffle seeded by r. Rotating one fixed order would
 * keep every contender behind the same predecessor in every round (measured: the run right after
 * DuckDB's is a few percent slower, whoever it is), so predecessors vary instead.
 */
function roundOrder<T>(xs: readonly T[], r: number): T[] {
  const out = [...xs];
  let seed = (r + 1) * 0x9e3779b9;
  const next = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Runs every contender once per round, in an order shuffled each round (roundOrder), through tinybench
 * (one iteration per task; the task reports its own timed phases as `overriddenDuration`, so setup
 * and teardown never count). Garbage is collected before each prepare when `gc` is exposed.
 */
export async function measure(contenders: Contender[], o: MeasureOptions): Promise<Measured> {
  if (contenders.length === 0) throw new CairnError('invalid', 'measure: expected at least one contender, found none');
  if (!(o.minRounds >= 1 && o.maxRounds >= o.minRounds && o.maxRounds <= ROUNDS_MAX)) {
    throw new CairnError('invalid', `measure: expected 1 <= minRounds <= maxRounds <= ${ROUNDS_MAX}, found ${o.minRounds}, ${o.maxRounds}`);
  }
  const out: Measured = {};
  for (const c of contenders) out[c.name] = {};
  let rounds = o.minRounds;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    const order = roundOrder(contenders, r);
    const bench = new Bench({ iterations: 1, time: 0, warmup: false, throws: true });
    for (const c of order) {
      bench.add(c.name, async () => {
        const phases = await c.run();
        const total = Object.values(phases).reduce((a, x) => a + x, 0);
        for (const [phase, ms] of Object.entries(phases)) (out[c.name]![phase] ??= []).push(ms);
        o.onRun?.(c.name, phases, r);
        return { overriddenDuration: total };
      }, {
        beforeEach: async () => {
          collectGarbage();
          await c.prepare?.();
        },
        afterEach: async () => {
          await c.cleanup?.();
          collectGarbage();
        },
      });
    }
    await bench.run();
    for (const task of bench.tasks) {
      if (task.result.state !== 'completed') throw new CairnError('internal', `bench task ${task.name} did not complete: ${task.result.state}`);
    }
    if (r === 0) {
      const roundMs = performance.now() - t0;
      rounds = Math.max(o.minRounds, Math.min(o.maxRounds, Math.floor(o.budgetMs / Math.max(roundMs, 1))));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statistics

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function minOf(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.min(...xs);
}

export function maxOf(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.max(...xs);
}

export interface Timing {
  medianMs: number;
  minMs: number;
  rounds: number;
}

export function timing(ms: readonly number[]): Timing {
  return { medianMs: round(median(ms), 2), minMs: round(minOf(ms), 2), rounds: ms.length };
}

/** Per-round sum of several phases (for example load + query). */
export function sumPhases(m: Measured, contender: string, phases: string[]): number[] {
  const cols = phases.map((p) => m[contender]?.[p] ?? []);
  const n = Math.min(...cols.map((c) => c.length));
  return Array.from({ length: n }, (_, r) => cols.reduce((a, c) => a + c[r]!, 0));
}

/**
 * How many times faster `fast` is than `slow`: the median over rounds of slow[r] / fast[r]. Pairing
 * by round cancels load that hit both runs of a round.
 */
export function pairedSpeedup(fast: readonly number[], slow: readonly number[]): number {
  const n = Math.min(fast.length, slow.length);
  const ratios: number[] = [];
  for (let r = 0; r < n; r++) ratios.push(slow[r]! / fast[r]!);
  return median(ratios);
}

/**
 * How many times faster `fast` is than `slow` comparing the best (shortest) run of each: on a busy
 * machine the best run is the one least disturbed by other work.
 */
export function bestSpeedup(fast: readonly number[], slow: readonly number[]): number {
  return minOf(slow) / minOf(fast);
}

/** Events per second from a duration in ms. */
export function rate(events: number, ms: number): number {
  return events / (ms / 1000);
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtRate(eventsPerSec: number): string {
  if (!Number.isFinite(eventsPerSec)) return '-';
  if (eventsPerSec >= 1e6) return `${(eventsPerSec / 1e6).toFixed(2)} M/s`;
  if (eventsPerSec >= 1e3) return `${(eventsPerSec / 1e3).toFixed(1)} K/s`;
  return `${eventsPerSec.toFixed(0)} /s`;
}

export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '-';
}

/** A median ratio with the best-run ratio after it: "1.52x (best 1.61x)". */
export function fmtRatios(medianRatio: number, best: number): string {
  return `${fmtRatio(medianRatio)} (best ${fmtRatio(best)})`;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`;
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return '-';
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(2)} MiB`;
  if (b >= 2 ** 10) return `${(b / 2 ** 10).toFixed(1)} KiB`;
  return `${b.toFixed(0)} B`;
}

export function fmtCount(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}K`;
  return String(n);
}

function cell(v: string | number | null): string {
  if (v === null) return '-';
  return typeof v === 'number' ? String(round(v, 3)) : v.replace(/\|/g, '\\|');
}

export function markdownTable(t: Table): string {
  const lines = [`| ${t.columns.join(' | ')} |`, `|${t.columns.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of t.rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
  return lines.join('\n');
}

function fmtTargetValue(x: number, unit: string): string {
  return unit === 'x' ? fmtRatio(x) : `${round(x, 3)} ${unit}`;
}

/** One benchmark's section: parameters, tables, targets, notes. */
export function renderReport(r: BenchReport): string {
  const out: string[] = [];
  out.push(`## ${r.title} (issue ${r.issue})${r.quick ? ' — QUICK smoke run, not representative' : ''}`);
  out.push('');
  out.push(`Run ${r.date} on ${r.machine.runtime} ${r.machine.runtimeVersion}, ${r.machine.cpu} x${r.machine.cores}, load average ${r.machine.loadAverage} at start; took ${(r.wallMs / 1000).toFixed(0)} s.`);
  out.push('');
  const params = Object.entries(r.params).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  if (params.length) {
    out.push('Workload:');
    for (const p of params) out.push(`- ${p}`);
    out.push('');
  }
  for (const t of r.tables) {
    out.push(`**${t.title}**`);
    out.push('');
    out.push(markdownTable(t));
    out.push('');
  }
  if (r.targets.length) {
    out.push('**Targets**');
    out.push('');
    out.push(markdownTable({
      title: 'targets',
      columns: ['target', 'measured', 'needed', 'met'],
      rows: r.targets.map((t) => [t.text, fmtTargetValue(t.measured, t.unit), `${t.op} ${fmtTargetValue(t.threshold, t.unit)}`, t.met ? 'yes' : '**no**']),
    }));
    out.push('');
  }
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.notes.length) out.push('');
  return out.join('\n');
}

const ORDER = ['store', 'windows', 'shards', 'checkpoint'];

/** The whole summary: a header, the targets of every benchmark in one table, then each section. */
export function renderSummary(reports: BenchReport[]): string {
  const sorted = [...reports].sort((a, b) => (ORDER.indexOf(a.name) + 99 * Number(!ORDER.includes(a.name))) - (ORDER.indexOf(b.name) + 99 * Number(!ORDER.includes(b.name))));
  const out: string[] = ['# Cairn benchmark results', ''];
  out.push('Generated by `node dist/bench/report.js` from the JSON files in this directory (`npm run bench` writes them).');
  out.push('Every ratio compares contenders measured in the same process run, in interleaved rounds (contenders in a shuffled order each round, so none always follows the same one); medians over rounds unless stated.');
  out.push('Timings on a shared 2-core machine are noisy: compare ratios, not absolute rates, and read the load average of each run.');
  out.push('');
  const all = sorted.flatMap((r) => r.targets.map((t) => [r.name, t.text, fmtTargetValue(t.measured, t.unit), `${t.op} ${fmtTargetValue(t.threshold, t.unit)}`, t.met ? 'yes' : '**no**'] as string[]));
  if (all.length) {
    out.push('## Targets at a glance');
    out.push('');
    out.push(markdownTable({ title: 'targets', columns: ['bench', 'target', 'measured', 'needed', 'met'], rows: all }));
    out.push('');
  }
  for (const r of sorted) out.push(renderReport(r));
  return out.join('\n');
}

/** bench/results/ (or bench/results/quick/), next to the sources, whether run from dist or not. */
export function resultsDir(quick: boolean): string {
  // dist/bench/report.js -> <repo>/bench/results/
  const dir = fileURLToPath(new URL(quick ? '../../bench/results/quick/' : '../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function writeReport(r: BenchReport): string {
  const file = `${resultsDir(r.quick)}${r.name}.json`;
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  return file;
}

/** Reads every BenchReport JSON in the results directory (other JSON, such as codec-*.json, is skipped). */
export function readReports(quick: boolean): BenchReport[] {
  const dir = resultsDir(quick);
  const out: BenchReport[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.json')) continue;
    const x = JSON.parse(readFileSync(dir + f, 'utf8')) as Partial<BenchReport>;
    if (typeof x.name === 'string' && Array.isArray(x.tables) && Array.isArray(x.targets)) out.push(x as BenchReport);
  }
  return out;
}

/** Regenerates README.md in the results directory from the stored JSON; returns its path. */
export function writeSummary(quick: boolean): string {
  const file = `${resultsDir(quick)}README.md`;
  writeFileSync(file, renderSummary(readReports(quick)));
  return file;
}

/** True when the module at `url` is the program being run (node dist/bench/x.js). */
export function isMain(url: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const file = writeSummary(quick);
  console.log(readFileSync(file, 'utf8'));
  console.log(`wrote ${file}`);
}
