/**
 * ShardHost executes shard requests against one Wasm instance. It runs in-process (LocalShard) or
 * inside a worker thread (worker.ts); either way it is the single owner of its instance's memory.
 */
import { WasmCore, type StagedBatch } from '../../bindings/core.js';
import type { EncodedBatch, StoreConfig } from '../../bindings/types.js';
import { CairnError } from '../errors.js';
import type { CaptureInfo, ShardRequest, ShardResponse, StoreStats } from './protocol.js';
import { MODE_FULL } from '../../bindings/exports.js';
import { BufferPool, POOL_BUFFER_BYTES_MIN } from './pool.js';

/** Pages (of 8 rows) a capture in progress copies along with each other request: about 0.2 ms. */
export const CAPTURE_PIGGYBACK_PAGES = 1024;

export class ShardHost {
  private readonly core: WasmCore;
  private readonly stores = new Map<number, { h: number; cfg: StoreConfig }>();
  /**
   * Captures not yet read out: the newest capture of each store stays in Wasm memory (`held`);
   * when a store is captured again before that one was released, the older one is first copied
   * out whole (`stashed`), so overlapping checkpoints never see each other's bytes.
   */
  private readonly held = new Map<number, number>();
  private readonly stashed = new Map<number, Uint8Array>();
  private nextToken = 1;
  /** Stores with a full capture still copying pages (see 'captureStep'). */
  private readonly capturing = new Set<number>();
  /** One-shot callbacks run after the next request is handled (LocalShard's deferred steps). */
  private afterNext: (() => void)[] = [];
  /** The key groups this shard owns ('owns'), and the events of broadcast batches applied per key group. */
  private owned: Uint8Array | null = null;
  private kgEvents: Float64Array | null = null;
  /** A broadcast batch filtered into scratch by `stage`, which its ingest request then applies. */
  private staged: { id: number; batch: EncodedBatch; s: StagedBatch } | null = null;
  /**
   * Buffers for the columns of fired windows and exports: a caller that merged several shards'
   * outputs (so copied them) gives their buffers back (ShardManager.recycle), and the next outputs
   * reuse them instead of faulting in fresh pages.
   */
  readonly outPool = new BufferPool();
  /**
   * Small columns (most advances fire nothing) get buffers of their own: a pooled one would be
   * sent whole, and a small output returned as it is (one shard's part) would pin it. Pooled ones
   * are at most twice the bytes asked for.
   */
  private readonly outAlloc = (bytes: number): ArrayBuffer =>
    bytes >= POOL_BUFFER_BYTES_MIN ? this.outPool.take(bytes, 2) : new ArrayBuffer(bytes);

  constructor(memCapBytes?: number) {
    this.core = new WasmCore(memCapBytes);
  }

  private store(id: number): { h: number; cfg: StoreConfig } {
    const s = this.stores.get(id);
    if (!s) throw new CairnError('internal', `shard has no operator ${id}`);
    return s;
  }

  /** Copies a store's held capture out of Wasm memory before its buffer is reused. */
  private stashHeld(id: number, h: number): void {
    const token = this.held.get(id);
    if (token === undefined) return;
    this.stashed.set(token, this.core.readSnapshot(h, 0, this.core.ex.snapshotLen(h)));
    this.held.delete(id);
    this.core.releaseSnapshot(h);
  }

  handle(req: ShardRequest): ShardResponse {
    const out = this.dispatch(req);
    // Captures in progress also advance a little with every other request: the coordinator's steps
    // wait for the event loop, and a caller that keeps the loop busy (ingest calls awaited back to
    // back on an in-process shard resolve as microtasks) would otherwise hold them off indefinitely.
    // Not on the capture request itself: its answer is the cut, which is what holds up ingest.
    if (this.capturing.size > 0 && req.op !== 'captureStep' && req.op !== 'capture') {
      for (const h of this.capturing) {
        if (this.core.captureStep(h, CAPTURE_PIGGYBACK_PAGES) === 0) this.capturing.delete(h);
      }
    }
    if (this.afterNext.length > 0) {
      const run = this.afterNext;
      this.afterNext = [];
      for (const f of run) f();
    }
    return out;
  }

  /**
   * Copies a broadcast batch into Wasm memory and keeps this shard's events, before the shard votes
   * on it: returns what it kept and whether that fits under the memory cap. The ingest request of
   * the same batch, handled next, applies them without copying again.
   */
  stage(id: number, batch: EncodedBatch): { n: number; keyBytes: number; fits: boolean } {
    const h = this.store(id).h;
    const s = this.filter(batch);
    this.staged = { id, batch, s };
    return { n: s.n, keyBytes: s.keyBytes, fits: this.core.ingestFits(h, s.n, s.keyBytes) };
  }

  /**
   * Whether `events` more events with `keyBytes` key bytes, spread in any way over this shard's
   * stores, fit under the memory cap in the worst case (each store's worst case for all of them).
   */
  creditFits(events: number, keyBytes: number): boolean {
    const ex = this.core.ex;
    let need = 0;
    for (const { h } of this.stores.values()) need += Math.max(0, ex.ingestWorstBytes(h, events, keyBytes));
    return (ex.memUsed() >>> 0) + need <= ex.memCap() >>> 0;
  }

  private filter(batch: EncodedBatch): StagedBatch {
    if (!this.owned) throw new CairnError('internal', 'shard: a broadcast batch before the shard knows its key groups');
    return this.core.stageOwned(batch, this.owned.length, this.owned);
  }

  /** Runs `f` once, right after the next request is handled. */
  afterNextRequest(f: () => void): void {
    this.afterNext.push(f);
  }

  private dispatch(req: ShardRequest): ShardResponse {
    const core = this.core;
    switch (req.op) {
      case 'open': {
        const h = core.openStore(req.cfg);
        this.stores.set(req.id, { h, cfg: req.cfg });
        return h;
      }
      case 'ingest': {
        const s = this.store(req.id);
        if (!req.owned) return core.ingest(s.h, req.batch, req.seqBase);
        const st = this.staged !== null && this.staged.id === req.id && this.staged.batch === req.batch ? this.staged.s : this.filter(req.batch);
        this.staged = null;
        // Sent on credit (credit.ts): applied on every shard, so here too, past the cap if need be.
        const accepted = req.credit && !core.ingestFits(s.h, st.n, st.keyBytes)
          ? core.withCapLifted(() => core.ingestStaged(s.h, st, req.seqBase))
          : core.ingestStaged(s.h, st, req.seqBase);
        const ev = this.kgEvents!;
        st.kgCounts.forEach((c, kg) => (ev[kg]! += c));
        return accepted;
      }
      case 'owns': {
        if (req.mask.length !== req.keyGroups) throw new CairnError('internal', `owns: expected ${req.keyGroups} flags, found ${req.mask.length}`);
        this.owned = req.mask.slice();
        if (this.kgEvents?.length !== req.keyGroups) this.kgEvents = new Float64Array(req.keyGroups);
        return null;
      }
      case 'kgEvents': return this.kgEvents ? this.kgEvents.slice() : new Float64Array(0);
      case 'fits': return core.ingestFits(this.store(req.id).h, req.n, req.keyBytes);
      case 'advance': {
        const s = this.store(req.id);
        return core.advance(s.h, req.t, s.cfg, this.outAlloc);
      }
      case 'export': {
        const s = this.store(req.id);
        return core.exportRows(s.h, s.cfg, this.outAlloc);
      }
      case 'get': {
        const s = this.store(req.id);
        return core.getRow(s.h, req.key, s.cfg) ?? null;
      }
      case 'delete': return core.deleteKey(this.store(req.id).h, req.key);
      case 'vput': {
        core.valuePut(this.store(req.id).h, req.key, req.value);
        return null;
      }
      case 'vget': return core.valueGet(this.store(req.id).h, req.key) ?? null;
      case 'capture': {
        const t0 = performance.now();
        const h = this.store(req.id).h;
        this.stashHeld(req.id, h);
        const full = req.mode === MODE_FULL && req.mask === null;
        const length = full ? core.captureBegin(h, req.keyGroups) : core.capture(h, req.mode, req.keyGroups, req.mask);
        const info: CaptureInfo = { token: this.nextToken++, length, pending: full ? core.captureStep(h, 0) : 0, ms: 0 };
        info.ms = performance.now() - t0;
        this.held.set(req.id, info.token);
        if (info.pending > 0) this.capturing.add(h);
        return info;
      }
      case 'captureStep': {
        // A stashed capture is complete; a released one needs nothing more.
        if (this.held.get(req.id) !== req.token) return 0;
        const h = this.store(req.id).h;
        const left = core.captureStep(h, req.pages);
        if (left === 0) this.capturing.delete(h);
        return left;
      }
      case 'captureBytes': {
        const h = this.store(req.id).h;
        this.stashHeld(req.id, h);
        return core.captureBytes(h, req.mode, req.keyGroups, req.mask);
      }
      case 'snapRead': {
        const stash = this.stashed.get(req.token);
        if (stash) return stash.slice(req.offset, req.offset + req.length);
        if (this.held.get(req.id) !== req.token) throw new CairnError('internal', `snapshot ${req.token} of operator ${req.id} is not held`);
        return core.readSnapshot(this.store(req.id).h, req.offset, req.length);
      }
      case 'snapRelease': {
        if (this.stashed.delete(req.token)) return null;
        if (this.held.get(req.id) === req.token) {
          this.held.delete(req.id);
          core.releaseSnapshot(this.store(req.id).h);
        }
        return null;
      }
      case 'load': return core.load(this.store(req.id).h, req.bytes, req.keyGroups, req.mask);
      case 'drop': return core.dropKeyGroups(this.store(req.id).h, req.keyGroups, req.mask);
      case 'forceFull': {
        core.ex.forceFull(this.store(req.id).h);
        return null;
      }
      case 'setState': {
        const h = this.store(req.id).h;
        core.check(core.ex.setWatermark(h, req.watermark), 'set watermark');
        core.ex.setLateEvents(h, req.lateEvents);
        return null;
      }
      case 'stats': {
        const h = this.store(req.id).h;
        const kg = core.keyGroupStats(h, req.keyGroups);
        const stats: StoreStats = {
          rows: core.check(core.ex.liveRows(h), 'stats'),
          lateEvents: core.ex.lateEvents(h),
          watermark: core.ex.watermark(h),
          keyGroupRows: kg.rows,
          keyGroupBytes: kg.bytes,
        };
        return stats;
      }
      case 'late': return core.ex.lateEvents(this.store(req.id).h);
      case 'memory': return { usedBytes: core.memUsedBytes(), memoryBytes: core.memoryBytes(), transientBytes: core.ex.memTransient() };
      case 'crash': throw new CairnError('internal', 'shard crash requested (test hook)');
    }
  }
}
