/**
 * Random workloads for checkpoint and recovery tests: a sequence of operations (ingest, advance
 * watermark, delete, checkpoint, rescale) applied both to Cairn and to the reference models, so
 * any restored state can be checked by replaying the remaining operations on both.
 */
import * as assert from 'uvu/assert';
import { StateBackend, MemoryCheckpointStorage, type AggregateOperator, type CheckpointResult } from '../../src/index.js';
import { WindowModel } from '../oracle/window-model.js';
import { AggregateModel } from '../oracle/aggregate-model.js';
import { genEvents, toColumns, Rng, type GenRow } from '../oracle/gen.js';
import { rowsOf, type PlainRow } from '../helpers.js';

export const AGGS = { n: { fn: 'count' }, s: { fn: 'sum', field: 'amount' }, lo: { fn: 'min', field: 'amount' }, l: { fn: 'last', field: 'amount' } } as const;
export const WINDOW = { kind: 'hopping', size: 300, slide: 100 } as const;
export const LATENESS = 100;

export type Op =
  | { kind: 'ingest'; rows: GenRow[] }
  | { kind: 'advance'; t: number }
  | { kind: 'delete'; key: string | bigint }
  | { kind: 'checkpoint' }
  | { kind: 'rescale'; shards: number };

export function genScenario(seed: number, opts: { steps: number; keyType: 'int64' | 'utf8'; rescale?: boolean; keys?: number }): Op[] {
  const rng = new Rng(seed);
  const rows = genEvents({ seed, n: opts.steps * 60, keys: opts.keys ?? 150, keyType: opts.keyType, disorderMs: 120, timeSpread: opts.steps * 200, nullRate: 0.05, skew: 0.6 });
  const ops: Op[] = [];
  let at = 0;
  for (let i = 0; i < opts.steps; i++) {
    const r = rng.int(0, 9);
    if (r < 5) {
      const n = rng.int(1, 120);
      ops.push({ kind: 'ingest', rows: rows.slice(at, at + n) });
      at += n;
    } else if (r < 7) {
      const newest = rows[Math.max(0, at - 1)]?.time ?? 0;
      ops.push({ kind: 'advance', t: newest - rng.int(0, 200) });
    } else if (r < 8 && at > 0) {
      ops.push({ kind: 'delete', key: rows[rng.int(0, at - 1)]!.key });
    } else if (r < 9 || !opts.rescale) {
      ops.push({ kind: 'checkpoint' });
    } else {
      ops.push({ kind: 'rescale', shards: rng.int(1, 4) });
    }
  }
  ops.push({ kind: 'checkpoint' });
  return ops;
}

/** The reference: a window model for 'w' and an aggregate model for 'r'. */
export class Reference {
  readonly w: WindowModel;
  readonly r: AggregateModel;
  constructor(keyType: 'int64' | 'utf8') {
    this.w = new WindowModel({ keyType, window: WINDOW, allowedLateness: LATENESS, aggregates: AGGS as never });
    this.r = new AggregateModel({ keyType, time: true, aggregates: AGGS as never });
  }
  apply(op: Op): PlainRow[] | null {
    switch (op.kind) {
      case 'ingest':
        this.w.ingest(op.rows as never);
        this.r.ingest(op.rows as never);
        return null;
      case 'advance':
        return this.w.advanceWatermark(op.t) as PlainRow[];
      case 'delete':
        this.r.delete(op.key);
        return null;
      default:
        return null;
    }
  }
}

export interface Operators { w: AggregateOperator; r: AggregateOperator }

export function declare(b: StateBackend, keyType: 'int64' | 'utf8'): Operators {
  return {
    w: b.aggregate('w', { key: { field: 'user', type: keyType }, time: 'ts', window: WINDOW, aggregates: AGGS, allowedLateness: LATENESS }),
    r: b.aggregate('r', { key: { field: 'user', type: keyType }, time: 'ts', aggregates: AGGS }),
  };
}

/** Applies one op to Cairn; returns fired rows for advances and the result for checkpoints. */
export async function applyToBackend(b: StateBackend, o: Operators, op: Op, keyType: 'int64' | 'utf8'): Promise<PlainRow[] | CheckpointResult | null> {
  switch (op.kind) {
    case 'ingest':
      if (op.rows.length === 0) return null;
      await Promise.all([o.w.ingest(toColumns(op.rows, { keyType })), o.r.ingest(toColumns(op.rows, { keyType }))]);
      return null;
    case 'advance':
      return rowsOf(await o.w.advanceWatermark(op.t), 'user');
    case 'delete':
      await o.r.delete(op.key);
      return null;
    case 'checkpoint':
      return b.checkpoint({ step: 'x' });
    case 'rescale':
      await b.rescale(op.shards);
      return null;
  }
}

/** Replays ops[from..] on a restored backend and a reference replayed to `from`, comparing everything. */
export async function checkReplay(b: StateBackend, ops: Op[], from: number, keyType: 'int64' | 'utf8', label: string): Promise<void> {
  const ref = new Reference(keyType);
  for (let i = 0; i < from; i++) ref.apply(ops[i]!);
  const o = declare(b, keyType);
  assert.equal(rowsOf(await o.r.toArrow(), 'user'), ref.r.rows(), `${label}: running state right after restore`);
  for (let i = from; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.kind === 'checkpoint' || op.kind === 'rescale') continue;
    const got = await applyToBackend(b, o, op, keyType);
    const want = ref.apply(op);
    if (want) assert.equal(got, want, `${label}: op ${i} (${op.kind}) output`);
  }
  const end = 10_000_000;
  assert.equal(rowsOf(await o.w.advanceWatermark(end), 'user'), ref.w.advanceWatermark(end), `${label}: final firing`);
  assert.equal(rowsOf(await o.r.toArrow(), 'user'), ref.r.rows(), `${label}: final running state`);
  assert.is(await o.w.lateEvents(), ref.w.lateEvents, `${label}: late events`);
}

/**
 * Two checkpoints in memory storage of one count operator: three keys in the first, a fourth key
 * after it in the second (a delta). For tests that damage one of them.
 */
export async function twoCheckpoints(shards = 1): Promise<{ storage: MemoryCheckpointStorage; c1: number; c2: number }> {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ shards, checkpoints: { storage } });
  const r = b.aggregate('r', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  await r.ingest({ k: BigInt64Array.of(1n, 2n, 3n) });
  const c1 = await b.checkpoint();
  await r.ingest({ k: BigInt64Array.of(4n) });
  const c2 = await b.checkpoint();
  await b.close();
  return { storage, c1: c1.id, c2: c2.id };
}
