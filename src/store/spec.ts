/**
 * Operator specs as users write them, and their validated, normalized form. Every check here runs
 * before any state exists, so a bad spec is an `invalid` error naming the offending part.
 */
import { CairnError } from '../errors.js';
import type { StoreConfig } from '../../bindings/types.js';
import { FN_CODES } from '../../bindings/exports.js';

export type KeyType = 'int64' | 'utf8';
export type AggregateFn = keyof typeof FN_CODES;

export type WindowSpec =
  | { kind: 'tumbling'; size: number }
  | { kind: 'hopping'; size: number; slide: number }
  | { kind: 'session'; gap: number }
  | { kind: 'none'; ttl?: number };

export interface AggregateSpec {
  key: { field: string; type: KeyType };
  /** Event-time field, ms since epoch (number or bigint). Required for windows and TTL. */
  time?: string;
  window?: WindowSpec;
  aggregates: Record<string, { fn: AggregateFn; field?: string }>;
  /** Allowed lateness in ms (default 0). */
  allowedLateness?: number;
}

export interface ValueSpec {
  key: { type: KeyType; field?: string };
}

export const AGGREGATES_MAX = 64;
export const WINDOW_MS_MAX = 365 * 24 * 3600 * 1000 * 100; // a century
export const PANES_PER_WINDOW_MAX = 10_000;
export const OPERATOR_NAME_BYTES_MAX = 128;

/** The normalized spec: what the store is built from and what a checkpoint records. */
export interface NormalizedSpec {
  kind: 'aggregate' | 'value';
  keyField: string;
  keyType: KeyType;
  timeField: string | null;
  window: WindowSpec;
  lateness: number;
  /** Output names in declaration order. */
  names: string[];
  aggs: { name: string; fn: AggregateFn; field: string | null }[];
  /** Distinct value fields in first-use order. */
  fields: string[];
}

function invalid(msg: string): CairnError {
  return new CairnError('invalid', msg);
}

function checkKeys(obj: object, allowed: string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw invalid(`${where}: unknown field '${k}' (expected one of ${allowed.join(', ')})`);
  }
}

/** A user's value in an error message: strings quoted, anything else by its type (a bigint or a symbol would make JSON.stringify throw). */
function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : `a ${typeof v}`;
}

function checkMs(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > WINDOW_MS_MAX) {
    throw invalid(`${what}: expected an integer number of ms in [${min}, ${WINDOW_MS_MAX}], found ${String(v)}`);
  }
  return v;
}

export function checkOperatorName(name: unknown): string {
  // The name is a segment of its checkpoint files' names (data/<operator>/...), which storage
  // refuses when it starts with '.' ('.', '..', hidden files): refused here, at declaration.
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name) || name.length > OPERATOR_NAME_BYTES_MAX) {
    throw invalid(`operator name: expected 1-${OPERATOR_NAME_BYTES_MAX} characters of [A-Za-z0-9_.-], not starting with '.', found ${JSON.stringify(name)}`);
  }
  return name;
}

function checkKeyType(t: unknown, where: string): KeyType {
  if (t !== 'int64' && t !== 'utf8') throw invalid(`${where}: key type must be 'int64' or 'utf8', found ${JSON.stringify(t)}`);
  return t;
}

export function normalizeAggregateSpec(spec: AggregateSpec): NormalizedSpec {
  if (!spec || typeof spec !== 'object') throw invalid('aggregate spec: expected an object');
  checkKeys(spec, ['key', 'time', 'window', 'aggregates', 'allowedLateness'], 'aggregate spec');
  if (!spec.key || typeof spec.key.field !== 'string' || spec.key.field === '') {
    throw invalid('aggregate spec: key.field must be a non-empty string');
  }
  checkKeys(spec.key, ['field', 'type'], 'aggregate spec key');
  const keyType = checkKeyType(spec.key.type, 'aggregate spec key');
  const timeField = spec.time ?? null;
  if (timeField !== null && (typeof timeField !== 'string' || timeField === '')) throw invalid('aggregate spec: time must be a field name');
  if (timeField !== null && timeField === spec.key.field && keyType === 'utf8') {
    throw invalid(`aggregate spec: time field '${timeField}' is the utf8 key field (strings), not a time`);
  }
  const window: WindowSpec = spec.window ?? { kind: 'none' };
  switch (window.kind) {
    case 'tumbling':
      checkKeys(window, ['kind', 'size'], 'tumbling window');
      checkMs(window.size, 'tumbling window size', 1);
      break;
    case 'hopping': {
      checkKeys(window, ['kind', 'size', 'slide'], 'hopping window');
      checkMs(window.size, 'hopping window size', 1);
      checkMs(window.slide, 'hopping window slide', 1);
      if (window.size % window.slide !== 0) {
        throw invalid(`hopping window: slide must divide size, found size ${window.size} and slide ${window.slide}`);
      }
      if (window.size / window.slide > PANES_PER_WINDOW_MAX) {
        throw invalid(`hopping window: size/slide must be at most ${PANES_PER_WINDOW_MAX}, found ${window.size / window.slide}`);
      }
      break;
    }
    case 'session':
      checkKeys(window, ['kind', 'gap'], 'session window');
      checkMs(window.gap, 'session window gap', 1);
      break;
    case 'none':
      checkKeys(window, ['kind', 'ttl'], 'window none');
      if (window.ttl !== undefined) checkMs(window.ttl, 'ttl', 1);
      break;
    default:
      throw invalid(`window.kind: expected tumbling, hopping, session or none, found ${describe((window as { kind: unknown }).kind)}`);
  }
  const windowed = window.kind !== 'none';
  if ((windowed || (window.kind === 'none' && window.ttl)) && timeField === null) {
    throw invalid(`aggregate spec: window '${window.kind}'${window.kind === 'none' ? ' with ttl' : ''} needs a time field`);
  }
  const lateness = spec.allowedLateness ?? 0;
  checkMs(lateness, 'allowedLateness', 0);
  if (!spec.aggregates || typeof spec.aggregates !== 'object') throw invalid('aggregate spec: aggregates must be an object');
  const names = Object.keys(spec.aggregates);
  if (names.length === 0) throw invalid('aggregate spec: at least one aggregate is required');
  if (names.length > AGGREGATES_MAX) throw invalid(`aggregate spec: at most ${AGGREGATES_MAX} aggregates, found ${names.length}`);
  const reserved = new Set([spec.key.field, 'window_start', 'window_end']);
  const fields: string[] = [];
  const aggs = names.map((name) => {
    if (reserved.has(name)) throw invalid(`aggregate '${name}': the name is taken by the key or window columns`);
    const a = spec.aggregates[name]!;
    if (!a || typeof a !== 'object') throw invalid(`aggregate '${name}': expected { fn, field? }`);
    checkKeys(a, ['fn', 'field'], `aggregate '${name}'`);
    // Own names only: `in` would take Object.prototype's (toString, constructor, ...) as functions.
    if (typeof a.fn !== 'string' || !Object.hasOwn(FN_CODES, a.fn)) {
      throw invalid(`aggregate '${name}': unknown function ${describe(a.fn)} (expected one of ${Object.keys(FN_CODES).join(', ')})`);
    }
    const field = a.field ?? null;
    if (field === null && a.fn !== 'count') throw invalid(`aggregate '${name}': ${a.fn} needs a field`);
    if (field !== null && (typeof field !== 'string' || field === '')) throw invalid(`aggregate '${name}': field must be a non-empty string`);
    // A utf8 key column holds strings; aggregates read numbers, so every batch would be refused.
    if (field !== null && field === spec.key.field && keyType === 'utf8') {
      throw invalid(`aggregate '${name}': ${a.fn} of the utf8 key field '${field}' (strings, not numbers)${a.fn === 'count' ? '; count without a field counts its events' : ''}`);
    }
    if (field !== null && !fields.includes(field)) fields.push(field);
    return { name, fn: a.fn, field };
  });
  return { kind: 'aggregate', keyField: spec.key.field, keyType, timeField, window, lateness, names, aggs, fields };
}

export function normalizeValueSpec(spec: ValueSpec): NormalizedSpec {
  if (!spec || typeof spec !== 'object' || !spec.key) throw invalid('value spec: expected { key: { type } }');
  checkKeys(spec, ['key'], 'value spec');
  checkKeys(spec.key, ['type', 'field'], 'value spec key');
  const keyType = checkKeyType(spec.key.type, 'value spec key');
  return {
    kind: 'value', keyField: spec.key.field ?? 'key', keyType, timeField: null, window: { kind: 'none' }, lateness: 0,
    names: [], aggs: [], fields: [],
  };
}

/** The Wasm store configuration of a normalized spec. */
export function storeConfigOf(spec: NormalizedSpec): StoreConfig {
  const w = spec.window;
  return {
    kind: spec.kind,
    keyType: spec.keyType,
    window: w.kind === 'tumbling' ? { kind: 'panes', size: w.size, slide: w.size }
      : w.kind === 'hopping' ? { kind: 'panes', size: w.size, slide: w.slide }
      : w.kind === 'session' ? { kind: 'session', gap: w.gap }
      : { kind: 'none', ttl: w.ttl ?? 0 },
    lateness: spec.lateness,
    eventTime: spec.timeField !== null,
    aggs: spec.aggs.map((a) => ({ fn: FN_CODES[a.fn], field: a.field === null ? -1 : spec.fields.indexOf(a.field) })),
    nFields: spec.fields.length,
  };
}

/** Describes how two specs differ, or returns null when they are the same (for restore checks). */
export function specDifference(stored: NormalizedSpec, given: NormalizedSpec, storedIn = 'checkpoint'): string | null {
  const a = JSON.stringify(stored);
  const b = JSON.stringify(given);
  if (a === b) return null;
  for (const k of Object.keys(stored) as (keyof NormalizedSpec)[]) {
    const x = JSON.stringify(stored[k]);
    const y = JSON.stringify(given[k]);
    if (x !== y) return `${k}: ${storedIn} has ${x}, spec has ${y}`;
  }
  return 'specs differ';
}
