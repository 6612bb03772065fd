/**
 * The raw export table of build/cairn.wasm (assembly/index.ts). Pointers are byte offsets into the
 * instance's memory; i64 parameters and results are bigint.
 */
export interface CairnExports {
  memory: WebAssembly.Memory;
  scratch(bytes: number): number;
  storeOpen(kind: number, keyType: number, win: number, size: bigint, slide: bigint, gap: bigint, lateness: bigint,
    ttl: bigint, eventTime: number, nAggs: number, nFields: number, aggSpec: number): number;
  storeClose(h: number): number;
  ingest(h: number, n: number, keyPtr: number, keyBytesPtr: number, timePtr: number, valTable: number, seqBase: bigint): number;
  timesToI64(ptr: number, n: number): number;
  ingestFits(h: number, n: number, keyBytes: number): number;
  advanceWatermark(h: number, t: bigint): number;
  watermark(h: number): bigint;
  setWatermark(h: number, w: bigint): number;
  lateEvents(h: number): bigint;
  setLateEvents(h: number, n: bigint): void;
  getRow(h: number, keyI64: bigint, ptr: number, len: number): number;
  exportRows(h: number): number;
  deleteKey(h: number, keyI64: bigint, ptr: number, len: number): number;
  valuePut(h: number, keyI64: bigint, ptr: number, len: number, valPtr: number, valLen: number): number;
  valueGet(h: number, keyI64: bigint, ptr: number, len: number): number;
  valueOut(): number;
  outCount(): number;
  outKey(): number;
  outKeyBytes(): number;
  outStart(): number;
  outEnd(): number;
  outVals(a: number): number;
  outValid(a: number): number;
  snapshotCapture(h: number, mode: number, keyGroups: number, kgMask: number): number;
  snapshotBegin(h: number, keyGroups: number): number;
  snapshotStep(h: number, maxPages: number): number;
  snapshotPtr(h: number): number;
  snapshotLen(h: number): number;
  snapshotFree(h: number): void;
  snapshotLoad(h: number, ptr: number, len: number, kgMask: number, keyGroups: number): number;
  forceFull(h: number): void;
  dropKeyGroups(h: number, kgMask: number, keyGroups: number): number;
  keyGroupStats(h: number, keyGroups: number, outRows: number, outBytes: number): number;
  liveRows(h: number): number;
  memUsed(): number;
  memTransient(): number;
  hopIndexEnable(on: number): void;
  hopIndexServed(): bigint;
  memCap(): number;
  ingestWorstBytes(h: number, n: number, keyBytes: number): number;
  setMemCap(bytes: number): void;
  /** Test hook: the largest buffer a store may allocate (below 1 GiB only). */
  setBlockMax(bytes: number): void;
  hashKeyI64(k: bigint): number;
  hashProbeI64(k: bigint): number;
  hashKeyBytes(ptr: number, len: number): number;
  hashProbeBytes(ptr: number, len: number): number;
  keyBytesEqual(a: number, b: number, len: number): number;
  partition(keyType: number, n: number, keyPtr: number, keyBytesPtr: number, timePtr: number, nFields: number,
    valTable: number, keyGroups: number, assign: number, shards: number, counts: number, regions: number,
    kgCounts: number, work: number, pos: number, out: number): number;
  filterOwned(keyType: number, n: number, keyPtr: number, keyBytesPtr: number, timePtr: number, nFields: number,
    valTable: number, keyGroups: number, owned: number, kgCounts: number, keep: number): number;
  mergeOrder(nParts: number, table: number, byWindow: number, int64: number, heads: number, total: number, fromPart: number, fromRow: number): number;
  gather64(srcs: number, fromPart: number, fromRow: number, total: number, dst: number): void;
  gather8(srcs: number, fromPart: number, fromRow: number, total: number, dst: number): void;
  gatherUtf8(table: number, fromPart: number, fromRow: number, total: number, dstOffsets: number, dstBytes: number): void;
}

/** Status codes from assembly/errors.ts. */
export const E_MEMORY_CAP = -1;
export const E_BAD_HANDLE = -2;
export const E_BAD_ARGUMENT = -3;
export const E_BAD_SNAPSHOT = -4;
export const E_WRONG_KIND = -5;
export const E_LIMIT = -6;

export const KIND_AGG = 0;
export const KIND_VALUE = 1;
export const KEY_INT64 = 0;
export const KEY_UTF8 = 1;
export const WIN_NONE = 0;
export const WIN_PANES = 1;
export const WIN_SESSION = 2;
export const MODE_FULL = 0;
export const MODE_DELTA = 1;
export const MODE_EXTRACT = 2;
export const FN_CODES = { count: 0, sum: 1, min: 2, max: 3, mean: 4, first: 5, last: 6 } as const;
