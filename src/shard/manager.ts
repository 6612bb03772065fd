/**
 * The shard manager: owns the shards (in-process or worker threads), the key-group assignment and
 * routing, and moves key groups when rescaling or rebalancing.
 *
 * Ordering: every public operation posts its shard requests synchronously when it is called, and
 * each shard applies requests in the order received. So an operation observes exactly the
 * operations called before it; a checkpoint's capture is a consistent cut at one batch boundary.
 * Rescaling raises a barrier: it waits for operations in flight, moves key groups, and operations
 * called meanwhile wait for it before posting.
 */
import type { EncodedBatch, EncodedKey, StoreConfig } from '../../bindings/types.js';
import { MODE_EXTRACT } from '../../bindings/exports.js';
import { CairnError } from '../errors.js';
import { murmur3Bytes, murmur3Int64 } from './hash.js';
import { LocalShard } from './local.js';
import { WorkerShard } from './worker-shard.js';
import type { MemoryStats, Shard, ShardRequest, ShardResponse, StoreStats } from './protocol.js';
import { Router, contiguousAssignment, KEY_GROUPS_MAX, SHARDS_MAX } from './router.js';
import { batchBuffers } from './buffers.js';
import { checkTimes } from '../store/batch.js';
import type { BufferPool } from './pool.js';

export interface ShardManagerOptions {
  shards: number;
  keyGroups: number;
  workers: boolean;
  memCapBytes?: number;
  assignment?: Uint8Array;
}

export interface OperatorShardState {
  id: number;
  cfg: StoreConfig;
  watermark: bigint;
  /** Late events counted by shards that no longer exist (after a scale-down). */
  lateBase: bigint;
}

export class ShardManager {
  readonly keyGroups: number;
  readonly workers: boolean;
  private readonly memCapBytes: number | undefined;
  shards: Shard[] = [];
  assign: Uint8Array;
  /** Events routed to each key group since start (for skew metrics and rebalancing). */
  readonly kgEvents: Float64Array;
  shardEvents: number[] = [];
  private readonly router = new Router();
  private barrier: Promise<void> | null = null;
  private readonly inflight = new Set<Promise<unknown>>();
  readonly ops = new Map<number, OperatorShardState>();
  private failure: CairnError | null = null;
  /** Bumped by every rescale or rebalance: the next checkpoint after a change of epoch is full. */
  epoch = 0;

  constructor(o: ShardManagerOptions) {
    if (!Number.isInteger(o.keyGroups) || o.keyGroups < 1 || o.keyGroups > KEY_GROUPS_MAX) {
      throw new CairnError('invalid', `keyGroups: expected an integer in [1, ${KEY_GROUPS_MAX}], found ${o.keyGroups}`);
    }
    checkShardCount(o.shards, o.keyGroups);
    this.keyGroups = o.keyGroups;
    this.workers = o.workers;
    this.memCapBytes = o.memCapBytes;
    this.assign = o.assignment ?? contiguousAssignment(o.keyGroups, o.shards);
    if (this.assign.length !== o.keyGroups) throw new CairnError('invalid', `assignment: expected ${o.keyGroups} entries, found ${this.assign.length}`);
    const bad = this.assign.findIndex((sh) => sh >= o.shards);
    if (bad >= 0) throw new CairnError('invalid', `assignment: key group ${bad} maps to shard ${this.assign[bad]}, expected a shard below ${o.shards}`);
    this.kgEvents = new Float64Array(o.keyGroups);
    for (let i = 0; i < o.shards; i++) this.addShard();
  }

  get shardCount(): number {
    return this.shards.length;
  }

  private addShard(): Shard {
    const pool = this.router.pool;
    const s = this.workers ? new WorkerShard(this.shards.length, this.memCapBytes, pool) : new LocalShard(this.memCapBytes, pool);
    this.shards.push(s);
    this.shardEvents.push(0);
    return s;
  }

  /** Runs `fn` once no barrier is up; `fn` must post its requests synchronously. */
  async gate<T>(fn: () => Promise<T>): Promise<T> {
    while (this.barrier) await this.barrier;
    if (this.failure) throw this.failure;
    const p = fn();
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  shardOfKey(key: EncodedKey): number {
    const h = key.type === 'int64' ? murmur3Int64(key.value) : murmur3Bytes(key.bytes);
    return this.assign[h % this.keyGroups]!;
  }

  call<T extends ShardResponse>(shard: number, req: ShardRequest, transfer?: ArrayBuffer[]): Promise<T> {
    const s = this.shards[shard];
    if (!s) return Promise.reject(new CairnError('unavailable', `shard ${shard} does not exist (there are ${this.shards.length})`));
    return s.call<T>(req, transfer);
  }

  /**
   * Registers work that reads from shards by index after its requests were posted (a checkpoint
   * reading its captures out): a rescale waits for it before moving key groups.
   */
  track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  broadcast<T extends ShardResponse>(req: ShardRequest): Promise<T[]> {
    return Promise.all(this.shards.map((s) => s.call<T>(req)));
  }

  async openOperator(id: number, cfg: StoreConfig): Promise<void> {
    this.ops.set(id, { id, cfg, watermark: -(2n ** 63n), lateBase: 0n });
    await this.broadcast({ op: 'open', id, cfg });
  }

  /**
   * Routes a batch and applies each slice on its shard. Returns accepted events. A batch that the
   * caller's thread can refuse (bad event times, and on an in-process shard anything the shard
   * refuses) throws here, synchronously, before any shard has it: so a caller can keep its own
   * counters (the operator's arrival sequence) as they were.
   */
  ingest(id: number, batch: EncodedBatch, seqBase: bigint): Promise<number> {
    if (this.shards.length === 1) {
      const s = this.shards[0]!;
      if (s instanceof LocalShard) {
        const accepted = s.callNow<number>({ op: 'ingest', id, batch, seqBase });
        this.shardEvents[0]! += batch.n;
        return Promise.resolve(accepted);
      }
      // A worker checks float times in Wasm only after this returns: check them here instead.
      if (batch.times instanceof Float64Array) checkTimes(batch.times, batch.timeField);
      this.shardEvents[0]! += batch.n;
      // A worker would structured-clone each column's whole underlying buffer (a subarray view of a
      // large file buffer costs the whole file): compact each column once and transfer it instead.
      const own = compactBatch(batch, this.router.pool);
      return this.call<number>(0, { op: 'ingest', id, batch: own, seqBase }, batchBuffers(own));
    }
    const slices = this.router.split(batch, this.keyGroups, this.assign, this.shards.length, this.kgEvents);
    const calls: Promise<number>[] = [];
    slices.forEach((b, s) => {
      if (!b) return;
      this.shardEvents[s]! += b.n;
      // The slices are fresh arrays owned here: a worker shard takes them without a copy.
      calls.push(this.call<number>(s, { op: 'ingest', id, batch: b, seqBase }, batchBuffers(b)));
    });
    return Promise.all(calls).then((r) => r.reduce((a, x) => a + x, 0));
  }

  /** Moves to `n` shards with the default contiguous assignment. */
  rescale(n: number): Promise<void> {
    checkShardCount(n, this.keyGroups);
    return this.reassign(contiguousAssignment(this.keyGroups, n), n);
  }

  /**
   * Moves key groups so that the shards' event loads even out (longest-processing-time greedy over
   * key groups by routed events, falling back to rows). The assignment need not stay contiguous.
   */
  async rebalance(kgLoad: Float64Array): Promise<Uint8Array> {
    const n = this.shards.length;
    const order = Array.from({ length: this.keyGroups }, (_, kg) => kg).sort((a, b) => kgLoad[b]! - kgLoad[a]! || a - b);
    const load = new Float64Array(n);
    const next = new Uint8Array(this.keyGroups);
    for (const kg of order) {
      let best = 0;
      for (let s = 1; s < n; s++) if (load[s]! < load[best]!) best = s;
      next[kg] = best;
      load[best]! += kgLoad[kg]!;
    }
    await this.reassign(next, n);
    return next;
  }

  private reassign(next: Uint8Array, n: number): Promise<void> {
    const run = async () => {
      await Promise.allSettled([...this.inflight]);
      const old = this.assign;
      const oldN = this.shards.length;
      try {
        while (this.shards.length < n) {
          const s = this.addShard();
          const idx = this.shards.length - 1;
          for (const op of this.ops.values()) {
            await s.call({ op: 'open', id: op.id, cfg: op.cfg });
            await s.call({ op: 'setState', id: op.id, watermark: op.watermark, lateEvents: 0n });
          }
          void idx;
        }
        for (let src = 0; src < oldN; src++) {
          const leaving = new Uint8Array(this.keyGroups);
          let any = false;
          for (let kg = 0; kg < this.keyGroups; kg++) {
            if (old[kg] === src && next[kg] !== src) { leaving[kg] = 1; any = true; }
          }
          if (!any) continue;
          for (const op of this.ops.values()) {
            const bytes = await this.call<Uint8Array>(src, { op: 'captureBytes', id: op.id, mode: MODE_EXTRACT, keyGroups: this.keyGroups, mask: leaving });
            for (let dst = 0; dst < n; dst++) {
              if (dst === src) continue;
              const mask = new Uint8Array(this.keyGroups);
              let gets = false;
              for (let kg = 0; kg < this.keyGroups; kg++) {
                if (leaving[kg] && next[kg] === dst) { mask[kg] = 1; gets = true; }
              }
              if (gets) await this.call(dst, { op: 'load', id: op.id, bytes, keyGroups: this.keyGroups, mask });
            }
            await this.call(src, { op: 'drop', id: op.id, keyGroups: this.keyGroups, mask: leaving });
          }
        }
        // Shards beyond n now own nothing: fold their late-event counts into the operator, then close.
        while (this.shards.length > n) {
          const s = this.shards.pop()!;
          this.shardEvents.pop();
          for (const op of this.ops.values()) {
            const st = await s.call<StoreStats>({ op: 'stats', id: op.id, keyGroups: this.keyGroups });
            op.lateBase += st.lateEvents;
          }
          await s.close();
        }
        // Key groups moved: every shard's next checkpoint is a full one.
        for (const op of this.ops.values()) await this.broadcast({ op: 'forceFull', id: op.id });
        this.assign = next;
        this.epoch++;
      } catch (e) {
        this.failure = new CairnError('internal', 'rescale failed part-way; this backend must be restored from a checkpoint', { cause: e });
        throw this.failure;
      }
    };
    const p = run();
    this.barrier = p.then(() => undefined, () => undefined).finally(() => { this.barrier = null; });
    return p;
  }

  async memory(): Promise<MemoryStats[]> {
    return this.broadcast<MemoryStats>({ op: 'memory' });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    await Promise.all(this.shards.map((s) => s.close()));
    this.shards = [];
  }
}

/**
 * A copy of the batch packed into one pooled buffer (transferable as a whole, and given back by the
 * shard once copied), so no column's larger underlying buffer is ever cloned.
 */
function compactBatch(b: EncodedBatch, pool: BufferPool): EncodedBatch {
  const parts: ArrayBufferView[] = b.keys.type === 'int64' ? [b.keys.values] : [b.keys.offsets, b.keys.bytes];
  if (b.times) parts.push(b.times);
  parts.push(...b.values);
  const buf = pool.take(parts.reduce((a, p) => a + ((p.byteLength + 7) & ~7), 0));
  let at = 0;
  /** Copies `a` to the next 8-aligned offset of buf; returns that offset. */
  const put = (a: ArrayBufferView): number => {
    const o = at;
    new Uint8Array(buf, o, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    at += (a.byteLength + 7) & ~7;
    return o;
  };
  const keys: EncodedBatch['keys'] = b.keys.type === 'int64'
    ? { type: 'int64', values: new BigInt64Array(buf, put(b.keys.values), b.n) }
    : { type: 'utf8', offsets: new Uint32Array(buf, put(b.keys.offsets), b.n + 1), bytes: new Uint8Array(buf, put(b.keys.bytes), b.keys.bytes.length) };
  // Times stay in the caller's representation (int64, or float64 checked to be integers; see EncodedBatch).
  const times = b.times === null ? null
    : b.times instanceof Float64Array ? new Float64Array(buf, put(b.times), b.n) : new BigInt64Array(buf, put(b.times), b.n);
  const values = b.values.map((v) => new Float64Array(buf, put(v), b.n));
  return b.timeField === undefined ? { n: b.n, keys, times, values } : { n: b.n, keys, times, values, timeField: b.timeField };
}

function checkShardCount(n: number, keyGroups: number): void {
  if (!Number.isInteger(n) || n < 1 || n > SHARDS_MAX || n > keyGroups) {
    throw new CairnError('invalid', `shards: expected an integer in [1, min(${SHARDS_MAX}, keyGroups=${keyGroups})], found ${n}`);
  }
}
