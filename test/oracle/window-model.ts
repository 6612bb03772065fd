// Reference model of Cairn's windowed aggregation, written from the semantics (notes/semantics.md):
// per key it keeps the accepted raw events of every live window and recomputes aggregates from them
// when a window is emitted. Window bounds and the watermark are bigints so that floor division and
// comparisons are exact for every event time in +-2^53. Nothing here is incremental or clever.

import { CairnError, invariant } from '../../src/errors.js';
import { computeAggregates, normalizeTime, specFields, validateSpecs, type AggregateSpecs, type AggregateValues, type ModelEvent } from './aggregates.js';
import { compareKeys, keyId, normalizeKey, type Key, type KeyType } from './keys.js';
import { normalizeBatch, type ModelRow } from './rows.js';

export type WindowSpec =
  | { kind: 'tumbling'; size: number }
  | { kind: 'hopping'; size: number; slide: number }
  | { kind: 'session'; gap: number }
  | { kind: 'none'; ttl?: number };

export interface WindowModelOptions {
  keyType: KeyType;
  window: WindowSpec;
  /** Allowed lateness L in ms (>= 0, default 0); ignored for kind 'none'. */
  allowedLateness?: number;
  aggregates: AggregateSpecs;
}

/** An emitted (or live) window row; window bounds are plain numbers (ms). */
export type WindowRow = { key: Key; window_start: number; window_end: number } & AggregateValues;
export type KeyRow = { key: Key } & AggregateValues;

interface LiveWindow {
  key: Key;
  start: bigint;
  end: bigint;
  /** Accepted events in arrival order. */
  events: ModelEvent[];
  /** Never emitted, or changed since it was last emitted. */
  dirty: boolean;
}

interface RunningKey {
  key: Key;
  events: ModelEvent[];
  timeMax: number;
}

function positiveInteger(v: unknown, what: string): bigint {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new CairnError('invalid', `expected a positive integer ${what}, found ${String(v)}`);
  }
  return BigInt(v);
}

/** Floor division for bigints (BigInt division truncates toward zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class WindowModel {
  readonly keyType: KeyType;
  readonly window: WindowSpec;
  readonly aggregates: AggregateSpecs;
  /** Events dropped because they fit no live window (each counted once). */
  lateEvents = 0;

  private readonly lateness: bigint;
  private readonly size: bigint; // tumbling/hopping window size, session gap, or 0 for 'none'
  private readonly slide: bigint; // hopping slide; equals size for tumbling
  private readonly ttl: bigint | undefined;
  private readonly fields: string[];
  /** Watermark; null is -infinity. */
  private W: bigint | null = null;
  private seq = 0;
  /** Live windows per key (tumbling, hopping, session). */
  private readonly perKey = new Map<string, LiveWindow[]>();
  /** Running aggregates per key (kind 'none'). */
  private readonly running = new Map<string, RunningKey>();

  constructor(options: WindowModelOptions) {
    if (options.keyType !== 'utf8' && options.keyType !== 'int64') {
      throw new CairnError('invalid', `expected keyType utf8 or int64, found ${String(options.keyType)}`);
    }
    const w = options.window;
    this.size = 0n;
    this.slide = 0n;
    switch (w?.kind) {
      case 'tumbling':
        this.size = positiveInteger(w.size, 'window size');
        this.slide = this.size;
        break;
      case 'hopping':
        this.size = positiveInteger(w.size, 'window size');
        this.slide = positiveInteger(w.slide, 'window slide');
        if (this.size % this.slide !== 0n) {
          throw new CairnError('invalid', `expected a slide that divides the size, found size ${w.size} slide ${w.slide}`);
        }
        break;
      case 'session':
        this.size = positiveInteger(w.gap, 'session gap');
        break;
      case 'none':
        this.ttl = w.ttl === undefined ? undefined : positiveInteger(w.ttl, 'ttl');
        break;
      default:
        throw new CairnError('invalid', `expected window kind tumbling|hopping|session|none, found ${String((w as { kind?: unknown })?.kind)}`);
    }
    const L = options.allowedLateness ?? 0;
    if (typeof L !== 'number' || !Number.isSafeInteger(L) || L < 0) {
      throw new CairnError('invalid', `expected allowedLateness to be a non-negative integer, found ${String(L)}`);
    }
    this.lateness = BigInt(L);
    const reserved = w.kind === 'none' ? ['key'] : ['key', 'window_start', 'window_end'];
    validateSpecs(options.aggregates, reserved);
    this.keyType = options.keyType;
    this.window = w;
    this.aggregates = options.aggregates;
    this.fields = specFields(options.aggregates);
  }

  /** Current watermark in ms (-Infinity before the first advance). */
  get watermark(): number {
    return this.W === null ? -Infinity : Number(this.W);
  }

  /** True when the watermark has reached `t` (t <= W). */
  private reached(t: bigint): boolean {
    return this.W !== null && t <= this.W;
  }

  /** Applies a batch in order; an invalid row rejects the whole batch and changes nothing. */
  ingest(rows: readonly ModelRow[]): void {
    const batch = normalizeBatch(rows, this.keyType, true, this.fields);
    for (const row of batch) {
      const ev: ModelEvent = { seq: this.seq++, time: row.time, values: row.values };
      const t = BigInt(row.time as number);
      const id = keyId(row.key);
      if (this.window.kind === 'none') {
        let entry = this.running.get(id);
        // With a TTL, an event that would create a key the watermark has already expired
        // (t + ttl reached) is late; an event for a live key (evicted at the last advance
        // otherwise) is applied.
        if (entry === undefined && this.ttl !== undefined && this.reached(t + this.ttl)) {
          this.lateEvents++;
          continue;
        }
        if (entry === undefined) {
          entry = { key: row.key, events: [], timeMax: row.time as number };
          this.running.set(id, entry);
        }
        entry.events.push(ev);
        entry.timeMax = Math.max(entry.timeMax, row.time as number);
        continue;
      }
      const list = this.perKey.get(id) ?? [];
      this.perKey.set(id, list);
      const accepted = this.window.kind === 'session' ? this.acceptSession(row.key, list, ev, t) : this.acceptFixed(row.key, list, ev, t);
      if (!accepted) this.lateEvents++;
      if (list.length === 0) this.perKey.delete(id);
    }
  }

  /** Starts of every window containing t: multiples s of slide with s <= t < s + size. */
  private windowStarts(t: bigint): bigint[] {
    const starts: bigint[] = [];
    for (let s = floorDiv(t, this.slide) * this.slide; s > t - this.size; s -= this.slide) starts.push(s);
    return starts;
  }

  private acceptFixed(key: Key, list: LiveWindow[], ev: ModelEvent, t: bigint): boolean {
    let accepted = false;
    for (const start of this.windowStarts(t)) {
      const end = start + this.size;
      if (this.reached(end + this.lateness)) continue; // this window is past end + L: too late for it
      let w = list.find((x) => x.start === start);
      if (w === undefined) {
        w = { key, start, end, events: [], dirty: true };
        list.push(w);
      }
      w.events.push(ev);
      w.dirty = true;
      accepted = true;
    }
    return accepted;
  }

  private acceptSession(key: Key, list: LiveWindow[], ev: ModelEvent, t: bigint): boolean {
    const gap = this.size;
    if (this.reached(t + gap + this.lateness)) return false;
    const merged: LiveWindow = { key, start: t, end: t + gap, events: [ev], dirty: true };
    // Absorb overlapping live sessions until none overlaps (transitive merge, to a fixpoint).
    for (;;) {
      const i = list.findIndex((s) => s.start < merged.end && merged.start < s.end);
      if (i < 0) break;
      const [s] = list.splice(i, 1);
      merged.events.push(...s.events);
      merged.events.sort((a, b) => a.seq - b.seq);
      // Bounds straight from the definition: [min t, max t + gap).
      const times = merged.events.map((e) => BigInt(e.time as number));
      merged.start = times.reduce((a, b) => (b < a ? b : a));
      merged.end = times.reduce((a, b) => (b > a ? b : a)) + gap;
    }
    list.push(merged);
    // The merge must leave the key's live sessions pairwise disjoint.
    for (const a of list) {
      for (const b of list) invariant(a === b || !(a.start < b.end && b.start < a.end), `sessions [${a.start},${a.end}) and [${b.start},${b.end}) overlap`);
    }
    return true;
  }

  /**
   * Sets W := max(W, t), emits every window with end <= W that is dirty (never emitted or changed
   * since), ordered by (window_end, key, window_start), then frees windows with end + L <= W.
   * For kind 'none' it evicts keys whose largest event time + ttl <= W and returns [].
   */
  advanceWatermark(t: number | bigint): WindowRow[] {
    const tb = BigInt(normalizeTime(t));
    this.W = this.W === null || tb > this.W ? tb : this.W;
    if (this.window.kind === 'none') {
      if (this.ttl !== undefined) {
        for (const [id, entry] of [...this.running]) {
          if (this.reached(BigInt(entry.timeMax) + this.ttl)) this.running.delete(id);
        }
      }
      return [];
    }
    const fired: LiveWindow[] = [];
    for (const list of this.perKey.values()) {
      for (const w of list) {
        if (w.dirty && this.reached(w.end)) {
          fired.push(w);
          w.dirty = false;
        }
      }
    }
    fired.sort((a, b) => compareBig(a.end, b.end) || compareKeys(a.key, b.key) || compareBig(a.start, b.start));
    const rows = fired.map((w) => this.windowRow(w));
    for (const [id, list] of [...this.perKey]) {
      const live = list.filter((w) => !this.reached(w.end + this.lateness));
      if (live.length === 0) this.perKey.delete(id);
      else this.perKey.set(id, live);
    }
    return rows;
  }

  private windowRow(w: LiveWindow): WindowRow {
    return {
      key: w.key,
      window_start: Number(w.start),
      window_end: Number(w.end),
      ...computeAggregates(this.aggregates, w.events, true),
    } as WindowRow;
  }

  /**
   * Live state: for windowed kinds every live window (emitted or not) as a row, ordered by
   * (key, window_start); for kind 'none' every key's running aggregates in key order.
   */
  state(): Array<WindowRow | KeyRow> {
    if (this.window.kind === 'none') {
      return [...this.running.values()]
        .sort((a, b) => compareKeys(a.key, b.key))
        .map((e) => ({ key: e.key, ...computeAggregates(this.aggregates, e.events, true) }) as KeyRow);
    }
    const all: LiveWindow[] = [];
    for (const list of this.perKey.values()) all.push(...list);
    all.sort((a, b) => compareKeys(a.key, b.key) || compareBig(a.start, b.start));
    return all.map((w) => this.windowRow(w));
  }

  /** Running aggregates of a key (kind 'none' only); undefined when absent or evicted. */
  get(key: string | bigint | number): AggregateValues | undefined {
    if (this.window.kind !== 'none') {
      throw new CairnError('invalid', `expected window kind none for get(), found ${this.window.kind}`);
    }
    const entry = this.running.get(keyId(normalizeKey(key, this.keyType)));
    return entry === undefined ? undefined : computeAggregates(this.aggregates, entry.events, true);
  }

  /** Deletes every window (or the running aggregates) of a key; true when it had any. */
  delete(key: string | bigint | number): boolean {
    const id = keyId(normalizeKey(key, this.keyType));
    return this.window.kind === 'none' ? this.running.delete(id) : this.perKey.delete(id);
  }

  /** Keys with live state, in key order. */
  keys(): Key[] {
    const src = this.window.kind === 'none' ? [...this.running.values()].map((e) => e.key) : [...this.perKey.values()].map((l) => l[0].key);
    return src.sort(compareKeys);
  }
}
