/**
 * A shard on a worker thread (node:worker_threads, which Node and Deno both provide). Requests are
 * posted in order and answered in order. If the worker throws or dies, every pending and later call
 * rejects with a CairnError ('unavailable') instead of hanging.
 */
import { Worker } from 'node:worker_threads';
import { CairnError, type CairnErrorKind } from '../errors.js';
import type { Shard, ShardRequest, ShardResponse } from './protocol.js';
import type { BufferPool } from './pool.js';
import { compiledModule } from '../../bindings/module.js';
import { CreditReader } from './credit.js';

interface Pending { resolve(v: unknown): void; reject(e: unknown): void }

export class WorkerShard implements Shard {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private dead: CairnError | null = null;
  private closing = false;
  /**
   * Keeps the event loop alive while calls are pending. The worker itself stays unref'd so an idle
   * backend never holds the process open; and a ref on the worker is not enough anyway, because a
   * worker that dies may stop counting as an active handle before its 'exit' event is delivered.
   */
  private keepAlive: ReturnType<typeof setInterval> | null = null;
  /** This shard's vote credit for broadcast batches (credit.ts), when the manager keeps a credit board. */
  readonly credit: CreditReader | null;
  /** Output buffers the caller gave back, sent with the next request. */
  private giving: ArrayBuffer[] = [];
  /** Called once when the worker dies (not when it is closed). */
  onDeath: ((e: CairnError) => void) | null = null;

  /**
   * `pool` receives the buffers of ingested batches back from the worker; `votes` is the vote board
   * of split batches (votes.ts), shared with every worker shard.
   */
  constructor(index: number, memCapBytes?: number, pool?: BufferPool, votes?: SharedArrayBuffer, credits?: SharedArrayBuffer) {
    this.credit = credits ? new CreditReader(credits, index) : null;
    // The compiled module goes along (shared, not copied): see adoptCompiledModule.
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { memCapBytes, module: compiledModule(), votes, credits, index } });
    this.worker.on('message', (m: { seq: number; ok: boolean; value?: unknown; kind?: CairnErrorKind; message?: string; back?: ArrayBuffer[]; fatal?: boolean }) => {
      if (m.fatal) {
        giveUp(m.message ?? 'failed', undefined);
        return;
      }
      if (pool && m.back) for (const b of m.back) pool.give(b);
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (m.ok) p.resolve(m.value);
      else p.reject(new CairnError(m.kind ?? 'internal', `shard ${index}: ${m.message}`));
    });
    const fail = (why: string, cause?: unknown) => {
      if (this.dead) return;
      this.dead = new CairnError(this.closing ? 'closed' : 'unavailable', `shard ${index} worker ${why}`, { cause });
      const pending = [...this.pending.values()];
      this.pending.clear();
      for (const p of pending) p.reject(this.dead);
      this.settled();
      if (!this.closing) this.onDeath?.(this.dead);
    };
    this.worker.on('error', (e) => fail(`failed: ${e instanceof Error ? e.message : String(e)}`, e));
    this.worker.on('exit', (code) => fail(`exited with code ${code}`));
    // An unreadable message (either way) leaves a call unanswered: given up, the worker goes too.
    const giveUp = (why: string, cause: unknown): void => {
      fail(why, cause);
      void this.worker.terminate();
    };
    // An answer that cannot be read here names no call: which call it answered is unknown, so the
    // shard is given up as if it had died (every pending and later call fails, never hangs).
    this.worker.on('messageerror', (e) => giveUp(`sent an answer that could not be read (${e instanceof Error ? e.message : String(e)})`, e));
    this.worker.unref();
  }

  call<T extends ShardResponse>(req: ShardRequest, transfer?: ArrayBuffer[]): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const seq = ++this.seq;
    this.credit?.posted(seq, req.op, req.op === 'ingest' && req.owned === true);
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.keepAlive ??= setInterval(() => undefined, 1 << 30);
      this.pending.set(seq, {
        resolve: (v) => { this.settled(); resolve(v as T); },
        reject: (e) => { this.settled(); reject(e); },
      });
      // Output buffers given back go home with the next request (see recycle).
      const give = this.giving;
      this.giving = [];
      this.worker.postMessage({ seq, req, give }, give.length ? [...(transfer ?? []), ...give] : transfer ?? []);
    });
  }

  recycle(buffers: ArrayBuffer[]): void {
    if (!this.dead) this.giving.push(...buffers.filter((b) => b.byteLength > 0));
  }

  private settled(): void {
    if (this.pending.size === 0 && this.keepAlive) {
      clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}
