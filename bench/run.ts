// Runs Cairn's benchmarks: `node dist/bench/run.js [store] [windows] [shards] [checkpoint] [--quick]`
// (`npm run bench` builds first and runs all of them).
//
// Under Node the runner re-spawns itself once with --expose-gc (garbage is collected between runs,
// outside the timed work, and the Map baseline's heap bytes per key are exact) and a larger heap
// (the Map baselines at 1M keys need it). Each benchmark writes bench/results/<name>.json and the
// runner regenerates bench/results/README.md from every stored result and prints each section.
// --quick runs every benchmark on small inputs with one round (a smoke run of well under a minute);
// its results go to bench/results/quick/ so they never replace real ones.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchStore } from './store.js';
import { benchWindows } from './windows.js';
import { benchShards } from './shards.js';
import { benchCheckpoint } from './checkpoint.js';
import { renderReport, writeReport, writeSummary, type BenchReport, isMain } from './report.js';

type BenchFn = (o: { quick: boolean; log?: (line: string) => void }) => Promise<BenchReport>;

const BENCHES: Record<string, BenchFn> = {
  store: benchStore,
  windows: benchWindows,
  shards: benchShards,
  checkpoint: benchCheckpoint,
};

/** Heap for the re-spawned process: the Map windowing baseline at 1M keys holds millions of objects. */
const HEAP_MB = 8192;
const RESPAWNED_ENV = 'CAIRN_BENCH_CHILD';

function usage(): string {
  return `usage: node dist/bench/run.js [${Object.keys(BENCHES).join('] [')}] [--quick] [--verbose]`;
}

function respawnWithGc(): never {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--expose-gc', `--max-old-space-size=${HEAP_MB}`, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [RESPAWNED_ENV]: '1' },
  });
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const verbose = args.includes('--verbose');
  const unknownFlags = args.filter((a) => a.startsWith('-') && a !== '--quick' && a !== '--verbose');
  const names = args.filter((a) => !a.startsWith('-'));
  const bad = names.filter((n) => !(n in BENCHES));
  if (unknownFlags.length || bad.length) {
    console.error(`unknown ${[...unknownFlags, ...bad].join(', ')}\n${usage()}`);
    return 2;
  }
  const isDeno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  if (!isDeno && typeof (globalThis as { gc?: unknown }).gc !== 'function' && process.env[RESPAWNED_ENV] !== '1') respawnWithGc();

  const selected = names.length ? names : Object.keys(BENCHES);
  const t0 = performance.now();
  const log = (line: string) => {
    if (verbose) console.log(line);
  };
  for (const name of selected) {
    const t = performance.now();
    console.log(`# bench ${name}${quick ? ' (quick)' : ''} ...`);
    const report = await BENCHES[name]!({ quick, log });
    const file = writeReport(report);
    console.log(renderReport(report));
    console.log(`wrote ${file} (${((performance.now() - t) / 1000).toFixed(1)} s)\n`);
  }
  const summary = writeSummary(quick);
  console.log(`wrote ${summary}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}

if (isMain(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
