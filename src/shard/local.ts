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

  call<T extends ShardResponse>(req: ShardRequest, transfer?: ArrayBuffer[]): Promise<T> {
    if (!this.host) return Promise.reject(new CairnError('closed', 'shard is closed'));
    try {
      return Promise.resolve(this.host.handle(req) as T);
    } catch (e) {
      return Promise.reject(e);
    } finally {
      // The request ran to completion on this thread: a batch is in Wasm memory now, not in these.
      if (this.pool && transfer) for (const b of transfer) this.pool.give(b);
    }
  }

  async close(): Promise<void> {
    this.host = null;
  }
}
