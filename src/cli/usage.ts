/**
 * The option specs and help texts of every `cairn` command, in one place so the help a user reads and
 * the parser that checks their flags cannot drift apart. Each spec is passed to `parseArgs` (parse.ts);
 * `formatHelp(spec)` renders its `--help`.
 */
import { type CommandSpec, formatHelp } from './parse.js';
import { NEXMARK_DEFAULTS } from './nexmark.js';

export const RUN_COMMAND = {
  name: 'cairn run',
  summary:
    'Reads events from a file, aggregates them per key and window with checkpoints, and writes one row per closed window.',
  options: {
    input: { type: 'string', valueName: 'FILE', required: true, description: 'Input events (.csv, .ndjson/.jsonl, or Arrow IPC: .arrow, .arrows, .ipc, .feather).' },
    format: { type: 'string', valueName: 'csv|ndjson|arrow', description: 'Input format (default: from the file extension).' },
    key: { type: 'string', valueName: 'FIELD[:utf8|int64]', required: true, description: 'Field to group by, and its type (default utf8).' },
    time: { type: 'string', valueName: 'FIELD', required: true, description: 'Event-time field: integer ms since the epoch or ISO 8601.' },
    window: {
      type: 'string',
      valueName: 'SPEC',
      required: true,
      description: 'tumbling:SIZE | hopping:SIZE,SLIDE | session:GAP | none (durations like 250ms, 5s, 1m, 2h).',
    },
    agg: {
      type: 'string',
      valueName: 'LIST',
      required: true,
      description: 'Aggregates, e.g. "n=count,spend=sum(amount),top=max(amount)"; count, sum, min, max, mean, first, last.',
    },
    'out-of-orderness': { type: 'string', valueName: 'DURATION', default: '0', description: 'How far event time may run backwards; the watermark trails the largest time by this.' },
    lateness: { type: 'string', valueName: 'DURATION', default: '0', description: 'How long a closed window still accepts late events.' },
    'checkpoint-dir': { type: 'string', valueName: 'DIR', required: true, description: 'Where checkpoints are written; a rerun resumes from the newest valid one.' },
    'checkpoint-every': { type: 'string', valueName: 'EVENTS', default: '100000', description: 'Events between checkpoints (taken at the end of the batch that crosses each multiple).' },
    'batch-rows': {
      type: 'string',
      valueName: 'ROWS',
      default: '16384',
      description: 'Input rows per batch; the watermark advances once per batch. Must stay the same when resuming.',
    },
    shards: { type: 'string', valueName: 'N', description: 'Number of shards (default: 1, or one per core with --workers).' },
    workers: { type: 'boolean', description: 'Run shards on worker threads.' },
    output: { type: 'string', valueName: 'FILE', required: true, description: 'Result rows (.csv, .ndjson or .jsonl).' },
    'skip-bad': { type: 'boolean', description: 'Skip and count malformed rows instead of stopping at the first one.' },
    quiet: { type: 'boolean', short: 'q', description: 'Print no progress (warnings and errors still print).' },
  },
  examples: [
    'cairn run --input bids.csv --key auction:int64 --time date_time --window tumbling:10s \\',
    '  --agg "n=count,top=max(price)" --out-of-orderness 2s --checkpoint-dir ckpt --output out.csv',
  ],
} as const satisfies CommandSpec;

export const CHECKPOINT_ACTIONS = ['list', 'verify', 'inspect', 'dump'] as const;

export const CHECKPOINTS_COMMAND = {
  name: 'cairn checkpoints',
  summary: 'Lists, verifies, inspects or dumps the checkpoints in a checkpoint directory.',
  positionals: [
    { name: 'ACTION', choices: CHECKPOINT_ACTIONS, description: 'list | verify | inspect | dump' },
    { name: 'DIR', description: 'A directory given to cairn run --checkpoint-dir.' },
  ],
  options: {
    id: { type: 'string', valueName: 'N', description: 'The checkpoint to verify, inspect or dump (default: all for verify, else the newest).' },
    operator: { type: 'string', valueName: 'NAME', description: 'dump: the operator to dump (default: the only one).' },
    output: { type: 'string', valueName: 'FILE', description: 'dump: where to write the state (.csv, .ndjson/.jsonl or .arrow; required for dump).' },
    json: { type: 'boolean', description: 'list, inspect: print JSON instead of text.' },
  },
  examples: [
    'cairn checkpoints list ckpt',
    'cairn checkpoints verify ckpt',
    'cairn checkpoints inspect ckpt --id 7',
    'cairn checkpoints dump ckpt --operator run --output state.csv',
  ],
} as const satisfies CommandSpec;

export const GENERATE_COMMAND = {
  name: 'cairn generate',
  summary: 'Writes a deterministic Nexmark bid stream (auction, bidder, price, date_time) to a file.',
  positionals: [{ name: 'GENERATOR', choices: ['nexmark'], description: 'nexmark (the only generator).' }],
  options: {
    events: { type: 'string', valueName: 'N', required: true, description: 'Number of bids to write.' },
    output: { type: 'string', valueName: 'FILE', required: true, description: 'Output file (.csv, .ndjson or .jsonl).' },
    seed: { type: 'string', valueName: 'S', default: String(NEXMARK_DEFAULTS.seed), description: 'Seed; the same seed writes the same bytes.' },
    'events-per-second': {
      type: 'string',
      valueName: 'R',
      default: String(NEXMARK_DEFAULTS.eventsPerSecond),
      description: 'Event-time rate of the Nexmark stream (persons, auctions and bids together).',
    },
    'out-of-orderness': {
      type: 'string',
      valueName: 'DURATION',
      default: `${NEXMARK_DEFAULTS.outOfOrdernessMs}ms`,
      description: 'Largest amount a bid time may lag the largest earlier one.',
    },
  },
  examples: ['cairn generate nexmark --events 1000000 --output bids.csv --seed 7'],
} as const satisfies CommandSpec;

export const DEMO_COMMAND = {
  name: 'cairn demo',
  summary:
    'Generates a Nexmark bid stream, runs Nexmark query 5 (hot items: bids per auction in 10 s windows sliding by 2 s) with checkpoints, and prints throughput, checkpoint statistics and the hottest auctions.',
  options: {
    events: { type: 'string', valueName: 'N', default: '1000000', description: 'Number of bids to generate.' },
    dir: { type: 'string', valueName: 'DIR', default: '.cairn-demo', description: 'Folder for the bids, the checkpoints and the results (recreated).' },
    seed: { type: 'string', valueName: 'S', default: String(NEXMARK_DEFAULTS.seed), description: 'Generator seed.' },
    quiet: { type: 'boolean', short: 'q', description: 'Print no progress.' },
  },
  examples: ['cairn demo', 'cairn demo --events 5000000'],
} as const satisfies CommandSpec;

/** Top-level help (`cairn --help`). */
export const MAIN_HELP = `Usage: cairn <command> [options]

Cairn: a WebAssembly-accelerated keyed state backend, driven from the command line.

Commands:
  run           Aggregate events from a file per key and window, with checkpoints.
  checkpoints   list | verify | inspect | dump a checkpoint directory.
  generate      Write a deterministic Nexmark bid stream.
  demo          Generate Nexmark bids and run query 5 (hot items) on them.

Run cairn <command> --help for the options of a command.
`;

export const RUN_HELP = formatHelp(RUN_COMMAND);
export const CHECKPOINTS_HELP = formatHelp(CHECKPOINTS_COMMAND);
export const GENERATE_HELP = formatHelp(GENERATE_COMMAND);
export const DEMO_HELP = formatHelp(DEMO_COMMAND);
