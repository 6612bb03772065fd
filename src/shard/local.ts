/** An in-process shard: the host runs on the caller's thread; results come back as promises. */
import type { Shard, ShardRequest, ShardResponse } from './protocol.js';
import { ShardHost } from './host.js';
import { CairnError } from '../errors.js';

export class LocalShard implements Shard {
  private host: ShardHost | null;

  constructor(memCapBytes?: number) {
    this.host = new ShardHost(memCapBytes);
  }

  call<T extends ShardResponse>(req: ShardRequest, _transfer?: ArrayBuffer[]): Promise<T> {
    if (!this.host) return Promise.reject(new CairnError('closed', 'shard is closed'));
    try {
      return Promise.resolve(this.host.handle(req) as T);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async close(): Promise<void> {
    this.host = null;
  }
}
