/**
 * `cairn demo` (what `npm start` runs): Nexmark query 5, "hot items", end to end.
 *
 * 1. Generates a deterministic Nexmark bid stream (nexmark.ts) into DIR/bids.csv, or reuses the one
 *    a previous demo wrote with the same size and seed.
 * 2. Runs `cairn run` on it (run.ts, so the same pipeline, checkpoints and exactly-once machinery):
 *    bids per auction in hopping windows of 10 s sliding by 2 s, the window of the Nexmark SQL
 *    reference query 5 (HOP(dateTime, INTERVAL '2' SECOND, INTERVAL '10' SECOND)), with a watermark
 *    2 s behind the largest bid time (the generator's bound on disorder, so no bid is late), and a
 *    checkpoint every 100,000 bids into DIR/checkpoints.
 * 3. Reads the fired windows back and finishes query 5: for each window, the auction with the most
 *    bids. Prints throughput, checkpoint statistics, the top 5 auctions of the last full window, and
 *    the hot item of the last few windows.
 *
 * Everything but the timings is deterministic: the same --events and --seed print the same tables.
 */
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invariant } from '../errors.js';
import { LOCK_NAME, acquireDirLock } from '../storage/dir-lock.js';
import { UsageError } from './errors.js';
import { generate } from './generate.js';
import type { CliIo } from './main.js';
import { NEXMARK_BIDS_MAX, NEXMARK_DEFAULTS } from './nexmark.js';
import { parseArgs, parseInteger } from './parse.js';
import { formatCount, formatSeconds } from './progress.js';
import { openReader } from './readers.js';
import { formatBytes, runConfigOf, runPipeline } from './run.js';
import { DEMO_COMMAND, DEMO_HELP, RUN_COMMAND } from './usage.js';

export const Q5_WINDOW_MS = 10_000;
export const Q5_SLIDE_MS = 2_000;
/** Windows of the hot-item table, and auctions of the top table. */
const HOT_WINDOWS_SHOWN = 5;
const TOP_AUCTIONS_SHOWN = 5;
/** Stops a demo that would take hours on a laptop; larger streams belong to `cairn generate` + `run`. */
export const DEMO_EVENTS_MAX = 100_000_000;

interface Ranked {
  auction: bigint;
  bids: bigint;
}

export async function demoCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(argv, DEMO_COMMAND);
  if (parsed.help) {
    io.stdout.write(DEMO_HELP);
    return 0;
  }
  const v = parsed.values;
  const events = parseInteger(v.events, '--events', { min: 1, max: Math.min(DEMO_EVENTS_MAX, NEXMARK_BIDS_MAX) });
  const seed = parseInteger(v.seed, '--seed', { min: 0, max: Number.MAX_SAFE_INTEGER });
  const dir = v.dir;
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`cannot create the demo folder ${JSON.stringify(dir)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const bids = join(dir, 'bids.csv');
  const stamp = join(dir, 'bids.json');
  const checkpoints = join(dir, 'checkpoints');
  const output = join(dir, 'q5-windows.csv');
  const say = (line: string) => io.stdout.write(line + '\n');

  say(`Cairn demo: Nexmark query 5 (hot items) on ${formatCount(events)} bids, seed ${seed}`);
  // 1. The bids.
  const wanted = JSON.stringify({ events, seed, eventsPerSecond: NEXMARK_DEFAULTS.eventsPerSecond, outOfOrdernessMs: NEXMARK_DEFAULTS.outOfOrdernessMs });
  let reuse = false;
  try {
    const [text, info] = await Promise.all([readFile(stamp, 'utf8'), stat(bids)]);
    const saved = JSON.parse(text) as { key: string; bytes: number };
    reuse = saved.key === wanted && saved.bytes === info.size;
  } catch {
    reuse = false;
  }
  if (reuse) {
    say(`  bids         reusing ${bids} (${formatBytes((await stat(bids)).size)})`);
  } else {
    await rm(stamp, { force: true });
    const t0 = performance.now();
    await generate(
      { events, seed, output: bids, eventsPerSecond: NEXMARK_DEFAULTS.eventsPerSecond, outOfOrdernessMs: NEXMARK_DEFAULTS.outOfOrdernessMs, quiet: v.quiet },
      io,
    );
    const size = (await stat(bids)).size;
    await writeFile(stamp, JSON.stringify({ key: wanted, bytes: size }) + '\n');
    say(`  bids         generated ${bids} (${formatBytes(size)}) in ${formatSeconds((performance.now() - t0) / 1000)}`);
  }

  // 2. The aggregation, from scratch: the checkpoint directory is emptied under its lock, so a
  // `cairn run` using it (a --dir shared by mistake) stops the demo instead of losing its checkpoints.
  const lock = await acquireDirLock(checkpoints);
  try {
    for (const name of await readdir(checkpoints)) if (name !== LOCK_NAME) await rm(join(checkpoints, name), { recursive: true, force: true });
  } finally {
    await lock.release();
  }
  await rm(output, { force: true });
  const runArgs = [
    '--input', bids, '--key', 'auction:int64', '--time', 'date_time',
    '--window', `hopping:${Q5_WINDOW_MS / 1000}s,${Q5_SLIDE_MS / 1000}s`, '--agg', 'bids=count',
    '--out-of-orderness', `${NEXMARK_DEFAULTS.outOfOrdernessMs}ms`,
    '--checkpoint-dir', checkpoints, '--checkpoint-every', '100000', '--output', output,
    ...(v.quiet ? ['--quiet'] : []),
  ];
  const parsedRun = parseArgs(runArgs, RUN_COMMAND);
  invariant(!parsedRun.help, 'the demo never asks cairn run for help');
  const config = runConfigOf(parsedRun.values);
  const s = await runPipeline(config, io);
  const ck = s.checkpoints;
  say(`  query        cairn run ${runArgs.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  say(`  throughput   ${formatCount(s.eventsThisRun / s.seconds)} events/s (${s.eventsThisRun} events in ${formatSeconds(s.seconds)}), ${s.lateEvents} late`);
  say(`  windows      ${s.rows} (auction, window) counts in ${output}`);
  say(
    `  checkpoints  ${ck.count} taken (${ck.count - ck.incremental} full, ${ck.incremental} incremental), ${formatBytes(ck.bytes)} written, ` +
      `mean ${ck.count ? (ck.durationMs / ck.count).toFixed(0) : 0} ms each, longest stall ${ck.stallMsMax.toFixed(1)} ms; in ${checkpoints}`,
  );

  // 3. Query 5 proper: the auction with the most bids per window, from the fired windows.
  const q = await hotItems(output);
  const lastFullEnd = q.fullEnds[q.fullEnds.length - 1];
  if (lastFullEnd === undefined) {
    say('\nThe stream is shorter than one window: no full window to rank.');
    return 0;
  }
  say('');
  say(`Hottest auctions in the last full window [${clock(lastFullEnd - Q5_WINDOW_MS)}, ${clock(lastFullEnd)}):`);
  say(table(['rank', 'auction', 'bids'], q.top.get(lastFullEnd)!.map((r, i) => [String(i + 1), String(r.auction), String(r.bids)])));
  say('');
  const ends = q.fullEnds.slice(-HOT_WINDOWS_SHOWN);
  say(`Query 5, the hot item per window (last ${ends.length} full windows of ${q.fullEnds.length}):`);
  say(table(['window (UTC)', 'auction', 'bids'], ends.map((e) => {
    const best = q.top.get(e)![0]!;
    return [`${clock(e - Q5_WINDOW_MS)}-${clock(e)}`, String(best.auction), String(best.bids)];
  })));
  say('');
  say(`Next: cairn checkpoints list ${checkpoints}   (node bin/cairn.js from a checkout)`);
  return 0;
}

/** HH:MM:SS of a time in ms (UTC). */
function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [header, ...rows].map((r) => '  ' + r.map((x, c) => x.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

/**
 * Reads the windows file and keeps, per window end, the top auctions by bids (ties: smaller auction id
 * first), so memory is a few rows per window however many auctions there are.
 */
async function hotItems(path: string): Promise<{ top: Map<number, Ranked[]>; fullEnds: number[] }> {
  const top = new Map<number, Ranked[]>();
  let maxEnd = -Infinity;
  let minEnd = Infinity;
  const reader = await openReader({
    path,
    format: 'csv',
    fields: [{ name: 'auction', kind: 'int64' }, { name: 'window_end', kind: 'int64' }, { name: 'bids', kind: 'int64' }],
    batchRows: 65_536,
  });
  for await (const b of reader) {
    const auction = b.columns['auction'] as BigInt64Array;
    const end = b.columns['window_end'] as BigInt64Array;
    const bids = b.columns['bids'] as BigInt64Array;
    for (let i = 0; i < b.rows; i++) {
      const e = Number(end[i]!);
      if (e > maxEnd) maxEnd = e;
      if (e < minEnd) minEnd = e;
      let list = top.get(e);
      if (!list) top.set(e, (list = []));
      const r = { auction: auction[i]!, bids: bids[i]! };
      const better = (x: Ranked) => r.bids > x.bids || (r.bids === x.bids && r.auction < x.auction);
      const at = list.findIndex(better);
      if (at >= 0) list.splice(at, 0, r);
      else list.push(r);
      if (list.length > TOP_AUCTIONS_SHOWN) list.pop();
    }
  }
  // Windows at either end of the stream hold only part of their 10 s. The first window ends a slide
  // after the slide of the earliest bid, so the first full one starts at that slide; the windows
  // still open when the input ended fire at its end (run.ts), so the last full one ends a window
  // size before the last window end.
  const firstFullEnd = minEnd - Q5_SLIDE_MS + Q5_WINDOW_MS;
  const lastFullEnd = maxEnd - Q5_WINDOW_MS;
  const fullEnds = [...top.keys()].filter((e) => e >= firstFullEnd && e <= lastFullEnd).sort((a, b) => a - b);
  return { top, fullEnds };
}
