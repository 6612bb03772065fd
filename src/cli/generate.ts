/**
 * `cairn generate nexmark --events N --output FILE [--seed S]`: writes the deterministic Nexmark bid
 * stream of nexmark.ts to a CSV or NDJSON file, with progress on stderr.
 */
import { stat } from 'node:fs/promises';
import type { CliIo } from './main.js';
import { NEXMARK_BIDS_MAX, NEXMARK_EVENTS_PER_SECOND_MAX, NEXMARK_OUT_OF_ORDERNESS_MS_MAX, generateNexmark } from './nexmark.js';
import { UsageError } from './errors.js';
import { parseArgs, parseDuration, parseInteger } from './parse.js';
import { Progress, formatCount, formatSeconds } from './progress.js';
import { GENERATE_COMMAND, GENERATE_HELP } from './usage.js';
import { outputFormatOf } from './writers.js';
import { formatBytes } from './run.js';

export interface GenerateConfig {
  events: number;
  seed: number;
  output: string;
  eventsPerSecond: number;
  outOfOrdernessMs: number;
  quiet: boolean;
}

export async function generateCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(argv, GENERATE_COMMAND);
  if (parsed.help) {
    io.stdout.write(GENERATE_HELP);
    return 0;
  }
  const v = parsed.values;
  const outOfOrdernessMs = parseDuration(v['out-of-orderness']);
  if (outOfOrdernessMs > NEXMARK_OUT_OF_ORDERNESS_MS_MAX) {
    throw new UsageError(`expected --out-of-orderness of at most ${NEXMARK_OUT_OF_ORDERNESS_MS_MAX} ms, found ${outOfOrdernessMs} ms`);
  }
  const config: GenerateConfig = {
    events: parseInteger(v.events, '--events', { min: 0, max: NEXMARK_BIDS_MAX }),
    seed: parseInteger(v.seed, '--seed', { min: 0, max: Number.MAX_SAFE_INTEGER }),
    output: v.output,
    eventsPerSecond: parseInteger(v['events-per-second'], '--events-per-second', { min: 1, max: NEXMARK_EVENTS_PER_SECOND_MAX }),
    outOfOrdernessMs,
    quiet: false,
  };
  outputFormatOf(config.output);
  const t0 = performance.now();
  await generate(config, io);
  const seconds = (performance.now() - t0) / 1000;
  const bytes = (await stat(config.output)).size;
  io.stdout.write(`cairn generate: ${config.events} bids (seed ${config.seed}) in ${config.output} (${formatBytes(bytes)}), ${formatSeconds(seconds)}, ${formatCount(config.events / Math.max(seconds, 1e-3))} bids/s\n`);
  return 0;
}

/** Writes the bids of `config`, with progress on stderr unless quiet. */
export async function generate(config: GenerateConfig, io: CliIo): Promise<void> {
  // The total is in bids, not bytes; the bar shows bids written out of bids asked for.
  const progress = new Progress({ stream: io.stderr, mode: config.quiet ? 'quiet' : 'auto', total: config.events });
  await generateNexmark({
    events: config.events,
    seed: config.seed,
    output: config.output,
    eventsPerSecond: config.eventsPerSecond,
    outOfOrdernessMs: config.outOfOrdernessMs,
    onProgress: (done) => progress.update(done, done),
  });
  progress.finish();
}
