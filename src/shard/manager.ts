/**
 * The shard manager: owns the shards (in-process or worker threads), the key-group assignment and
 * routing, and moves key groups when rescaling or rebalancing.
 *
 * Ordering: every public operation posts its shard requests synchronously, in call order: when it
 * is called, or, if it had to wait (a barrier up, or every slot of the vote board taken), when it
 * leaves the queue, before anything called after it. Each shard applies requests in the order
 * received. So an operation observes exactly the operations called before it; a checkpoint's
 * capture is a consistent cut at one batch boundary. Rescaling and rebalancing raise a barrier:
 * they wait for operations in flight, move key groups, and operations called meanwhile queue.
 */
import type { EncodedBatch, EncodedKey, OutColumns, StoreConfig } from '../../bindings/types.js';
import { MODE_EXTRACT } from '../../bindings/exports.js';
import { MEM_CAP_MAX_BYTES } from '../../bindings/core.js';
import { CairnError } from '../errors.js';
import { murmur3Bytes, murmur3Int64 } from './hash.js';
import { LocalShard } from './local.js';
import { WorkerShard } from './worker-shard.js';
import { REFUSED_HERE, type MemoryStats, type Shard, type ShardRequest, type ShardResponse } from './protocol.js';
import { VoteBoard, newBoard } from './votes.js';
import { newCreditBoard } from './credit.js';
import { Router, contiguousAssignment, KEY_GROUPS_MAX, SHARDS_MAX } from './router.js';
import { batchBuffers, batchKeyBytes, outBuffers } from './buffers.js';
import { checkTimes } from '../store/batch.js';
import { BufferPool } from './pool.js';

/**
 * Up to this many worker shards, a batch is broadcast (copied once into shared memory) and each
 * shard keeps its own key groups' events (host.ts stage), so the caller's thread does not route:
 * it competes with the workers for cores. Beyond it, filtering the whole batch on every shard costs
 * more than routing it once on the caller's thread (Router.split).
 */
export const BROADCAST_SHARDS_MAX = 4;

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
  /**
   * Events routed to each key group since start (for skew metrics and rebalancing), by the router
   * and by shards since closed; worker shards count the broadcast batches they apply themselves
   * (see keyGroupEvents).
   */
  private readonly kgEvents: Float64Array;
  /** Events ingested while there was a single shard, which does not route (so no key groups). */
  private singleShardEvents = 0;
  private readonly router = new Router();
  /** Shared buffers for broadcast batches (worker shards only), given back once every shard answered. */
  private readonly shared = new BufferPool<SharedArrayBuffer>((bytes) => new SharedArrayBuffer(bytes));
  /** Where worker shards vote on split batches (null with in-process shards). */
  private readonly votes: VoteBoard | null;
  /** Where worker shards publish their vote credit (credit.ts; null with in-process shards). */
  private readonly credits: SharedArrayBuffer | null;
  private barrier: Promise<void> | null = null;
  /** Calls waiting for the barrier to fall, in call order (see gate). */
  private readonly queue: (() => void)[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  readonly ops = new Map<number, OperatorShardState>();
  private failure: CairnError | null = null;
  /** Set by close(): calls still queued then, and any later, fail with `closed`. */
  private closed = false;
  /** Bumped by every rescale or rebalance: the next checkpoint after a change of epoch is full. */
  epoch = 0;

  constructor(o: ShardManagerOptions) {
    if (!Number.isInteger(o.keyGroups) || o.keyGroups < 1 || o.keyGroups > KEY_GROUPS_MAX) {
      throw new CairnError('invalid', `keyGroups: expected an integer in [1, ${KEY_GROUPS_MAX}], found ${o.keyGroups}`);
    }
    checkShardCount(o.shards, o.keyGroups);
    if (o.memCapBytes !== undefined && !(Number.isSafeInteger(o.memCapBytes) && o.memCapBytes > 0 && o.memCapBytes <= MEM_CAP_MAX_BYTES)) {
      throw new CairnError('invalid', `memoryCapBytes: expected an integer in [1, ${MEM_CAP_MAX_BYTES}], found ${o.memCapBytes}`);
    }
    if (typeof o.workers !== 'boolean') {
      throw new CairnError('invalid', `workers: expected true or false, found ${typeof o.workers === 'string' ? o.workers : typeof o.workers}`);
    }
    this.keyGroups = o.keyGroups;
    this.workers = o.workers;
    this.memCapBytes = o.memCapBytes;
    this.assign = o.assignment ?? contiguousAssignment(o.keyGroups, o.shards);
    if (this.assign.length !== o.keyGroups) throw new CairnError('invalid', `assignment: expected ${o.keyGroups} entries, found ${this.assign.length}`);
    const bad = this.assign.findIndex((sh) => sh >= o.shards);
    if (bad >= 0) throw new CairnError('invalid', `assignment: key group ${bad} maps to shard ${this.assign[bad]}, expected a shard below ${o.shards}`);
    this.kgEvents = new Float64Array(o.keyGroups);
    this.votes = o.workers ? new VoteBoard(newBoard()) : null;
    this.credits = o.workers ? newCreditBoard(SHARDS_MAX) : null;
    for (let i = 0; i < o.shards; i++) this.addShard();
    // A worker that fails here fails every later call too: nothing waits on these answers.
    for (const p of this.sendOwnership(this.assign)) p.catch(() => undefined);
  }

  /** Tells each worker shard which key groups it owns under `assign` (for broadcast batches). */
  private sendOwnership(assign: Uint8Array): Promise<unknown>[] {
    if (!this.workers) return [];
    return this.shards.map((s, i) => s.call({ op: 'owns', keyGroups: this.keyGroups, mask: assign.map((sh) => (sh === i ? 1 : 0)) }));
  }

  /** Events per key group since start: the router's counts and every worker shard's. */
  async keyGroupEvents(): Promise<Float64Array> {
    const out = Float64Array.from(this.kgEvents);
    if (this.workers) {
      for (const ev of await this.broadcast<Float64Array>({ op: 'kgEvents' })) ev.forEach((x, kg) => (out[kg]! += x));
    }
    return out;
  }

  get shardCount(): number {
    return this.shards.length;
  }

  private addShard(): Shard {
    const pool = this.router.pool;
    let s: Shard;
    if (this.workers) {
      const w = new WorkerShard(this.shards.length, this.memCapBytes, pool, this.votes!.buffer, this.credits!);
      // A dead shard's state is gone: no later call may post anything (a batch broadcast on credit
      // would apply on the live shards alone), so every later call fails before posting.
      w.onDeath = (e) => {
        this.failure ??= new CairnError('unavailable', `${e.message}; its state is lost, so this backend must be restored from a checkpoint`, { cause: e });
      };
      s = w;
    } else {
      s = new LocalShard(this.memCapBytes, pool);
    }
    this.shards.push(s);
    return s;
  }

  /**
   * Runs `fn` once no barrier is up and the vote board has a free slot, in call order; `fn` must
   * post its requests synchronously. Calls made meanwhile (or while earlier calls still wait) queue
   * here and are entered in call order, synchronously one after the other, when the way is clear:
   * so a call made after another, even one made only after a rescale resolved, never posts before it.
   */
  gate<T>(fn: () => Promise<T>): Promise<T> {
    if (this.barrier !== null || this.queue.length > 0 || this.boardFull()) {
      return new Promise<T>((resolve, reject) => {
        this.queue.push(() => this.enter(fn).then(resolve, reject));
      });
    }
    return this.enter(fn);
  }

  private enter<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new CairnError('closed', 'the backend is closed'));
    if (this.failure) return Promise.reject(this.failure);
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      return Promise.reject(e);
    }
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Lowers the barrier and enters queued calls in order, until one of them raises a new one (or
   * fills the vote board).
   */
  private lower(): void {
    this.barrier = null;
    while (this.barrier === null && !this.boardFull() && this.queue.length > 0) this.queue.shift()!();
  }

  /** Every slot of the vote board is taken by split batches in flight (see ingestSplit). */
  private boardFull(): boolean {
    return this.votes !== null && this.votes.full;
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

  /**
   * Gives each shard back the buffers of its part of a merged output (`parts[i]` from shard i), but
   * not those of `kept`, the part that became the result itself (a merge of one part returns it).
   */
  recycle(parts: OutColumns[], kept: OutColumns): void {
    parts.forEach((p, i) => {
      if (p === kept || p.count === 0) return;
      this.shards[i]?.recycle(outBuffers(p));
    });
  }

  broadcast<T extends ShardResponse>(req: ShardRequest): Promise<T[]> {
    return Promise.all(this.shards.map((s) => s.call<T>(req)));
  }

  /** Registers an operator and opens its store on every shard (call it through `gate`). */
  async openOperator(state: OperatorShardState): Promise<void> {
    this.ops.set(state.id, state);
    await this.broadcast({ op: 'open', id: state.id, cfg: state.cfg });
  }

  /**
   * Routes a batch and applies each slice on its shard (or, with 2 to BROADCAST_SHARDS_MAX worker
   * shards, broadcasts it and each shard keeps its own events). Returns accepted events. A batch that the
   * caller's thread can refuse (bad event times, and on an in-process shard anything the shard
   * refuses) throws here, synchronously, before any shard has it: so a caller can keep its own
   * counters (the operator's arrival sequence) as they were.
   */
  ingest(id: number, batch: EncodedBatch, seqBase: bigint): Promise<number> {
    if (this.shards.length === 1) {
      const s = this.shards[0]!;
      if (s instanceof LocalShard) {
        const accepted = s.callNow<number>({ op: 'ingest', id, batch, seqBase });
        this.singleShardEvents += batch.n;
        return Promise.resolve(accepted);
      }
      // A worker checks float times in Wasm only after this returns: check them here instead.
      if (batch.times instanceof Float64Array) checkTimes(batch.times, batch.timeField);
      this.singleShardEvents += batch.n;
      // A worker would structured-clone each column's whole underlying buffer (a subarray view of a
      // large file buffer costs the whole file): compact each column once and transfer it instead.
      const own = compactBatch(batch, this.router.pool);
      return this.call<number>(0, { op: 'ingest', id, batch: own, seqBase }, batchBuffers(own)).catch((e: unknown) => {
        this.singleShardEvents -= batch.n; // refused: not ingested after all
        throw e;
      });
    }
    if (this.workers && this.shards.length <= BROADCAST_SHARDS_MAX) {
      // Broadcast: one copy into shared memory, which every shard reads; each keeps its own events.
      // Float times are checked (and turned into int64) here, so a bad one throws before any shard has it.
      const shared = compactBatch(batch, this.shared);
      const sab = (shared.keys.type === 'int64' ? shared.keys.values : shared.keys.offsets).buffer as SharedArrayBuffer;
      const done = () => this.shared.give(sab);
      if (shared.times instanceof Float64Array) {
        try {
          shared.times = this.router.timesToInt64(shared.times, batch.timeField);
        } catch (e) {
          done();
          throw e;
        }
      }
      const all = this.shards.map((_, i) => i);
      const p = this.ingestBroadcast(id, shared, all, seqBase);
      p.then(done, done);
      return p;
    }
    const kgBatch = new Float64Array(this.keyGroups);
    const slices = this.router.split(batch, this.keyGroups, this.assign, this.shards.length, kgBatch);
    const involved: number[] = [];
    slices.forEach((b, s) => { if (b) involved.push(s); });
    if (!this.workers) {
      // A batch applies on every shard or on none: in-process shards are asked synchronously whether
      // their slices fit under the memory cap before any applies its slice, and then apply them now
      // (so a refusal throws here, before the caller's arrival sequence moves).
      if (involved.length > 1) {
        for (const s of involved) {
          const b = slices[s]!;
          if (!(this.shards[s] as LocalShard).callNow<boolean>({ op: 'fits', id, n: b.n, keyBytes: batchKeyBytes(b) })) {
            for (const t of involved) batchBuffers(slices[t]!).forEach((buf) => this.router.pool.give(buf));
            throw capReached(s);
          }
        }
      }
      let accepted = 0;
      for (const s of involved) {
        const b = slices[s]!;
        accepted += (this.shards[s] as LocalShard).callNow<number>({ op: 'ingest', id, batch: b, seqBase }, batchBuffers(b));
      }
      this.countEvents(kgBatch, 1);
      return Promise.resolve(accepted);
    }
    this.countEvents(kgBatch, 1);
    const applied = involved.length > 1
      ? this.ingestSplit(id, slices, involved, seqBase, false)
      // One shard's slice: it applies whole or not at all on its own. The slices are fresh arrays
      // owned here: a worker shard takes them without a copy.
      : this.call<number>(involved[0]!, { op: 'ingest', id, batch: slices[involved[0]!]!, seqBase }, batchBuffers(slices[involved[0]!]!));
    return applied.catch((e: unknown) => {
      this.countEvents(kgBatch, -1); // refused whole: not routed after all
      throw e;
    });
  }

  /**
   * A batch split over several worker shards (or broadcast to them, `owned`: each shard then checks
   * the events it keeps): each shard checks its slice against its memory cap,
   * votes on the vote board and waits there for the others (votes.ts); then every shard applies
   * its slice, or, if any refused, every shard drops it and the call fails with nothing changed.
   * Nothing goes through this thread between the vote and the apply.
   */
  private ingestSplit(id: number, slices: (EncodedBatch | null)[], involved: number[], seqBase: bigint, owned: boolean): Promise<number> {
    const board = this.votes!;
    const { slot, txn } = board.open(involved.length);
    const calls = involved.map((s) => {
      const b = slices[s]!;
      // A shard that cannot vote (its worker died) must not leave the others waiting.
      const req: ShardRequest = owned ? { op: 'ingest', id, batch: b, seqBase, hold: { slot, txn }, owned } : { op: 'ingest', id, batch: b, seqBase, hold: { slot, txn } };
      return this.call<number>(s, req, batchBuffers(b)).catch((e: unknown) => {
        board.abort(slot);
        throw e;
      });
    });
    return Promise.allSettled(calls).then((rs) => {
      board.close(slot);
      if (this.barrier === null) this.lower(); // calls held back while the board was full
      const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const values = rs.map((r) => (r as PromiseFulfilledResult<number>).value);
      const refused = values.indexOf(REFUSED_HERE);
      if (refused >= 0) throw capReached(involved[refused]!);
      if (values.some((v) => v < 0)) throw new CairnError('internal', `ingest: shards answered ${values.join(', ')} to a split batch`);
      return values.reduce((a, x) => a + x, 0);
    });
  }

  /**
   * A batch broadcast to every worker shard: when every shard's vote credit covers it (credit.ts),
   * each shard applies its events without a vote (so shards need not wait for each other); else
   * the shards vote on it, as on the slices of a split batch.
   */
  private ingestBroadcast(id: number, shared: EncodedBatch, all: number[], seqBase: bigint): Promise<number> {
    const ws = this.shards as WorkerShard[];
    const kb = batchKeyBytes(shared);
    const onCredit = ws.every((s) => s.credit!.allows(shared.n, kb));
    for (const s of ws) s.credit!.count(shared.n, kb);
    if (!onCredit) return this.ingestSplit(id, all.map(() => shared), all, seqBase, true);
    const calls = all.map((s) => this.call<number>(s, { op: 'ingest', id, batch: shared, seqBase, owned: true, credit: true }));
    return Promise.allSettled(calls).then((rs) => {
      const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return rs.reduce((a, r) => a + (r as PromiseFulfilledResult<number>).value, 0);
    });
  }

  /** Adds (sign 1) or takes back (sign -1) a batch's routed events per key group. */
  private countEvents(kgBatch: Float64Array, sign: number): void {
    for (let kg = 0; kg < this.keyGroups; kg++) this.kgEvents[kg]! += sign * kgBatch[kg]!;
  }

  /**
   * Events per shard, by the key groups each owns now (so a rescale or rebalance moves them with
   * their key groups). Key groups are known for routed events only: with one shard, which does not
   * route, its count also holds the events ingested while it was the only one.
   */
  shardEvents(kgEvents: Float64Array, singleShardEvents = this.singleShardEvents): number[] {
    const out = new Array<number>(this.shards.length).fill(0);
    for (let kg = 0; kg < this.keyGroups; kg++) out[this.assign[kg]!]! += kgEvents[kg]!;
    if (out.length === 1) out[0]! += singleShardEvents;
    return out;
  }

  /** The events counted while there was a single shard, as of now (see shardEvents). */
  get unroutedEvents(): number {
    return this.singleShardEvents;
  }

  /** Moves to `n` shards with the default contiguous assignment. */
  rescale(n: number): Promise<void> {
    checkShardCount(n, this.keyGroups);
    return this.reassign(() => ({ next: contiguousAssignment(this.keyGroups, n), n })).then(() => undefined);
  }

  /**
   * Moves key groups so that the shards' loads even out (longest-processing-time greedy over key
   * groups by `kgLoad`). The assignment need not stay contiguous. `kgLoad` runs inside the barrier,
   * once the calls made before this one have applied, so it sees their effects and nothing later;
   * it must ask the shards directly (`broadcast`), not through `gate`.
   */
  rebalance(kgLoad: () => Promise<Float64Array>): Promise<Uint8Array> {
    return this.reassign(async () => {
      const loads = await kgLoad();
      const n = this.shards.length;
      const order = Array.from({ length: this.keyGroups }, (_, kg) => kg).sort((a, b) => loads[b]! - loads[a]! || a - b);
      const load = new Float64Array(n);
      const next = new Uint8Array(this.keyGroups);
      for (const kg of order) {
        let best = 0;
        for (let s = 1; s < n; s++) if (load[s]! < load[best]!) best = s;
        next[kg] = best;
        load[best]! += loads[kg]!;
      }
      return { next, n };
    });
  }

  /**
   * Moves key groups to the assignment that `target` gives (computed once the calls before this
   * one have applied). Ordered like every other call (it waits behind a barrier already up, so
   * moves never overlap); it raises its own barrier, waits for the calls posted before it, and
   * lowers the barrier when done. Resolves to the new assignment.
   */
  private reassign(target: () => { next: Uint8Array; n: number } | Promise<{ next: Uint8Array; n: number }>): Promise<Uint8Array> {
    return this.gate(() => this.reassignNow(target));
  }

  private reassignNow(target: () => { next: Uint8Array; n: number } | Promise<{ next: Uint8Array; n: number }>): Promise<Uint8Array> {
    // The calls posted before this one (this call itself is not yet in the set).
    const before = [...this.inflight];
    const run = async (): Promise<Uint8Array> => {
      await Promise.allSettled(before);
      // Nothing has moved if this fails: the backend stays as it was.
      const { next, n } = await target();
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
          for (const op of this.ops.values()) {
            op.lateBase += await s.call<bigint>({ op: 'late', id: op.id });
          }
          if (this.workers) (await s.call<Float64Array>({ op: 'kgEvents' })).forEach((x, kg) => (this.kgEvents[kg]! += x));
          await s.close();
        }
        // Key groups moved: every shard's next checkpoint is a full one.
        for (const op of this.ops.values()) await this.broadcast({ op: 'forceFull', id: op.id });
        this.assign = next;
        await Promise.all(this.sendOwnership(next));
        this.epoch++;
        return next;
      } catch (e) {
        this.failure = new CairnError('internal', 'rescale failed part-way; this backend must be restored from a checkpoint', { cause: e });
        throw this.failure;
      }
    };
    const p = run();
    const barrier: Promise<void> = p.then(() => undefined, () => undefined).then(() => {
      if (this.barrier === barrier) this.lower();
    });
    this.barrier = barrier;
    return p;
  }

  async memory(): Promise<MemoryStats[]> {
    return this.broadcast<MemoryStats>({ op: 'memory' });
  }

  /**
   * Stops every shard once every call made before this one has finished, those still queued
   * (behind a rescale, or for a vote slot) included; calls that reach the manager afterwards fail
   * with `closed` instead of running on shards that are gone (or starting new ones).
   */
  async close(): Promise<void> {
    while (this.inflight.size > 0 || this.queue.length > 0) {
      if (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      // Nothing in flight: no barrier or vote slot can still hold the queue back.
      else this.lower();
    }
    this.closed = true;
    await Promise.all(this.shards.map((s) => s.close()));
    this.shards = [];
  }
}

/**
 * A copy of the batch packed into one pooled buffer (transferable as a whole, and given back by the
 * shard once copied), so no column's larger underlying buffer is ever cloned.
 */
function compactBatch(b: EncodedBatch, pool: BufferPool<ArrayBuffer> | BufferPool<SharedArrayBuffer>): EncodedBatch {
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

function capReached(shard: number): CairnError {
  return new CairnError('unavailable', `ingest: shard ${shard} memory cap reached, or one of its tables would pass 1 GiB (the most one table may hold: use more shards); nothing was changed (the batch applies on every shard or on none)`);
}

function checkShardCount(n: number, keyGroups: number): void {
  if (!Number.isInteger(n) || n < 1 || n > SHARDS_MAX || n > keyGroups) {
    throw new CairnError('invalid', `shards: expected an integer in [1, min(${SHARDS_MAX}, keyGroups=${keyGroups})], found ${n}`);
  }
}
