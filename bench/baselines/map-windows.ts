// Baseline: windowed count/sum/min/max written the idiomatic JS way, with the same semantics as
// Cairn (notes/semantics.md): acceptance against end + allowed lateness, late drops counted once,
// firing at end <= W, re-firing after late updates, purging at end + L <= W, and output ordered by
// (window_end, key, window_start).
//
// - tumbling: Map<windowStart, { aggs: Map<key, agg> }> (a tumbling window is a hopping window
//   whose slide equals its size, so both share one code path);
// - hopping: the naive approach, every event updates each of its size/slide windows;
// - session: per key an array of sessions merged on overlap, plus a binary min-heap of timers so
//   that advanceWatermark touches only sessions that are due (as Flink's timer service does),
//   instead of scanning every key.
//
// NaN values are null: counted as events, skipped by sum/min/max. Session merges add partial sums
// (not arrival order), which equals Cairn exactly for the integer amounts benchmarks use.
// int64 keys: bigint Map keys by default (exact and measured faster than Number(); see map-store.ts).

import { CairnError } from '../../src/errors.js';

export type MapWindowSpec = { kind: 'tumbling'; size: number } | { kind: 'hopping'; size: number; slide: number } | { kind: 'session'; gap: number };

export interface MapWindowsOptions {
  window: MapWindowSpec;
  /** Allowed lateness in ms, default 0. */
  allowedLateness?: number;
  int64Keys?: 'number' | 'bigint';
}

type Key = number | bigint | string;

export interface MapWindowRow {
  key: Key;
  window_start: number;
  window_end: number;
  count: number;
  sum: number | null;
  min: number | null;
  max: number | null;
}

interface WinAgg {
  key: Key;
  count: number;
  sum: number;
  min: number;
  max: number;
  valued: number;
  /** Changed since its window fired and queued in the window's refire list. */
  dirty: boolean;
}

interface FixedWindow {
  start: number;
  end: number;
  aggs: Map<Key, WinAgg>;
  fired: boolean;
  refire: WinAgg[];
}

interface Session {
  key: Key;
  start: number;
  end: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  valued: number;
  /** Never emitted, or changed since last emitted. */
  dirty: boolean;
  /** Time of this session's pending timer: its end while dirty, else end + L. */
  due: number;
  dead: boolean;
}

interface Timer {
  time: number;
  s: Session;
}

const SAFE_MAX = Number.MAX_SAFE_INTEGER;

function positive(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new CairnError('invalid', `expected a positive integer ${what}, found ${v}`);
  return v;
}

export class MapWindows {
  lateEvents = 0;
  readonly kind: MapWindowSpec['kind'];
  private W = -Infinity;
  private readonly size: number; // window size, or session gap
  private readonly slide: number;
  private readonly lateness: number;
  private readonly int64Keys: 'number' | 'bigint';
  private readonly fixed = new Map<number, FixedWindow>();
  private readonly sessions = new Map<Key, Session[]>();
  private readonly timers: Timer[] = [];

  constructor(options: MapWindowsOptions) {
    const w = options.window;
    this.kind = w.kind;
    if (w.kind === 'session') {
      this.size = positive(w.gap, 'session gap');
      this.slide = 0;
    } else {
      this.size = positive(w.size, 'window size');
      this.slide = w.kind === 'hopping' ? positive(w.slide, 'window slide') : this.size;
      if (this.size % this.slide !== 0) throw new CairnError('invalid', `expected a slide that divides the size, found size ${this.size} slide ${this.slide}`);
    }
    const L = options.allowedLateness ?? 0;
    if (!Number.isSafeInteger(L) || L < 0) throw new CairnError('invalid', `expected a non-negative integer allowedLateness, found ${L}`);
    this.lateness = L;
    this.int64Keys = options.int64Keys ?? 'bigint';
  }

  get watermark(): number {
    return this.W;
  }

  ingestInt64(keys: BigInt64Array, times: Float64Array, values: Float64Array): void {
    checkLengths(keys.length, times.length, values.length);
    const session = this.kind === 'session';
    if (this.int64Keys === 'number') {
      for (let i = 0; i < keys.length; i++) {
        const k = Number(keys[i]);
        if (k > SAFE_MAX || k < -SAFE_MAX) throw new CairnError('invalid', `expected a key within +-2^53 for number keys, found ${keys[i]} (row ${i})`);
        if (session) this.addSession(k, times[i], values[i]);
        else this.addFixed(k, times[i], values[i]);
      }
    } else {
      for (let i = 0; i < keys.length; i++) {
        if (session) this.addSession(keys[i], times[i], values[i]);
        else this.addFixed(keys[i], times[i], values[i]);
      }
    }
  }

  ingestUtf8(keys: readonly string[], times: Float64Array, values: Float64Array): void {
    checkLengths(keys.length, times.length, values.length);
    const session = this.kind === 'session';
    for (let i = 0; i < keys.length; i++) {
      if (session) this.addSession(keys[i], times[i], values[i]);
      else this.addFixed(keys[i], times[i], values[i]);
    }
  }

  private addFixed(k: Key, t: number, v: number): void {
    const size = this.size;
    const slide = this.slide;
    const limit = this.W - this.lateness; // a window is live while end > W - L
    let accepted = false;
    for (let s = t - (((t % slide) + slide) % slide); s > t - size; s -= slide) {
      const end = s + size;
      if (end <= limit) continue;
      let w = this.fixed.get(s);
      if (w === undefined) {
        w = { start: s, end, aggs: new Map(), fired: false, refire: [] };
        this.fixed.set(s, w);
      }
      let a = w.aggs.get(k);
      if (a === undefined) {
        a = { key: k, count: 0, sum: 0, min: Infinity, max: -Infinity, valued: 0, dirty: false };
        w.aggs.set(k, a);
      }
      if (w.fired && !a.dirty) {
        a.dirty = true;
        w.refire.push(a);
      }
      a.count++;
      if (v === v) {
        a.valued++;
        a.sum += v;
        if (v < a.min) a.min = v;
        if (v > a.max) a.max = v;
      }
      accepted = true;
    }
    if (!accepted) this.lateEvents++;
  }

  private addSession(k: Key, t: number, v: number): void {
    const end = t + this.size;
    if (end + this.lateness <= this.W) {
      this.lateEvents++;
      return;
    }
    let list = this.sessions.get(k);
    if (list === undefined) {
      list = [];
      this.sessions.set(k, list);
    }
    // Live sessions of a key are disjoint, so every session the merged result touches overlaps [t, end).
    let target: Session | undefined;
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (s.start < end && t < s.end) {
        if (target === undefined) {
          target = s;
        } else {
          target.start = Math.min(target.start, s.start);
          target.end = Math.max(target.end, s.end);
          target.count += s.count;
          target.sum += s.sum;
          target.valued += s.valued;
          if (s.min < target.min) target.min = s.min;
          if (s.max > target.max) target.max = s.max;
          s.dead = true;
          list.splice(i, 1);
          i--;
        }
      }
    }
    if (target === undefined) {
      target = { key: k, start: t, end, count: 0, sum: 0, min: Infinity, max: -Infinity, valued: 0, dirty: false, due: NaN, dead: false };
      list.push(target);
    } else {
      if (t < target.start) target.start = t;
      if (end > target.end) target.end = end;
    }
    target.count++;
    if (v === v) {
      target.valued++;
      target.sum += v;
      if (v < target.min) target.min = v;
      if (v > target.max) target.max = v;
    }
    target.dirty = true;
    if (target.due !== target.end) {
      target.due = target.end;
      this.pushTimer(target.end, target);
    }
  }

  /** W := max(W, t); emits due windows ordered by (end, key, start); purges windows past end + L. */
  advanceWatermark(t: number): MapWindowRow[] {
    if (Number.isNaN(t)) throw new CairnError('invalid', 'expected a watermark time, found NaN');
    if (t > this.W) this.W = t;
    const W = this.W;
    const L = this.lateness;
    const out: MapWindowRow[] = [];
    if (this.kind === 'session') {
      const timers = this.timers;
      while (timers.length > 0 && timers[0].time <= W) {
        const { time, s } = this.popTimer();
        if (s.dead || time !== s.due) continue; // superseded by a merge or a later timer
        if (s.dirty) {
          out.push(row(s.key, s.start, s.end, s));
          s.dirty = false;
        }
        if (s.end + L <= W) {
          s.dead = true;
          const list = this.sessions.get(s.key) as Session[];
          list.splice(list.indexOf(s), 1);
          if (list.length === 0) this.sessions.delete(s.key);
        } else {
          s.due = s.end + L;
          this.pushTimer(s.due, s);
        }
      }
    } else {
      for (const w of this.fixed.values()) {
        if (w.end > W) continue;
        if (!w.fired) {
          for (const a of w.aggs.values()) out.push(row(a.key, w.start, w.end, a));
          w.fired = true;
        } else {
          for (const a of w.refire) {
            out.push(row(a.key, w.start, w.end, a));
            a.dirty = false;
          }
          w.refire.length = 0;
        }
        if (w.end + L <= W) this.fixed.delete(w.start);
      }
    }
    out.sort(compareRows);
    return out;
  }

  private pushTimer(time: number, s: Session): void {
    const h = this.timers;
    h.push({ time, s });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].time <= h[i].time) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  private popTimer(): Timer {
    const h = this.timers;
    const top = h[0];
    const last = h.pop() as Timer;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].time < h[m].time) m = l;
        if (r < h.length && h[r].time < h[m].time) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}

function row(key: Key, start: number, end: number, a: { count: number; sum: number; min: number; max: number; valued: number }): MapWindowRow {
  return a.valued === 0
    ? { key, window_start: start, window_end: end, count: a.count, sum: null, min: null, max: null }
    : { key, window_start: start, window_end: end, count: a.count, sum: a.sum, min: a.min, max: a.max };
}

/**
 * UTF-8 byte order of two strings without encoding them: UTF-16 order equals code point order
 * except that surrogates (0xD800-0xDFFF) must sort after 0xE000-0xFFFF, so the first differing
 * code units are remapped before comparing.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareKey(a: Key, b: Key): number {
  if (typeof a === 'string') return compareUtf8(a, b as string);
  // Both are numbers or both bigints; the casts only quiet the type checker.
  const x = a as number;
  const y = b as number;
  return x < y ? -1 : x > y ? 1 : 0;
}

function compareRows(a: MapWindowRow, b: MapWindowRow): number {
  return a.window_end - b.window_end || compareKey(a.key, b.key) || a.window_start - b.window_start;
}

function checkLengths(keys: number, times: number, values: number): void {
  if (keys !== times || keys !== values) {
    throw new CairnError('invalid', `expected columns of equal length, found keys ${keys}, times ${times}, values ${values}`);
  }
}
