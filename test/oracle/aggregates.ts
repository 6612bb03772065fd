// Aggregate rules shared by the reference models, written straight from the semantics. Every
// aggregate is recomputed from the raw accepted events (kept in arrival order), so there is no
// incremental state to get wrong: sum adds in arrival order, first/last scan for the extreme time.

import { CairnError } from '../../src/errors.js';

export type AggregateFn = 'count' | 'sum' | 'min' | 'max' | 'mean' | 'first' | 'last';
export interface AggregateSpec {
  fn: AggregateFn;
  field?: string;
}
export type AggregateSpecs = Record<string, AggregateSpec>;
export type AggregateValues = Record<string, number | null>;

/** One accepted event as the models keep it. `seq` is the global arrival number. */
export interface ModelEvent {
  seq: number;
  time: number | undefined;
  values: Record<string, number | null>;
}

const FNS: readonly AggregateFn[] = ['count', 'sum', 'min', 'max', 'mean', 'first', 'last'];
const TIME_ABS_MAX = 2 ** 53;

/** Checks an aggregate spec; `reserved` are output column names the model itself uses. */
export function validateSpecs(specs: AggregateSpecs, reserved: readonly string[]): void {
  if (specs === null || typeof specs !== 'object') {
    throw new CairnError('invalid', `expected an aggregates object, found ${specs === null ? 'null' : typeof specs}`);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (reserved.includes(name)) {
      throw new CairnError('invalid', `expected an aggregate name other than ${reserved.join('/')}, found ${name}`);
    }
    if (spec === null || typeof spec !== 'object' || !FNS.includes(spec.fn)) {
      throw new CairnError('invalid', `expected fn in ${FNS.join('|')}, found ${String(spec?.fn)} (aggregate ${name})`);
    }
    if (spec.field !== undefined && typeof spec.field !== 'string') {
      throw new CairnError('invalid', `expected a string field, found ${typeof spec.field} (aggregate ${name})`);
    }
    if (spec.fn !== 'count' && spec.field === undefined) {
      throw new CairnError('invalid', `expected a field for ${spec.fn}, found none (aggregate ${name})`);
    }
  }
}

/** The value fields an aggregate spec reads. */
export function specFields(specs: AggregateSpecs): string[] {
  const fields = new Set<string>();
  for (const spec of Object.values(specs)) if (spec.field !== undefined) fields.add(spec.field);
  return [...fields];
}

/**
 * Normalizes one value: null, undefined and NaN are null; a bigint becomes a double; anything else
 * that is not a number is invalid.
 */
export function normalizeValue(v: unknown, field: string): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'number') {
    throw new CairnError('invalid', `expected a number or null, found ${typeof v} (field ${field})`);
  }
  return Number.isNaN(v) ? null : v;
}

/**
 * Normalizes an event time or throws `invalid`: it must be an integer number or bigint with
 * |t| <= 2^53 ("outside +-2^53" is read as strictly outside, so +-2^53 itself is accepted).
 */
export function normalizeTime(t: unknown): number {
  if (typeof t === 'bigint') {
    if (t < -BigInt(TIME_ABS_MAX) || t > BigInt(TIME_ABS_MAX)) {
      throw new CairnError('invalid', `expected an event time within +-2^53, found ${t}`);
    }
    return Number(t);
  }
  if (typeof t !== 'number' || !Number.isInteger(t) || Math.abs(t) > TIME_ABS_MAX) {
    throw new CairnError('invalid', `expected an integer event time within +-2^53, found ${String(t)}`);
  }
  return t;
}

/** Aggregates over `events` (any order; they are sorted by arrival here). */
export function computeAggregates(specs: AggregateSpecs, events: readonly ModelEvent[], useTime: boolean): AggregateValues {
  const ordered = [...events].sort((a, b) => a.seq - b.seq);
  const out: AggregateValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.fn === 'count' && spec.field === undefined) {
      out[name] = ordered.length;
      continue;
    }
    const field = spec.field as string;
    const present = ordered.filter((e) => e.values[field] !== null && e.values[field] !== undefined);
    const values = present.map((e) => e.values[field] as number);
    out[name] = aggregateOne(spec.fn, values, present, useTime, field);
  }
  return out;
}

function aggregateOne(fn: AggregateFn, values: number[], present: ModelEvent[], useTime: boolean, field: string): number | null {
  if (fn === 'count') return values.length;
  if (values.length === 0) return null;
  switch (fn) {
    case 'sum':
      return sumInOrder(values);
    case 'mean':
      return sumInOrder(values) / values.length;
    case 'min': {
      let m = values[0];
      for (const v of values) if (v < m) m = v;
      return m;
    }
    case 'max': {
      let m = values[0];
      for (const v of values) if (v > m) m = v;
      return m;
    }
    case 'first': {
      if (!useTime) return values[0];
      // Strictly smaller time replaces: on a tie the earliest-arriving event stays.
      let best = present[0];
      for (const e of present) if ((e.time as number) < (best.time as number)) best = e;
      return best.values[field] as number;
    }
    case 'last': {
      if (!useTime) return values[values.length - 1];
      // Larger or equal time replaces: on a tie the latest-arriving event wins.
      let best = present[0];
      for (const e of present) if ((e.time as number) >= (best.time as number)) best = e;
      return best.values[field] as number;
    }
  }
  throw new CairnError('internal', `unhandled aggregate fn ${String(fn)}`);
}

/** Float sum in the given (arrival) order, starting from 0 as an accumulator does. */
function sumInOrder(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}
