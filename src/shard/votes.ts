/**
 * The vote board of split ingests on worker shards: a batch split over several worker shards must
 * apply on all of them or on none, though each shard checks its own memory cap. Each involved
 * worker checks its slice, votes on the board (shared memory), and waits there, blocked, until
 * every involved shard has voted; then all apply their slices, or, if any refused, all drop them.
 * The caller's thread only sets a transaction up and reads the answers, so no shard waits on it.
 *
 * The board holds TXN_SLOTS transaction slots, each five Int32 fields. The manager claims a slot
 * per split batch (while all are in use, it holds new calls back), fills it before posting the
 * slices, and frees it once every involved shard has answered. A shard that died cannot vote: the manager then
 * sets the slot's abort flag, so the others stop waiting and drop their slices.
 */
import { CairnError } from '../errors.js';

export const TXN_SLOTS = 256;
const FIELDS = 5;
const F_TXN = 0;
const F_VOTERS = 1;
const F_YES = 2;
const F_NO = 3;
/** Bumped (and notified) by every vote and by an abort: what waiting shards sleep on. */
const F_GEN = 4;
/** A waiting shard wakes at least this often to look again (a lost notify cannot hang it). */
const WAIT_MS = 200;

export type Decision = 'commit' | 'abort';

export function newBoard(): SharedArrayBuffer {
  return new SharedArrayBuffer(TXN_SLOTS * FIELDS * 4);
}

/** The manager's side: claims, sets up, aborts and frees transaction slots. */
export class VoteBoard {
  private readonly a: Int32Array;
  private next = 1;
  private readonly free: number[] = [];

  constructor(readonly buffer: SharedArrayBuffer) {
    this.a = new Int32Array(buffer);
    for (let s = 0; s < TXN_SLOTS; s++) this.free.push(s);
  }

  /** True when every slot is in use: the manager then holds new calls back (ShardManager.gate). */
  get full(): boolean {
    return this.free.length === 0;
  }

  /** A slot for a new transaction with `voters` shards; there must be a free one (see `full`). */
  open(voters: number): { slot: number; txn: number } {
    const slot = this.free.pop();
    if (slot === undefined) throw new CairnError('internal', 'vote board: no free slot');
    const txn = this.next++ & 0x7fffffff;
    const o = slot * FIELDS;
    Atomics.store(this.a, o + F_VOTERS, voters);
    Atomics.store(this.a, o + F_YES, 0);
    Atomics.store(this.a, o + F_NO, 0);
    Atomics.store(this.a, o + F_TXN, txn);
    return { slot, txn };
  }

  /** Makes every shard waiting on the slot drop its slice (a voter died). */
  abort(slot: number): void {
    const o = slot * FIELDS;
    Atomics.add(this.a, o + F_NO, 1 << 16);
    Atomics.add(this.a, o + F_GEN, 1);
    Atomics.notify(this.a, o + F_GEN);
  }

  /** Returns a slot once every involved shard has answered. */
  close(slot: number): void {
    Atomics.store(this.a, slot * FIELDS + F_TXN, 0);
    this.free.push(slot);
  }
}

/**
 * A worker's side: votes in `slot` for transaction `txn`, then waits until every voter has voted
 * (or the manager aborted), and returns the decision. Blocks the worker's thread: it must not
 * handle anything else before applying or dropping its slice.
 */
export function voteAndWait(buffer: SharedArrayBuffer, slot: number, txn: number, yes: boolean): Decision {
  const a = new Int32Array(buffer);
  const o = slot * FIELDS;
  if (Atomics.load(a, o + F_TXN) !== txn) {
    throw new CairnError('internal', `vote board: slot ${slot} holds transaction ${Atomics.load(a, o + F_TXN)}, expected ${txn}`);
  }
  Atomics.add(a, o + (yes ? F_YES : F_NO), 1);
  Atomics.add(a, o + F_GEN, 1);
  Atomics.notify(a, o + F_GEN);
  const voters = Atomics.load(a, o + F_VOTERS);
  for (;;) {
    const gen = Atomics.load(a, o + F_GEN);
    const no = Atomics.load(a, o + F_NO);
    if (no >= 1 << 16) return 'abort';
    const yesVotes = Atomics.load(a, o + F_YES);
    if (yesVotes + no >= voters) return no === 0 ? 'commit' : 'abort';
    Atomics.wait(a, o + F_GEN, gen, WAIT_MS);
  }
}
