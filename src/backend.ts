/**
 * StateBackend: the public entry point. It owns the shard manager and the operators declared on it,
 * and (see checkpoint/) takes and restores consistent checkpoints of all of them.
 */
import { CairnError } from './errors.js';
import { CheckpointCoordinator, checkCoordinatorOptions, type CheckpointResult, type CheckpointOperator, type CheckpointSource } from './checkpoint/coordinator.js';
import { findCheckpoint, listCheckpointIds, nextCheckpointId } from './checkpoint/restore.js';
import type { Manifest, OperatorEntry } from './checkpoint/manifest.js';
import type { CheckpointStorage } from './storage/storage.js';
import { defaultCodec, type Codec } from './codec/codec.js';
import { contiguousAssignment } from './shard/router.js';
import { WATERMARK_MIN } from './store/aggregate-operator.js';
import { ShardManager, type OperatorShardState } from './shard/manager.js';
import type { MemoryStats, StoreStats } from './shard/protocol.js';
import { AggregateOperator, type OperatorHost } from './store/aggregate-operator.js';
import { ValueState } from './store/value-state.js';
import {
  normalizeAggregateSpec, normalizeValueSpec, storeConfigOf, checkOperatorName, specDifference,
  type AggregateSpec, type ValueSpec, type NormalizedSpec,
} from './store/spec.js';

export const DEFAULT_KEY_GROUPS = 128;
export const OPERATORS_MAX = 1024;

export interface OpenOptions {
  /** Number of shards (default 1; at most 255, and at most keyGroups). */
  shards?: number;
  /** Key groups, fixed for the life of the state (default 128, at most 32768). */
  keyGroups?: number;
  /** Run shards on worker threads (default false: in-process). */
  workers?: boolean;
  /** Memory cap per shard in bytes (default just under 2 GiB). */
  memoryCapBytes?: number;
  /** Where and how checkpoints are written. Without it, checkpoint() is an `invalid` error. */
  checkpoints?: CheckpointOptions;
}

export interface CheckpointOptions {
  storage: CheckpointStorage;
  /** Completed checkpoints to keep (default 3). */
  retain?: number;
  /** Write a new full base once deltas exceed this fraction of it (default 1.0). */
  maxDeltaRatio?: number;
  /** Compression codec (default: native zstd where the runtime has it, else zstd-codec). */
  codec?: Codec;
}

export interface RestoreOptions extends Omit<OpenOptions, 'checkpoints' | 'keyGroups' | 'shards'>, Omit<CheckpointOptions, 'storage'> {
  storage: CheckpointStorage;
  /** Number of shards (default: the checkpoint's, with its assignment of key groups). */
  shards?: number;
  /** Restore this checkpoint instead of the newest one that verifies. */
  checkpointId?: number;
}

export interface RestoreReport {
  checkpointId: number;
  /** Newer checkpoints that did not verify, with the reason. */
  skipped: { id: number; reason: string }[];
}

export interface ShardMetrics {
  shard: number;
  /**
   * Events of the key groups this shard owns now (they move with their key groups). Key groups are
   * known for routed events, that is while there are two or more shards; a single shard's count
   * also holds the events ingested while it was the only one (after a rescale to more shards, no
   * shard counts those).
   */
  events: number;
  rows: number;
  /** Bytes of state (what the memory cap limits). */
  stateBytes: number;
  /** Bytes of transient buffers: scratch, output, sort space, held checkpoint captures. */
  transientBytes: number;
  /** Wasm linear memory of the shard (it only grows). */
  memoryBytes: number;
}

export interface KeyGroupMetrics {
  keyGroup: number;
  /** The shard that owns it now. */
  shard: number;
  /** Events routed to it (counted while there are two or more shards; see ShardMetrics.events). */
  events: number;
  rows: number;
  /**
   * State bytes its rows hold over all operators: records and chain links, their share of the
   * whole index (every slot over the live rows), key and value bytes.
   */
  stateBytes: number;
}

export interface Metrics {
  shards: ShardMetrics[];
  keyGroups: KeyGroupMetrics[];
  lateEvents: number;
  /** Largest shard load over mean shard load (events, or rows when no events were routed). */
  skew: number;
}

type Operator = { kind: 'aggregate'; op: AggregateOperator } | { kind: 'value'; op: ValueState };

export class StateBackend implements OperatorHost, CheckpointSource {
  /** @internal The shards; engines use the methods below. */
  readonly manager: ShardManager;
  protected readonly operators = new Map<string, Operator>();
  private nextId = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private openFailure: unknown = null;
  /**
   * Settles once every operator declared so far has opened on every shard (and loaded its restored
   * state); rejects with the first failure. Calls posted after a failing opening would see partial
   * state, so each one waits on this, as it was when the call was made, before its result counts
   * (see guarded), and a checkpoint before it writes anything.
   */
  private openings: Promise<void> = Promise.resolve();
  private coordinator: CheckpointCoordinator | null = null;
  /** Restored operators not declared again yet: name -> manifest entry and decoded files. */
  private readonly pending = new Map<string, { entry: OperatorEntry; files: Map<string, Uint8Array> }>();
  /** The `meta` stored with the restored checkpoint (undefined when not restored). */
  restoredMeta: unknown = undefined;
  restoreReport: RestoreReport | null = null;

  protected constructor(manager: ShardManager) {
    this.manager = manager;
  }

  static async open(options: OpenOptions = {}): Promise<StateBackend> {
    checkOptions(options, ['shards', 'keyGroups', 'workers', 'memoryCapBytes', 'checkpoints'], 'open');
    if (options.checkpoints !== undefined) {
      checkOptions(options.checkpoints, ['storage', 'retain', 'maxDeltaRatio', 'codec'], 'open: checkpoints');
      checkCoordinatorOptions(options.checkpoints, 'open: checkpoints');
    }
    const manager = new ShardManager({
      shards: options.shards ?? 1,
      keyGroups: options.keyGroups ?? DEFAULT_KEY_GROUPS,
      workers: options.workers ?? false,
      ...(options.memoryCapBytes !== undefined ? { memCapBytes: options.memoryCapBytes } : {}),
    });
    await manager.memory(); // fail fast if a shard cannot start
    const b = new StateBackend(manager);
    if (options.checkpoints) {
      const c = options.checkpoints;
      b.coordinator = new CheckpointCoordinator({ ...c, codec: c.codec ?? defaultCodec() }, manager, null, await nextCheckpointId(c.storage));
    }
    return b;
  }

  /**
   * Restores the newest checkpoint that verifies if `options.checkpoints.storage` holds any, else
   * opens an empty backend: how an engine starts, the first time and after a crash alike. Every
   * failure propagates: storage that cannot be listed ('unavailable') or checkpoints of which none
   * verifies ('corruption') never quietly start over from nothing. `keyGroups`, fixed for the life
   * of the state, must match the checkpoint's when given.
   */
  static async resume(options: OpenOptions & { checkpoints: CheckpointOptions }): Promise<StateBackend> {
    checkOptions(options, ['shards', 'keyGroups', 'workers', 'memoryCapBytes', 'checkpoints'], 'resume');
    if (!options.checkpoints?.storage) throw new CairnError('invalid', 'resume: checkpoints.storage is required');
    checkOptions(options.checkpoints, ['storage', 'retain', 'maxDeltaRatio', 'codec'], 'resume: checkpoints');
    checkCoordinatorOptions(options.checkpoints, 'resume: checkpoints');
    const { storage, ...rest } = options.checkpoints;
    if ((await listCheckpointIds(storage)).length === 0) return StateBackend.open(options);
    const b = await StateBackend.restore({
      storage,
      ...rest,
      ...(options.shards !== undefined ? { shards: options.shards } : {}),
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.memoryCapBytes !== undefined ? { memoryCapBytes: options.memoryCapBytes } : {}),
    });
    if (options.keyGroups !== undefined && options.keyGroups !== b.keyGroups) {
      await b.close();
      throw new CairnError('invalid', `resume: keyGroups: expected the checkpoint's ${b.keyGroups} (fixed for the life of the state), found ${options.keyGroups}`);
    }
    return b;
  }

  /**
   * Restores the newest checkpoint whose files all verify (or `checkpointId`), onto any shard count.
   * Operators come back when the host declares them again with the same spec.
   */
  static async restore(options: RestoreOptions): Promise<StateBackend> {
    checkOptions(options, ['shards', 'workers', 'memoryCapBytes', 'storage', 'checkpointId', 'retain', 'maxDeltaRatio', 'codec'], 'restore');
    if (!options.storage) throw new CairnError('invalid', 'restore: storage is required');
    checkCoordinatorOptions(options, 'restore');
    const found = await findCheckpoint(options.storage, options.checkpointId);
    const m = found.manifest;
    const shards = options.shards ?? m.shards;
    const assignment = shards === m.shards ? Uint8Array.from(m.assignment) : contiguousAssignment(m.keyGroups, shards);
    const manager = new ShardManager({
      shards,
      keyGroups: m.keyGroups,
      workers: options.workers ?? false,
      assignment,
      ...(options.memoryCapBytes !== undefined ? { memCapBytes: options.memoryCapBytes } : {}),
    });
    await manager.memory();
    const b = new StateBackend(manager);
    for (const entry of m.operators) b.pending.set(entry.name, { entry, files: found.files });
    b.restoredMeta = m.meta ?? undefined;
    b.restoreReport = { checkpointId: m.id, skipped: found.skipped };
    const nextId = await nextCheckpointId(options.storage, m.id + 1);
    b.coordinator = new CheckpointCoordinator({
      storage: options.storage,
      codec: options.codec ?? defaultCodec(),
      ...(options.retain !== undefined ? { retain: options.retain } : {}),
      ...(options.maxDeltaRatio !== undefined ? { maxDeltaRatio: options.maxDeltaRatio } : {}),
    }, manager, m as Manifest, nextId);
    return b;
  }

  /**
   * Takes a consistent checkpoint of every operator on every shard: it holds every operation called
   * before this call and none called after. `meta` (JSON) is stored with it and returned on restore.
   */
  checkpoint(meta?: unknown): Promise<CheckpointResult> {
    // Not async, so that its capture is posted in call order; its errors still come as rejections.
    try {
      this.assertOpen();
      if (!this.coordinator) throw new CairnError('invalid', 'checkpoint: the backend was opened without checkpoint storage');
      return this.coordinator.checkpoint(this, meta, this.openings);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The operators a checkpoint captures: those whose opening has left the gate, that is, those
   * declared before the checkpoint in call order (an operator declared after it is still queued,
   * and a restored one then stays among the pending entries).
   * @internal
   */
  liveOperators(): CheckpointOperator[] {
    return [...this.operators.values()].filter((o) => this.manager.ops.has(o.op.id)).map((o) => {
      const state = this.manager.ops.get(o.op.id)!;
      return {
        name: o.op.name,
        id: o.op.id,
        spec: o.op.spec,
        watermark: state.watermark,
        seq: o.kind === 'aggregate' ? o.op.seq : 0n,
        lateEvents: async () => {
          const late = await this.manager.broadcast<bigint>({ op: 'late', id: o.op.id });
          return late.reduce((a, l) => a + l, state.lateBase);
        },
      };
    });
  }

  /** @internal */
  pendingEntries(): OperatorEntry[] {
    return [...this.pending.values()].map((p) => p.entry);
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new CairnError('closed', 'the backend is closed');
    if (this.openFailure) throw openFailureError(this.openFailure);
  }

  /**
   * @internal `p` (a call just posted), unless an operator declared before the call failed to open:
   * then the call saw partial state, and fails with that failure instead.
   */
  guarded<T>(p: Promise<T>): Promise<T> {
    const openings = this.openings;
    return p.then(
      async (v) => {
        await openings;
        return v;
      },
      async (e: unknown) => {
        await openings;
        throw e;
      },
    );
  }

  get shardCount(): number {
    return this.manager.shardCount;
  }

  get keyGroups(): number {
    return this.manager.keyGroups;
  }

  /** Declares (or returns the already declared) aggregate operator `name`. */
  aggregate(name: string, spec: AggregateSpec): AggregateOperator {
    this.assertOpen();
    checkOperatorName(name);
    const norm = normalizeAggregateSpec(spec);
    const existing = this.existing(name, norm);
    if (existing) {
      if (existing.kind !== 'aggregate') throw new CairnError('invalid', `operator '${name}' is value state, not an aggregate`);
      return existing.op;
    }
    const id = this.nextId++;
    const state = this.newOperatorState(id, norm);
    const op = new AggregateOperator(name, id, norm, this, state);
    this.operators.set(name, { kind: 'aggregate', op });
    this.register(name, state, (seq) => (op.seq = seq));
    return op;
  }

  /** Declares (or returns) value state `name`: an opaque byte value per key. */
  values(name: string, spec: ValueSpec): ValueState {
    this.assertOpen();
    checkOperatorName(name);
    const norm = normalizeValueSpec(spec);
    const existing = this.existing(name, norm);
    if (existing) {
      if (existing.kind !== 'value') throw new CairnError('invalid', `operator '${name}' is an aggregate, not value state`);
      return existing.op;
    }
    const id = this.nextId++;
    const state = this.newOperatorState(id, norm);
    const op = new ValueState(name, id, norm, this);
    this.operators.set(name, { kind: 'value', op });
    this.register(name, state, () => undefined);
    return op;
  }

  /**
   * Loads a restored operator's state: every layer's files (base, then deltas) into every shard,
   * each shard keeping the key groups it owns now. Called when the operator's opening leaves the
   * gate (see register), so it precedes any later call and never meets a rescale half-way.
   */
  private restoreOperator(name: string, state: OperatorShardState, setSeq: (seq: bigint) => void): Promise<unknown>[] {
    const p = this.pending.get(name);
    if (!p) return [];
    this.pending.delete(name);
    const m = this.manager;
    const id = state.id;
    const masks = m.shards.map((_, s) => m.assign.map((owner) => (owner === s ? 1 : 0)));
    const late = BigInt(p.entry.lateEvents);
    const watermark = BigInt(p.entry.watermark);
    state.watermark = watermark;
    setSeq(BigInt(p.entry.seq));
    const calls: Promise<unknown>[] = [];
    for (const layer of p.entry.chain) {
      for (const f of layer.files) {
        const bytes = p.files.get(f.name)!;
        masks.forEach((mask, s) => calls.push(m.call(s, { op: 'load', id, bytes, keyGroups: m.keyGroups, mask })));
      }
    }
    masks.forEach((_, s) => calls.push(m.call(s, { op: 'setState', id, watermark, lateEvents: s === 0 ? late : 0n })));
    return calls;
  }

  private existing(name: string, norm: NormalizedSpec): Operator | undefined {
    const pending = this.pending.get(name);
    if (pending) {
      const diff = specDifference(pending.entry.spec, norm);
      if (diff) throw new CairnError('invalid', `operator '${name}' does not match its checkpoint: ${diff}`);
      if (pending.entry.spec.kind !== norm.kind) throw new CairnError('invalid', `operator '${name}' was a ${pending.entry.spec.kind} operator in the checkpoint`);
    }
    const e = this.operators.get(name);
    if (!e) return undefined;
    const diff = specDifference(e.op.spec, norm, 'the declared operator');
    if (diff) throw new CairnError('invalid', `operator '${name}' already exists with a different spec: ${diff}`);
    return e;
  }

  private newOperatorState(id: number, norm: NormalizedSpec): OperatorShardState {
    if (this.operators.size >= OPERATORS_MAX) throw new CairnError('invalid', `at most ${OPERATORS_MAX} operators`);
    return { id, cfg: storeConfigOf(norm), watermark: WATERMARK_MIN, lateBase: 0n };
  }

  /**
   * Opens an operator's store on every shard and, if a restored checkpoint holds it, loads its
   * state: through the gate, so in call order (before anything the caller does with the operator)
   * and never while a rescale moves key groups.
   */
  private register(name: string, state: OperatorShardState, setSeq: (seq: bigint) => void): void {
    const m = this.manager;
    const opened = m.gate(() => Promise.all([m.openOperator(state), ...this.restoreOperator(name, state, setSeq)])).then(
      () => undefined,
      (e: unknown) => {
        this.openFailure ??= e;
        throw openFailureError(this.openFailure);
      },
    );
    this.openings = Promise.all([this.openings, opened]).then(() => undefined);
    // Reported through assertOpen and guarded, never as an unhandled rejection.
    this.openings.catch(() => undefined);
  }

  /** Moves key groups to `n` shards. State is neither lost nor duplicated. */
  async rescale(n: number): Promise<void> {
    this.assertOpen();
    await this.guarded(this.manager.rescale(n));
  }

  /**
   * Moves key groups so shard loads even out; returns the new assignment (key group -> shard). The
   * loads are events routed per key group, or rows when no events were routed, as of this call:
   * it takes its place in call order like every other call.
   */
  async rebalance(): Promise<Uint8Array> {
    this.assertOpen();
    const m = this.manager;
    const ops = [...this.operators.values()];
    return this.guarded(m.rebalance(async () => {
      const events = await m.keyGroupEvents();
      if (events.some((x) => x > 0)) return events;
      const rows = new Float64Array(m.keyGroups);
      for (const o of ops) {
        const st = await m.broadcast<StoreStats>({ op: 'stats', id: o.op.id, keyGroups: m.keyGroups });
        for (const s of st) s.keyGroupRows.forEach((r, kg) => (rows[kg]! += r));
      }
      return rows;
    }));
  }

  async metrics(): Promise<Metrics> {
    this.assertOpen();
    const m = this.manager;
    const ops = [...this.operators.values()];
    return this.guarded(m.gate(async () => {
      // Every request is posted before the first await, so the figures are those at this call.
      const memAsked = m.broadcast<MemoryStats>({ op: 'memory' });
      const statsAsked = ops.map((o) => m.broadcast<StoreStats>({ op: 'stats', id: o.op.id, keyGroups: m.keyGroups }));
      const kgEventsAsked = m.keyGroupEvents();
      const unrouted = m.unroutedEvents;
      let late = ops.reduce((a, o) => a + m.ops.get(o.op.id)!.lateBase, 0n);
      const mem = await memAsked;
      const kgRows = new Float64Array(m.keyGroups);
      const kgBytes = new Float64Array(m.keyGroups);
      const shardRows = new Array(m.shardCount).fill(0);
      for (const asked of statsAsked) {
        const st = await asked;
        st.forEach((s, i) => {
          shardRows[i] += s.rows;
          late += s.lateEvents;
          s.keyGroupRows.forEach((r, kg) => (kgRows[kg]! += r));
          s.keyGroupBytes.forEach((b, kg) => (kgBytes[kg]! += b));
        });
      }
      const kgEvents = await kgEventsAsked;
      const events = m.shardEvents(kgEvents, unrouted);
      const shards = mem.map((x, i) => ({ shard: i, events: events[i]!, rows: shardRows[i], stateBytes: x.usedBytes, transientBytes: x.transientBytes, memoryBytes: x.memoryBytes }));
      const loads = shards.map((s) => s.events);
      const basis = loads.some((x) => x > 0) ? loads : shards.map((s) => s.rows);
      const mean = basis.reduce((a, b) => a + b, 0) / basis.length;
      const skew = mean > 0 ? Math.max(...basis) / mean : 1;
      const keyGroups = Array.from({ length: m.keyGroups }, (_, kg) => ({ keyGroup: kg, shard: m.assign[kg]!, events: kgEvents[kg]!, rows: kgRows[kg]!, stateBytes: Math.round(kgBytes[kg]!) }));
      return { shards, keyGroups, lateEvents: Number(late), skew };
    }));
  }

  /** Waits for checkpoints in progress, then stops every shard; a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.coordinator?.drain();
      await this.manager.close();
    })();
    return this.closing;
  }
}

/** The error every call gets once an operator failed to open or restore (`e`). */
function openFailureError(e: unknown): CairnError {
  if (e instanceof CairnError) return new CairnError(e.kind, `an operator failed to open or restore: ${e.message}`, { cause: e });
  return new CairnError('internal', 'an operator failed to open or restore', { cause: e });
}

function checkOptions(o: object, known: string[], where: string): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new CairnError('invalid', `${where}: expected an options object, found ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o}`);
  }
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new CairnError('invalid', `${where}: unknown option '${k}' (expected one of ${known.join(', ')})`);
  }
}
