/**
 * Vote credit: how a batch broadcast to worker shards skips the all-or-nothing vote (votes.ts)
 * while it cannot reach any shard's memory cap, so the shards do not wait for each other batch by
 * batch.
 *
 * After every request, a worker shard publishes in shared memory the events (and key bytes) of
 * broadcast batches it could still take in the worst case (every event a new key of its own, over
 * every store it holds: Store.worstCaseExtra) as limits on two running counts, those of the
 * broadcast batches it has handled. The caller counts the broadcast batches it has posted to the
 * shard the same way. A batch skips the vote when, on every shard, the batches posted and this one
 * stay within the limits, and the shard has published since the caller last posted a request that
 * takes memory outside those counts (a value put, a restore, ...).
 *
 * What the counts miss (memory taken at a watermark advance: tombstones of purged rows, the
 * hopping index) is small next to a batch, and a batch sent on credit is applied even if it would
 * pass the cap (the shard lifts its cap for that one batch), so every shard applies it: the cap may
 * be passed by that much, and the next batches are voted on again, and refused.
 */

/** Int64 slots per shard: the last request handled, and the two limits. */
const SLOTS = 4;
const S_SEQ = 0;
const S_EVENTS = 1;
const S_KEY_BYTES = 2;

/** Credit steps a shard tries, largest first. */
const CREDIT_STEPS = [1 << 22, 1 << 20, 1 << 18, 1 << 17, 1 << 16, 1 << 15, 1 << 14, 1 << 13, 1 << 12];
/** Key bytes per event a credit allows (utf8 keys; a batch of longer keys is voted on sooner). */
export const CREDIT_KEY_BYTES = 64;

/**
 * Requests that take no state memory beyond what the counts and the lifted cap cover. Any other
 * request makes the caller wait for the shard's next publication before using its credit.
 */
const CREDIT_SAFE_OPS = new Set(['advance', 'get', 'vget', 'export', 'stats', 'late', 'memory', 'kgEvents', 'owns', 'fits',
  'capture', 'captureBytes', 'captureStep', 'snapRead', 'snapRelease', 'forceFull', 'setState']);

export function newCreditBoard(shards: number): SharedArrayBuffer {
  return new SharedArrayBuffer(shards * SLOTS * 8);
}

/** The worker's side: counts broadcast batches handled and publishes its limits. */
export class CreditWriter {
  private readonly a: BigInt64Array;
  private readonly o: number;
  events = 0;
  keyBytes = 0;

  constructor(buffer: SharedArrayBuffer, index: number) {
    this.a = new BigInt64Array(buffer);
    this.o = index * SLOTS;
  }

  /** A broadcast batch handled (applied, refused or failed alike: the caller counted it when posting). */
  count(n: number, keyBytes: number): void {
    this.events += n;
    this.keyBytes += keyBytes;
  }

  /**
   * Publishes, after request `seq`, the credit `fits` grants: the largest step of events (with
   * CREDIT_KEY_BYTES each) that fits in the worst case, or none.
   */
  publish(seq: number, fits: (events: number, keyBytes: number) => boolean): void {
    let credit = 0;
    for (const e of CREDIT_STEPS) {
      if (fits(e, e * CREDIT_KEY_BYTES)) {
        credit = e;
        break;
      }
    }
    // Limits first, then the sequence number that vouches for them (Atomics keep this order).
    Atomics.store(this.a, this.o + S_EVENTS, BigInt(this.events + credit));
    Atomics.store(this.a, this.o + S_KEY_BYTES, BigInt(this.keyBytes + credit * CREDIT_KEY_BYTES));
    Atomics.store(this.a, this.o + S_SEQ, BigInt(seq));
  }
}

/** The caller's side for one shard: what it posted, and whether a batch may skip the vote. */
export class CreditReader {
  private readonly a: BigInt64Array;
  private readonly o: number;
  private events = 0;
  private keyBytes = 0;
  /** The shard's credit counts only once it has published after this request. */
  private blockedUntil = 1;

  /** Starts a new shard's slot from nothing (a slot may have served a shard since closed). */
  constructor(buffer: SharedArrayBuffer, index: number) {
    this.a = new BigInt64Array(buffer);
    this.o = index * SLOTS;
    for (let i = 0; i < SLOTS; i++) Atomics.store(this.a, this.o + i, 0n);
  }

  /** Notes request `seq` as posted: one that may take memory outside the counts blocks the credit. */
  posted(seq: number, op: string, broadcast: boolean): void {
    if (!broadcast && !CREDIT_SAFE_OPS.has(op)) this.blockedUntil = seq;
  }

  /** Whether a broadcast batch of `n` events and `keyBytes` key bytes fits the shard's credit now. */
  allows(n: number, keyBytes: number): boolean {
    if (Atomics.load(this.a, this.o + S_SEQ) < BigInt(this.blockedUntil)) return false;
    return this.events + n <= Number(Atomics.load(this.a, this.o + S_EVENTS))
      && this.keyBytes + keyBytes <= Number(Atomics.load(this.a, this.o + S_KEY_BYTES));
  }

  /** Counts a broadcast batch posted (whether on credit or voted on). */
  count(n: number, keyBytes: number): void {
    this.events += n;
    this.keyBytes += keyBytes;
  }
}
