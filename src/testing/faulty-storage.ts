/**
 * A deterministic fault-injecting CheckpointStorage wrapper for tests.
 *
 * Every call (put, get, list, delete) is one operation with an index from 0, in call order. Faults are
 * scheduled by index or drawn from a seeded PRNG (mulberry32), so the same seed and the same sequence
 * of calls give the same faults. Every failure is a CairnError 'unavailable' whose `cause` is an Error
 * with an errno-like `code` ('EIO', 'ENOSPC', 'ECRASH'), as a real storage failure would be.
 *
 * The operation log lets a test run a cycle once without faults, find every write in it, and then
 * re-run the cycle with a fault at each of those indexes.
 */
import { CairnError } from '../errors.js';
import type { CheckpointStorage } from '../storage/storage.js';

export type FaultCode = 'EIO' | 'ENOSPC';
export type StorageOpKind = 'put' | 'get' | 'list' | 'delete';

export interface StorageOp {
  readonly index: number;
  readonly op: StorageOpKind;
  /** The object name, or the prefix for list. */
  readonly name: string;
  outcome: 'pending' | 'ok' | 'failed' | 'torn' | 'crashed';
}

export interface FaultSpec {
  /** 'transient' fails this one operation; 'persistent' fails it and every later one until heal(). */
  kind: 'transient' | 'persistent';
  code: FaultCode;
}

/** mulberry32: a tiny, well-mixed 32-bit PRNG; returns a float in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function causeWithCode(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export class FaultyStorage implements CheckpointStorage {
  readonly inner: CheckpointStorage;
  readonly #random: () => number;
  readonly #log: StorageOp[] = [];
  readonly #failAt = new Map<number, FaultSpec>();
  readonly #tornAt: { index: number; fraction: number }[] = [];
  #crashAt = Number.POSITIVE_INFINITY;
  #crashed = false;
  #persistent: FaultCode | undefined;
  #probability = 0;

  constructor(inner: CheckpointStorage, options: { seed: number }) {
    this.inner = inner;
    this.#random = mulberry32(options.seed);
  }

  /** Operations started so far; the index the next operation gets. */
  get opCount(): number {
    return this.#log.length;
  }

  /** Every operation so far, in order, with its outcome. */
  get log(): readonly Readonly<StorageOp>[] {
    return this.#log;
  }

  get crashed(): boolean {
    return this.#crashed;
  }

  failAt(opIndex: number, fault: FaultSpec): this {
    this.#failAt.set(opIndex, fault);
    return this;
  }

  /** Each later operation fails transiently with EIO with this probability (seeded). */
  failRandomly(probability: number): this {
    if (!(probability >= 0 && probability <= 1)) {
      throw new CairnError('invalid', `fault probability: expected a number in [0, 1], found ${probability}`);
    }
    this.#probability = probability;
    return this;
  }

  /**
   * The first put at or after `opIndex` stores only the first floor(fraction * length) bytes, visible
   * to readers, and then rejects: a storage without atomic puts, torn by a crash.
   */
  tornWriteAt(opIndex: number, fraction: number): this {
    if (!(fraction >= 0 && fraction < 1)) {
      throw new CairnError('invalid', `torn write fraction: expected a number in [0, 1), found ${fraction}`);
    }
    this.#tornAt.push({ index: opIndex, fraction });
    return this;
  }

  /** The operation at `opIndex` and every later one reject with "storage crashed". */
  crashAt(opIndex: number): this {
    this.#crashAt = Math.min(this.#crashAt, opIndex);
    return this;
  }

  /** Every later operation rejects with "storage crashed". */
  crash(): this {
    this.#crashed = true;
    return this;
  }

  /** Ends a persistent fault, clears random failures and scheduled faults; a crash stays. */
  heal(): this {
    this.#persistent = undefined;
    this.#probability = 0;
    this.#failAt.clear();
    this.#tornAt.length = 0;
    return this;
  }

  put(name: string, bytes: Uint8Array): Promise<void> {
    return this.#run('put', name, async (entry) => {
      const torn = this.#tornAt.findIndex((t) => t.index <= entry.index);
      if (torn >= 0) {
        const { fraction } = this.#tornAt.splice(torn, 1)[0];
        await this.inner.put(name, bytes.subarray(0, Math.floor(bytes.length * fraction)));
        entry.outcome = 'torn';
        throw this.#failure(entry, 'EIO', 'injected torn write');
      }
      await this.inner.put(name, bytes);
    });
  }

  get(name: string): Promise<Uint8Array> {
    return this.#run('get', name, () => this.inner.get(name));
  }

  list(prefix: string): Promise<string[]> {
    return this.#run('list', prefix, () => this.inner.list(prefix));
  }

  delete(name: string): Promise<void> {
    return this.#run('delete', name, () => this.inner.delete(name));
  }

  async #run<T>(op: StorageOpKind, name: string, body: (entry: StorageOp) => Promise<T>): Promise<T> {
    const entry: StorageOp = { index: this.#log.length, op, name, outcome: 'pending' };
    this.#log.push(entry);
    // Draw for every operation while random failures are on, so the sequence depends only on the seed
    // and the calls, not on earlier outcomes.
    const randomFailure = this.#probability > 0 && this.#random() < this.#probability;
    if (entry.index >= this.#crashAt) this.#crashed = true;
    if (this.#crashed) {
      entry.outcome = 'crashed';
      throw new CairnError('unavailable', `storage crashed: expected a live storage, found a crashed one (op=${entry.index} ${op} ${JSON.stringify(name)})`, {
        cause: causeWithCode('ECRASH', 'storage crashed'),
      });
    }
    const scheduled = this.#failAt.get(entry.index);
    if (scheduled !== undefined && scheduled.kind === 'persistent') this.#persistent = scheduled.code;
    const code = this.#persistent ?? scheduled?.code ?? (randomFailure ? 'EIO' : undefined);
    if (code !== undefined) {
      entry.outcome = 'failed';
      throw this.#failure(entry, code, 'injected fault');
    }
    try {
      const result = await body(entry);
      entry.outcome = 'ok';
      return result;
    } catch (e) {
      if (entry.outcome === 'pending') entry.outcome = 'failed';
      throw e;
    }
  }

  #failure(entry: StorageOp, code: FaultCode, what: string): CairnError {
    return new CairnError(
      'unavailable',
      `${what}: expected ${entry.op} to succeed, found ${code} (op=${entry.index}, name=${JSON.stringify(entry.name)})`,
      { cause: causeWithCode(code, `${what} ${code}`) },
    );
  }
}
