/**
 * An aggregate operator: keyed running aggregates or windowed aggregates, spread over the shards.
 * Ingest validates the whole batch before any shard sees it; windows fire through advanceWatermark.
 */
import type { Table } from 'apache-arrow';
import type { EncodedBatch, OutColumns } from '../../bindings/types.js';
import { CairnError } from '../errors.js';
import type { ShardManager, OperatorShardState } from '../shard/manager.js';
import { encodeBatch, encodeKey, batchLength, type BatchInput } from './batch.js';
import { mergeSorted, toArrow, rowObject, emptyOut } from './output.js';
import type { NormalizedSpec } from './spec.js';

export const WATERMARK_MIN = -(2n ** 63n);
export const WATERMARK_MAX = 2n ** 63n - 1n;
/** Below -2^60 a watermark is below every window and means none (as in assembly/store.ts). */
const WATERMARK_ABS_MAX = 2n ** 60n;

/** What an operator needs from its backend. */
export interface OperatorHost {
  readonly manager: ShardManager;
  assertOpen(): void;
  /** `p`, a call just posted, or the failure of an operator opening posted before it (see StateBackend.guarded). */
  guarded<T>(p: Promise<T>): Promise<T>;
}

export interface IngestResult {
  /** Events in the batch. */
  events: number;
  /** Events applied to state (the rest were later than every window they belong to). */
  accepted: number;
}

export class AggregateOperator {
  /** Events ingested so far: the arrival sequence for first/last without a time field. */
  seq = 0n;
  /** The table of an advance that fires no window (built once). */
  private noneFired: Table | null = null;

  constructor(
    readonly name: string,
    readonly id: number,
    readonly spec: NormalizedSpec,
    private readonly host: OperatorHost,
    private readonly state: OperatorShardState,
  ) {}

  get windowed(): boolean {
    return this.spec.window.kind !== 'none';
  }

  /** The current watermark (ms), or -Infinity before the first advance. */
  get watermark(): number {
    return this.state.watermark === WATERMARK_MIN ? -Infinity : Number(this.state.watermark);
  }

  /** Applies a batch. A bad batch is rejected whole (`invalid`) and state is unchanged. */
  async ingest(batch: BatchInput): Promise<IngestResult> {
    this.host.assertOpen();
    const m = this.host.manager;
    // The batch is read now, at the call, even when the call waits behind a rescale or earlier
    // calls: plain arrays that the caller refills once this returns must not change what it
    // ingests, nor what it is checked against. (Typed and Arrow columns are encoded in place, not
    // copied: the caller leaves their buffers alone until the call resolves, see README.)
    let enc: EncodedBatch;
    try {
      enc = encodeBatch(batch, this.spec);
    } catch (e) {
      return this.host.guarded(Promise.reject(e));
    }
    return this.host.guarded(m.gate(async () => {
      if (enc.n === 0) return { events: 0, accepted: 0 };
      // A batch that reaches the shards takes its events' arrival sequence numbers whether they
      // apply it or refuse it (memory cap): a worker's refusal comes back only after later calls
      // were numbered, so an in-process shard's refusal, which throws here, leaves the same gap,
      // and state bytes do not depend on where shards run. A batch the caller's thread refuses
      // (`invalid`: bad event times, see ShardManager.ingest) reached no shard and takes none.
      const seqBase = this.seq;
      let applied: Promise<number>;
      try {
        applied = m.ingest(this.id, enc, seqBase);
      } catch (e) {
        if (!(e instanceof CairnError && e.kind === 'invalid')) this.seq += BigInt(enc.n);
        throw e;
      }
      this.seq += BigInt(enc.n);
      return { events: enc.n, accepted: await applied };
    }));
  }

  /**
   * Advances event time to `t` (ms) and returns the windows that fire as an Arrow table with
   * columns key, window_start, window_end, aggregates, ordered by (window_end, key, window_start).
   * A window that receives late events within the allowed lateness fires again with its complete
   * new values; downstream should replace the earlier row for the same key and window.
   */
  async advanceWatermark(t: number | bigint): Promise<Table> {
    this.host.assertOpen();
    let w: bigint;
    if (typeof t === 'bigint') {
      // Any int64 (Flink's Long.MIN_VALUE and Long.MAX_VALUE included); Wasm would wrap a wider one.
      if (t < WATERMARK_MIN || t > WATERMARK_MAX) throw new CairnError('invalid', `advanceWatermark: ${t} does not fit int64`);
      w = t;
    } else if (typeof t === 'number' && Number.isInteger(t) && Math.abs(t) <= 2 ** 53) w = BigInt(t);
    else throw new CairnError('invalid', `advanceWatermark: expected an integer number of ms, found ${String(t)}`);
    const m = this.host.manager;
    return this.host.guarded(m.gate(async () => {
      // As Wasm keeps it (assembly/store.ts WATERMARK_ABS_MAX): one below every window is no watermark.
      if (w > this.state.watermark && w >= -WATERMARK_ABS_MAX) this.state.watermark = w;
      const parts = await m.broadcast<OutColumns>({ op: 'advance', id: this.id, t: w });
      const merged = mergeSorted(parts, true);
      m.recycle(parts, merged);
      // Most advances fire nothing: their table is always the same, empty and immutable. Without
      // windows (a TTL only expires keys) it has toArrow()'s columns, with no window bounds.
      if (merged.count === 0) return (this.noneFired ??= toArrow(this.spec, emptyOut(this.spec), this.windowed));
      return toArrow(this.spec, merged, true);
    }));
  }

  /** Current aggregates of a key (running aggregates only), or undefined when absent. */
  async get(key: string | number | bigint): Promise<Record<string, number | null> | undefined> {
    this.host.assertOpen();
    if (this.windowed) throw (new CairnError('invalid', `get: operator '${this.name}' is windowed; read fired windows from advanceWatermark or toArrow()`));
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    return this.host.guarded(m.gate(async () => {
      const out = await m.call<OutColumns | null>(m.shardOfKey(k), { op: 'get', id: this.id, key: k });
      return out && out.count === 1 ? rowObject(this.spec, out, 0) : undefined;
    }));
  }

  /** Deletes a key (for windowed operators, all of its open windows). Returns true if it existed. */
  async delete(key: string | number | bigint): Promise<boolean> {
    this.host.assertOpen();
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    return this.host.guarded(m.gate(() => m.call<boolean>(m.shardOfKey(k), { op: 'delete', id: this.id, key: k })));
  }

  /**
   * All current state as an Arrow table ordered by key (and window start). For windowed operators
   * the rows are open panes or sessions with their bounds (window_start, window_end).
   */
  async toArrow(): Promise<Table> {
    this.host.assertOpen();
    const m = this.host.manager;
    return this.host.guarded(m.gate(async () => {
      const parts = await m.broadcast<OutColumns>({ op: 'export', id: this.id });
      const merged = parts.length ? mergeSorted(parts, false) : emptyOut(this.spec);
      m.recycle(parts, merged);
      return toArrow(this.spec, merged, this.windowed);
    }));
  }

  /** Late events dropped so far (over all shards). */
  async lateEvents(): Promise<number> {
    this.host.assertOpen();
    const m = this.host.manager;
    const late = await this.host.guarded(m.gate(() => m.broadcast<bigint>({ op: 'late', id: this.id })));
    return Number(late.reduce((a, l) => a + l, this.state.lateBase));
  }

  /** Number of events in a batch without ingesting it (for adapters). */
  static batchLength(batch: BatchInput): number {
    return batchLength(batch);
  }
}
