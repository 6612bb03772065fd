/**
 * Two-tier checkpoint storage: a fast local store that acknowledges writes, and a durable store (for
 * example an object store) that receives a copy in the background.
 *
 * - `put` resolves once the local put resolves; the copy to durable is queued. Copies start in the
 *   order they were queued, at most `copyConcurrency` at a time, never two for one name at once (so
 *   the durable store ends with the latest version). A queued copy that has not started is replaced by
 *   a later put or delete of the same name. Transient failures (CairnError 'unavailable') are retried
 *   with exponential backoff; any other failure, or running out of attempts, fails the copy for good.
 * - `isDurable(name)` / `durableNames()` report which names have their latest put copied, and
 *   `copyFailed(name)` which failed to copy for good.
 * - `flush()` waits for every copy queued or running when it was called, then rejects with
 *   'unavailable' naming every copy that failed for good since the previous flush.
 * - `get` reads local and falls back to durable when local does not have the object. `getFrom` reads
 *   one tier. Whether a local copy is *good* is not this layer's business: the checkpoint layer
 *   verifies the bytes against the checksums in its manifest and, on a mismatch, reads the other copy
 *   with `getFrom('durable', name)`. That verification decides when the durable copy is used.
 * - `list` returns the union of both tiers, and fails when either tier cannot be listed (a checkpoint
 *   only one tier holds must not be missed); `delete` deletes from both and resolves when both are
 *   done; `deleteLater` resolves once the local delete is done.
 *
 * Memory: a queued copy holds its own copy of the bytes. When more than `pendingBytesMax` bytes wait,
 * `put` waits (after the local put) until copies drain, so a slow durable store slows writers instead
 * of growing memory without bound. Concurrent puts of one name are not ordered relative to each other.
 */
import { CairnError, isCairnError } from '../errors.js';
import { type CheckpointStorage, validateName, validatePrefix, notFound, isNotFound, storageFailure } from './storage.js';

export const COPY_CONCURRENCY_MAX = 16;
export const COPY_ATTEMPTS_MAX = 10;
export const RETRY_DELAY_MS_MAX = 60_000;
/** The longest wait between two attempts of one copy, however many attempts came before. */
export const RETRY_BACKOFF_MS_MAX = 60_000;
/** Failed copies kept (name and error) for the next flush's message; later ones are only counted. */
const FAILURES_KEPT_MAX = 100;

export type Tier = 'local' | 'durable';

export interface TieredCheckpointStorageOptions {
  local: CheckpointStorage;
  durable: CheckpointStorage;
  /** Copies running at once; default 2, at most COPY_CONCURRENCY_MAX. */
  copyConcurrency?: number;
  /** Attempts per copy, first one included; default 4, at most COPY_ATTEMPTS_MAX. */
  copyAttempts?: number;
  /** Delay before the first retry, doubled before each later one up to RETRY_BACKOFF_MS_MAX (60 s); default 100 ms. */
  retryDelayMs?: number;
  /** Bytes waiting to be copied above which put waits; default 256 MiB. */
  pendingBytesMax?: number;
}

interface CopyTask {
  readonly name: string;
  kind: 'put' | 'delete';
  bytes: Uint8Array | undefined;
  /** Resolves when the task ends, succeeded or failed; never rejects. */
  readonly done: Promise<void>;
  readonly finish: () => void;
  error: unknown;
}

function checkOption(label: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new CairnError('invalid', `tiered storage ${label}: expected an integer in [${min}, ${max}], found ${value}`);
  }
  return value;
}

export class TieredCheckpointStorage implements CheckpointStorage {
  readonly local: CheckpointStorage;
  readonly durable: CheckpointStorage;
  readonly #concurrency: number;
  readonly #attempts: number;
  readonly #retryDelayMs: number;
  readonly #pendingBytesMax: number;

  /** Tasks not started yet, in queue order, and the same tasks by name. */
  readonly #queue: CopyTask[] = [];
  readonly #queuedByName = new Map<string, CopyTask>();
  readonly #runningByName = new Map<string, CopyTask>();
  readonly #durable = new Set<string>();
  #failures: { name: string; error: unknown }[] = [];
  #failureCount = 0;
  /** Names whose latest put failed to copy for good (cleared by a later put or delete of the name). */
  readonly #lost = new Set<string>();
  #pendingBytes = 0;
  #spaceWaiters: (() => void)[] = [];

  constructor(options: TieredCheckpointStorageOptions) {
    this.local = options.local;
    this.durable = options.durable;
    this.#concurrency = checkOption('copyConcurrency', options.copyConcurrency ?? 2, 1, COPY_CONCURRENCY_MAX);
    this.#attempts = checkOption('copyAttempts', options.copyAttempts ?? 4, 1, COPY_ATTEMPTS_MAX);
    this.#retryDelayMs = checkOption('retryDelayMs', options.retryDelayMs ?? 100, 0, RETRY_DELAY_MS_MAX);
    this.#pendingBytesMax = checkOption('pendingBytesMax', options.pendingBytesMax ?? 256 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER);
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    validateName(name);
    await this.local.put(name, bytes);
    while (this.#pendingBytes > 0 && this.#pendingBytes + bytes.length > this.#pendingBytesMax) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
    }
    this.#enqueue(name, 'put', bytes.slice());
  }

  async get(name: string): Promise<Uint8Array> {
    validateName(name);
    let localError: CairnError;
    try {
      return await this.local.get(name);
    } catch (e) {
      const u = storageFailure(e, `tiered local get '${name}'`);
      if (!isCairnError(u, 'unavailable')) throw u;
      localError = u;
    }
    try {
      return await this.durable.get(name);
    } catch (caught) {
      const e = storageFailure(caught, `tiered durable get '${name}'`);
      if (!isCairnError(e, 'unavailable')) throw e;
      // Missing from both tiers: the not-found error every storage raises (restore tells it from a
      // storage failure by that); otherwise the failure of either tier.
      if (isNotFound(localError) && isNotFound(e)) throw notFound(name, `tiered: neither tier has it`);
      throw new CairnError(
        'unavailable',
        `tiered get: expected the object in local or durable storage, found neither (name=${JSON.stringify(name)}; local: ${localError.message}; durable: ${e.message})`,
        { cause: e },
      );
    }
  }

  /** Reads one tier only, for callers that verified one copy and want the other. */
  getFrom(tier: Tier, name: string): Promise<Uint8Array> {
    return this.#tier(tier).get(name);
  }

  /** Lists one tier only (for example the durable copies that survived a lost local disk). */
  listFrom(tier: Tier, prefix: string): Promise<string[]> {
    return this.#tier(tier).list(prefix);
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const [a, b] = await Promise.all([this.local.list(prefix), this.durable.list(prefix)]);
    return [...new Set([...a, ...b])].sort();
  }

  async delete(name: string): Promise<void> {
    validateName(name);
    await this.local.delete(name);
    const task = this.#enqueue(name, 'delete', undefined);
    await task.done;
    if (task.error !== undefined) throw task.error;
  }

  /** True when the latest put of `name` through this instance has been copied to durable. */
  isDurable(name: string): boolean {
    return this.#durable.has(name);
  }

  /**
   * True when the latest put of `name` through this instance failed to reach durable for good: the
   * durable tier will not have it unless it is put again (the checkpoint layer then writes a new
   * full base rather than chain deltas onto files durable lacks).
   */
  copyFailed(name: string): boolean {
    return this.#lost.has(name);
  }

  /**
   * Deletes the local copy, then queues the durable delete (retried as copies are) without waiting
   * for it: retention uses this, so that a slow or unreachable durable tier never holds up a
   * checkpoint. A durable delete that fails for good leaves the object there, for a later delete.
   */
  async deleteLater(name: string): Promise<void> {
    validateName(name);
    await this.local.delete(name);
    this.#enqueue(name, 'delete', undefined);
  }

  /** Whether a durable delete of `name` is queued or running (its durable copy is about to go). */
  deletePending(name: string): boolean {
    return this.#queuedByName.get(name)?.kind === 'delete' || this.#runningByName.get(name)?.kind === 'delete';
  }

  /** Names whose latest put through this instance has been copied to durable, sorted. */
  durableNames(): string[] {
    return [...this.#durable].sort();
  }

  /** Waits for every copy queued or running now; rejects if any copy failed for good since the last flush. */
  async flush(): Promise<void> {
    const tasks = [...this.#queue, ...this.#runningByName.values()];
    await Promise.all(tasks.map((t) => t.done));
    const failures = this.#failures;
    const count = this.#failureCount;
    this.#failures = [];
    this.#failureCount = 0;
    if (failures.length > 0) {
      const detail = failures.map((f) => `${f.name}: ${f.error instanceof Error ? f.error.message : String(f.error)}`).join('; ');
      const more = count > failures.length ? `; and ${count - failures.length} more` : '';
      throw new CairnError(
        'unavailable',
        `tiered flush: expected every durable copy to succeed, found ${count} failed (${detail}${more})`,
        { cause: failures[0].error },
      );
    }
  }

  #tier(tier: Tier): CheckpointStorage {
    if (tier === 'local') return this.local;
    if (tier === 'durable') return this.durable;
    throw new CairnError('invalid', `storage tier: expected 'local' or 'durable', found ${JSON.stringify(tier)}`);
  }

  #enqueue(name: string, kind: 'put' | 'delete', bytes: Uint8Array | undefined): CopyTask {
    this.#durable.delete(name);
    this.#lost.delete(name);
    this.#pendingBytes += bytes?.length ?? 0;
    const queued = this.#queuedByName.get(name);
    if (queued !== undefined) {
      // Not started yet: the newer operation replaces it, keeping its place in the queue.
      this.#releaseBytes(queued.bytes);
      queued.kind = kind;
      queued.bytes = bytes;
      return queued;
    }
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const task: CopyTask = { name, kind, bytes, done, finish, error: undefined };
    this.#queue.push(task);
    this.#queuedByName.set(name, task);
    this.#pump();
    return task;
  }

  #pump(): void {
    while (this.#runningByName.size < this.#concurrency) {
      const index = this.#queue.findIndex((t) => !this.#runningByName.has(t.name));
      if (index < 0) return;
      const [task] = this.#queue.splice(index, 1);
      this.#queuedByName.delete(task.name);
      this.#runningByName.set(task.name, task);
      void this.#run(task).finally(() => {
        this.#runningByName.delete(task.name);
        this.#releaseBytes(task.bytes);
        task.finish();
        this.#pump();
      });
    }
  }

  async #run(task: CopyTask): Promise<void> {
    for (let attempt = 1; attempt <= this.#attempts; attempt++) {
      try {
        if (task.kind === 'put') {
          await this.durable.put(task.name, task.bytes!);
          // A put queued meanwhile means the durable copy is already stale.
          if (!this.#queuedByName.has(task.name)) this.#durable.add(task.name);
        } else {
          await this.durable.delete(task.name);
        }
        return;
      } catch (e) {
        // A custom storage's plain Error counts as 'unavailable' (storageFailure), so it is retried.
        const retry = isCairnError(storageFailure(e, 'durable copy'), 'unavailable') && attempt < this.#attempts;
        if (retry) {
          await sleep(Math.min(this.#retryDelayMs * 2 ** (attempt - 1), RETRY_BACKOFF_MS_MAX));
          continue;
        }
        task.error = e;
        if (task.kind === 'put') {
          // Bounded: a process that never flushes (Cairn itself does not) must not keep every
          // failed copy of an outage.
          if (this.#failures.length < FAILURES_KEPT_MAX) this.#failures.push({ name: task.name, error: e });
          this.#failureCount++;
          if (!this.#queuedByName.has(task.name)) this.#lost.add(task.name);
        }
        return;
      }
    }
  }

  #releaseBytes(bytes: Uint8Array | undefined): void {
    this.#pendingBytes -= bytes?.length ?? 0;
    const waiters = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const wake of waiters) wake();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
