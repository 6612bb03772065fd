/** An in-process shard: the host runs on the caller's thread; results come back as promises. */
import type { Shard, ShardRequest, ShardResponse } from './protocol.js';
import { ShardHost } from './host.js';
import { CairnError } from '../errors.js';
import type { BufferPool } from './pool.js';

export class LocalShard implements Shard {
  private host: ShardHost | null;
  private readonly pool: BufferPool | undefined;

  /** `pool` receives the buffers a caller gives up (`transfer`) once the request has run. */
  constructor(memCapBytes?: number, pool?: BufferPool) {
    this.host = new ShardHost(memCapBytes);
    this.pool = pool;
  }

  /**
   * Runs a request now and returns its answer, or throws its error: for a caller that must know
   * before it does anything else whether the request was refused (ShardManager.ingest).
   */
  callNow<T extends ShardResponse>(req: ShardRequest, transfer?: ArrayBuffer[]): T {
    if (!this.host) throw new CairnError('closed', 'shard is closed');
    try {
      return this.host.handle(req) as T;
    } finally {
      if (this.pool && transfer) for (const b of transfer) this.pool.give(b);
    }
  }

  call<T extends ShardResponse>(req: ShardRequest, transfer?: ArrayBuffer[]): Promise<T> {
    if (!this.host) return Promise.reject(new CairnError('closed', 'shard is closed'));
    if (req.op === 'captureStep') return this.stepLater(req) as Promise<T>;
    try {
      return Promise.resolve(this.host.handle(req) as T);
    } catch (e) {
      return Promise.reject(e);
    } finally {
      // The request ran to completion on this thread: a batch is in Wasm memory now, not in these.
      if (this.pool && transfer) for (const b of transfer) this.pool.give(b);
    }
  }

  /**
   * A capture step runs when the event loop next has a turn, or right after the next request
   * (which copies some pages itself), whichever comes first: so background copying neither blocks
   * callers that come from I/O nor waits forever behind callers that await ingest calls back to
   * back (which only ever run microtasks). Steps are not ordered with other requests.
   */
  private stepLater(req: ShardRequest): Promise<number> {
    return new Promise((resolve, reject) => {
      let done = false;
      const run = (): void => {
        if (done) return;
        done = true;
        if (!this.host) {
          reject(new CairnError('closed', 'shard is closed'));
          return;
        }
        try {
          resolve(this.host.handle(req) as number);
        } catch (e) {
          reject(e);
        }
      };
      if (typeof setImmediate === 'function') setImmediate(run);
      else setTimeout(run, 0);
      this.host!.afterNextRequest(run);
    });
  }

  recycle(buffers: ArrayBuffer[]): void {
    if (this.host) for (const b of buffers) this.host.outPool.give(b);
  }

  async close(): Promise<void> {
    this.host = null;
  }
}
