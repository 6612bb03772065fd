/**
 * The shard protocol: every operation a shard performs, as a plain message. The same messages drive
 * an in-process shard (LocalShard calls ShardHost directly) and a worker-thread shard (WorkerShard
 * posts them), which is what keeps the two modes identical in meaning.
 */
import type { EncodedBatch, EncodedKey, OutColumns, StoreConfig } from '../../bindings/types.js';

export type ShardRequest =
  | { op: 'open'; id: number; cfg: StoreConfig }
  /**
   * With `hold`, a slice of a batch split over several worker shards: the shard votes on whether it
   * fits under its memory cap in transaction `txn` of the vote board's `slot`, and applies it only
   * if every involved shard voted yes (votes.ts); else it answers REFUSED_HERE or REFUSED_ELSEWHERE
   * (or fails with a CairnError when it could not vote: the manager then aborts the slot).
   *
   * With `owned`, the whole batch, broadcast to every shard (in shared memory): the shard keeps the
   * events of the key groups it owns ('owns') and counts them per key group ('kgEvents'). With
   * `credit` (and no `hold`), the caller skipped the vote on every shard's published credit
   * (credit.ts): the shard applies its events even past its memory cap.
   */
  | { op: 'ingest'; id: number; batch: EncodedBatch; seqBase: bigint; hold?: { slot: number; txn: number }; owned?: boolean; credit?: boolean }
  /** The key groups this shard owns (1 per owned key group), for broadcast batches. */
  | { op: 'owns'; keyGroups: number; mask: Uint8Array }
  /** Events of broadcast batches this shard applied, per key group (Float64Array). */
  | { op: 'kgEvents' }
  | { op: 'fits'; id: number; n: number; keyBytes: number }
  | { op: 'advance'; id: number; t: bigint }
  | { op: 'export'; id: number }
  | { op: 'get'; id: number; key: EncodedKey }
  | { op: 'delete'; id: number; key: EncodedKey }
  | { op: 'vput'; id: number; key: EncodedKey; value: Uint8Array }
  | { op: 'vget'; id: number; key: EncodedKey }
  | { op: 'capture'; id: number; mode: number; keyGroups: number; mask: Uint8Array | null }
  | { op: 'captureBytes'; id: number; mode: number; keyGroups: number; mask: Uint8Array | null }
  | { op: 'captureStep'; id: number; token: number; pages: number }
  | { op: 'snapRead'; id: number; token: number; offset: number; length: number }
  | { op: 'snapRelease'; id: number; token: number }
  | { op: 'load'; id: number; bytes: Uint8Array; keyGroups: number; mask: Uint8Array | null }
  | { op: 'drop'; id: number; keyGroups: number; mask: Uint8Array }
  | { op: 'forceFull'; id: number }
  | { op: 'setState'; id: number; watermark: bigint; lateEvents: bigint }
  | { op: 'stats'; id: number; keyGroups: number }
  /** Late events of a store (bigint): 'stats' without its per-key-group pass over every row. */
  | { op: 'late'; id: number }
  | { op: 'memory' }
  /** Test hook: a worker dies without answering, by exiting or by an uncaught exception. */
  | { op: 'crash'; how?: 'exit' | 'throw' | 'unreadable' };

/** Answers of a held slice that was dropped: this shard's cap refused it, or another shard's. */
export const REFUSED_HERE = -2;
export const REFUSED_ELSEWHERE = -1;

export interface StoreStats {
  rows: number;
  lateEvents: bigint;
  watermark: bigint;
  keyGroupRows: Uint32Array;
  /** State bytes held by each key group's rows (record, index share, key and value bytes). */
  keyGroupBytes: Float64Array;
}

/**
 * A capture held by the shard: read it with 'snapRead', then 'snapRelease' it. A full capture
 * returns at its cut with `pending` pages still to copy; 'captureStep' copies them a slice at a
 * time, between other requests (a read completes whatever is left first).
 */
export interface CaptureInfo {
  token: number;
  length: number;
  pending: number;
  /** Time the shard spent making the capture (ms): how long it held up the shard's other requests. */
  ms: number;
}

export interface MemoryStats {
  usedBytes: number;
  memoryBytes: number;
  transientBytes: number;
}

export type ShardResponse = number | boolean | bigint | OutColumns | Uint8Array | Float64Array | StoreStats | MemoryStats | CaptureInfo | undefined | null;

/** A shard as the manager sees it: asynchronous, ordered (requests apply in the order sent). */
export interface Shard {
  /**
   * Sends a request. `transfer` lists buffers the caller owns and gives up (a worker shard moves
   * them instead of copying); an in-process shard ignores it.
   */
  call<T extends ShardResponse>(req: ShardRequest, transfer?: ArrayBuffer[]): Promise<T>;
  /**
   * Gives back the buffers of an output this shard answered (fired windows, an export) once the
   * caller has copied it (merged it with other shards'): the shard fills them again.
   */
  recycle(buffers: ArrayBuffer[]): void;
  close(): Promise<void>;
}
