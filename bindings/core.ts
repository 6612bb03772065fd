/**
 * WasmCore: one Wasm instance (one shard's memory) and the only code that reads or writes its
 * linear memory. Views over memory.buffer are re-derived after every call that can grow memory,
 * because memory.grow detaches the old ArrayBuffer. Data enters through the scratch arena with one
 * copy per column and leaves as fresh typed arrays (copies), so nothing outside this file ever
 * holds a view into Wasm memory.
 */
import { CairnError } from '../src/errors.js';
import { instantiate } from './module.js';
import {
  type CairnExports, E_MEMORY_CAP, E_BAD_HANDLE, E_BAD_ARGUMENT, E_BAD_SNAPSHOT, E_WRONG_KIND, E_LIMIT,
  KIND_AGG, KIND_VALUE, KEY_INT64, KEY_UTF8, WIN_NONE, WIN_PANES, WIN_SESSION,
} from './exports.js';
import type { EncodedBatch, EncodedKey, EncodedKeys, OutColumns, StoreConfig } from './types.js';

export const DEFAULT_MEM_CAP_BYTES = 2 * 1024 * 1024 * 1024 - 64 * 1024 * 1024;
/**
 * The largest memory cap, and the cap while lifted (withCapLifted): Wasm's 4 GiB less room for the
 * runtime's own growth.
 */
export const MEM_CAP_MAX_BYTES = 4 * 1024 * 1024 * 1024 - 256 * 1024 * 1024;

/** A batch copied into scratch and filtered to a shard's key groups (WasmCore.stageOwned). */
export interface StagedBatch {
  /** Events kept, and their key bytes (0 for int64 keys). */
  n: number;
  keyBytes: number;
  /** Events kept per key group. */
  kgCounts: Uint32Array;
  keys: number;
  keyBytesPtr: number;
  times: number;
  table: number;
}

/** The allocator's limit on one buffer, which bounds each table of a shard (assembly/mem.ts blockBytesMax). */
const TABLE_LIMIT = '1 GiB';

export class WasmCore {
  readonly ex: CairnExports;
  private buffer: ArrayBuffer | SharedArrayBuffer;
  private u8v: Uint8Array;
  private dv: DataView;

  constructor(memCapBytes = DEFAULT_MEM_CAP_BYTES) {
    this.ex = instantiate();
    this.ex.setMemCap(memCapBytes);
    this.buffer = this.ex.memory.buffer;
    this.u8v = new Uint8Array(this.buffer);
    this.dv = new DataView(this.buffer);
  }

  /** Fresh views after anything that may have grown memory. */
  private refresh(): void {
    if (this.ex.memory.buffer !== this.buffer) {
      this.buffer = this.ex.memory.buffer;
      this.u8v = new Uint8Array(this.buffer);
      this.dv = new DataView(this.buffer);
    }
  }

  get u8(): Uint8Array {
    this.refresh();
    return this.u8v;
  }

  get view(): DataView {
    this.refresh();
    return this.dv;
  }

  memUsedBytes(): number {
    return this.ex.memUsed() >>> 0;
  }

  /** Bytes of Wasm linear memory (what the process pays for this shard). */
  memoryBytes(): number {
    return this.ex.memory.buffer.byteLength;
  }

  /** Lowers the largest buffer a store may allocate (test hook: reaches the 1 GiB limit with small tables). */
  setBlockMaxForTest(bytes: number): void {
    this.ex.setBlockMax(bytes);
  }

  /** Turns a negative status into a CairnError; returns non-negative results unchanged. */
  check(code: number, what: string): number {
    if (code >= 0) return code;
    switch (code) {
      case E_MEMORY_CAP:
        throw new CairnError(
          'unavailable',
          `${what}: shard memory cap reached: the call could need more than the ${(this.ex.memCap() >>> 0) - (this.ex.memUsed() >>> 0)} bytes left (used ${this.ex.memUsed() >>> 0} of memoryCapBytes ${this.ex.memCap() >>> 0}); nothing was changed (or one of the shard's tables would pass ${TABLE_LIMIT}, the most one table may hold: use more shards)`,
        );
      case E_BAD_HANDLE: throw new CairnError('closed', `${what}: the store is closed`);
      case E_BAD_ARGUMENT: throw new CairnError('invalid', `${what}: argument out of range`);
      case E_BAD_SNAPSHOT: throw new CairnError('corruption', `${what}: snapshot bytes do not match their declared layout`);
      case E_WRONG_KIND: throw new CairnError('invalid', `${what}: operation not supported by this operator kind`);
      case E_LIMIT: throw new CairnError('unavailable', `${what}: a hard size limit was reached`);
      default: throw new CairnError('internal', `${what}: unexpected status ${code}`);
    }
  }

  /** A scratch buffer of `bytes` bytes; its contents are overwritten by the next scratch use. */
  scratch(bytes: number): number {
    const p = this.ex.scratch(Math.max(bytes, 8));
    if (p === 0) this.check(E_MEMORY_CAP, 'scratch');
    return p;
  }

  openStore(cfg: StoreConfig): number {
    const spec = this.scratch(cfg.aggs.length * 8);
    const dv = this.view;
    cfg.aggs.forEach((a, i) => {
      dv.setInt32(spec + i * 8, a.fn, true);
      dv.setInt32(spec + i * 8 + 4, a.field, true);
    });
    const w = cfg.window;
    const win = w.kind === 'none' ? WIN_NONE : w.kind === 'panes' ? WIN_PANES : WIN_SESSION;
    const h = this.ex.storeOpen(
      cfg.kind === 'aggregate' ? KIND_AGG : KIND_VALUE,
      cfg.keyType === 'int64' ? KEY_INT64 : KEY_UTF8,
      win,
      BigInt(w.kind === 'panes' ? w.size : 0),
      BigInt(w.kind === 'panes' ? w.slide : 0),
      BigInt(w.kind === 'session' ? w.gap : 0),
      BigInt(cfg.lateness),
      BigInt(w.kind === 'none' ? w.ttl : 0),
      cfg.eventTime ? 1 : 0,
      cfg.aggs.length,
      cfg.nFields,
      spec,
    );
    return this.check(h, 'open store');
  }

  /**
   * Copies a batch into the scratch arena with one copy per column, followed by `extraBytes` of
   * room for the caller's outputs. Returns the addresses of every part.
   */
  private writeBatch(b: EncodedBatch, extraBytes: number): { keys: number; keyBytes: number; times: number; table: number; extra: number } {
    const n = b.n;
    const nf = b.values.length;
    let at = 0;
    const take = (bytes: number) => { const o = at; at = (at + bytes + 7) & ~7; return o; };
    const oKeys = take(b.keys.type === 'int64' ? n * 8 : (n + 1) * 4);
    const oKeyBytes = take(b.keys.type === 'utf8' ? b.keys.bytes.length : 0);
    const oTimes = take(b.times ? n * 8 : 0);
    const oTable = take(nf * 4);
    const oVals = take(nf * n * 8);
    const oExtra = take(extraBytes);
    const base = this.scratch(at);
    const u8 = this.u8;
    if (b.keys.type === 'int64') u8.set(bytesOf(b.keys.values), base + oKeys);
    else {
      u8.set(bytesOf(b.keys.offsets), base + oKeys);
      u8.set(b.keys.bytes, base + oKeyBytes);
    }
    if (b.times) {
      u8.set(bytesOf(b.times), base + oTimes);
      if (b.times instanceof Float64Array) {
        const bad = this.ex.timesToI64(base + oTimes, n);
        if (bad >= 0) {
          throw badTime(b.timeField ?? 'time', bad, b.times[bad]);
        }
      }
    }
    const dv = this.view;
    for (let f = 0; f < nf; f++) {
      const p = base + oVals + f * n * 8;
      dv.setUint32(base + oTable + f * 4, p, true);
      u8.set(bytesOf(b.values[f]!), p);
    }
    return { keys: base + oKeys, keyBytes: base + oKeyBytes, times: b.times ? base + oTimes : 0, table: base + oTable, extra: base + oExtra };
  }

  /**
   * Checks float event times (integers within ±2^53, as writeBatch does) and writes them as int64
   * into `out`, which may share `t`'s bytes: one SIMD pass in scratch instead of a JS loop.
   */
  timesToInt64(t: Float64Array, out: BigInt64Array, field = 'time'): void {
    if (out.length !== t.length) throw new CairnError('internal', `times: expected ${t.length} slots, found ${out.length}`);
    const p = this.scratch(t.byteLength);
    this.u8.set(bytesOf(t), p);
    const bad = this.ex.timesToI64(p, t.length);
    if (bad >= 0) throw badTime(field, bad, t[bad]);
    bytesOf(out).set(this.u8.subarray(p, p + t.byteLength));
  }

  /** Copies a batch into scratch with one copy per column and applies it. Returns accepted events. */
  ingest(h: number, b: EncodedBatch, seqBase: bigint): number {
    const w = this.writeBatch(b, 0);
    const r = this.ex.ingest(h, b.n, w.keys, w.keyBytes, w.times, w.table, seqBase);
    return this.check(r, 'ingest');
  }

  /**
   * Copies a whole batch into scratch and keeps, in place, the events whose key group `owned`
   * marks (assembly/route.ts filterOwned): a worker shard's part of a batch broadcast to every
   * shard. Then `ingestStaged` applies it, if nothing used scratch in between. `kgCounts` is a copy.
   */
  stageOwned(b: EncodedBatch, keyGroups: number, owned: Uint8Array): StagedBatch {
    if (owned.length !== keyGroups) throw new CairnError('internal', `stage: expected ${keyGroups} key-group flags, found ${owned.length}`);
    const oOwned = 0;
    const oCounts = (keyGroups + 7) & ~7;
    const oKeep = oCounts + ((keyGroups * 4 + 7) & ~7);
    const w = this.writeBatch(b, oKeep + b.n * 4);
    const x = w.extra;
    this.u8.set(owned, x + oOwned);
    this.u8.fill(0, x + oCounts, x + oCounts + keyGroups * 4);
    const int64 = b.keys.type === 'int64';
    const n = this.check(this.ex.filterOwned(int64 ? KEY_INT64 : KEY_UTF8, b.n, w.keys, w.keyBytes, w.times, b.values.length, w.table,
      keyGroups, x + oOwned, x + oCounts, x + oKeep), 'filter batch');
    const kgCounts = new Uint32Array(this.u8.buffer.slice(x + oCounts, x + oCounts + keyGroups * 4));
    // Offsets start at 0 once filtered; a batch kept whole keeps its own (which may not).
    const keyBytes = int64 ? 0 : this.view.getUint32(w.keys + n * 4, true) - this.view.getUint32(w.keys, true);
    return { n, keyBytes, kgCounts, keys: w.keys, keyBytesPtr: w.keyBytes, times: w.times, table: w.table };
  }

  /**
   * Runs `f` with the memory cap raised to what Wasm memory allows, then puts it back: for a batch
   * every shard must apply (one sent on credit, see src/shard/credit.ts).
   */
  withCapLifted<T>(f: () => T): T {
    const cap = this.ex.memCap() >>> 0;
    this.ex.setMemCap(Math.max(cap, MEM_CAP_MAX_BYTES));
    try {
      return f();
    } finally {
      this.ex.setMemCap(cap);
    }
  }

  /** Applies a batch `stageOwned` left in scratch. Returns accepted events. */
  ingestStaged(h: number, s: StagedBatch, seqBase: bigint): number {
    return this.check(this.ex.ingest(h, s.n, s.keys, s.keyBytesPtr, s.times, s.table, seqBase), 'ingest');
  }

  /**
   * Whether ingest of `n` events with `keyBytes` key bytes would pass the store's capacity check
   * now (worst case: every event a new key). Changes nothing.
   */
  ingestFits(h: number, n: number, keyBytes: number): boolean {
    return this.check(this.ex.ingestFits(h, n, keyBytes), 'ingest') === 1;
  }

  /**
   * Splits a batch by shard in one Wasm pass (assembly/route.ts). Each shard's slice leaves with one
   * copy into one ArrayBuffer from `alloc` (at least the bytes asked for; transferable as a whole)
   * that its columns are views into; null for a shard with no events. Also returns the events per
   * key group.
   */
  partition(b: EncodedBatch, keyGroups: number, assign: Uint8Array, shards: number, alloc: (bytes: number) => ArrayBuffer = (bytes) => new ArrayBuffer(bytes)): { slices: (EncodedBatch | null)[]; kgCounts: Uint32Array } {
    const n = b.n;
    const nf = b.values.length;
    const int64 = b.keys.type === 'int64';
    const keyBytes = b.keys.type === 'utf8' ? b.keys.bytes.length : 0;
    let at = 0;
    const take = (bytes: number) => { const o = at; at = (at + bytes + 7) & ~7; return o; };
    const oAssign = take(keyGroups);
    const oCounts = take(shards * 4);
    const oRegions = take((shards + 1) * 4);
    const oKg = take(keyGroups * 4);
    const oWork = take(shards * 16);
    const oPos = take(n * 4);
    // Every region part is 8-aligned: at most 7 bytes of padding per part, 3 + nf parts per shard.
    const oOut = take((int64 ? n * 8 : (n + shards) * 4 + keyBytes) + (b.times ? n * 8 : 0) + nf * n * 8 + shards * (3 + nf) * 8);
    const w = this.writeBatch(b, at);
    const x = w.extra;
    this.u8.set(assign, x + oAssign);
    this.check(this.ex.partition(int64 ? KEY_INT64 : KEY_UTF8, n, w.keys, w.keyBytes, w.times, nf, w.table, keyGroups, x + oAssign,
      shards, x + oCounts, x + oRegions, x + oKg, x + oWork, x + oPos, x + oOut), 'partition');
    const buf = this.u8.buffer;
    const counts = new Uint32Array(buf, x + oCounts, shards);
    const regions = new Uint32Array(buf, x + oRegions, shards + 1);
    const kgCounts = new Uint32Array(buf.slice(x + oKg, x + oKg + keyGroups * 4));
    const slices: (EncodedBatch | null)[] = [];
    for (let s = 0; s < shards; s++) {
      const m = counts[s]!;
      if (m === 0) { slices.push(null); continue; }
      const size = regions[s + 1]! - regions[s]!;
      const region = alloc(size);
      if (region.byteLength < size) throw new CairnError('internal', `partition: expected a buffer of at least ${size} bytes, found ${region.byteLength}`);
      new Uint8Array(region, 0, size).set(this.u8.subarray(x + oOut + regions[s]!, x + oOut + regions[s + 1]!));
      let o = 0;
      const part = (bytes: number) => { const p = o; o = (o + bytes + 7) & ~7; return p; };
      let keys: EncodedKeys;
      if (int64) keys = { type: 'int64', values: new BigInt64Array(region, part(m * 8), m) };
      else {
        const offsets = new Uint32Array(region, part((m + 1) * 4), m + 1);
        keys = { type: 'utf8', offsets, bytes: new Uint8Array(region, part(offsets[m]!), offsets[m]!) };
      }
      const times = b.times ? new BigInt64Array(region, part(m * 8), m) : null;
      const values = b.values.map(() => new Float64Array(region, part(m * 8), m));
      if (o !== size) throw new CairnError('internal', `partition: expected shard ${s}'s region to be ${o} bytes, found ${size}`);
      slices.push({ n: m, keys, times, values });
    }
    return { slices, kgCounts };
  }

  /**
   * Merges sorted outputs (assembly/merge.ts): ordered by (end, key, start) when `byWindow`, else by
   * (key, start), ties to the lower part. Every column is copied in once and out once, into fresh
   * arrays. Parts must agree in key type and aggregates.
   */
  mergeOutputs(parts: OutColumns[], byWindow: boolean): OutColumns {
    const k = parts.length;
    const first = parts[0]!;
    const int64 = first.keys.type === 'int64';
    const na = first.values.length;
    const total = parts.reduce((a, p) => a + p.count, 0);
    const keyBytes = int64 ? 0 : parts.reduce((a, p) => a + (p.keys as { bytes: Uint8Array }).bytes.length, 0);
    let at = 0;
    const take = (bytes: number) => { const o = at; at = (at + bytes + 7) & ~7; return o; };
    const oTable = take(k * 20);
    const oHeads = take(k * 4);
    const oSrcs = take(k * 4);
    const oFromPart = take(total);
    const oFromRow = take(total * 4);
    const inputs = parts.map((p) => {
      const keys = p.keys.type === 'int64' ? { values: take(p.count * 8), bytes: 0 } : { values: take((p.count + 1) * 4), bytes: take(p.keys.bytes.length) };
      return { end: take(p.count * 8), start: take(p.count * 8), keys, values: p.values.map(() => take(p.count * 8)), valid: p.valid.map(() => take(p.count)) };
    });
    const oKeys = take(int64 ? total * 8 : (total + 1) * 4);
    const oKeyBytes = take(keyBytes);
    const oStart = take(total * 8);
    const oEnd = take(total * 8);
    const oValues = first.values.map(() => take(total * 8));
    const oValid = first.valid.map(() => take(total));
    const base = this.scratch(at);
    const u8 = this.u8;
    const dv = this.view;
    parts.forEach((p, i) => {
      const inp = inputs[i]!;
      const t = base + oTable + i * 20;
      u8.set(bytesOf(p.end), base + inp.end);
      u8.set(bytesOf(p.start), base + inp.start);
      if (p.keys.type === 'int64') u8.set(bytesOf(p.keys.values), base + inp.keys.values);
      else {
        u8.set(bytesOf(p.keys.offsets.subarray(0, p.count + 1)), base + inp.keys.values);
        u8.set(p.keys.bytes, base + inp.keys.bytes);
      }
      p.values.forEach((v, a) => u8.set(bytesOf(v.subarray(0, p.count)), base + inp.values[a]!));
      p.valid.forEach((v, a) => u8.set(v.subarray(0, p.count), base + inp.valid[a]!));
      dv.setUint32(t, p.count, true);
      dv.setUint32(t + 4, base + inp.end, true);
      dv.setUint32(t + 8, base + inp.start, true);
      dv.setUint32(t + 12, base + inp.keys.values, true);
      dv.setUint32(t + 16, base + inp.keys.bytes, true);
    });
    const ex = this.ex;
    const fromPart = base + oFromPart;
    const fromRow = base + oFromRow;
    this.check(ex.mergeOrder(k, base + oTable, byWindow ? 1 : 0, int64 ? 1 : 0, base + oHeads, total, fromPart, fromRow), 'merge shard outputs');
    const gather = (src: (i: number) => number, dst: number, wide: boolean) => {
      parts.forEach((_, i) => dv.setUint32(base + oSrcs + i * 4, base + src(i), true));
      if (wide) ex.gather64(base + oSrcs, fromPart, fromRow, total, base + dst);
      else ex.gather8(base + oSrcs, fromPart, fromRow, total, base + dst);
    };
    if (int64) gather((i) => inputs[i]!.keys.values, oKeys, true);
    else ex.gatherUtf8(base + oTable, fromPart, fromRow, total, base + oKeys, base + oKeyBytes);
    gather((i) => inputs[i]!.start, oStart, true);
    gather((i) => inputs[i]!.end, oEnd, true);
    for (let a = 0; a < na; a++) gather((i) => inputs[i]!.values[a]!, oValues[a]!, true);
    for (let a = 0; a < na; a++) gather((i) => inputs[i]!.valid[a]!, oValid[a]!, false);
    // Gathers never grow memory, but re-derive the views anyway before copying out.
    const buf = this.u8.buffer;
    const out64 = (o: number) => buf.slice(base + o, base + o + total * 8);
    const keys: EncodedKeys = int64
      ? { type: 'int64', values: new BigInt64Array(out64(oKeys)) }
      : { type: 'utf8', offsets: new Uint32Array(buf.slice(base + oKeys, base + oKeys + (total + 1) * 4)), bytes: this.u8.slice(base + oKeyBytes, base + oKeyBytes + keyBytes) };
    const values = first.values.map((v, a) => (v instanceof BigInt64Array ? new BigInt64Array(out64(oValues[a]!)) : new Float64Array(out64(oValues[a]!))));
    const valid = oValid.map((o) => this.u8.slice(base + o, base + o + total));
    return { count: total, keys, start: new BigInt64Array(out64(oStart)), end: new BigInt64Array(out64(oEnd)), values, valid };
  }

  /** Writes a key into scratch; returns [keyI64, ptr, len] for point calls. */
  private keyArgs(k: EncodedKey, extra = 0): [bigint, number, number, number] {
    if (k.type === 'int64') {
      const p = extra > 0 ? this.scratch(extra) : 0;
      return [k.value, 0, 0, p];
    }
    const p = this.scratch(k.bytes.length + extra);
    this.u8.set(k.bytes, p);
    return [0n, p, k.bytes.length, p + k.bytes.length];
  }

  getRow(h: number, k: EncodedKey, cfg: StoreConfig): OutColumns | undefined {
    const [ki, p, l] = this.keyArgs(k);
    const found = this.check(this.ex.getRow(h, ki, p, l), 'get');
    return found ? this.readOut(cfg) : undefined;
  }

  deleteKey(h: number, k: EncodedKey): boolean {
    const [ki, p, l] = this.keyArgs(k);
    return this.check(this.ex.deleteKey(h, ki, p, l), 'delete') === 1;
  }

  valuePut(h: number, k: EncodedKey, value: Uint8Array): void {
    const [ki, p, l, vp] = this.keyArgs(k, value.length + 8);
    this.u8.set(value, vp);
    this.check(this.ex.valuePut(h, ki, p, l, vp, value.length), 'put');
  }

  valueGet(h: number, k: EncodedKey): Uint8Array | undefined {
    const [ki, p, l] = this.keyArgs(k);
    const len = this.ex.valueGet(h, ki, p, l);
    if (len === -1) return undefined;
    this.check(len, 'get');
    const at = this.ex.valueOut();
    return this.u8.slice(at, at + len);
  }

  advance(h: number, t: bigint, cfg: StoreConfig, alloc?: (bytes: number) => ArrayBuffer): OutColumns {
    this.check(this.ex.advanceWatermark(h, t), 'advanceWatermark');
    return this.readOut(cfg, alloc);
  }

  exportRows(h: number, cfg: StoreConfig, alloc?: (bytes: number) => ArrayBuffer): OutColumns {
    this.check(this.ex.exportRows(h), 'export');
    return this.readOut(cfg, alloc);
  }

  /**
   * Copies the output buffer out of Wasm memory, each column into a buffer of its own: fresh ones,
   * or from `alloc` (at least the bytes asked for; the columns are views of exactly their length).
   */
  readOut(cfg: StoreConfig, alloc?: (bytes: number) => ArrayBuffer): OutColumns {
    const ex = this.ex;
    const count = ex.outCount();
    const u8 = this.u8;
    const copy = (at: number, bytes: number): ArrayBuffer => {
      if (!alloc) return u8.buffer.slice(at, at + bytes) as ArrayBuffer;
      const b = alloc(bytes);
      new Uint8Array(b, 0, bytes).set(u8.subarray(at, at + bytes));
      return b;
    };
    const i64 = (at: number) => new BigInt64Array(copy(at, count * 8), 0, count);
    let keys: EncodedKeys;
    if (cfg.keyType === 'int64') {
      keys = { type: 'int64', values: i64(ex.outKey()) };
    } else if (count === 0) {
      // Nothing was written: the offsets memory may still hold another output's keys (an int64
      // key -1 read as an end offset of 2^32 - 1), so it is not read at all.
      keys = { type: 'utf8', offsets: new Uint32Array(1), bytes: new Uint8Array(0) };
    } else {
      const offsets = new Uint32Array(copy(ex.outKey(), (count + 1) * 4), 0, count + 1);
      const end = offsets[count]!;
      if (offsets[0] !== 0 || end > u8.length - ex.outKeyBytes()) {
        throw new CairnError('internal', `output: key offsets run from ${offsets[0]} to ${end}, outside the ${u8.length - ex.outKeyBytes()} bytes after the key bytes' start`);
      }
      keys = { type: 'utf8', offsets, bytes: new Uint8Array(copy(ex.outKeyBytes(), end), 0, end) };
    }
    const start = i64(ex.outStart());
    const end = i64(ex.outEnd());
    const values: (BigInt64Array | Float64Array)[] = [];
    const valid: Uint8Array[] = [];
    cfg.aggs.forEach((a, i) => {
      const vp = ex.outVals(i);
      values.push(a.fn === 0 ? i64(vp) : new Float64Array(copy(vp, count * 8), 0, count));
      valid.push(new Uint8Array(copy(ex.outValid(i), count), 0, count));
    });
    return { count, keys, start, end, values, valid };
  }

  /**
   * Captures a snapshot of store h and keeps it in Wasm memory (read it with readSnapshot, then
   * releaseSnapshot): the capture is all that holds up ingest, the copy out happens later, in
   * chunks. Returns its length in bytes.
   */
  capture(h: number, mode: number, keyGroups: number, kgMask: Uint8Array | null): number {
    let maskPtr = 0;
    if (kgMask) {
      maskPtr = this.scratch(kgMask.length);
      this.u8.set(kgMask, maskPtr);
    }
    return this.check(this.ex.snapshotCapture(h, mode, keyGroups, maskPtr), 'checkpoint capture');
  }

  /**
   * Starts a full capture of store h without copying its rows (the cut): returns its length. Rows
   * are copied by captureStep, or by the first change to their page; readSnapshot completes it.
   */
  captureBegin(h: number, keyGroups: number): number {
    return this.check(this.ex.snapshotBegin(h, keyGroups), 'checkpoint capture');
  }

  /** Copies up to maxPages more pages of store h's capture in progress; returns the pages left. */
  captureStep(h: number, maxPages: number): number {
    return this.check(this.ex.snapshotStep(h, maxPages), 'checkpoint capture');
  }

  /** Copies bytes [offset, offset + len) of store h's held snapshot out of Wasm memory. */
  readSnapshot(h: number, offset: number, len: number): Uint8Array {
    const total = this.ex.snapshotLen(h);
    if (offset < 0 || len < 0 || offset + len > total) {
      throw new CairnError('internal', `snapshot read: expected a range within ${total} bytes, found [${offset}, ${offset + len})`);
    }
    const p = this.ex.snapshotPtr(h);
    return this.u8.slice(p + offset, p + offset + len);
  }

  releaseSnapshot(h: number): void {
    this.ex.snapshotFree(h);
  }

  /** Capture, copy out whole and release: for moving key groups between shards. */
  captureBytes(h: number, mode: number, keyGroups: number, kgMask: Uint8Array | null): Uint8Array {
    const len = this.capture(h, mode, keyGroups, kgMask);
    const out = this.readSnapshot(h, 0, len);
    this.releaseSnapshot(h);
    return out;
  }

  load(h: number, bytes: Uint8Array, keyGroups: number, kgMask: Uint8Array | null): number {
    const maskLen = kgMask ? kgMask.length : 0;
    const p = this.scratch(bytes.length + maskLen + 8);
    const u8 = this.u8;
    u8.set(bytes, p);
    if (kgMask) u8.set(kgMask, p + bytes.length);
    return this.check(this.ex.snapshotLoad(h, p, bytes.length, kgMask ? p + bytes.length : 0, keyGroups), 'restore');
  }

  dropKeyGroups(h: number, keyGroups: number, kgMask: Uint8Array): number {
    const p = this.scratch(kgMask.length);
    this.u8.set(kgMask, p);
    return this.check(this.ex.dropKeyGroups(h, p, keyGroups), 'drop key groups');
  }

  /** Live rows and the state bytes they hold, per key group (see keyGroupStats in assembly/index.ts). */
  keyGroupStats(h: number, keyGroups: number): { rows: Uint32Array; bytes: Float64Array } {
    const p = this.scratch(keyGroups * 12 + 8);
    const pb = p + keyGroups * 4 + ((8 - ((p + keyGroups * 4) & 7)) & 7);
    this.check(this.ex.keyGroupStats(h, keyGroups, p, pb), 'metrics');
    const buf = this.u8.buffer;
    return { rows: new Uint32Array(buf.slice(p, p + keyGroups * 4)), bytes: new Float64Array(buf.slice(pb, pb + keyGroups * 8)) };
  }
}

/** The bytes of a typed array, without copying. */
/** A batch's bad event time (the SDK's batch.ts words its own checks the same). */
function badTime(field: string, row: number, value: unknown): CairnError {
  return new CairnError('invalid', `batch: time field '${field}' row ${row}: expected an integer number of ms within ±2^53, found ${String(value)}`);
}

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
