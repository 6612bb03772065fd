/**
 * `cairn run`: windowed aggregation of a file, exactly once across crashes.
 *
 * The pipeline is input reader -> `windowedAggregation` (cairn/streams) -> output writer, as web
 * streams, so memory stays bounded by a few batches plus the state.
 *
 * Exactly once. Every checkpoint's meta holds the input position after the last batch it contains
 * (byte offset and line, or row for Arrow), and the output length at that point: before the
 * checkpoint is cut, the writer has written every row fired so far and fsynced the file. A run on a
 * checkpoint directory that has checkpoints restores the newest one that verifies, truncates the
 * output to the recorded length, reopens the input at the recorded position and continues. Batch
 * boundaries, watermark advances and checkpoint points depend only on the input position (fixed
 * `--batch-rows`, checkpoints at the end of the batch crossing each multiple of `--checkpoint-every`
 * events), so the resumed run makes exactly the calls the uninterrupted run would have made after
 * that point, and the backend, being deterministic, writes the same bytes. At the end of the input the
 * remaining windows fire and a final checkpoint marks the run complete; running again is a no-op.
 * SIGINT, SIGTERM and SIGHUP stop a run as a crash would, but remove the directory's lock first
 * (stopOnSignals), so a run from another host sharing the directory is not locked out.
 *
 * The options that decide the output (input, format, key, time, window, aggregates, out-of-
 * orderness, lateness, batch rows, output) are stored in the meta, and a run with other values
 * against the same directory is refused. Shards, workers, checkpoint cadence and --skip-bad may change.
 *
 * Fields missing from NDJSON. A CSV header or Arrow schema without an aggregated field is refused before
 * any row is read. NDJSON has no header, and a missing key is a null value (right for sparse fields), so
 * a misspelt field name would only show as null aggregates. The reader counts, per aggregated field,
 * the events whose record has the key (null or not); the counts travel in each checkpoint's source
 * meta, so a resumed run judges every event of the run, not only the rest of the file it read itself.
 * When the input is done and some events were read, each aggregated field that none of them had gets
 * one warning line on stderr (also with --quiet, which silences progress only); the exit code stays 0
 * and the output is unchanged. A run resumed from a checkpoint without the counts cannot tell, and
 * stays silent.
 *
 * Test hook: CAIRN_TEST_CRASH=<point>:<n>[:<signal>] makes the process send itself SIGKILL (or the
 * signal named: SIGTERM, SIGINT, SIGHUP, which arrive a moment later) at the n-th occurrence of
 * <point> (write: after an output batch is handed to the writer; meta: after the output is synced for
 * a checkpoint, before it is cut; put / after-put: before / after a checkpoint file is stored;
 * delete: before retention deletes a file; checkpoint: after a checkpoint is complete). The
 * end-to-end tests use it to crash at exact points.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { resolve } from 'node:path';
import process from 'node:process';
import { RecordBatch, Type } from 'apache-arrow';
import { StateBackend } from '../backend.js';
import { listCheckpointIds } from '../checkpoint/restore.js';
import { CairnError, invariant } from '../errors.js';
import { FsCheckpointStorage } from '../storage/fs.js';
import type { CheckpointStorage } from '../storage/storage.js';
import { type DirLock, acquireDirLock } from '../storage/dir-lock.js';
import { SHARDS_MAX } from '../shard/router.js';
import type { AggregateSpec as BackendAggregateSpec, WindowSpec as BackendWindowSpec } from '../store/spec.js';
import { windowedAggregation, type StreamCheckpointMeta } from '../streams/index.js';
import { UsageError, quote } from './errors.js';
import type { CliIo } from './main.js';
import {
  type AggregateSpec, type InputFormat, type KeySpec, type WindowSpec,
  formatOf, parseAggs, parseArgs, parseDuration, parseInteger, parseKey, parseWindow,
} from './parse.js';
import { Progress, formatCount, formatSeconds } from './progress.js';
import { BATCH_ROWS_MAX, openReader, type Column, type FieldSpec } from './readers.js';
import { RUN_COMMAND, RUN_HELP } from './usage.js';
import { OutputWriter, outputFormatOf, type OutputColumn } from './writers.js';

/** The operator name `cairn run` uses in its checkpoints. */
export const RUN_OPERATOR = 'run';
/** Largest --checkpoint-every. */
export const CHECKPOINT_EVERY_MAX = 1e12;
/** Most shards accepted from --shards (the shard manager has its own, lower limit per key groups). */
export const SHARDS_ARG_MAX = SHARDS_MAX;
/** Batches read ahead of the aggregation: bounds memory, lets file reads overlap with the work. */
const READ_AHEAD_BATCHES = 1;

export interface RunConfig {
  input: string;
  format: InputFormat;
  key: KeySpec;
  time: string;
  window: WindowSpec;
  aggs: Record<string, AggregateSpec>;
  outOfOrdernessMs: number;
  latenessMs: number;
  checkpointDir: string;
  checkpointEvery: number;
  batchRows: number;
  /** Undefined: 1, or one per core with workers (or, on resume, as checkpointed). */
  shards: number | undefined;
  workers: boolean;
  output: string;
  skipBad: boolean;
  quiet: boolean;
  /** The options as typed, for messages about a mismatch on resume. */
  text: Record<IdentityFlag, string>;
}

/** The options that decide the output bytes; a resume must use the same. */
const IDENTITY_FLAGS = ['input', 'format', 'key', 'time', 'window', 'agg', 'out-of-orderness', 'lateness', 'batch-rows', 'output'] as const;
type IdentityFlag = (typeof IDENTITY_FLAGS)[number];

/** What `cairn run` stores in the `app` part of each checkpoint's meta. */
export interface RunMeta {
  tool: 'cairn run';
  /** Per identity flag: the normalized value (compared) and the text typed (shown). */
  options: Record<IdentityFlag, { value: unknown; text: string }>;
  output: { bytes: number; rows: number };
  done: boolean;
}

/** Where the input resumes: the `source` part of each checkpoint's meta. */
export interface RunSource {
  offset: number;
  line: number;
  /** Rows read so far, kept and skipped. */
  rows: number;
  /** Malformed rows skipped so far. */
  skipped: number;
  /**
   * NDJSON input: per aggregated float64 field, the events so far whose record has the field's key
   * (see the file comment). Absent for CSV and Arrow input.
   */
  present?: Record<string, number>;
}

export interface RunSummary {
  /** True when the checkpoint directory already held a completed run (nothing was done). */
  alreadyComplete: boolean;
  resumedFrom: { checkpointId: number; source: RunSource } | null;
  /** Events (kept rows) over every run, and in this process. */
  events: number;
  eventsThisRun: number;
  skipped: number;
  lateEvents: number;
  /** Output rows over every run, and the output length. */
  rows: number;
  /** Aggregated NDJSON fields that no event had, over every run (see the file comment). */
  absentFields: string[];
  outputBytes: number;
  seconds: number;
  checkpoints: { count: number; incremental: number; bytes: number; durationMs: number; stallMsMax: number; lastId: number | null };
}

/** `cairn run ARGS`: returns the exit code. */
export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(argv, RUN_COMMAND);
  if (parsed.help) {
    io.stdout.write(RUN_HELP);
    return 0;
  }
  const config = runConfigOf(parsed.values);
  const summary = await runPipeline(config, io);
  // Warnings are not progress: --quiet leaves them on, as it does errors.
  io.stderr.write(formatWarnings(config, summary));
  io.stdout.write(formatSummary(config, summary));
  return 0;
}

type RunValues = Extract<ReturnType<typeof parseArgs<typeof RUN_COMMAND>>, { help: false }>['values'];

/** Checks and converts the parsed flags. Every problem is a UsageError naming the flag. */
export function runConfigOf(v: RunValues): RunConfig {
  const flag = <T>(name: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`--${name}: ${e.message}`, { cause: e });
      throw e;
    }
  };
  const key = flag('key', () => parseKey(v.key));
  const window = flag('window', () => parseWindow(v.window));
  const aggs = flag('agg', () => parseAggs(v.agg));
  const outOfOrdernessMs = flag('out-of-orderness', () => parseDuration(v['out-of-orderness']));
  const latenessMs = flag('lateness', () => parseDuration(v.lateness));
  const checkpointEvery = parseInteger(v['checkpoint-every'], '--checkpoint-every', { min: 1, max: CHECKPOINT_EVERY_MAX });
  const batchRows = parseInteger(v['batch-rows'], '--batch-rows', { min: 1, max: BATCH_ROWS_MAX });
  const shards = v.shards === undefined ? undefined : parseInteger(v.shards, '--shards', { min: 1, max: SHARDS_ARG_MAX });
  const format = formatOf(v.input, v.format);
  outputFormatOf(v.output);
  if (resolve(v.input) === resolve(v.output)) {
    throw new UsageError(`expected --output to differ from --input, found both ${quote(v.input)}`);
  }
  if (v.time === '' || /[\s,()=:]/.test(v.time)) throw new UsageError(`--time: expected a field name, found ${quote(v.time)}`);
  for (const [name, a] of Object.entries(aggs)) {
    if (a.field === key.field && key.type === 'utf8') {
      throw new UsageError(`--agg: expected a numeric field in ${name}=${a.fn}(${a.field}), found the utf8 key field ${quote(key.field)}`);
    }
    if (name === key.field || name === 'window_start' || name === 'window_end') {
      throw new UsageError(`--agg: expected output names other than the key and window columns, found ${quote(name)}`);
    }
  }
  return {
    input: v.input,
    format,
    key,
    time: v.time,
    window,
    aggs,
    outOfOrdernessMs,
    latenessMs,
    checkpointDir: v['checkpoint-dir'],
    checkpointEvery,
    batchRows,
    shards,
    workers: v.workers,
    output: v.output,
    skipBad: v['skip-bad'],
    quiet: v.quiet,
    text: {
      input: v.input,
      format: v.format ?? format,
      key: v.key,
      time: v.time,
      window: v.window,
      agg: v.agg,
      'out-of-orderness': v['out-of-orderness'],
      lateness: v.lateness,
      'batch-rows': v['batch-rows'],
      output: v.output,
    },
  };
}

/** The normalized identity options of a config. */
function identityOf(c: RunConfig): RunMeta['options'] {
  const values: Record<IdentityFlag, unknown> = {
    input: resolve(c.input),
    format: c.format,
    key: c.key,
    time: c.time,
    window: c.window,
    agg: c.aggs,
    'out-of-orderness': c.outOfOrdernessMs,
    lateness: c.latenessMs,
    'batch-rows': c.batchRows,
    output: resolve(c.output),
  };
  const out = {} as RunMeta['options'];
  for (const f of IDENTITY_FLAGS) out[f] = { value: values[f], text: c.text[f] };
  return out;
}

/** The backend spec of a run. */
export function backendSpecOf(c: RunConfig): BackendAggregateSpec {
  const window: BackendWindowSpec = c.window;
  return {
    key: { field: c.key.field, type: c.key.type },
    time: c.time,
    window,
    aggregates: Object.fromEntries(Object.entries(c.aggs).map(([n, a]) => [n, a.field === undefined ? { fn: a.fn } : { fn: a.fn, field: a.field }])),
    allowedLateness: c.latenessMs,
  };
}

/** The input fields a run reads: key, time, then every aggregated field not read already. */
function fieldsOf(c: RunConfig): FieldSpec[] {
  const fields: FieldSpec[] = [{ name: c.key.field, kind: c.key.type }];
  if (c.time === c.key.field) throw new UsageError(`--time: expected a field other than the key, found ${quote(c.time)} for both`);
  fields.push({ name: c.time, kind: 'time' });
  for (const a of Object.values(c.aggs)) {
    if (a.field !== undefined && !fields.some((f) => f.name === a.field)) fields.push({ name: a.field, kind: 'float64' });
  }
  return fields;
}

/** Output columns, in the order the operator emits them. */
function outputNamesOf(c: RunConfig): string[] {
  return [c.key.field, ...(c.window.kind === 'none' ? [] : ['window_start', 'window_end']), ...Object.keys(c.aggs)];
}

/** Checks a restored checkpoint's meta and returns it, or explains why this run cannot resume from it. */
function resumeMetaOf(meta: unknown, c: RunConfig): { stream: StreamCheckpointMeta; run: RunMeta; source: RunSource | null } {
  const dir = quote(c.checkpointDir);
  const m = meta as Partial<StreamCheckpointMeta> | undefined;
  const run = m?.app as Partial<RunMeta> | undefined;
  if (!m || typeof m !== 'object' || m.stream?.name !== RUN_OPERATOR || !run || run.tool !== 'cairn run' || !run.options || !run.output) {
    throw new UsageError(`expected ${dir} to hold checkpoints of cairn run, found checkpoints written by something else (use another --checkpoint-dir)`);
  }
  const now = identityOf(c);
  for (const f of IDENTITY_FLAGS) {
    const was = run.options[f];
    if (!was || JSON.stringify(was.value) !== JSON.stringify(now[f].value)) {
      // Paths compare resolved: the same text from another directory names another file, so say which.
      const shown = (o: { value: unknown; text: string }): string =>
        was && was.text === now[f].text && typeof o.value === 'string' ? `${o.text} (${quote(o.value, 4096)})` : o.text;
      throw new UsageError(
        `checkpoint directory ${dir} belongs to a run with --${f} ${was ? shown(was) : '(unset)'}; expected the same to resume, found --${f} ${shown(now[f])} (use another --checkpoint-dir to start over)`,
      );
    }
  }
  const source = m.source as RunSource | null;
  invariant(source === null || (Number.isSafeInteger(source.offset) && Number.isSafeInteger(source.line)), 'run checkpoint meta has a malformed source');
  const present = source?.present;
  invariant(present === undefined || (typeof present === 'object' && present !== null), 'run checkpoint meta has malformed presence counts');
  for (const n of Object.values(present ?? {})) {
    invariant(Number.isSafeInteger(n) && n >= 0 && n <= source!.rows, 'run checkpoint meta has a presence count out of range');
  }
  invariant(Number.isSafeInteger(run.output.bytes) && run.output.bytes >= 0, 'run checkpoint meta has a malformed output length');
  return { stream: m as StreamCheckpointMeta, run: run as RunMeta, source };
}

/** Crash points for the end-to-end tests (see the file comment). */
class CrashHook {
  private readonly point: string | undefined;
  private readonly at: number;
  private readonly signal: NodeJS.Signals;
  private readonly counts = new Map<string, number>();

  constructor(spec: string | undefined) {
    const m = spec === undefined ? null : /^([a-z-]+):(\d+)(?::(SIGKILL|SIGTERM|SIGINT|SIGHUP))?$/.exec(spec);
    this.point = m?.[1];
    this.at = m ? Number(m[2]) : 0;
    this.signal = (m?.[3] as NodeJS.Signals | undefined) ?? 'SIGKILL';
  }

  hit(point: string): void {
    if (point !== this.point) return;
    const n = (this.counts.get(point) ?? 0) + 1;
    this.counts.set(point, n);
    if (n === this.at) process.kill(process.pid, this.signal);
  }

  get armed(): boolean {
    return this.point !== undefined;
  }
}

function crashingStorage(inner: CheckpointStorage, crash: CrashHook): CheckpointStorage {
  return {
    async put(name, bytes) {
      crash.hit('put');
      await inner.put(name, bytes);
      crash.hit('after-put');
    },
    get: (name) => inner.get(name),
    list: (prefix) => inner.list(prefix),
    async delete(name) {
      crash.hit('delete');
      await inner.delete(name);
    },
  };
}

/** Arrow columns as writer columns: Int64 as BigInt64Array, Float64 with NaN for null, Utf8 as strings. */
export function outputColumnsOf(batch: RecordBatch): Record<string, OutputColumn> {
  const out: Record<string, OutputColumn> = {};
  for (const field of batch.schema.fields) {
    const v = batch.getChild(field.name)!;
    let col = v.toArray() as OutputColumn;
    if (v.nullCount > 0) {
      if (v.type.typeId === Type.Float) {
        const copy = Float64Array.from(col as Float64Array);
        for (let i = 0; i < v.length; i++) if (!v.isValid(i)) copy[i] = NaN;
        col = copy;
      } else {
        col = Array.from({ length: v.length }, (_, i) => v.get(i) as string | number | bigint | null);
      }
    }
    out[field.name] = col;
  }
  return out;
}

interface Chunk {
  columns: Record<string, Column>;
  endOffset: number;
  nextLine: number;
  /** Rows read, kept and skipped, including this chunk (over every run). */
  rowsTotal: number;
  skippedTotal: number;
  /** `RunSource.present` including this chunk; undefined when not known (CSV, Arrow, older checkpoints). */
  presentTotal: Record<string, number> | undefined;
}

/**
 * Runs (or resumes) the aggregation described by `c`. Progress goes to `io.stderr` unless quiet; the
 * summary is returned, not printed.
 */
export async function runPipeline(c: RunConfig, io: CliIo): Promise<RunSummary> {
  const started = performance.now();
  const crash = new CrashHook(io.env['CAIRN_TEST_CRASH']);
  const fields = fieldsOf(c);
  const signals = stopOnSignals(io);
  try {
    let inputSize: number;
    try {
      inputSize = (await stat(c.input)).size;
    } catch (e) {
      throw new UsageError(`cannot open input ${quote(c.input)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
    // Check the header (or schema) against the fields before touching the checkpoint directory.
    await (await openReader({ path: c.input, format: c.format, fields, batchRows: c.batchRows })).close();

    // One process per checkpoint directory: taken before anything reads or writes it, held to the end.
    const lock = await acquireDirLock(c.checkpointDir);
    signals.hold(lock);
    try {
      return await runLocked(c, io, crash, fields, inputSize, started);
    } finally {
      signals.hold(null);
      await lock.release();
    }
  } finally {
    signals.unhook();
  }
}

/** Signals that stop a run, and what shells report for a process they end (128 + the signal's number). */
export const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

/**
 * Until unhook is called, SIGINT, SIGTERM and SIGHUP stop the process: the lock given to hold (if
 * any) is removed first, so that the next run on any host can take the directory, one line is
 * printed, and the signal is raised again with the default action, so the process ends by it (as
 * a shell or a supervisor expects; `process.exit` from a SIGHUP handler aborts Node 20 when the
 * terminal is gone). Nothing else needs to happen: as after a crash, the next run resumes from the
 * last completed checkpoint (a checkpoint being written is left as temp files, which that run
 * removes, and output past the checkpoint is cut off).
 */
function stopOnSignals(io: CliIo): { hold(lock: DirLock | null): void; unhook(): void } {
  let held: DirLock | null = null;
  const names = Object.keys(STOP_SIGNALS) as (keyof typeof STOP_SIGNALS)[];
  const unhook = () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
  const handlers = names.map((signal) => {
    const handler = () => {
      held?.releaseSync();
      try {
        const lead = io.stderr.isTTY === true ? '\n' : '';
        io.stderr.write(`${lead}cairn: stopped by ${signal}; run the same command again to resume from the last checkpoint\n`);
      } catch {
        // The terminal is gone (SIGHUP): nothing to tell.
      }
      unhook();
      process.kill(process.pid, signal);
      // Should another listener keep the signal from ending the process, end it here.
      setTimeout(() => process.exit(STOP_SIGNALS[signal]), 1000);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return { hold: (lock) => (held = lock), unhook };
}

/** runPipeline once the checkpoint directory is locked. */
async function runLocked(c: RunConfig, io: CliIo, crash: CrashHook, fields: ReturnType<typeof fieldsOf>, inputSize: number, started: number): Promise<RunSummary> {
  const fsStorage = new FsCheckpointStorage(c.checkpointDir);
  const storage = crash.armed ? crashingStorage(fsStorage, crash) : fsStorage;
  const ids = await listCheckpointIds(storage);
  const workersShards = c.workers ? Math.max(1, typeof availableParallelism === 'function' ? availableParallelism() : cpus().length) : 1;
  const shardOption = c.shards ?? (ids.length === 0 ? workersShards : undefined);
  const progress = new Progress({ stream: io.stderr, mode: c.quiet ? 'quiet' : 'auto', ...(c.format === 'arrow' ? {} : { total: inputSize }) });

  let backend: StateBackend;
  let resume: ReturnType<typeof resumeMetaOf> | null = null;
  let restoredId: number | null = null;
  if (ids.length > 0) {
    try {
      backend = await StateBackend.restore({ storage, workers: c.workers, ...(shardOption === undefined ? {} : { shards: shardOption }) });
    } catch (e) {
      if (!(e instanceof CairnError) || e.kind !== 'corruption') throw e;
      throw new CairnError(
        'corruption',
        `${e.message}; see cairn checkpoints verify ${c.checkpointDir}, or start over with another --checkpoint-dir`,
        { cause: e },
      );
    }
    try {
      resume = resumeMetaOf(backend.restoredMeta, c);
    } catch (e) {
      await backend.close();
      throw e;
    }
    const report = backend.restoreReport!;
    restoredId = report.checkpointId;
    for (const s of report.skipped) progress.note(`checkpoint ${s.id} skipped: ${s.reason}`);
    if (resume.run.done) {
      await backend.close();
      // "Nothing to do" holds only while the output the run wrote is still there as it left it.
      const want = resume.run.output.bytes;
      const size = await stat(c.output).then((st) => st.size, (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw new UsageError(`cannot read output ${quote(c.output)}: ${e.message}`, { cause: e });
      });
      if (size !== want) {
        throw new UsageError(
          `this run is already complete (checkpoint ${restoredId}), but its output ${quote(c.output)} ${size === null ? 'is missing' : `has ${size} bytes`} where the run wrote ${want}; ` +
            `to write it again, start over with another --checkpoint-dir (or remove ${quote(c.checkpointDir)})`,
        );
      }
      return {
        alreadyComplete: true,
        resumedFrom: resume.source ? { checkpointId: restoredId, source: resume.source } : null,
        events: resume.stream.stream.events,
        eventsThisRun: 0,
        skipped: resume.source?.skipped ?? 0,
        lateEvents: 0,
        rows: resume.run.output.rows,
        absentFields: [],
        outputBytes: resume.run.output.bytes,
        seconds: (performance.now() - started) / 1000,
        checkpoints: { count: 0, incremental: 0, bytes: 0, durationMs: 0, stallMsMax: 0, lastId: restoredId },
      };
    }
  } else {
    backend = await StateBackend.open({ workers: c.workers, shards: shardOption ?? 1, checkpoints: { storage } });
  }

  const source = resume?.source ?? null;
  let writer: OutputWriter | undefined;
  let reader: Awaited<ReturnType<typeof openReader>> | undefined;
  try {
    writer = await OutputWriter.open(c.output, resume ? { truncateTo: resume.run.output.bytes } : {});
    // The header is written (or, on resume, checked) even if no window ever fires.
    await writer.writeRows(Object.fromEntries(outputNamesOf(c).map((n) => [n, []])), 0);
    reader = await openReader({
      path: c.input,
      format: c.format,
      fields,
      batchRows: c.batchRows,
      skipBad: c.skipBad,
      ...(source ? { startOffset: source.offset, startLine: source.line } : {}),
    });
    if (resume && restoredId !== null) {
      const where = c.format === 'arrow' ? `row ${source?.offset ?? 0}` : `byte ${source?.offset ?? 0} (line ${source?.line ?? 1})`;
      progress.note(`resuming from checkpoint ${restoredId}: input at ${where}, output at ${resume.run.output.bytes} bytes`);
    }

    const w = writer;
    const r = reader;
    let rowsTotal = source?.rows ?? 0;
    let skippedTotal = source?.skipped ?? 0;
    // Presence counts start at zero with the file, or continue those of the checkpoint; a checkpoint
    // without them (CSV, Arrow, or written before they were kept) leaves them unknown for good.
    let presentTotal: Record<string, number> | undefined = source === null ? {} : source.present && { ...source.present };
    // The reader runs ahead of the aggregation; the last chunk the aggregation took is what counts.
    let skippedTaken = skippedTotal;
    const eventsBefore = resume?.stream.stream.events ?? 0;
    let eventsRead = eventsBefore;
    const rowsBefore = resume?.run.output.rows ?? 0;
    let rowsOut = 0;
    let batchesOut = 0;
    let sinkError: unknown = null;
    let waiter: { batches: number; resolve: () => void; reject: (e: unknown) => void } | null = null;
    const drained = (batches: number): Promise<void> => {
      if (sinkError !== null) return Promise.reject(sinkError);
      if (batchesOut >= batches) return Promise.resolve();
      invariant(waiter === null, 'two checkpoints waited for the output at once');
      return new Promise((resolve, reject) => (waiter = { batches, resolve, reject }));
    };
    const identity = identityOf(c);

    const input = new ReadableStream<Chunk>(
      {
        async pull(controller) {
          const next = await r.next();
          if (next.done === true) {
            controller.close();
            return;
          }
          const b = next.value;
          rowsTotal += b.rows + b.skipped;
          skippedTotal += b.skipped;
          eventsRead += b.rows;
          if (b.present === undefined) {
            presentTotal = undefined;
          } else if (presentTotal !== undefined) {
            for (const [name, n] of Object.entries(b.present)) presentTotal[name] = (presentTotal[name] ?? 0) + n;
          }
          // A copy per chunk: the reader runs ahead, and each checkpoint must hold the counts of its own position.
          const present = presentTotal === undefined ? undefined : { ...presentTotal };
          controller.enqueue({ columns: b.columns, endOffset: b.endOffset, nextLine: b.nextLine, rowsTotal, skippedTotal, presentTotal: present });
          progress.update(b.endOffset, eventsRead);
        },
        async cancel() {
          await r.close();
        },
      },
      { highWaterMark: READ_AHEAD_BATCHES },
    );
    const aggregation = windowedAggregation<Chunk>({
      backend,
      name: RUN_OPERATOR,
      spec: backendSpecOf(c),
      outOfOrdernessMs: c.outOfOrdernessMs,
      checkpointEvery: c.checkpointEvery,
      checkpointOnClose: true,
      columns: (chunk) => chunk.columns,
      sourceOffset: (chunk): RunSource => {
        skippedTaken = chunk.skippedTotal;
        const at: RunSource = { offset: chunk.endOffset, line: chunk.nextLine, rows: chunk.rowsTotal, skipped: chunk.skippedTotal };
        if (chunk.presentTotal !== undefined) at.present = chunk.presentTotal;
        return at;
      },
      meta: async (info): Promise<RunMeta> => {
        await drained(info.emittedBatches);
        await w.sync();
        crash.hit('meta');
        return {
          tool: 'cairn run',
          options: identity,
          output: { bytes: w.bytesWritten, rows: rowsBefore + rowsOut },
          done: info.final,
        };
      },
      onCheckpoint: () => crash.hit('checkpoint'),
    });
    const output = new WritableStream<RecordBatch>({
      async write(batch) {
        try {
          await w.writeRows(outputColumnsOf(batch), batch.numRows);
        } catch (e) {
          sinkError = e;
          waiter?.reject(e);
          waiter = null;
          throw e;
        }
        rowsOut += batch.numRows;
        batchesOut++;
        crash.hit('write');
        if (waiter !== null && batchesOut >= waiter.batches) {
          waiter.resolve();
          waiter = null;
        }
      },
    });
    await input.pipeThrough(aggregation).pipeTo(output);
    await w.close();
    progress.finish();
    const lateEvents = await aggregation.operator.lateEvents();
    return {
      alreadyComplete: false,
      resumedFrom: resume && restoredId !== null ? { checkpointId: restoredId, source: source ?? { offset: 0, line: 1, rows: 0, skipped: 0 } } : null,
      events: aggregation.events,
      eventsThisRun: aggregation.events - eventsBefore,
      skipped: skippedTaken,
      lateEvents,
      rows: rowsBefore + rowsOut,
      // Every chunk read was taken by now (the pipe finished), so presentTotal covers the whole input.
      absentFields: absentFieldsOf(fields, presentTotal, aggregation.events),
      outputBytes: w.bytesWritten,
      seconds: (performance.now() - started) / 1000,
      checkpoints: { ...aggregation.checkpoints },
    };
  } finally {
    await reader?.close().catch(() => undefined);
    await writer?.close().catch(() => undefined);
    await backend.close().catch(() => undefined);
  }
}

/**
 * The aggregated (float64) fields that none of `events` events had, in field order; none when the counts
 * are unknown or no event was read. A key present with null values counts as present: the name is right.
 */
function absentFieldsOf(fields: readonly FieldSpec[], present: Record<string, number> | undefined, events: number): string[] {
  if (present === undefined || events === 0) return [];
  return fields.filter((f) => f.kind === 'float64' && present[f.name] === 0).map((f) => f.name);
}

/**
 * The warnings `cairn run` prints on stderr after the run, one line per aggregated field that no event
 * had (see the file comment), e.g. `cairn: warning: --agg field "prcie" is missing from all 3 events
 * read from x.ndjson, so "s" is null in every output row (a misspelt name?)`.
 */
export function formatWarnings(c: RunConfig, s: RunSummary): string {
  return s.absentFields
    .map((field) => {
      const uses = Object.entries(c.aggs).filter(([, a]) => a.field === field);
      invariant(uses.length > 0, `absent field ${field} is not aggregated`);
      // count(field) counts non-null values, so it is 0, not null.
      const effects: string[] = [];
      for (const [value, counting] of [['null', false], ['0', true]] as const) {
        const names = uses.filter(([, a]) => (a.fn === 'count') === counting).map(([name]) => quote(name));
        if (names.length > 0) effects.push(`${joinAnd(names)} ${names.length === 1 ? 'is' : 'are'} ${value}`);
      }
      const events = s.events === 1 ? 'the only event' : `all ${s.events} events`;
      return `cairn: warning: --agg field ${quote(field)} is missing from ${events} read from ${c.input}, so ${effects.join(' and ')} in every output row (a misspelt name?)\n`;
    })
    .join('');
}

/** "a", "a and b", "a, b and c". */
function joinAnd(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)!}`;
}

/** Bytes with a binary unit: 999 B, 1.5 KiB, 23.4 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

/** The summary `cairn run` prints on stdout. */
export function formatSummary(c: RunConfig, s: RunSummary): string {
  if (s.alreadyComplete) {
    return `cairn run: already complete (checkpoint ${s.checkpoints.lastId}): ${s.events} events, ${s.rows} rows in ${c.output} (${s.outputBytes} bytes); nothing to do\n`;
  }
  const ck = s.checkpoints;
  const rate = s.seconds > 0 ? s.eventsThisRun / s.seconds : 0;
  const lines = [
    `cairn run: done`,
    `  events       ${s.events}${s.resumedFrom ? ` (${s.eventsThisRun} in this run, resumed from checkpoint ${s.resumedFrom.checkpointId})` : ''}`,
    `  skipped      ${s.skipped} malformed rows`,
    `  late events  ${s.lateEvents}`,
    `  windows      ${s.rows} rows in ${c.output} (${formatBytes(s.outputBytes)})`,
    `  throughput   ${formatCount(rate)} events/s (${formatSeconds(s.seconds)})`,
    `  checkpoints  ${ck.count} (${ck.incremental} incremental), ${formatBytes(ck.bytes)} written, ` +
      `mean ${ck.count ? (ck.durationMs / ck.count).toFixed(0) : 0} ms, max stall ${ck.stallMsMax.toFixed(1)} ms, last id ${ck.lastId ?? '-'}`,
  ];
  return lines.join('\n') + '\n';
}
