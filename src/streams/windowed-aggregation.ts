/**
 * A WHATWG TransformStream around one aggregate operator: batches of events go in, the windows they
 * close come out as Arrow record batches. It is how an engine (or the `cairn run` CLI) plugs Cairn in.
 *
 * Per input chunk, in this order: the chunk is ingested; the watermark is advanced to (largest event
 * time seen so far) - outOfOrdernessMs (a bounded-out-of-orderness watermark, as Flink's
 * BoundedOutOfOrdernessWatermarks); the windows that fire are enqueued; and, when the event count has
 * crossed a multiple of `checkpointEvery`, a checkpoint is taken. Everything depends only on the
 * chunks and their order, never on timing, so the same input split into the same chunks gives the
 * same output, also across a crash and a restore from a checkpoint taken by this stream.
 *
 * Checkpoints. Each checkpoint's `meta` is a `StreamCheckpointMeta`: the stream's own counters, the
 * `sourceOffset` of the last chunk it holds, and whatever the `meta` hook returns. The hook runs after
 * every window fired so far has been enqueued and before the checkpoint is cut, so an exactly-once
 * sink can wait there until it has written (and made durable) everything enqueued, and record its
 * own position. At most one checkpoint is being written at a time; a failed checkpoint errors the
 * stream as soon as it fails.
 *
 * Close. Closing the writable side fires every remaining window (the watermark jumps to the end of
 * time), or, for an operator without windows, emits the final aggregate of every key; then, unless
 * `checkpointOnClose` is false, a final checkpoint with `stream.final = true` is taken and awaited.
 *
 * Restore. Created on a backend restored from a checkpoint this stream wrote (same `name`), it picks
 * up its counters from `backend.restoredMeta`; the caller resumes its source from `meta.source`.
 * A backend's checkpoints belong to one stream: a second stream that would take checkpoints of the
 * same backend is refused (`invalid`); streams that take none may share it.
 */
import { RecordBatch, Table } from 'apache-arrow';
import type { StateBackend } from '../backend.js';
import type { CheckpointResult } from '../checkpoint/coordinator.js';
import { CairnError } from '../errors.js';
import { AggregateOperator } from '../store/aggregate-operator.js';
import { maxEventTime, type BatchInput } from '../store/batch.js';
import type { AggregateSpec } from '../store/spec.js';

/**
 * The watermark of a close: later than every window end. Event times are within ±2^53 ms and window
 * sizes and lateness within a century, so 2^62 is past every window end plus lateness, and still far
 * from overflowing the int64 arithmetic of the store.
 */
export const END_OF_TIME_MS = 2n ** 62n;
/** Event times are within ±2^53 ms (semantics.md); a watermark below that is clamped to it. */
const TIME_ABS_MAX = 2 ** 53;
/** Largest accepted out-of-orderness: a century, like every other duration in a spec. */
export const OUT_OF_ORDERNESS_MS_MAX = 100 * 365 * 24 * 3600 * 1000;
/** Largest checkpoint interval in events. */
export const CHECKPOINT_EVERY_MAX = Number.MAX_SAFE_INTEGER;

/** What the `meta` hook is told about the checkpoint about to be taken. */
export interface CheckpointInfo {
  /** Events ingested by this stream so far (over every run, when restored). */
  events: number;
  /** Record batches this stream instance has enqueued so far (not counting earlier runs). */
  emittedBatches: number;
  /** Rows this stream instance has enqueued so far. */
  emittedRows: number;
  /** True for the checkpoint taken at close, after the last windows were enqueued. */
  final: boolean;
}

/**
 * The `meta` of every checkpoint this stream takes. `Source` is the type of what `sourceOffset`
 * returns (JSON, read back as stored; Cairn does not check it).
 */
export interface StreamCheckpointMeta<Source = unknown> {
  stream: {
    /** The operator name. */
    name: string;
    events: number;
    /** Largest event time seen (ms), or null before the first event. */
    maxEventTime: number | null;
    /** True when the stream was closed: every window has fired. */
    final: boolean;
  };
  /** `sourceOffset` of the last chunk before the checkpoint (null before the first chunk). */
  source: Source | null;
  /** What the `meta` hook returned (null without a hook). */
  app: unknown;
}

export interface WindowedAggregationOptions<In = BatchInput> {
  backend: StateBackend;
  /** Operator name; also the key under which a restore finds this stream's counters. */
  name: string;
  spec: AggregateSpec;
  /** How far behind the largest event time the watermark trails (ms, default 0). */
  outOfOrdernessMs?: number;
  /** Take a checkpoint after the chunk that crosses each multiple of this many events. */
  checkpointEvery?: number;
  /** Take a final checkpoint at close (default: true when checkpointEvery is set). */
  checkpointOnClose?: boolean;
  /** The events of a chunk (default: the chunk itself, an Arrow Table, RecordBatch or columns). */
  columns?: (chunk: In) => BatchInput;
  /** A JSON value locating the source just after `chunk` (a file offset, a Kafka offset map...). */
  sourceOffset?: (chunk: In) => unknown;
  /** Extra JSON for a checkpoint's meta; awaited before the checkpoint is cut (see the file comment). */
  meta?: (info: CheckpointInfo) => unknown;
  /** Called, and awaited, once a checkpoint is written. */
  onCheckpoint?: (result: CheckpointResult, meta: StreamCheckpointMeta) => unknown;
}

/** Totals over the checkpoints this stream instance took. */
export interface CheckpointTotals {
  count: number;
  incremental: number;
  bytes: number;
  files: number;
  durationMs: number;
  stallMsMax: number;
  lastId: number | null;
}

/**
 * The stream that takes a backend's checkpoints, by backend. A checkpoint's meta holds one stream's
 * counters and source position, so a second stream taking checkpoints of the same backend would
 * overwrite the first's and break its exactly-once resume: it is refused.
 */
const checkpointingStreams = new WeakMap<StateBackend, string>();

/**
 * The checkpoint meta written by stream `name`, if `backend` was restored from one. `Source` types
 * the source position as your `sourceOffset` returns it (`restoredStreamMeta<number>(...)`).
 */
export function restoredStreamMeta<Source = unknown>(backend: StateBackend, name: string): StreamCheckpointMeta<Source> | undefined {
  const m = backend.restoredMeta as Partial<StreamCheckpointMeta<Source>> | undefined;
  if (!m || typeof m !== 'object' || !m.stream || m.stream.name !== name) return undefined;
  return m as StreamCheckpointMeta<Source>;
}

export class WindowedAggregation<In = BatchInput> extends TransformStream<In, RecordBatch> {
  readonly operator: AggregateOperator;
  /** Events ingested (over every run, when restored). */
  events = 0;
  /** Largest event time seen (ms), or null. */
  maxEventTime: number | null = null;
  emittedBatches = 0;
  emittedRows = 0;
  readonly checkpoints: CheckpointTotals = { count: 0, incremental: 0, bytes: 0, files: 0, durationMs: 0, stallMsMax: 0, lastId: null };
  /** The meta this stream was restored from, if any. */
  readonly restored: StreamCheckpointMeta | undefined;

  constructor(options: WindowedAggregationOptions<In>) {
    const o = checkOptions(options);
    const every = o.checkpointEvery;
    const onClose = o.checkpointOnClose ?? every !== undefined;
    const other = checkpointingStreams.get(o.backend);
    if ((every !== undefined || onClose) && other !== undefined) {
      throw new CairnError(
        'invalid',
        `windowedAggregation '${o.name}': this backend's checkpoints are already taken by stream '${other}', and a checkpoint's meta holds one stream's position; give each checkpointing stream a backend of its own`,
      );
    }
    const operator = o.backend.aggregate(o.name, o.spec);
    if (every !== undefined || onClose) checkpointingStreams.set(o.backend, o.name);
    const restored = restoredStreamMeta(o.backend, o.name);
    const ooo = o.outOfOrdernessMs ?? 0;
    const timeField = operator.spec.timeField;
    const windowed = operator.windowed;
    let lastSource: unknown = restored ? restored.source : null;
    let pending: Promise<unknown> | null = null;

    // `self` is assigned before any transformer method can run (they run after the constructor).
    let self!: WindowedAggregation<In>;
    let controllerRef: TransformStreamDefaultController<RecordBatch> | null = null;
    const emit = (table: Table, controller: TransformStreamDefaultController<RecordBatch>): void => {
      for (const batch of table.batches) {
        if (batch.numRows === 0) continue;
        controller.enqueue(batch);
        self.emittedBatches++;
        self.emittedRows += batch.numRows;
      }
    };
    const checkpoint = async (final: boolean): Promise<void> => {
      if (pending) {
        const p = pending;
        pending = null;
        await p; // one checkpoint in flight at a time; a failure surfaces here
      }
      const app = o.meta
        ? await o.meta({ events: self.events, emittedBatches: self.emittedBatches, emittedRows: self.emittedRows, final })
        : null;
      const meta: StreamCheckpointMeta = {
        stream: { name: o.name, events: self.events, maxEventTime: self.maxEventTime, final },
        source: lastSource ?? null,
        app: app ?? null,
      };
      const p = o.backend.checkpoint(meta).then(async (r) => {
        const t = self.checkpoints;
        t.count++;
        if (r.incremental) t.incremental++;
        t.bytes += r.bytes;
        t.files += r.files;
        t.durationMs += r.durationMs;
        t.stallMsMax = Math.max(t.stallMsMax, r.stallMs);
        t.lastId = r.id;
        await o.onCheckpoint?.(r, meta);
      });
      // A failed checkpoint errors the stream at once (and is rethrown where `pending` is awaited).
      p.catch((e: unknown) => {
        try {
          controllerRef?.error(e);
        } catch {
          // The stream already ended; the error is rethrown where `pending` is awaited.
        }
      });
      pending = p;
      if (final) {
        pending = null;
        await p;
      }
    };

    super({
      start(controller) {
        controllerRef = controller;
      },
      async transform(chunk, controller) {
        const input = o.columns ? o.columns(chunk) : (chunk as unknown as BatchInput);
        const n = AggregateOperator.batchLength(input);
        if (n > 0) {
          await operator.ingest(input);
          self.events += n;
          if (timeField !== null) {
            const t = maxEventTime(input, timeField);
            if (self.maxEventTime === null || t > self.maxEventTime) self.maxEventTime = t;
          }
        }
        if (o.sourceOffset) lastSource = o.sourceOffset(chunk);
        // Also without windows: a TTL expires keys as the watermark moves (and nothing is emitted).
        if (self.maxEventTime !== null) {
          emit(await operator.advanceWatermark(Math.max(self.maxEventTime - ooo, -TIME_ABS_MAX)), controller);
        }
        if (every !== undefined && Math.floor(self.events / every) > Math.floor((self.events - n) / every)) {
          await checkpoint(false);
        }
      },
      async flush(controller) {
        emit(windowed ? await operator.advanceWatermark(END_OF_TIME_MS) : await operator.toArrow(), controller);
        if (onClose) {
          await checkpoint(true);
        } else if (pending) {
          await pending;
        }
      },
    });
    self = this;
    this.operator = operator;
    this.restored = restored;
    if (restored) {
      this.events = restored.stream.events;
      this.maxEventTime = restored.stream.maxEventTime;
    }
  }
}

/**
 * A TransformStream that aggregates the event batches written to it per key and window and emits the
 * fired windows as Arrow record batches (see the file comment for the order of operations).
 */
export function windowedAggregation<In = BatchInput>(options: WindowedAggregationOptions<In>): WindowedAggregation<In> {
  return new WindowedAggregation(options);
}

function checkOptions<In>(o: WindowedAggregationOptions<In>): WindowedAggregationOptions<In> {
  if (!o || typeof o !== 'object') throw new CairnError('invalid', 'windowedAggregation: expected an options object');
  const known = ['backend', 'name', 'spec', 'outOfOrdernessMs', 'checkpointEvery', 'checkpointOnClose', 'columns', 'sourceOffset', 'meta', 'onCheckpoint'];
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new CairnError('invalid', `windowedAggregation: unknown option '${k}' (expected one of ${known.join(', ')})`);
  }
  if (!o.backend) throw new CairnError('invalid', 'windowedAggregation: backend is required');
  const ooo = o.outOfOrdernessMs;
  if (ooo !== undefined && (!Number.isSafeInteger(ooo) || ooo < 0 || ooo > OUT_OF_ORDERNESS_MS_MAX)) {
    throw new CairnError('invalid', `windowedAggregation: outOfOrdernessMs: expected an integer in [0, ${OUT_OF_ORDERNESS_MS_MAX}], found ${String(ooo)}`);
  }
  const every = o.checkpointEvery;
  if (every !== undefined && (!Number.isSafeInteger(every) || every < 1 || every > CHECKPOINT_EVERY_MAX)) {
    throw new CairnError('invalid', `windowedAggregation: checkpointEvery: expected a positive integer number of events, found ${String(every)}`);
  }
  for (const f of ['columns', 'sourceOffset', 'meta', 'onCheckpoint'] as const) {
    if (o[f] !== undefined && typeof o[f] !== 'function') {
      throw new CairnError('invalid', `windowedAggregation: ${f}: expected a function, found ${typeof o[f]}`);
    }
  }
  return o;
}

