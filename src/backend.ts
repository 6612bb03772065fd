/**
 * StateBackend: the public entry point. It owns the shard manager and the operators declared on it,
 * and (see checkpoint/) takes and restores consistent checkpoints of all of them.
 */
import { CairnError } from './errors.js';
import { ShardManager } from './shard/manager.js';
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
  /** Number of shards (default 1). */
  shards?: number;
  /** Key groups, fixed for the life of the state (default 128, at most 32768). */
  keyGroups?: number;
  /** Run shards on worker threads (default false: in-process). */
  workers?: boolean;
  /** Memory cap per shard in bytes (default just under 2 GiB). */
  memoryCapBytes?: number;
}

export interface ShardMetrics {
  shard: number;
  events: number;
  rows: number;
  stateBytes: number;
  memoryBytes: number;
}

export interface Metrics {
  shards: ShardMetrics[];
  keyGroups: { keyGroup: number; shard: number; events: number; rows: number }[];
  lateEvents: number;
  /** Largest shard load over mean shard load (events, or rows when no events were routed). */
  skew: number;
}

type Operator = { kind: 'aggregate'; op: AggregateOperator } | { kind: 'value'; op: ValueState };

export class StateBackend implements OperatorHost {
  readonly manager: ShardManager;
  protected readonly operators = new Map<string, Operator>();
  private nextId = 0;
  private closed = false;
  private openFailure: unknown = null;

  protected constructor(manager: ShardManager) {
    this.manager = manager;
  }

  static async open(options: OpenOptions = {}): Promise<StateBackend> {
    const known = ['shards', 'keyGroups', 'workers', 'memoryCapBytes'];
    for (const k of Object.keys(options)) {
      if (!known.includes(k)) throw new CairnError('invalid', `open: unknown option '${k}' (expected one of ${known.join(', ')})`);
    }
    const manager = new ShardManager({
      shards: options.shards ?? 1,
      keyGroups: options.keyGroups ?? DEFAULT_KEY_GROUPS,
      workers: options.workers ?? false,
      ...(options.memoryCapBytes !== undefined ? { memCapBytes: options.memoryCapBytes } : {}),
    });
    await manager.memory(); // fail fast if a shard cannot start
    return new StateBackend(manager);
  }

  assertOpen(): void {
    if (this.closed) throw new CairnError('closed', 'the backend is closed');
    if (this.openFailure) throw new CairnError('internal', 'an operator failed to open', { cause: this.openFailure });
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
    this.register(id, norm);
    const state = this.manager.ops.get(id)!;
    const op = new AggregateOperator(name, id, norm, this, state);
    this.operators.set(name, { kind: 'aggregate', op });
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
    this.register(id, norm);
    const op = new ValueState(name, id, norm, this);
    this.operators.set(name, { kind: 'value', op });
    return op;
  }

  private existing(name: string, norm: NormalizedSpec): Operator | undefined {
    const e = this.operators.get(name);
    if (!e) return undefined;
    const diff = specDifference(e.op.spec, norm);
    if (diff) throw new CairnError('invalid', `operator '${name}' already exists with a different spec: ${diff}`);
    return e;
  }

  private register(id: number, norm: NormalizedSpec): void {
    if (this.operators.size >= OPERATORS_MAX) throw new CairnError('invalid', `at most ${OPERATORS_MAX} operators`);
    // Posted now, so it is ordered before anything the caller does with the operator.
    this.manager.openOperator(id, storeConfigOf(norm)).catch((e) => { this.openFailure = e; });
  }

  /** Moves key groups to `n` shards. State is neither lost nor duplicated. */
  async rescale(n: number): Promise<void> {
    this.assertOpen();
    await this.manager.rescale(n);
  }

  /** Moves key groups so shard loads even out; returns the new assignment (key group -> shard). */
  async rebalance(): Promise<Uint8Array> {
    this.assertOpen();
    const m = await this.metrics();
    const load = new Float64Array(this.keyGroups);
    const useEvents = m.keyGroups.some((k) => k.events > 0);
    for (const k of m.keyGroups) load[k.keyGroup] = useEvents ? k.events : k.rows;
    return this.manager.rebalance(load);
  }

  async metrics(): Promise<Metrics> {
    this.assertOpen();
    const m = this.manager;
    const ops = [...this.operators.values()];
    return m.gate(async () => {
      const mem = await m.broadcast<MemoryStats>({ op: 'memory' });
      const kgRows = new Float64Array(m.keyGroups);
      const shardRows = new Array(m.shardCount).fill(0);
      let late = 0n;
      for (const o of ops) {
        const st = await m.broadcast<StoreStats>({ op: 'stats', id: o.op.id, keyGroups: m.keyGroups });
        st.forEach((s, i) => {
          shardRows[i] += s.rows;
          late += s.lateEvents;
          s.keyGroupRows.forEach((r, kg) => (kgRows[kg]! += r));
        });
        late += m.ops.get(o.op.id)!.lateBase;
      }
      const shards = mem.map((x, i) => ({ shard: i, events: m.shardEvents[i]!, rows: shardRows[i], stateBytes: x.usedBytes, memoryBytes: x.memoryBytes }));
      const loads = shards.map((s) => s.events);
      const basis = loads.some((x) => x > 0) ? loads : shards.map((s) => s.rows);
      const mean = basis.reduce((a, b) => a + b, 0) / basis.length;
      const skew = mean > 0 ? Math.max(...basis) / mean : 1;
      const keyGroups = Array.from({ length: m.keyGroups }, (_, kg) => ({ keyGroup: kg, shard: m.assign[kg]!, events: m.kgEvents[kg]!, rows: kgRows[kg]! }));
      return { shards, keyGroups, lateEvents: Number(late), skew };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.manager.close();
  }
}
