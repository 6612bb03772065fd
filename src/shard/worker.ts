/**
 * Worker-thread entry: runs one ShardHost and answers requests in order. Errors travel back as
 * { kind, message } and become CairnError again on the caller's side.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShardHost } from './host.js';
import { CairnError } from '../errors.js';
import type { ShardRequest } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('worker.ts must run in a worker thread');
const host = new ShardHost((workerData as { memCapBytes?: number } | undefined)?.memCapBytes);

port.on('message', (msg: { seq: number; req: ShardRequest }) => {
  if (msg.req.op === 'crash') {
    // Test hook: die the way a crashed worker does, without answering.
    process.exit(70);
  }
  try {
    const value = host.handle(msg.req);
    port.postMessage({ seq: msg.seq, ok: true, value });
  } catch (e) {
    const kind = e instanceof CairnError ? e.kind : 'internal';
    const message = e instanceof Error ? e.message : String(e);
    port.postMessage({ seq: msg.seq, ok: false, kind, message });
  }
});
